"""The augmentation ablation: TinyBERT's "with and without data augmentation" comparison at CPU
scale, run from the project's own command functions, resumable.

- ``plan``: ``AblationPlan`` (every knob of one task's experiment) and the per-task budgets.
- ``ablation``: ``Experiment``, which runs (or resumes) every step and writes the summary.
- ``summary``: means, spreads, comparisons, the Markdown table, the plot, ``report``.
- ``statistics``: paired comparisons of two arms on the same dev examples (a bootstrap interval
  over examples and seeds, McNemar's exact test).
- ``quick``: ``--quick``, the same pipeline on the tiny models and data of ``toys``.
- ``toys``: a tiny WordPiece vocabulary, tiny BERT models and GLUE-layout folders, built
  offline (``--quick`` uses them at run time; the tests use them too).

Not here: training, augmentation or metrics code (each step calls the function its command calls).
"""

from tinyaug.pipelines.experiment.ablation import Experiment
from tinyaug.pipelines.experiment.plan import CONDITIONS, STAGE_STEPS, AblationPlan
from tinyaug.pipelines.experiment.quick import quick_plan
from tinyaug.pipelines.experiment.summary import compare, mean_and_spread, report, summarize, summary_markdown

__all__ = ["AblationPlan", "Experiment", "CONDITIONS", "STAGE_STEPS", "quick_plan", "compare",
           "mean_and_spread", "report", "summarize", "summary_markdown"]
