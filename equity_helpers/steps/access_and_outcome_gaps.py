"""Step 4: gaps in access and outcomes by group, deprivation gradient, areas and two-way views."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis, stats
from ..config import CATEGORY_FIELDS, YES_NO_FIELDS
from ..measures import MEASURES
from ..privacy import published_percentage
from ..wording import (
    NO_LSOA,
    group_name,
    imd_words,
    is_number,
    label,
    number,
    too_few,
    withheld,
)
from .base import Chart, StepResult, Table, cached, headline, number_or_none, seal_chart

#: The prepared columns this step reads: every field it splits by, every measure's counts.
READS = tuple(
    dict.fromkeys(
        (
            "ethnic_group",
            "imd_quintile",
            "age_group",
            "sex_label",
            *CATEGORY_FIELDS,
            *YES_NO_FIELDS,
            *(c for m in MEASURES.values() for c in m.reads),
            "wait_days",
            "outcome_improvement",
            "lsoa_code",
            "in_catchment",
            "imd_decile",
        )
    )
)

HEADLINES = {
    "dna_overall_pct": "Missed appointments (%)",
    "dna_sii": "Slope index of inequality, missed appointments (points)",
}
NO_DNA = "This view needs appointments offered and missed (DNA) in the extract."
DECILES = [str(i) for i in range(1, 11)]
#: The field each bar chart splits people by.
BAR_FIELDS = {
    "dna_ethnic_group": "ethnic_group",
    "dna_imd_quintile": "imd_quintile",
    "drop_out_ethnic_group": "ethnic_group",
    "gradient": "imd_decile",
}


def _has_imd(data: pd.DataFrame) -> bool:
    return "imd_decile" in data and bool(data["imd_decile"].notna().any())


def _rates(result: StepResult, counted, rule, name: str, dim: str) -> pd.DataFrame:
    """A measure by group, worked out once per step and reused (IMD groups in words)."""
    memo = result.data.setdefault("measure_tables", {})
    if (name, dim) not in memo:
        memo[(name, dim)] = analysis.measure(counted.data, name, dim, rule, counted=counted)
    t = memo[(name, dim)]
    return t.assign(group=imd_words(t["group"], dim)) if dim == "imd_quintile" else t


def _overall(t: pd.DataFrame, rule) -> float:
    """The rate across the groups whose rates are shown, from their published counts.

    A hidden group is left out, so the overall rate cannot be set against the groups shown
    to work out the hidden one's.
    """
    shown = t[t["pct"].notna()]
    if not len(shown) or not shown["_n"].sum():
        return float("nan")
    return float(published_percentage(int(shown["_x"].sum()), int(shown["_n"].sum()), rule))


def _any_hidden(parts: list[pd.DataFrame]) -> bool:
    """Whether any group in these tables of groups is hidden under the rule.

    A figure for everyone (a mean, a median) set beside the groups shown would then let a
    reader work out the hidden group's figure: for a mean, the overall mean times everyone
    minus each shown group's mean times its size. So it is published only when every group
    beside it is shown.
    """
    return any(bool(p["n"].isna().any()) for p in parts if len(p))


def _highest(t: pd.DataFrame):
    shown = t.dropna(subset=["pct"])
    return shown.loc[shown["pct"].idxmax()] if len(shown) else None


def _bars(result, key, t, title, xlabel, reference, name: str = "dna_rate") -> None:
    # The published counts go with the chart, so its data table shows what each
    # percentage and interval are worked out from; the field names the groups there
    # ("Not known" ethnic group is not "Not known" home area).
    m = MEASURES[name]
    field = label(BAR_FIELDS[key])
    result.charts[key] = Chart(
        "bar_ci",
        t.rename(columns={"n": m.denominator, "x": m.numerator}).assign(Field=field),
        {"title": title, "xlabel": xlabel, "reference": reference},
        people="_people",
        values=("pct", "lower", "upper"),
        counts=(m.denominator, m.numerator),
        top="_top",
        denominator="_n",
    )


def _by_ethnic_group(result: StepResult, counted, rule, measures) -> None:
    data = counted.data
    dna_overall = float("nan")
    result.values["dna_overall_scope"] = "Across the service"
    if "dna_rate" in measures:
        t = _rates(result, counted, rule, "dna_rate", "ethnic_group")
        dna_overall = _overall(t, rule)
        if t["pct"].isna().any():  # the overall leaves the hidden groups out: say so
            result.values["dna_overall_scope"] = "Across the groups shown (hidden groups left out)"
        _bars(
            result,
            "dna_ethnic_group",
            t,
            "Missed appointments, by ethnic group",
            "% of offered appointments missed",
            dna_overall,
        )
        top = _highest(t)
        result.values["dna_eth_sentence"] = (
            f"{top['group']} has the highest rate: {top['pct']:.1f}%."
            if top is not None
            else "Every group's rate is hidden."
        )
    else:
        result.notes["dna_ethnic_group"] = NO_DNA
        result.values["dna_eth_sentence"] = "Missed appointments are not in this extract."
    hidden = "No overall rate is shown, since every group's rate is hidden."
    headline(result, "dna_overall_pct", dna_overall, hidden if "dna_rate" in measures else NO_DNA)
    result.values["dna_overall_sentence"] = (
        f"{result.values['dna_overall_scope']}, {number(dna_overall)}% of offered appointments "
        "were missed."
        if is_number(dna_overall)
        else hidden
        if "dna_rate" in measures
        else "Missed appointments are not in this extract."
    )

    if _has_imd(data) and "dna_rate" in measures:
        t = _rates(result, counted, rule, "dna_rate", "imd_quintile")
        _bars(
            result,
            "dna_imd_quintile",
            t,
            "Missed appointments, by IMD quintile",
            "% of offered appointments missed",
            dna_overall,
        )
        pct = t.set_index("group")["pct"]
        q1 = pct.get("Quintile 1 (most deprived)", float("nan"))
        q5 = pct.get("Quintile 5 (least deprived)", float("nan"))
        result.values["dna_imd_sentence"] = (
            f"The rate is {number(q1, '.1f', 'hidden')}% in the most deprived fifth and "
            f"{number(q5, '.1f', 'hidden')}% in the least deprived fifth."
            if is_number(q1) or is_number(q5)
            else "The rates of the most and least deprived fifths are hidden or not available."
        )
    else:
        result.notes["dna_imd_quintile"] = NO_LSOA if not _has_imd(data) else NO_DNA
        result.values["dna_imd_sentence"] = "No view by deprivation was possible."

    if "drop_out_rate" in measures:
        t = _rates(result, counted, rule, "drop_out_rate", "ethnic_group")
        drop_overall = _overall(t, rule)
        _bars(
            result,
            "drop_out_ethnic_group",
            t,
            "Dropped out, by ethnic group",
            "% of finished referrals",
            drop_overall,
            name="drop_out_rate",
        )
        top = _highest(t)
        result.values["drop_sentence"] = f"Overall, {number(drop_overall)}% dropped out." + (
            f" {top['group']} has the highest rate: {top['pct']:.1f}%." if top is not None else ""
        )
    else:
        result.notes["drop_out_ethnic_group"] = "This view needs discharge reasons in the extract."
        result.values["drop_sentence"] = "Drop-out is not in this extract."


def _every_measure(result: StepResult, counted, rule, measures, dims) -> None:
    if not (measures and dims):
        result.notes["every_measure"] = (
            "*This table needs appointment counts, discharge reasons or the accepted field, "
            "and none is in this extract.*"
        )
        return
    columns = [MEASURES[m].column for m in measures]
    blocks = []
    for dim in dims:
        cols = [
            _rates(result, counted, rule, m, dim)
            .set_index("group")["pct"]
            .rename(MEASURES[m].column)
            for m in measures
        ]
        block = pd.concat(cols, axis=1).rename_axis("Group").reset_index()
        blocks.append(block.assign(Field=label(dim)))
    full = pd.concat(blocks, ignore_index=True)[["Field", "Group", *columns]]
    result.tables["every_measure"] = Table(
        full,
        "Every measure for every group (percentages)",
        percents=tuple(columns),
        export="measures_by_group",
    )


def _waits_and_outcomes(result: StepResult, service, wait_dims, counted) -> None:
    data, rule = service.data, service.rule
    if "wait_days" in data:
        parts = [
            analysis.group_median(
                data, dim, "wait_days", rule, analysis.group_order(dim), counted
            ).assign(Field=label(dim), dim=dim)
            for dim in wait_dims
        ]
        parts = analysis.hide_complements(parts, adds_up=False)
        waits = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        longest = waits.dropna(subset=["median"]).sort_values("median").tail(1) if parts else waits
        result.values["wait_overall"] = (
            number_or_none(data["wait_days"].median()) if not _any_hidden(parts) else None
        )
        result.values["wait_sentence"] = (
            f"The longest median wait is for "
            f"{group_name(longest['dim'].iloc[0], imd_words([longest['group'].iloc[0]], longest['dim'].iloc[0])[0])}: "  # noqa: E501
            f"{longest['median'].iloc[0]:.0f} days."
            if len(longest)
            else "Every group's wait is hidden."
        )
        if parts:
            waits = waits.assign(
                group=[
                    imd_words([g], d)[0] if d == "imd_quintile" else g
                    for g, d in zip(waits["group"], waits["dim"], strict=True)
                ]
            )
            shown = waits[["Field", "group", "n", "median", "q1", "q3"]].rename(
                columns={
                    "group": "Group",
                    "n": "People seen",
                    "median": "Median days",
                    "q1": "Lower quartile",
                    "q3": "Upper quartile",
                }
            )
            result.tables["waits"] = Table(
                shown,
                "Days from referral to first appointment",
                counts=("People seen",),
                numbers=("Median days", "Lower quartile", "Upper quartile"),
                export="waits_by_group",
            )
    else:
        result.notes["waits"] = "This view needs first appointment dates in the extract."
        result.values["wait_overall"] = None
        result.values["wait_sentence"] = "Waits are not in this extract."
    if "wait_days" in data and _any_hidden(parts):
        result.values["wait_overall_sentence"] = withheld("median wait")
    elif not is_number(result.values["wait_overall"]):
        result.values["wait_overall_sentence"] = "No median wait could be worked out."
    else:
        result.values["wait_overall_sentence"] = (
            f"The median wait for everyone is {result.values['wait_overall']:.0f} days."
        )

    if "outcome_improvement" in data:
        name = service.cfg.outcome_name or "outcome score"
        better = "higher" if service.cfg.outcome_higher_is_better else "lower"
        result.values["outcome_direction"] = (
            f"For the {name}, a {better} score is better. The improvement is how far the score "
            "moved in that direction, so a bigger improvement is better."
        )
        parts = [
            analysis.group_mean(
                data, dim, "outcome_improvement", rule, analysis.group_order(dim), counted
            ).assign(Field=label(dim), group=lambda t, d=dim: imd_words(t["group"], d))
            for dim in wait_dims
        ]
        parts = analysis.hide_complements(parts)
        if parts:
            outcome = pd.concat(parts, ignore_index=True)
            outcome = outcome[["Field", "group", "n", "mean", "lower", "upper"]].rename(
                columns={
                    "group": "Group",
                    "n": "People",
                    "mean": "Mean improvement",
                    "lower": "95% lower",
                    "upper": "95% upper",
                }
            )
            result.tables["outcome"] = Table(
                outcome,
                f"Improvement in {name}, by group (points)",
                counts=("People",),
                numbers=("Mean improvement", "95% lower", "95% upper"),
                export="outcome_by_group",
            )
        mean = data["outcome_improvement"].mean()
        hidden = _any_hidden(parts)
        result.values["outcome_overall"] = None if hidden else number_or_none(mean)
        result.values["outcome_sentence"] = (
            withheld("average improvement")
            if hidden
            else f"On average, scores improved by {mean:.1f} points."
            if is_number(mean)
            else "No change in scores could be worked out."
        )
    else:
        result.notes["outcome"] = "This view needs start and end outcome scores in the extract."
        result.values["outcome_direction"] = "Outcome scores are not in this extract."
        result.values["outcome_overall"] = None
        result.values["outcome_sentence"] = "No change in scores could be worked out."


def _gradient(result: StepResult, counted, rule, measures) -> None:
    data = counted.data
    has_imd = _has_imd(data)
    sii = (
        analysis.sii_by_decile(data, "dna_rate", rule=rule, counted=counted)
        if has_imd and "dna_rate" in measures
        else None
    )
    keys = ["dna_sii", "dna_sii_lower", "dna_sii_upper", "dna_rii"]
    if sii is not None and not (len(sii) and is_number(sii.iloc[0]["sii"])):
        sii = None  # a line was fitted to too little to give a slope
    if sii is None:
        result.notes["gradient"] = (
            NO_LSOA
            if not has_imd
            else NO_DNA
            if "dna_rate" not in measures
            else "Too few deciles have missed appointments to fit a line."
        )
        result.values.update(dict.fromkeys(keys))
        headline(result, "dna_sii", None, result.notes["gradient"])
        result.values["sii_sentence"] = "No gradient could be measured."
        result.values["sii_summary"] = (
            "No slope or relative index of inequality could be worked out."
        )
        return
    t = analysis.measure(
        data, "dna_rate", "imd_decile", rule, order=DECILES, counted=counted
    )  # grouped by the decile's number as text
    t = t[t["group"].isin(DECILES)]
    t = t.assign(group=imd_words(t["group"], "imd_decile"))
    _bars(
        result,
        "gradient",
        t,
        "Missed appointments, by IMD decile",
        "% of offered appointments missed",
        result.values["dna_overall_pct"],
    )
    row = sii.iloc[0]
    values = [row["sii"], row["sii_lower95_0cl"], row["sii_upper95_0cl"], row["rii"]]
    result.values.update({k: number_or_none(v) for k, v in zip(keys, values, strict=True)})
    side = "most" if row["sii"] < 0 else "least"
    result.values["sii_sentence"] = (
        f"The fitted line puts the rate {abs(row['sii']):.1f} percentage points higher at the "
        f"{side} deprived end than at the other end."
    )
    result.values["sii_summary"] = (
        f"The slope index of inequality is {row['sii']:.1f} percentage points (95% interval "
        f"{row['sii_lower95_0cl']:.1f} to {row['sii_upper95_0cl']:.1f}), and the relative "
        f"index is {row['rii']:.2f}."
    )


def _dispersion_sentence(phi: float, tau2: float) -> str:
    """The over-dispersion estimate in words."""
    if tau2 > 0:
        return (
            "Areas vary more than chance alone would explain: limits widened. The dispersion "
            f"ratio is {phi:.2f} (about 1 or less means chance alone), and the extra variation "
            f"between areas (tau squared) is {tau2:.2g}, so the wider limits allow for it."
        )
    return (
        f"Areas vary no more than chance alone would explain (dispersion ratio {phi:.2f}), "
        "so the usual limits are used and nothing is widened."
    )


def _funnel(result: StepResult, data, rule, measures) -> None:
    has_imd = _has_imd(data)
    points = (
        analysis.area_funnel(data, rule, overdispersed=True)
        if has_imd and "dna_rate" in measures
        else None
    )
    keys = (
        "funnel_above_998",
        "funnel_above_95",
        "funnel_areas",
        "funnel_hidden",
        "funnel_plain_above_95",
    )
    result.values["funnel_phi"] = result.values["funnel_tau2"] = None
    result.values["funnel_dispersion_sentence"] = "No areas could be compared."
    if points is None or not len(points):
        result.notes["funnel"] = (
            NO_LSOA
            if not has_imd
            else NO_DNA
            if "dna_rate" not in measures
            else "No home area has enough appointments to show."
        )
        result.values.update(dict.fromkeys(keys, 0))
        if points is not None:
            result.values["funnel_hidden"] = int(points.attrs["hidden"])
        return
    offered = points["offered"].astype(float)
    grid = np.linspace(float(offered.min()) * 0.7, float(offered.max()) * 1.05, 300)
    baseline = points.attrs["baseline"] / 100
    tau2 = float(points.attrs.get("tau2", 0.0))
    limits = stats.funnel_limits(baseline, grid, multiplier=100, tau2=tau2)
    plain = stats.funnel_limits(baseline, grid, multiplier=100)
    result.charts["funnel"] = Chart(
        "funnel_plot_adjusted",
        points[["offered", "value", "funnel_position", "_n", "_people", "_top"]].copy(),
        {"limits": limits, "plain": plain, "title": "Missed appointments, by home area"},
        people="_people",
        values=("value", "funnel_position"),
        top="_top",
        denominator="_n",
    )
    result.charts["funnel"].data.attrs = dict(points.attrs)
    shown = seal_chart(result.charts["funnel"], rule, "funnel").data
    position = shown["funnel_position"].astype(str)
    result.values["funnel_above_998"] = int(position.eq("above 99.8%").sum())
    result.values["funnel_above_95"] = int(position.str.startswith("above").sum())
    result.values["funnel_areas"] = int(shown["value"].notna().sum())
    result.values["funnel_hidden"] = int(points.attrs["hidden"]) + shown.attrs["hidden_points"]
    # Against the plain limits too, at each area's own (published) number of appointments.
    on_chart = shown[shown["value"].notna()]
    at_n = stats.funnel_limits(baseline, on_chart["offered"].astype(float), 0.95)
    result.values["funnel_plain_above_95"] = int(
        (on_chart["value"].to_numpy() / 100 > at_n["upper95_0cl"].to_numpy()).sum()
    )
    if "phi" in points.attrs:
        result.values["funnel_phi"] = number_or_none(points.attrs["phi"])
        result.values["funnel_tau2"] = number_or_none(tau2)
        result.values["funnel_dispersion_sentence"] = _dispersion_sentence(
            points.attrs["phi"], tau2
        )
    else:
        result.values["funnel_dispersion_sentence"] = (
            "There are too few areas, or too little variation, to measure how much areas vary, "
            "so the usual limits are used."
        )


def _two_way(result: StepResult, counted, rule, measures) -> None:
    data = counted.data
    if not (_has_imd(data) and "dna_rate" in measures):
        result.notes["two_way"] = NO_LSOA if not _has_imd(data) else NO_DNA
        result.values["two_way_sentence"] = "No two-way view was possible."
        return
    wide = analysis.two_way(data, "dna_rate", "ethnic_group", "imd_quintile", rule, counted=counted)
    people = wide.attrs.pop("people", None)
    wide = wide.drop(index=["Invalid"], columns=["Not known"], errors="ignore")
    if wide.empty:
        result.notes["two_way"] = "No referral has both an ethnic group and a home area recorded."
        result.values["two_way_sentence"] = "No two-way view was possible."
        return
    result.tables["two_way"] = Table(
        wide,
        "Missed appointments (%) by ethnic group and IMD quintile",
        export="dna_ethnic_group_by_imd_quintile",
        shown=False,
    )
    result.charts["two_way"] = Chart(
        "heatmap",
        wide,
        {
            "title": "Missed appointments (%), by ethnic group and IMD quintile",
            "value_label": "% of offered appointments missed",
        },
        people=people,
    )
    cell = wide.stack().idxmax() if wide.notna().any().any() else None
    result.values["two_way_sentence"] = (
        f"The highest rate shown is for the {cell[0]} group in IMD quintile {cell[1]}: "
        f"{wide.loc[cell]:.1f}%."
        if cell
        else "Every cell is hidden."
    )


def _finding(row) -> str:
    m = MEASURES[row["measure"]]
    group = imd_words([row["group"]], row["field"])[0]
    word = "higher" if row["difference"] > 0 else "lower"
    return (
        f"{group_name(row['field'], group)} had a {word} {m.rate_words} than everyone else "
        f"({row['pct']:.1f}% against {row['rest pct']:.1f}%)."
    )


def _gaps(result: StepResult, counted, rule, measures, dims) -> None:
    memo = result.data.get("measure_tables", {})
    gaps = analysis.credible_gaps(counted.data, rule, measures, dims, memo, counted)
    result.data["gaps"] = gaps
    n_worse = int(gaps["worse off"].astype(bool).sum()) if len(gaps) else 0
    result.values["n_credible_gaps"] = int(len(gaps))
    result.values["n_credible_gaps_worse"] = n_worse
    if not len(gaps):
        result.notes["gaps"] = "*No gap is bigger than chance would explain.*"
        result.values["largest_gap_text"] = (
            "No group's rate differed from everyone else's by more than chance."
        )
        return
    findings = [_finding(r) for r in gaps.to_dict("records")]
    shown = pd.DataFrame(
        {
            "Finding": findings,
            "Difference (points)": gaps["difference"],
            "95% lower": gaps["lower"],
            "95% upper": gaps["upper"],
        }
    )
    result.tables["gaps"] = Table(
        shown,
        "Gaps bigger than chance, largest first",
        numbers=("Difference (points)", "95% lower", "95% upper"),
        export="credible_gaps",
    )
    worse = gaps["worse off"].astype(bool).to_numpy()
    first = int(np.argmax(worse)) if worse.any() else 0
    result.values["largest_gap_text"] = findings[first]


@cached
def run(service) -> StepResult:
    """Every measure by group, waits and outcomes, the deprivation gradient, areas and gaps."""
    data, rule = service.data, service.rule
    result = StepResult("access-and-outcome-gaps")
    result.values["small_rule"] = too_few(rule)
    measures = analysis.available_measures(data)
    dims = analysis.equality_dimensions(data)
    # Each measure's counts and each field's groups, found once for the sixty-odd tables.
    counted = analysis.Counted(data)
    _by_ethnic_group(result, counted, rule, measures)
    _every_measure(result, counted, rule, measures, dims)
    dims_waits = [d for d in ("ethnic_group", "imd_quintile") if d in data]
    _waits_and_outcomes(result, service, dims_waits, counted)
    _gradient(result, counted, rule, measures)
    _funnel(result, data, rule, measures)
    _two_way(result, counted, rule, measures)
    _gaps(result, counted, rule, measures, dims)
    v = result.values
    result.findings = [
        v["dna_overall_sentence"],
        v["dna_eth_sentence"],
        v["dna_imd_sentence"],
        v["drop_sentence"],
        v["wait_overall_sentence"],
        v["sii_summary"],
        v["funnel_dispersion_sentence"],
        f"{v['n_credible_gaps']} gaps are bigger than chance; in {v['n_credible_gaps_worse']} "
        "of them a group fares worse than everyone else.",
        v["largest_gap_text"],
    ]
    return result
