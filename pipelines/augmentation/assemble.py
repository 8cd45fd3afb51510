"""Joining an augmentation's shards into the output dataset.

The shards' Arrow files are streamed, one record batch at a time, into the new dataset folder,
which is checked to load with every row before it is swapped into place (``storage``): memory
stays at one batch whatever the dataset's size, and an old output stays until the new one is
complete.

Not here: building the shards (``build``), the card's text (``card``).
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from datasets.fingerprint import Hasher

from tinyaug.errors import TinyaugError
from tinyaug.pipelines.augmentation.card import render_card
from tinyaug.pipelines.io.schema import CARD_FILE, metadata_description
from tinyaug.pipelines.io.storage import atomic_directory


OUTPUT_FILE_BYTES = 500 * 2**20  # Arrow file size in the output, as ``save_to_disk``'s default max_shard_size


def assemble(done: list[Path], out_dir: Path, metadata: dict) -> None:
    """Join the shards into ``out_dir`` with the card; an old ``out_dir`` goes only once the new
    one is complete and loads with every row.

    The shards' Arrow files are streamed, one record batch at a time, into files of up to
    ``OUTPUT_FILE_BYTES``, listed in ``state.json`` as ``save_to_disk(num_shards=...)`` lists
    them. Memory stays at one batch whatever the dataset's size (concatenating and saving mapped
    every row into the process: +250 MB of peak memory for all of SST-2), and the file count
    stays small (one file per shard would cost a memory map each when loading).
    """
    states = [json.loads((shard / "state.json").read_text()) for shard in done]
    sources = [shard / entry["filename"] for shard, state in zip(done, states) for entry in state["_data_files"]]
    groups: list[list[Path]] = [[]]
    size = 0
    for source in sources:
        file_size = source.stat().st_size
        if groups[-1] and size + file_size > OUTPUT_FILE_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(source)
        size += file_size
    names = [f"data-{i:05d}-of-{len(groups):05d}.arrow" for i in range(len(groups))]
    state = {**states[0], "_data_files": [{"filename": name} for name in names],
             "_fingerprint": Hasher.hash([s["_fingerprint"] for s in states])}
    info = json.loads((done[0] / "dataset_info.json").read_text())  # the features: the same in every shard
    info["description"] = metadata_description(metadata)

    with atomic_directory(out_dir) as tmp:
        for group, name in zip(groups, names):
            _join_arrow_files(group, tmp / name)
        (tmp / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
        (tmp / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        (tmp / CARD_FILE).write_text(render_card(metadata), encoding="utf-8")
        written = len(datasets.load_from_disk(str(tmp)))  # maps the files, reads no rows
        if written != metadata["rows_out"]:
            raise TinyaugError(f"assembling {out_dir} gave {written} rows instead of {metadata['rows_out']}; "
                               f"the shards in {out_dir}.partial are kept: rerun the same command")


def _join_arrow_files(sources: list[Path], target: Path) -> None:
    """Concatenate Arrow IPC stream files (``datasets``' format) one record batch at a time."""
    import pyarrow as pa

    writer = None
    try:
        for source in sources:
            with pa.OSFile(str(source)) as handle:
                reader = pa.ipc.open_stream(handle)
                writer = writer or pa.ipc.new_stream(str(target), reader.schema)
                for batch in reader:
                    writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
