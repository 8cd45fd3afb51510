"""Everything that touches the outside: files in and out, models, datasets, the command line.

- ``io``: GLUE files and other tables in, masked LMs and word vectors loaded, the dataset schema,
  atomic storage.
- ``augmentation``: the shard builder behind ``tinyaug augment``, assembly, the dataset card,
  exports, inspection.
- ``distillation``: ``finetune``, ``teacher_logits``, ``make_student``, ``distill``, ``evaluate``
  as functions: load, call ``tinyaug.distill``, save.
- ``starter``: the embedded offline masked LM (recipe, corpus, training, artifact, evaluation).
- ``scale``: the Ray engine (``--engine ray``) that builds shards on a cluster.
- ``experiment``: the augmentation ablation; ``bench``: the throughput benchmark.
- ``cli``: the ``tinyaug`` command line.

Not here: the augmentation algorithm (``tinyaug.augment``) and the distillation losses and stages
(``tinyaug.distill``), which open no file.
"""
