"""The README's two set-up commands are the ones CI and users run."""

import re

from conftest import REPO


def readme_commands():
    return re.findall(r"```bash\n(pip install torch==2\.13\.0 [^\n]+)\n```", (REPO / "README.md").read_text())


def test_readme_has_the_two_set_up_commands_and_ci_runs_the_test_one():
    main_job, tests = readme_commands()[:2]
    assert "tinyaug augment --task sst2" in main_job and "pytest" in tests
    assert tests.replace("pip install ", "pip install -q ") in (REPO / ".ci" / "run").read_text()
