"""Scale-out: the Ray engine that builds an augmentation's or a teacher's shards on a cluster
(``ray_engine``). Imported only for ``--engine ray``; the local engine never imports Ray."""
