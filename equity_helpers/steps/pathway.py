"""Step 9: where in the pathway each group is lost."""

from __future__ import annotations

import pandas as pd

from .. import analysis
from ..wording import UNKNOWN_GROUPS, label, number
from .base import Chart, StepResult, Table, cached, number_or_none

HEADLINES: dict[str, str] = {}
#: Columns the pathway needs beyond the required ones.
NEEDS = ("accepted", "first_appointment_date", "discharge_reason")
FIELDS = ("imd_quintile", "ethnic_group", "age_group")
#: The prepared columns this step reads (see :func:`equity_helpers.steps.columns_for`).
READS = ("referral_date", *NEEDS, *FIELDS, "completed")
SETTLE_DAYS = 183
TITLES = {
    "imd_quintile": "Share of people referred who reach each stage, by IMD quintile",
    "ethnic_group": "Share of people referred who reach each stage, by ethnic group",
    "age_group": "Share of people referred who reach each stage, by age group",
}


@cached
def run(service) -> StepResult:
    """The referral → accepted → first seen → completed funnel by group."""
    data, rule = service.data, service.rule
    result = StepResult("pathway")
    missing = [c for c in NEEDS if c not in data.columns]
    cutoff = data["referral_date"].max() - pd.Timedelta(days=SETTLE_DAYS)
    result.values["pathway_cutoff"] = cutoff.strftime("%d %B %Y")
    if missing:
        result.texts["notice"] = (
            "**This step needs more columns.** Your extract has no "
            + ", ".join(f"`{c}`" for c in missing)
            + ". Map them in the `columns:` section of your config and run this notebook again."
            " Until then the sections below are left empty."
        )
    fields = [f for f in FIELDS if f in data.columns]
    paths = {} if missing else {f: analysis.pathway(data, f, rule, SETTLE_DAYS) for f in fields}
    if paths and all(p.empty for p in paths.values()):
        result.texts["notice"] = (
            f"**No referral is old enough to follow.** Every referral was received after "
            f"{result.values['pathway_cutoff']}, less than six months before the last one, so "
            "most have not had time to finish. Run this step again when the extract covers a "
            "longer period."
        )
        paths = {}
    why = result.texts.get("notice", "").replace("**", "")
    for f in FIELDS:
        path = paths.get(f)
        if path is None:
            result.notes[f] = (
                why or f"*No {label(f).lower()} chart: the extract has no such field.*"
            )
            continue
        path = path[~path["group"].isin(UNKNOWN_GROUPS)]
        if f == "imd_quintile":
            path = path.assign(
                group=path["group"].replace({"1": "1 (most deprived)", "5": "5 (least deprived)"})
            )
        result.charts[f] = Chart(
            "pathway_chart",
            path,
            {"title": TITLES[f]},
            people="_n",
            values=("% of referred",),
            counts=("people",),
        )

    extremes = analysis.pathway_extremes(paths)
    worst = extremes.iloc[0] if len(extremes) else None
    best = extremes.iloc[-1] if len(extremes) else None
    v = result.values
    v["pathway_worst_group"] = worst["label"] if worst is not None else "not available"
    v["pathway_worst_completion_pct"] = number_or_none(
        worst["% completed"] if worst is not None else None
    )
    v["pathway_best_group"] = best["label"] if best is not None else "not available"
    v["pathway_best_completion_pct"] = number_or_none(
        best["% completed"] if best is not None else None
    )
    v["pathway_biggest_loss_step"] = (
        (worst["biggest loss"] or "not available") if worst is not None else "not available"
    )
    v["pathway_extremes_sentence"] = (
        f"The lowest share completing in any group is {number(worst['% completed'])}%, in "
        f"{worst['label']}. The highest is {number(best['% completed'])}%, in {best['label']}."
        if worst is not None
        else "No group of 30 or more people could be followed through the pathway."
    )

    rows, drops = [], []
    for field, path in paths.items():
        s = analysis.pathway_summary(path)
        s.insert(0, "Split", label(field))
        rows.append(
            s.rename(columns={"group": "Group", "lower": "Lower limit", "upper": "Upper limit"})
        )
        drops.append(analysis.biggest_drop(path).assign(Split=label(field)))
    numbers = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if len(numbers):
        result.tables["numbers"] = Table(
            numbers.drop(columns=["_x", "_n"]),
            "People reaching each stage, and the % of those referred who completed",
            counts=tuple(analysis.STAGES),
            percents=("% completed", "Lower limit", "Upper limit"),
            export="pathway_by_group",
        )
    else:
        result.notes["numbers"] = why or "*No group can be followed through the pathway.*"
    drops = pd.concat(drops, ignore_index=True) if drops else pd.DataFrame()
    if len(drops):
        drops = drops[["Split", "group", "biggest loss", "% lost at that step"]].rename(
            columns={"group": "Group", "biggest loss": "Biggest loss"}
        )
        result.tables["drops"] = Table(
            drops,
            "The step where each group loses the largest share of people",
            percents=("% lost at that step",),
            export="pathway_biggest_loss",
        )
    else:
        result.notes["drops"] = why or "*No group is large enough to show where it is lost.*"
    if worst is not None:
        result.findings = [
            f"The lowest share completing is {number(worst['% completed'])}%, in "
            f"{worst['label']}; the highest is {number(best['% completed'])}%, in {best['label']}.",
            f"For {worst['label']}, the biggest loss is at the step "
            f"{v['pathway_biggest_loss_step']}.",
        ]
    else:
        result.findings = [why or "No group of 30 or more people could be followed through."]
    return result
