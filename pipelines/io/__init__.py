"""Inputs, models and storage: what the rest of ``pipelines`` reads and writes through.

- ``tasks``: the GLUE tasks as data (layouts, columns, labels); ``glue``: the strict TSV reader
  and the hub loader; ``tables``: any table (Parquet, JSON Lines, CSV, TSV, ``save_to_disk``).
- ``models``: masked LMs and tokenizers (local folders, hub names offline-safe, the starter),
  devices and reduced precision; ``vectors``: word vectors in every supported format;
  ``wordnet``: WordNet antonyms through nltk (optional); ``network``: the quick hub probe.
- ``schema``: every column name tinyaug adds, their ``Features``, the dataset metadata.
- ``storage``: atomic files and folders with umask permissions, JSON; ``shard_runner``: the
  resumable shard loop (lock, run key, missing shards, assembly) augment and teacher-logits share.
- ``files``: user files opened safely (regular files only, bounded lines, the size limits).

Not here: augmentation, distillation, the command line.
"""
