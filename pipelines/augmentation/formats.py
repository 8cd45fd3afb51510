"""The export formats, as one table (light, for the command line: the writers load when used).

Each format is one ``ExportFormat`` entry: its name, the suffix of the file it writes (None: it
writes a folder), whether it keeps the provenance columns by default, which columns it writes,
and its writer as ``"module:function"``. A file format's writer is called as
``writer(ds, tmp, replace_breaks)`` with the dataset's exported columns and the temporary file to
fill, and returns ``(columns written, fields with breaks replaced, layout columns left empty)``;
a folder format's writer is the export command's business (``hub``). A new format is one entry
here and one writer function.

    >>> SUFFIXES["parquet"], DEFAULT_NAMES["csv"], "hub" in FOLDER_FORMATS
    ('.parquet', 'train_aug.csv', True)
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

_EXPORT = "tinyaug.pipelines.augmentation.export"


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str | None  # the file's suffix (--to must end with it); None: the format writes a folder
    provenance: bool  # keeps the aug_ columns by default
    columns: str  # "all": every column; "run_glue": the text columns and the label (run_glue.py's
    #               --train_file layout); "layout": the GLUE file layout of the task (the writer's)
    writer: str  # "module:function"

    def load_writer(self) -> Callable[..., Any]:
        module, _, function = self.writer.partition(":")
        return getattr(importlib.import_module(module), function)


EXPORT_FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("tsv", ".tsv", False, "layout", f"{_EXPORT}:write_tsv"),
    ExportFormat("parquet", ".parquet", True, "all", f"{_EXPORT}:write_parquet"),
    ExportFormat("jsonl", ".jsonl", True, "all", f"{_EXPORT}:write_json_lines"),
    ExportFormat("csv", ".csv", False, "run_glue", f"{_EXPORT}:write_csv"),
    ExportFormat("json", ".json", False, "run_glue", f"{_EXPORT}:write_json_lines"),  # JSON Lines, as run_glue reads
    ExportFormat("hub", None, True, "all", "tinyaug.pipelines.augmentation.hub:export_hub_folders"),
)}

FORMATS = tuple(name for name, f in EXPORT_FORMATS.items() if f.suffix is not None)  # the file formats
FOLDER_FORMATS = tuple(name for name, f in EXPORT_FORMATS.items() if f.suffix is None)  # hub: load_dataset(FOLDER)
SUFFIXES = {name: EXPORT_FORMATS[name].suffix for name in FORMATS}
DEFAULT_NAMES = {name: f"train_aug{suffix}" for name, suffix in SUFFIXES.items()}
PROVENANCE_BY_DEFAULT = {name: f.provenance for name, f in EXPORT_FORMATS.items()}
