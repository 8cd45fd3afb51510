"""``tinyaug bench``: augmentation throughput against the machine's matmul peak and a naive mode
(see ``run``). A command, not a test: its figures depend on the machine.

Not here: the optimisations themselves (``tinyaug.augment``).
"""
