"""Steps 11 and 12: has the focus group's gap changed since the change date?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis, stats
from ..measures import MEASURES
from ..privacy import control_counts, people_publishable
from ..wording import group_phrase
from .base import Chart, StepResult, Table, cached, headline, seal_chart

#: The prepared columns this step reads, beside the focus field its config names
#: (:func:`config_columns`): every measure's, since the config chooses the measure.
READS = tuple(
    dict.fromkeys(
        (
            "referral_date",
            "referral_month",
            "core20",
            *(c for m in MEASURES.values() for c in m.reads),
        )
    )
)


def config_columns(cfg) -> tuple[str, ...]:
    """The column the config picks the focus group out by."""
    return (cfg.focus_field,) if cfg.focus_field else ()


HEADLINES = {
    "gap_before": "Focus gap before the change (points)",
    "gap_after": "Focus gap after the change (points)",
}


def focus(service) -> dict:
    """The evaluation's focus from the config: measure, field, group, mask and phrase.

    ``ok`` is False when the extract cannot pick the group out, or when everyone (or no
    one) is in it, since then there is no one to compare it with.
    """
    cfg, data = service.cfg, service.data
    name = cfg.evaluation_measure
    ok = cfg.focus_field in data.columns and cfg.focus_group is not None
    mask = analysis.focus_mask(data, cfg.focus_field, cfg.focus_group) if ok else None
    ok = ok and bool(mask.any()) and bool((~mask).any())
    return {
        "measure": name,
        "field": cfg.focus_field,
        "group": cfg.focus_group,
        "mask": mask if ok else None,
        "ok": ok,
        "phrase": group_phrase(cfg.focus_field, cfg.focus_group) if ok else "the focus group",
        "has_measure": name in analysis.available_measures(data),
    }


def _problems(f: dict, change) -> list[str]:
    problems = []
    if not f["has_measure"]:
        problems.append(
            f"Your extract does not have the columns needed for the measure `{f['measure']}`, "
            "so it cannot be shown."
        )
    if change is None:
        problems.append(
            "Your config has no `evaluation.change_date`, so there is no before and after to "
            "compare. The charts below still show the measure over time. To compare, add the "
            "date your change began under `evaluation:`, for example `change_date: 2024-04-01`."
        )
    if not f["ok"]:
        problems.append(
            "Your config names no focus group that the extract has. Set `evaluation.focus_field` "
            "(such as `core20` or `ethnic_group`) and `evaluation.focus_group` (such as `Core20` "
            "or `Asian`)."
        )
    return problems


def _before_after(result: StepResult, service, f: dict, change, when: str) -> str:
    name = f["measure"]
    m = MEASURES[name]
    ba = analysis.before_after(service.data, name, f["mask"], change)
    shown = analysis.before_after_table(ba, name, service.rule)
    result.tables["before_after"] = Table(
        shown,
        f"{m.title}, before and after {when}",
        counts=(m.denominator, m.numerator),
        percents=("%",),
        export="evaluation_before_after",
    )
    if (ba["_n"] == 0).any():
        result.texts["gap"] = (
            "No referral falls on one side of the change date, or the focus group has no one "
            "to count in one period, so there is no before and after to compare yet."
        )
        return "not measured: one period has no one to count"
    if shown["%"].isna().any():
        result.texts["gap"] = (
            "Some counts are too small to show, so the gap is not worked out here."
        )
        return "not shown: some counts are too small"
    # From the published counts, like the percentages in the table (rule 3 in privacy).
    s = analysis.gap_change_summary(analysis.published_before_after(ba, service.rule))
    (gb, gbl, gbu), (ga, gal, gau), (c, lo, hi) = s["gap_before"], s["gap_after"], s["change"]
    verdict = analysis.gap_verdict(s)
    for key, value in (
        ("gap_before", gb),
        ("gap_after", ga),
        ("gap_change", c),
        ("gap_change_lower", lo),
        ("gap_change_upper", hi),
    ):
        headline(result, key, value, "The gap could not be worked out from the published counts.")
    excludes = (
        "does not include 0, so the change is unlikely to be chance alone"
        if verdict != "no clear change"
        else "includes 0, so the change could be chance"
    )
    result.texts["gap"] = (
        f"Before the change, the gap was **{gb:.1f} percentage points** (95% interval {gbl:.1f} "
        f"to {gbu:.1f}).\nAfter the change, it was **{ga:.1f} points** (95% interval {gal:.1f} "
        f"to {gau:.1f}).\nThe gap changed by **{c:+.1f} points**, with a 95% interval of "
        f"{lo:.1f} to {hi:.1f}.\nThat interval {excludes}."
    )
    return verdict


#: What an SPC chart shows for each month: all hidden for a month that is hidden.
SPC_VALUES = ("value", "point_type", "mean", "lower_process_limit", "upper_process_limit")


def _spc(result: StepResult, key: str, monthly, rule, title, ylabel, direction, change):
    s = analysis.controlled_spc(monthly, rule, direction)
    if s is None:
        result.notes[key] = "*There are not enough months to draw this chart.*"
        return None
    options = {"title": title, "ylabel": ylabel, "change": change}
    if "_people" in monthly:
        # A rate: each month is about its people; hidden when too few, or mostly one person.
        by_month = monthly.set_index("month")
        for column in ("_people", "_top", "_n"):
            s[column] = s["date"].map(by_month[column]).fillna(0).to_numpy()
        chart = Chart(
            "spc_with_change",
            s,
            options,
            people="_people",
            values=SPC_VALUES,
            top="_top",
            denominator="_n",
        )
    else:  # a count of referrals: each month's count is rounded, and hidden when small
        chart = Chart("spc_with_change", s, options, counts=("value",), values=SPC_VALUES[1:])
    result.charts[key] = seal_chart(chart, rule, key)
    return result.charts[key].data


def _words(s) -> str:
    return s.attrs["variation_words"] if s is not None else "not available"


def monthly_gap(data: pd.DataFrame, name: str, mask: pd.Series, rule) -> pd.DataFrame:
    """Each month's gap: the focus group's measure minus everyone else's, in percentage points.

    Months where either side has nothing to count are left out. A month is ``hidden`` when
    either side's counts are hidden under the rule or either side has too few people
    (rule 1 in :mod:`equity_helpers.privacy`); ``people`` is the smaller side's number of
    people (for the chart guard; never shown).
    """
    focus = analysis.monthly_rate(data, name, mask)
    rest = analysis.monthly_rate(data, name, ~mask)
    x, _ = MEASURES[name].counts(data)
    counted = data.loc[x.index, ["referral_month"]]  # the one column counted
    inside = mask.loc[x.index].to_numpy(dtype=bool)
    people = pd.DataFrame(
        {
            "focus_people": counted[inside].groupby("referral_month").size(),
            "rest_people": counted[~inside].groupby("referral_month").size(),
        }
    )
    g = focus.merge(rest, on="month", suffixes=("_focus", "_rest"))
    g = g[(g["_n_focus"] > 0) & (g["_n_rest"] > 0)]
    g = g.merge(people, left_on="month", right_index=True, how="left").fillna(
        {"focus_people": 0, "rest_people": 0}
    )
    hidden = np.zeros(len(g), dtype=bool)
    for column in ("_x_focus", "_n_focus", "_x_rest", "_n_rest"):
        hidden |= control_counts(g[column].astype("int64"), rule).isna().to_numpy()
    for column in ("focus_people", "rest_people"):
        hidden |= ~people_publishable(g[column].astype("int64").to_numpy(), rule)
    return pd.DataFrame(
        {
            "month": g["month"].to_numpy(),
            "value": (g["value_focus"] - g["value_rest"]).to_numpy(dtype=float),
            "hidden": hidden,
            "people": np.minimum(g["focus_people"], g["rest_people"]).to_numpy(dtype="int64"),
        }
    ).sort_values("month", ignore_index=True)


def gap_spc(gap: pd.DataFrame, direction: str, change) -> pd.DataFrame | None:
    """An XmR chart of the monthly gap, with the limits worked out again from the change month.

    Hidden months are left out before anything is worked out, so no mean, limit or moving
    range can carry a hidden month's value (as in
    :func:`equity_helpers.analysis.controlled_spc`); ``attrs["hidden_months"]`` lists them.
    The limits restart (``rebase_at``) at the first month on or after the change date
    when at least two months lie on each side. None with fewer than 2 months shown.
    """
    shown = gap[~gap["hidden"]].reset_index(drop=True)
    if len(shown) < 2:
        return None
    rebase = None
    if change is not None:
        after = shown["month"] >= pd.Timestamp(change).to_period("M").to_timestamp()
        if after.sum() >= 2 and (~after).sum() >= 2:
            rebase = [shown.loc[after, "month"].iloc[0]]
    spc = stats.spc_xmr(shown["value"], shown["month"], direction, rebase_at=rebase)
    spc["_people"] = shown["people"].to_numpy()
    spc.attrs["hidden_months"] = list(gap.loc[gap["hidden"], "month"])
    spc.attrs["rebased"] = rebase is not None
    return spc


def _limits_words(spc: pd.DataFrame, change) -> str:
    def part(seg):
        r = seg.iloc[0]
        return (
            f"a mean gap of {r['mean']:.1f} points, with limits from "
            f"{r['lower_process_limit']:.1f} to {r['upper_process_limit']:.1f}"
        )

    segments = [seg for _, seg in spc.groupby("segment")]
    if len(segments) == 1:
        why = (
            "no change date is set"
            if change is None
            else "there are not two months on each side of the change"
        )
        return (
            f"The limits use every month together: {part(segments[0])}. They are not worked out "
            f"again, because {why}."
        )
    return (
        f"Before the change: {part(segments[0])}. From the change on, the limits are worked "
        f"out again: {part(segments[-1])}."
    )


def _gap_chart(result: StepResult, service, f: dict, m, change) -> None:
    """The monthly gap as an XmR chart, rebased at the change, with its icons in words."""
    v = result.values
    keys = ("gap_spc_variation", "gap_spc_assurance", "gap_spc_limits")
    if not (f["has_measure"] and f["ok"]):
        result.notes["spc_gap"] = "*No gap chart: see the note at the top of this page.*"
        v.update(dict.fromkeys(keys, "not available"))
        return
    gap = monthly_gap(service.data, f["measure"], f["mask"], service.rule)
    spc = gap_spc(gap, m.direction, change)
    if spc is None:
        result.notes["spc_gap"] = "*There are not enough months to draw this chart.*"
        v.update(dict.fromkeys(keys, "not available"))
        return
    result.charts["spc_gap"] = Chart(
        "spc_gap",
        spc,
        {
            "title": f"Monthly gap in {m.short.lower()}, focus group minus the rest",
            "ylabel": "Gap (percentage points)",
            "change": change,
        },
        people="_people",  # the smaller side's people in each month
        values=("value", "moving_range"),
    )
    icons = stats.spc_icons(spc)
    v["gap_spc_variation"] = icons["variation_text"]
    v["gap_spc_assurance"] = (
        icons["assurance_text"]
        or "There is no target for the gap, so there is no assurance icon: the chart cannot say "
        "whether a target will be met."
    )
    v["gap_spc_limits"] = _limits_words(spc, change)
    hidden = len(spc.attrs["hidden_months"])
    if hidden:
        v["gap_spc_limits"] += (
            f" {hidden} month(s) are not plotted because the numbers behind them are too small "
            "to show; they still count towards the limits."
        )


@cached
def run(service) -> StepResult:
    """Gap before and after the change with its interval, and SPC charts of the measure."""
    cfg, data, rule = service.cfg, service.data, service.rule
    result = StepResult("evaluation")
    f = focus(service)
    name = f["measure"]
    m = MEASURES.get(name)
    change = pd.Timestamp(cfg.change_date) if cfg.change_date else None
    problems = _problems(f, change)
    if problems:
        result.texts["notice"] = "**Some of this step cannot run yet.**\n\n" + "\n".join(
            f"- {p}" for p in problems
        )
    when = change.strftime("%d %B %Y") if change is not None else "not set"
    better = "lower is better" if m and m.lower_is_better else "higher is better"
    result.lists["settings"] = [
        f"Measure: {m.title if m else name}; {better}.",
        f"Focus group: {f['phrase']}.",
        f"Change began: {when}.",
        f"Period of the data: {cfg.period_start:%d %B %Y} to {cfg.period_end:%d %B %Y}.",
    ]
    if f["has_measure"] and f["ok"] and change is not None:
        verdict = _before_after(result, service, f, change, when)
    else:
        verdict = "not measured: " + (
            "no change date" if change is None else "the measure or focus group is missing"
        )
        result.notes["before_after"] = (
            "*There is no before and after to compare: see the note at the top of this page.*"
        )
        result.values["step_status"] = "ran in part: the before-and-after comparison needs " + (
            "a change date (evaluation.change_date)"
            if change is None
            else "a measure and a focus group"
        )
    result.values["gap_verdict"] = verdict

    short = m.short if m else name
    overall = focus_spc = None
    if f["has_measure"]:
        overall = _spc(
            result,
            "spc_overall",
            analysis.monthly_rate(data, name),
            rule,
            f"{short}: all referrals, by month",
            f"{short} (%)",
            m.direction,
            change,
        )
    else:
        result.notes["spc_overall"] = f"*The extract has no columns for the measure `{name}`.*"
    if f["has_measure"] and f["ok"]:
        focus_spc = _spc(
            result,
            "spc_focus",
            analysis.monthly_rate(data, name, f["mask"]),
            rule,
            f"{short}: focus group, by month",
            f"{short} (%)",
            m.direction,
            change,
        )
    else:
        result.notes["spc_focus"] = "*No focus group chart: see the note at the top of this page.*"
    referrals = _spc(
        result,
        "spc_referrals",
        analysis.monthly_referrals(data),
        rule,
        "Referrals received each month (rounded to the nearest 5)",
        "Referrals",
        "neutral",
        change,
    )
    v = result.values
    v["spc_icon_overall"] = _words(overall)
    n_points = int(overall["value"].notna().sum()) if overall is not None else 0
    v["spc_limits_note"] = (
        "These limits are trial limits: with fewer than 12 months they will move as months "
        "are added."
        if 0 < n_points < 12
        else f"The limits use {n_points} months, enough for firm limits."
        if n_points
        else "There is no chart of the measure, so there are no limits."
    )
    v["spc_icon_focus"] = _words(focus_spc)
    v["spc_focus_improvement_months"] = (
        0
        if focus_spc is None
        else int(focus_spc["point_type"].eq("special_cause_improvement").sum())
    )
    v["spc_icon_referrals"] = _words(referrals)
    _gap_chart(result, service, f, m, change)
    result.data["focus"] = f
    result.findings = [f"The verdict on the gap is: {verdict}."]
    if "spc_gap" in result.charts:
        result.findings.append(f"Monthly gap: {v['gap_spc_variation']}")
    if "gap_change" in v:
        result.findings.append(
            f"The gap for {f['phrase']} changed by {v['gap_change']:+.1f} points (95% interval "
            f"{v['gap_change_lower']:.1f} to {v['gap_change_upper']:.1f})."
        )
    return result
