"""Augmented datasets: building them, describing them, exporting and inspecting them.

- ``build``: ``AugmentJob`` and ``run``, the augment job behind ``tinyaug augment`` and the API;
  ``shards``: one shard's rows and its workers; ``methods``: a method from its name.
- ``assemble``: joining the shards into the output under a lock; ``card``: the dataset card.
- ``export`` (``formats``): GLUE-layout TSV, Parquet, JSON Lines, and run_glue's CSV/JSON;
  ``filter``: label policies on a labelled dataset; ``inspect``: a variant's replaced words, an
  example's rows, one sentence's routes and candidates; ``api``: ``augment_dataset``.

Not here: the methods and TinyBERT's engine (``tinyaug.augment``), reading inputs and models
(``io``), where shards are built (``scale``).
"""
