"""The default layer map for any student depth up to the teacher's (issue 25): evenly spread,
the paper's uniform map when the depth divides."""

from __future__ import annotations

import pytest

from tinyaug.distill.layer_map import LayerMap
from tinyaug.errors import InputError


@pytest.mark.parametrize("student, teacher, expected", [
    (4, 6, (1, 3, 4, 6)),     # 6 / 4 = 1.5: floor(1.5), floor(3), floor(4.5), floor(6)
    (5, 12, (2, 4, 7, 9, 12)),  # 2.4, 4.8, 7.2, 9.6, 12
    (3, 4, (1, 2, 4)),
    (6, 6, (1, 2, 3, 4, 5, 6)),
    (1, 6, (6,)),
])
def test_default_map_spreads_any_depth_evenly(student, teacher, expected):
    assert LayerMap.uniform(student, teacher).teacher_layers == expected
    assert LayerMap.choose(None, student, teacher).teacher_layers == expected


@pytest.mark.parametrize("teacher", range(1, 25))
def test_default_map_is_the_papers_when_the_depth_divides_and_always_fits(teacher):
    for student in range(1, teacher + 1):
        layers = LayerMap.uniform(student, teacher).teacher_layers
        assert len(layers) == student and layers[-1] == teacher and layers[0] >= 1
        assert all(a < b for a, b in zip(layers, layers[1:]))  # increasing: no layer learnt twice
        if teacher % student == 0:
            k = teacher // student
            assert layers == tuple(m * k for m in range(1, student + 1))
        LayerMap.choose(None, student, teacher).check(student, teacher)


def test_a_deeper_student_still_needs_an_explicit_map():
    with pytest.raises(InputError, match="more layers"):
        LayerMap.uniform(7, 6)
