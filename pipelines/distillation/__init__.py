"""The distillation commands as functions: load, call ``tinyaug.distill``, save, report.

- ``finetune``: fine-tune a model on a GLUE task (a teacher, or the hard-label baseline);
  ``evaluate``: GLUE dev scores with the task's official metrics.
- ``teacher``: ``teacher_logits``, the teacher's logits stored as a column of a dataset.
- ``distill``: ``make_student`` (an untrained student from a size) and ``distill`` (the
  TinyBERT recipe of ``tinyaug.distill.run`` on a dataset, then dev scores).
- ``loading``: teachers, students, tokenizers, task datasets and dev splits.

Each function returns a JSON-able dict and writes its results as JSON beside its output.
Not here: losses, stages and training (``tinyaug.distill``); the click commands (``cli``).
"""

from tinyaug.pipelines.distillation.distill import RESULTS_FILE, STUDENT_INFO_FILE, distill, make_student
from tinyaug.pipelines.distillation.finetune import FINETUNE_RESULTS_FILE, evaluate, finetune
from tinyaug.pipelines.distillation.teacher import teacher_logits

__all__ = ["finetune", "evaluate", "teacher_logits", "make_student", "distill", "RESULTS_FILE",
           "STUDENT_INFO_FILE", "FINETUNE_RESULTS_FILE"]
