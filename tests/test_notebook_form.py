"""The notebooks keep one form: jupytext MyST markdown, one identical header, a first
code cell of literal, annotated parameters, no outputs and no .ipynb copies in git."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))
PARAMETERS = {"config_path", "prepared_path", "output_dir"}


def header(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), path.name
    return text[: text.index("\n---\n", 4) + 5]


def test_every_notebook_has_the_same_header():
    headers = {header(p) for p in NOTEBOOKS}
    assert len(NOTEBOOKS) >= 9
    assert len(headers) == 1, "notebook headers differ"
    (only,) = headers
    assert "format_name: myst" in only and "name: python3" in only


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_form(path: Path):
    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, path.name
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), (
        "the first code cell is the parameters cell"
    )
    tree = ast.parse(first.source)
    names = set()
    for node in tree.body:
        # Literal, type-annotated defaults only (papermill --help-notebook reads them).
        assert isinstance(node, ast.AnnAssign), f"{path.name}: parameters must be annotated"
        assert isinstance(node.value, ast.Constant), f"{path.name}: parameters must be literals"
        names.add(node.target.id)
    assert PARAMETERS <= names, path.name
    for line in first.source.splitlines():
        assert "#" in line, f"{path.name}: each parameter has a trailing comment"
    assert all(not c.get("outputs") for c in code), f"{path.name} has stored outputs"
    # One code-cell lexer.
    assert (
        "```{code-cell} ipython3" in path.read_text()
        and "```{code-cell} python" not in path.read_text()
    )
    # Every notebook has a label and a key question.
    text = path.read_text()
    assert f"(nb:{path.stem})=" in text
    assert "Key question" in text or path.stem == "training-exercises"


def test_no_notebook_json_tracked_outside_tests():
    tracked = subprocess.run(
        ["git", "ls-files", "*.ipynb"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert [p for p in tracked.split() if not p.startswith("tests/")] == []


# ----------------------------------------------------------------------------- steps compute, notebooks narrate

MAX_CELL_LINES = 8
#: Logic lines (not an import or a single call) allowed across all notebooks. Count them with
#: ``python -m equity_helpers.notebooks``.
MAX_LOGIC_LINES = 150


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_narrates(path: Path):
    from equity_helpers.notebooks import code_cells

    nb = jupytext.read(path)
    for source in code_cells(nb):
        lines = [line for line in source.splitlines() if line.strip()]
        assert len(lines) <= MAX_CELL_LINES, f"{path.name}: a cell of {len(lines)} lines:\n{source}"
        tree = ast.parse(source)
        for node in ast.walk(tree):
            # Logic in a notebook cannot be unit-tested fast, and copies of it drift apart.
            assert not isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
            ), f"{path.name} defines a function or class: move it to equity_helpers"
            if isinstance(node, ast.alias):
                # Names, not one-letter aliases; and the package's display module must not
                # hide IPython's display().
                assert node.asname is None or len(node.asname) > 1, f"{path.name}: {node.asname}"
                assert node.asname != "display", path.name
            if isinstance(node, ast.ImportFrom) and node.module == "equity_helpers":
                assert "display" not in {a.name for a in node.names}, path.name


def test_notebooks_hold_little_logic():
    from equity_helpers.notebooks import count_logic

    counts = count_logic()
    total = sum(logic for logic, _ in counts.values())
    assert total < MAX_LOGIC_LINES, counts
    # Every analytic notebook runs its step and glues its values in one place.
    for path in NOTEBOOKS:
        if path.stem != "training-exercises":
            module = path.stem.replace("-", "_")
            text = path.read_text()
            assert f"from equity_helpers.steps import {module}" in text, path.name
            assert f"result = {module}.run(service)" in text, path.name
            assert "result.publish(service)" in text, path.name


def test_logic_lines_counts_what_is_not_a_call():
    from equity_helpers.notebooks import logic_lines

    cell = (
        "import pandas as pd\n"
        "result = step.run(service)\n"
        "result.show('x')\n"
        "if result:\n"
        "    print('a')\n"
        "rows = [r for r in result]\n"
        "glue('n', len(rows), display=False)\n"
        "show(t for t in rows)\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    assert logic_lines(nb) == (4, 8)
