"""The layout holds: every package is installed and says what it holds, no module is too long,
no imports go in a circle (imports inside functions included), and the command line starts
without the heavy libraries."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE_FOLDERS = ("augment", "distill", "pipelines")
MAX_LINES = 400


def _packages() -> dict[str, Path]:
    """``{"tinyaug.pipelines.io": ROOT/pipelines/io, ...}``: every folder with an ``__init__.py``."""
    found = {"tinyaug": ROOT}
    for folder in CODE_FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            found["tinyaug." + ".".join(init.parent.relative_to(ROOT).parts)] = init.parent
    return found


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package's name is its ``__init__.py``)."""
    modules = {"tinyaug": ROOT / "__init__.py", "tinyaug.errors": ROOT / "errors.py", "tinyaug.tasks": ROOT / "tasks.py"}
    for name, folder in _packages().items():
        if folder == ROOT:
            continue
        for path in folder.glob("*.py"):
            modules[name if path.stem == "__init__" else f"{name}.{path.stem}"] = path
    return modules


def test_every_package_is_listed_in_pyproject():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(listed) == sorted(_packages())


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_says_what_it_holds(name):
    docstring = ast.get_docstring(ast.parse(_modules()[name].read_text()))
    assert docstring and len(docstring) > 40, f"{name} needs a docstring saying what it holds"


def test_no_module_is_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The tinyaug modules ``name`` imports, anywhere in the file (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in modules and target != name:
                found.add(target)  # a module importing its own package's __init__ counts: that is a circle too
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return out


def test_no_import_circle_counting_imports_inside_functions():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert not _cycles(graph)


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_pure_folders_open_no_files():
    """``augment/`` and ``distill/`` take and return data: no file opening, no pipelines import."""
    for folder in ("augment", "distill"):
        for path in (ROOT / folder).glob("*.py"):
            text = path.read_text()
            assert "tinyaug.pipelines" not in text.replace("``tinyaug.pipelines", ""), path
            assert "open(" not in text and "read_text(" not in text and "write_text(" not in text, path


def test_the_command_line_starts_without_heavy_libraries():
    code = ("import sys, tinyaug.pipelines.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
