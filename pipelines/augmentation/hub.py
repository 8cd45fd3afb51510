"""A Hub-ready dataset folder: what ``datasets.load_dataset(FOLDER)`` loads as it is, and what
``huggingface-cli upload`` / ``push_to_hub`` publish unchanged.

    FOLDER/
      README.md                            YAML header (configs, dataset_info, license, tags, ...)
                                           and the dataset card (recipe, statistics)
      data/train-00000-of-00001.parquet    the augmented dataset
      data/validation-00000-of-00001.parquet   with ``validation=DIR2``

The Parquet files carry the dataset's ``Features`` (ClassLabel names, float32 STS-B scores,
``idx``, the provenance columns), and the YAML header lists them too, as ``push_to_hub`` writes
it, so the loaded splits have exactly the saved dataset's features. The folder is written beside
the target and renamed into place.

Not here: the file exports (``export``), the card's text (``card``), uploading.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import datasets

from tinyaug.errors import InputError
from tinyaug.pipelines.augmentation.card import render_card
from tinyaug.pipelines.io.outputs import check_output
from tinyaug.pipelines.io.schema import PROVENANCE_COLUMNS, read_metadata
from tinyaug.pipelines.io.storage import atomic_directory

HUB_README = "README.md"
DATA_FOLDER = "data"
TAGS = ["tinyaug", "data-augmentation", "knowledge-distillation"]


@dataclasses.dataclass
class HubExportReport:
    path: Path  # the folder
    rows: dict[str, int]  # split -> rows
    columns: list[str]


def is_hub_folder(path: Path) -> bool:
    """A folder this export wrote: a ``README.md`` and Parquet files under ``data/`` only."""
    data = path / DATA_FOLDER
    return (path / HUB_README).is_file() and data.is_dir() and \
        {p.suffix for p in data.iterdir()} <= {".parquet"} and \
        {p.name for p in path.iterdir()} <= {HUB_README, DATA_FOLDER, ".gitattributes"}


def hub_target(to: str | Path, *, datasets_in: list[str | Path | None], overwrite: bool = False) -> Path:
    """The folder to write, checked before anything is read (``outputs.check_output``)."""
    return check_output(to, command="export --format hub", what="an earlier hub export (README.md and data/*.parquet)",
                        option="--to", inputs=[("DATASET", p) for p in datasets_in], overwrite=overwrite,
                        replaceable=is_hub_folder)


def export_hub(ds: datasets.Dataset, to: str | Path, *, validation: datasets.Dataset | None = None,
               provenance: bool | None = None, overwrite: bool = False) -> HubExportReport:
    """Write ``ds`` (and ``validation``, which must have the same columns and features) as a
    Hub-ready folder at ``to``. ``provenance=False`` leaves out the ``aug_`` columns."""
    target = hub_target(to, datasets_in=[*_folders(ds), *(_folders(validation) if validation is not None else [])],
                        overwrite=overwrite)
    splits = {"train": ds, **({"validation": validation} if validation is not None else {})}
    if provenance is False:
        splits = {name: split.remove_columns([c for c in PROVENANCE_COLUMNS if c in split.column_names])
                  for name, split in splits.items()}
    _check_same_features(splits)
    with atomic_directory(target) as tmp:
        (tmp / DATA_FOLDER).mkdir()
        for name, split in splits.items():
            split.to_parquet(str(tmp / DATA_FOLDER / f"{name}-00000-of-00001.parquet"))
        (tmp / HUB_README).write_text(hub_readme(splits, read_metadata(ds)), encoding="utf-8")
    return HubExportReport(target, {name: len(split) for name, split in splits.items()}, splits["train"].column_names)


def _folders(ds: datasets.Dataset) -> list[str | Path | None]:
    return [Path(f["filename"]).parent for f in ds.cache_files][:1]


def _check_same_features(splits: dict[str, datasets.Dataset]) -> None:
    train = splits["train"].features
    for name, split in splits.items():
        if split.features != train:
            differ = sorted(set(train) ^ set(split.features)) or \
                [c for c in train if train[c] != split.features[c]]
            hint = (" (a GLUE dev split gets the provenance columns with `tinyaug augment --split dev -n 0 "
                    "--out DIR2`)" if any(c in PROVENANCE_COLUMNS for c in differ) else "")
            raise InputError(f"--validation: its columns differ from the training set's in {', '.join(differ)}; "
                             f"a Hub dataset has one schema for all its splits{hint}")


def hub_readme(splits: dict[str, datasets.Dataset], metadata: dict[str, Any]) -> str:
    """The README: the YAML header the Hub reads, then the dataset card (``card.render_card``)
    and how to load and publish the folder."""
    import yaml
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    header: dict[str, Any] = _card_fields(metadata)
    features = splits["train"].features
    split_infos = SplitDict()
    for name, split in splits.items():
        split_infos.add(SplitInfo(name=name, num_examples=len(split), num_bytes=split.data.nbytes))
    DatasetInfosDict({"default": DatasetInfo(features=features, splits=split_infos)}).to_dataset_card_data(header)
    MetadataConfigs({"default": {"data_files": [{"split": name, "path": f"{DATA_FOLDER}/{name}-*"}
                                                for name in splits]}}).to_dataset_card_data(header)
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    body = _card_body(metadata) if metadata else [f"# Dataset of {len(splits['train'])} rows", ""]
    usage = ["", "## Load and publish", "",
             "```python", "import datasets", 'ds = datasets.load_dataset("PATH/TO/THIS/FOLDER")  # or the Hub name, '
             'once uploaded', "```", "",
             "Upload: `huggingface-cli upload USER/NAME PATH/TO/THIS/FOLDER --repo-type dataset`, or "
             "`datasets.load_dataset(FOLDER).push_to_hub(\"USER/NAME\")`.", ""]
    return "---\n" + front + "---\n\n" + "\n".join(body + usage)


def _card_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """License, task categories, sources and tags for the YAML header."""
    glue_task = metadata.get("task")
    fields: dict[str, Any] = {
        # GLUE's corpora each keep their own terms (see the card); a table's licence is its owner's
        "license": "other" if glue_task else "unknown",
        "task_categories": ["text-classification"],
        **({"language": ["en"]} if glue_task else {}),
        "source_datasets": ["extended|nyu-mll/glue"] if glue_task else ["extended"],
        "tags": TAGS + ([f"glue-{glue_task}"] if glue_task else []),
        "pretty_name": f"tinyaug augmented {glue_task or 'table'}",
    }
    return fields


def _card_body(metadata: dict[str, Any]) -> list[str]:
    """``render_card``'s text without its own front matter (the header above replaces it)."""
    text = render_card(metadata)
    if text.startswith("---\n"):
        text = text.split("\n---\n", 1)[1]
    lines = text.strip("\n").splitlines()
    if metadata.get("task"):
        lines += ["", f"Licence: the rows come from GLUE's {metadata['task']} corpus, which keeps its own terms; "
                      "see the GLUE paper (Wang et al., 2019) and the corpus's page."]
    return lines


def export_hub_folders(dataset: str | Path, to: str | Path | None = None, *, validation: str | Path | None = None,
                       provenance: bool | None = None, overwrite: bool = False) -> HubExportReport:
    """``tinyaug export DATASET --format hub``: the target checked first (default: ``DATASET-hub``
    beside DATASET), then the dataset folders loaded and written (``export_hub``)."""
    from tinyaug.pipelines.augmentation.build import load_augmented

    to = to or Path(dataset).resolve().with_name(f"{Path(dataset).resolve().name}-hub")
    hub_target(to, datasets_in=[dataset, validation], overwrite=overwrite)  # before reading anything
    return export_hub(load_augmented(Path(dataset)), to, provenance=provenance, overwrite=overwrite,
                      validation=load_augmented(Path(validation)) if validation else None)
