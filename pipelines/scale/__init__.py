"""Where shards are built: the executor interface and the local executor (``executor``), and
the Ray executor that builds an augmentation's or a teacher's shards on a cluster
(``ray_executor``, imported only for ``--engine ray``; the local executor never imports Ray).

Not here: which shards are missing and writing them (``io.shard_runner``)."""
