"""The analysis notebooks: what each one is, and how to run one and read its results.

The notebooks live in ``notebooks/`` as MyST markdown (jupytext). Papermill runs
them with a service's parameters; the figures they glue with ``myst_nb.glue`` are read
back from the executed notebook with :func:`read_glued`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # jupytext and nbformat take seconds to import: loaded where used
    import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass(frozen=True)
class NotebookInfo:
    name: str
    title: str
    steps: str
    part: str
    guide_asks: str
    key_question: str
    needs: tuple[str, ...] = field(default_factory=tuple)


NOTEBOOKS: list[NotebookInfo] = [
    NotebookInfo(
        "data-completeness",
        "How complete is your equality data?",
        "Step 1",
        "Part 1",
        "Look at how complete your equality and diversity monitoring is, and plan how to improve it.",
        "Is your data complete enough to show who uses your service?",
    ),
    NotebookInfo(
        "who-uses-the-service",
        "Who uses the service, and who is missing?",
        "Steps 1, 3 and 4",
        "Part 1",
        "Compare the people who use your service with the people who live in your catchment.",
        "Which groups are missing or under-represented, and do you know why?",
        ("lsoa_code",),
    ),
    NotebookInfo(
        "deprivation-and-core20",
        "Deprivation and Core20",
        "Step 3",
        "Part 1",
        "Use the Index of Multiple Deprivation to see whether people from the most deprived areas "
        "(Core20) reach your service.",
        "Are people from the most deprived 20% of areas reaching your service in proportion?",
        ("lsoa_code",),
    ),
    NotebookInfo(
        "access-and-outcome-gaps",
        "Gaps in access and outcomes",
        "Step 4",
        "Part 1",
        "Combine your data with deprivation and equality fields to find gaps in waiting, "
        "attendance, drop-out and outcomes.",
        "Has a focus for this work been identified, such as a community or an area?",
    ),
    NotebookInfo(
        "pathway",
        "Where each group leaves the pathway",
        "Step 9",
        "Part 3",
        "Map your pathway from the person's point of view, and find the step where each group is lost.",
        "Have you planned adjustments, with people, at the steps where groups are lost?",
        ("accepted", "first_appointment_date", "discharge_reason"),
    ),
    NotebookInfo(
        "readability",
        "How easy are your letters to read?",
        "Step 10 and the case study",
        "Part 3",
        "Check the reading age of your letters and leaflets before and after a plain-English rewrite.",
        "Could most of the people you serve read and act on your letters?",
    ),
    NotebookInfo(
        "evaluation",
        "Has the gap changed?",
        "Steps 11 and 12",
        "Part 4",
        "Compare a baseline with the period after a change, and watch the measure over time.",
        "Have you set out a robust and meaningful evaluation plan?",
        ("appointments_dna", "appointments_offered"),
    ),
    NotebookInfo(
        "summary-and-plan",
        "Summary, focus and plan",
        "Parts 1 to 4",
        "Part 4",
        "Bring the findings together, choose a focus, and plan the action and its evaluation.",
        "Has a focus been chosen, with an action plan and an evaluation plan?",
    ),
]
BY_NAME = {n.name: n for n in NOTEBOOKS}


def to_notebook(name_or_path: str | Path) -> nbformat.NotebookNode:
    """Read a MyST markdown notebook (by name or path) as a notebook object."""
    import jupytext

    path = Path(name_or_path)
    if not path.suffix:
        path = NOTEBOOK_DIR / f"{name_or_path}.md"
    return jupytext.read(path)


#: How a number that is not a figure (NaN, infinity) prints in a glued value.
_NOT_FIGURES = {"nan", "inf"}


class _MissingFigures(ast.NodeTransformer):
    """Read NaN and infinity (printed ``nan``, ``inf``, ``-inf``) as None: a missing figure."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(None) if node.id in _NOT_FIGURES else node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        node = self.generic_visit(node)
        if isinstance(node.operand, ast.Constant) and node.operand.value is None:
            return node.operand  # -inf
        return node


def glued_value(text: str):
    """A glued value's printed text as a Python value, or the text itself if it is not one.

    A figure that could not be worked out reads back as None, never as the text "nan":

    >>> glued_value("12.5"), glued_value("nan"), glued_value("[1.0, -inf]"), glued_value("Asian")
    (12.5, None, [1.0, None], 'Asian')
    """
    try:
        tree = _MissingFigures().visit(ast.parse(text.strip(), mode="eval"))
        return ast.literal_eval(tree)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return text


def read_glued(nb: nbformat.NotebookNode | str | Path) -> dict:
    """The values an executed notebook glued, by name (as Python values where possible).

    A figure glued as NaN or infinity reads back as None (see :func:`glued_value`).
    """
    import nbformat

    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(str(nb), as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            text = o.get("data", {}).get(meta.get("mime_prefix", "") + "text/plain")
            if text is None:
                continue
            out[meta["name"]] = glued_value(text)
    return out


# ----------------------------------------------------------------------------- notebook form

#: Expressions that make a statement logic rather than a plain call.
_LOGIC_NODES = (
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.IfExp,
    ast.BoolOp,
)


def _is_plain(node: ast.stmt) -> bool:
    """An import, or one call (its result shown or bound to names) with no logic inside."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if isinstance(node, ast.Expr):
        value = node.value
    elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        value = node.value
    else:
        return False
    if not isinstance(value, ast.Call):
        return False
    return not any(isinstance(n, _LOGIC_NODES) for n in ast.walk(value))


def code_cells(nb) -> list[str]:
    """The sources of a notebook's code cells, without the parameters cell."""
    return [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    ]


def logic_lines(nb) -> tuple[int, int]:
    """(logic lines, code lines) in a notebook's code cells, parameters cell left out.

    Code lines are the non-blank, non-comment lines. Logic lines are those of statements
    that are not an import or a single call (showing a table or chart, gluing, running a
    step, binding its result): control flow, function definitions, data wrangling and
    sentence building. Notebooks should narrate, so this count should stay small.
    """
    logic = code = 0
    for source in code_cells(nb):
        lines = source.splitlines()
        code += sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))
        for node in ast.parse(source).body:
            if not _is_plain(node):
                span = lines[node.lineno - 1 : node.end_lineno]
                logic += sum(1 for line in span if line.strip())
    return logic, code


def count_logic(notebook_dir: str | Path = NOTEBOOK_DIR) -> dict[str, tuple[int, int]]:
    """:func:`logic_lines` of every notebook in a folder, by name.

    Run ``python -m equity_helpers.notebooks`` to print the counts.
    """
    import jupytext

    return {p.stem: logic_lines(jupytext.read(p)) for p in sorted(Path(notebook_dir).glob("*.md"))}


if __name__ == "__main__":  # pragma: no cover
    import sys

    counts = count_logic(sys.argv[1] if len(sys.argv) > 1 else NOTEBOOK_DIR)
    for name, (logic, code) in counts.items():
        sys.stdout.write(f"{name:28} {logic:4} logic lines of {code:4} code lines\n")
    total_logic = sum(v[0] for v in counts.values())
    total_code = sum(v[1] for v in counts.values())
    sys.stdout.write(f"{'total':28} {total_logic:4} logic lines of {total_code:4} code lines\n")
