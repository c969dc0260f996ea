"""Showing controlled tables and notices in notebooks, the book and the workbook."""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown

from .privacy import DisclosureRule, format_count
from .safe_html import html_text, md_text, safe_table


def _pct(v) -> str:
    """One decimal place; ``*`` for a hidden value; text (a note in the cell) as it is."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return "*"
    return str(v) if isinstance(v, str) else f"{v:.1f}"


def table(df: pd.DataFrame, *, caption: str, counts=(), percents=(), numbers=(), hide=("_x", "_n")):
    """A controlled table ready to show: ``*`` for hidden values, a caption, no index.

    Columns in ``counts`` get thousands separators, ``percents`` and ``numbers`` one
    decimal place; columns starting with an underscore (raw counts kept for further
    statistics) are never shown.
    """
    shown = df[[c for c in df.columns if not str(c).startswith("_") and c not in hide]].copy()
    for c in counts:
        if c in shown:
            shown[c] = [format_count(v) for v in shown[c]]
    for c in (*percents, *numbers):
        if c in shown:
            shown[c] = [_pct(v) for v in shown[c]]
    shown = shown.astype(str).replace({"<NA>": "*", "nan": "*"})
    # Cells and labels are escaped by safe_table, the caption here: each exactly once.
    return (
        safe_table(shown.style)
        .hide(axis="index")
        .set_caption(html_text(caption))
        .set_table_attributes('class="playbook-table"')
    )


def disclosure_notice(rule: DisclosureRule) -> Markdown:
    """The small-number rule in one sentence, and a loud warning when it is relaxed."""
    text = f"**Small numbers.** {rule.describe()}"
    warning = rule.warning()
    if warning:
        text = f"**Warning: {warning}**\n\n" + text
    return Markdown(text)


def bullet_list(items) -> Markdown:
    items = list(items)
    if not items:
        return Markdown("*Nothing to list.*")
    return Markdown("\n".join(f"- {md_text(i)}" for i in items))
