"""The export formats and their defaults (light, for the command line; the writers are in ``export``)."""

FORMATS = ("tsv", "parquet", "jsonl", "csv", "json")
DEFAULT_NAMES = {fmt: f"train_aug.{fmt}" for fmt in FORMATS}
# csv and json are run_glue.py's --train_file layout: text columns and label, nothing else
PROVENANCE_BY_DEFAULT = {"tsv": False, "parquet": True, "jsonl": True, "csv": False, "json": False}
