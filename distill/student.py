"""Making a student: a size spec, its config derived from the teacher's, and optional
initialisation from the teacher's own layers.

A student given as a size (``layers=4,hidden=312,heads=12,intermediate=1200``, TinyBERT4's
shape) takes everything else from the teacher's config, above all the vocabulary size, so the
two models read the same token ids. With ``init="teacher-layers"`` (widths must match) the
student starts from the teacher's embeddings and the layers the layer map names, plus the
teacher's pooler and classifier (rows re-ordered into the task's label order).

Not here: reading or writing model directories.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import torch
from transformers import PretrainedConfig

from tinyaug.distill.arch import encoder_layers
from tinyaug.distill.layer_map import LayerMap
from tinyaug.errors import InputError

logger = logging.getLogger(__name__)

_KEYS = {"layers": "layers", "num_hidden_layers": "layers", "hidden": "hidden",
         "hidden_size": "hidden", "heads": "heads", "num_attention_heads": "heads",
         "intermediate": "intermediate", "intermediate_size": "intermediate"}
STUDENT_INITS = ("random", "teacher-layers")


@dataclasses.dataclass(frozen=True)
class StudentSize:
    """The shape of a fresh student; None keeps the teacher's value."""

    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    intermediate: int | None = None

    @classmethod
    def parse(cls, text: str) -> "StudentSize":
        """``"layers=4,hidden=312,heads=12,intermediate=1200"`` -> ``StudentSize(4, 312, 12, 1200)``."""
        values: dict[str, int] = {}
        problems = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            key, sep, value = part.partition("=")
            name = _KEYS.get(key.strip().lower())
            if not sep or name is None:
                problems.append(f"{part!r} is not KEY=NUMBER with KEY one of layers, hidden, heads, intermediate")
                continue
            try:
                number = int(value)
            except ValueError:
                problems.append(f"{key.strip()}={value!r} is not a whole number")
                continue
            if number < 1:
                problems.append(f"{key.strip()} must be >= 1, got {number}")
            elif number > _LIMITS[name]:
                problems.append(f"{key.strip()}={number} is beyond any BERT-style student (at most {_LIMITS[name]:,})")
            values[name] = number
        if problems or not values:
            raise InputError(f"student size {text!r}: " + ("; ".join(problems) or "empty") +
                             "; e.g. --student layers=4,hidden=312,heads=12,intermediate=1200")
        return cls(**values)


_LIMITS = {"layers": 48, "hidden": 8192, "heads": 128, "intermediate": 65536}  # BERT-large is 24 x 1024 x 16 x 4096


def looks_like_size(text: str) -> bool:
    """A ``--student`` value is a size spec when it is ``key=value`` pairs."""
    return "=" in text and all("=" in p for p in text.split(",") if p.strip())


def student_config(teacher_config: PretrainedConfig, size: StudentSize,
                   task_labels: Sequence[str] | None) -> PretrainedConfig:
    """The teacher's config with the student's shape and the task's labels.

    A changed ``hidden`` without ``intermediate`` gets 4 * hidden (BERT's ratio); a changed
    ``hidden`` without ``heads`` keeps the teacher's head count when it divides the width.
    """
    data = teacher_config.to_dict()
    for key in ("architectures", "_name_or_path", "id2label", "label2id", "problem_type"):
        data.pop(key, None)
    hidden = size.hidden or teacher_config.hidden_size
    heads = size.heads or teacher_config.num_attention_heads
    intermediate = size.intermediate or (teacher_config.intermediate_size if hidden == teacher_config.hidden_size
                                         else 4 * hidden)
    if hidden % heads:
        raise InputError(f"student hidden size {hidden} is not a multiple of its {heads} heads; "
                         "give heads=N that divides hidden")
    data.update(num_hidden_layers=size.layers or teacher_config.num_hidden_layers,
                hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate)
    config = type(teacher_config).from_dict(data)
    set_task_labels(config, task_labels)
    return config


def set_task_labels(config: PretrainedConfig, task_labels: Sequence[str] | None) -> None:
    """Give ``config`` the task's outputs: named classes in task order, or one regression score."""
    if task_labels is None:
        config.num_labels = 1
        config.id2label, config.label2id = {0: "score"}, {"score": 0}
        config.problem_type = "regression"
    else:
        config.num_labels = len(task_labels)
        config.id2label = dict(enumerate(task_labels))
        config.label2id = {name: i for i, name in enumerate(task_labels)}
        config.problem_type = "single_label_classification"


def _shape_problems(student: PretrainedConfig, teacher: PretrainedConfig) -> list[str]:
    return [f"{name} {getattr(student, name)} vs teacher {getattr(teacher, name)}"
            for name in ("hidden_size", "num_attention_heads", "intermediate_size")
            if getattr(student, name) != getattr(teacher, name)]


@torch.no_grad()
def copy_teacher_layers(student: torch.nn.Module, teacher: torch.nn.Module, layer_map: LayerMap,
                        permutation: Sequence[int]) -> list[str]:
    """Initialise ``student`` from ``teacher``: embeddings, layer m from teacher layer g(m),
    pooler, and the classifier with its rows in task order (``permutation`` from
    ``labels.label_permutation``). Returns the names of the copied parts.

    Raises ``InputError`` when the widths differ (only the depth may change).
    """
    problems = _shape_problems(student.config, teacher.config)
    if problems:
        raise InputError("--student-init teacher-layers needs the teacher's widths; student "
                         + ", ".join(problems) + "; change the student size or use --student-init random")
    s_layers, t_layers = encoder_layers(student, "student"), encoder_layers(teacher, "teacher")
    layer_map.check(len(s_layers), len(t_layers))
    s_base, t_base = student.base_model, teacher.base_model
    s_base.embeddings.load_state_dict(t_base.embeddings.state_dict())
    copied = ["embeddings"]
    for s_index, t_index in layer_map.attention_pairs():
        s_layers[s_index].load_state_dict(t_layers[t_index].state_dict())
    copied.append(f"layers {layer_map}")
    if getattr(s_base, "pooler", None) is not None and getattr(t_base, "pooler", None) is not None:
        s_base.pooler.load_state_dict(t_base.pooler.state_dict())
        copied.append("pooler")
    if copy_head_in_task_order(teacher, student, permutation):
        copied.append("classifier")
    else:
        logger.info("classifier not copied (not a single linear layer of matching shape)")
    return copied


@torch.no_grad()
def copy_head_in_task_order(source: torch.nn.Module, target: torch.nn.Module, permutation: Sequence[int]) -> bool:
    """Set ``target``'s classifier to ``source``'s with its rows in task order: row i of the
    result is row ``permutation[i]`` of ``source`` (``labels.label_permutation``). ``source`` may
    be ``target`` itself. False (nothing done) unless both heads are single Linear layers with one
    row per label."""
    s_head, t_head = getattr(source, "classifier", None), getattr(target, "classifier", None)
    if not (isinstance(s_head, torch.nn.Linear) and isinstance(t_head, torch.nn.Linear)
            and s_head.weight.shape == t_head.weight.shape and s_head.weight.shape[0] == len(permutation)):
        return False
    index = torch.as_tensor(list(permutation))
    weight, bias = s_head.weight[index].clone(), s_head.bias[index].clone()
    t_head.weight.copy_(weight)
    t_head.bias.copy_(bias)
    return True
