"""``tinyaug browse``: a local web app (Gradio) to look at augmentations: a dataset's variants
with the provenance of every replaced word (``data``, ``render``, ``app``), and a sentence's
routes, candidates and sampled variants. An optional extra: ``pip install tinyaug[ui]``."""
