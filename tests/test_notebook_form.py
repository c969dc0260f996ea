"""The notebooks keep one form: jupytext MyST markdown, one identical header, a first
code cell of literal, annotated parameters, no outputs and no .ipynb copies in git."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import jupytext
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
