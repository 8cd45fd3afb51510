"""The augmentation engine: pure code on words, tokens and tensors, no file I/O.

- ``words``: words with character offsets (BERT's basic tokenizer), eligibility, casing, rewriting.
- ``sources``: the candidate-source protocol and TinyBERT's routing rule.
- ``mlm``: candidates from a masked LM, batched across words and sentences; ``last_layer``: its
  last encoder layer run at the masked positions only.
- ``vectors``: candidates from word-vector nearest neighbours.
- ``sampler``: seeded per-example draws; ``recipe``: every knob that changes the rows.
- ``engine``: ``Augmenter``, which plans candidates for a batch and samples each example's variants.
- ``collector``: Python's cycle collector paused where many new objects hold no cycles.

Not here: loading models, vectors or data, and writing datasets (``tinyaug.pipelines``).
"""
