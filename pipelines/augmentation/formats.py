"""The export formats and their defaults (light, for the command line; the writers are in ``export``)."""

FORMATS = ("tsv", "parquet", "jsonl", "csv", "json")
DEFAULT_NAMES = {fmt: f"train_aug.{fmt}" for fmt in FORMATS}
# csv and json are run_glue.py's --train_file layout: text columns and label, nothing else
PROVENANCE_BY_DEFAULT = {"tsv": False, "parquet": True, "jsonl": True, "csv": False, "json": False}
# the file formats and the one suffix each writes (--to must end with it; a format that writes a folder is not here)
SUFFIXES = {"tsv": ".tsv", "parquet": ".parquet", "jsonl": ".jsonl", "csv": ".csv", "json": ".json"}
FOLDER_FORMATS = ("hub",)  # formats that write a folder: hub (``hub``) is what datasets.load_dataset(FOLDER) reads
