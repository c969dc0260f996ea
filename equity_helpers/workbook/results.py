"""What a workbook run gives back: each step's result, the run's, and the headline figures."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..steps import headline_decimals
from ..steps import headlines as step_headlines
from ..wording import is_number, number

#: The headline figures shown on the front page and compared across runs and services.
#: Each step declares its own (glue name, label) pairs in ``equity_helpers.steps``.
HEADLINES = step_headlines()
#: Decimal places of the figures the steps show to other than one (say, ratios to two).
DECIMALS = headline_decimals()


@dataclass
class StepResult:
    name: str
    title: str
    status: str  # "ok", "failed", "skipped" or "reused"
    seconds: float = 0.0
    message: str = ""
    notebook: str | None = None
    glued: dict = field(default_factory=dict)


@dataclass
class WorkbookResult:
    service: str
    slug: str
    out_dir: Path
    steps: list[StepResult]
    reused: bool = False
    seconds: float = 0.0
    pdf: Path | None = None
    error: str | None = None
    #: Why the PDF asked for was not printed (the HTML workbook was published all the same).
    pdf_error: str | None = None

    @property
    def html_index(self) -> Path:
        return self.out_dir / "html" / "index.html"

    @property
    def failures(self) -> list[StepResult]:
        return [s for s in self.steps if s.status == "failed"]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures and self.pdf_error is None

    def headlines(self) -> dict:
        glued = _glued(self.steps)
        return {k: glued[k] for k, _ in HEADLINES if k in glued}


def _glued(steps: list[StepResult]) -> dict:
    """Every value the steps' notebooks glued, by name."""
    glued = {}
    for s in steps:
        glued.update(s.glued)
    return glued


def not_shown(steps: list[StepResult]) -> dict[str, str]:
    """Why each headline figure that could not be worked out or is withheld is not shown,
    in its step's words, by glue name (see :func:`equity_helpers.steps.base.headline`)."""
    glued = _glued(steps)
    return {
        k: glued[f"{k}_why"]
        for k, _ in HEADLINES
        if k in glued and glued[k] is None and isinstance(glued.get(f"{k}_why"), str)
    }


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "service"


def _as_number(v) -> float | None:
    """A headline figure as a number ("5,974" counts too), or None for text and for a
    figure that could not be worked out or was withheld (not a number)."""
    if isinstance(v, bool):
        return None
    try:
        v = float(v if isinstance(v, int | float) else str(v).replace(",", ""))
    except ValueError:
        return None
    return v if is_number(v) else None


def _fmt(v, key: str | None = None, why: str | None = None) -> str:
    """A headline figure as its step's page shows it (one decimal place unless it says);
    a figure that could not be worked out or was withheld (glued as None) reads "not
    available", followed by ``why`` when the step said why.

    >>> _fmt(None), _fmt(1234.56), _fmt(None, why="Too few referrals to show.")
    ('not available', '1,234.6', 'not available. Too few referrals to show.')
    """
    if v is None or isinstance(v, float):
        shown = number(v, f",.{DECIMALS.get(key, 1)}f")
        return f"{shown}. {why}" if why and not is_number(v) else shown
    if isinstance(v, list):
        return ", ".join(_fmt(x, key) for x in v)
    return str(v)
