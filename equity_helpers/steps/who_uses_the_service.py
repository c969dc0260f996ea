"""Steps 1, 3 and 4: who uses the service, and who is missing?"""

from __future__ import annotations

import pandas as pd

from .. import analysis
from ..privacy import control_counts, format_count
from ..wording import NO_LSOA, group_name, imd_words, is_number, label, noun
from . import deprivation_and_core20
from .base import Chart, StepResult, Table, cached, number_or_nan

HEADLINES = {"most_under_group": "Most under-represented group"}
DIMENSIONS = ("ethnic_group", "age_group", "sex_label", "imd_quintile")
#: The census file each comparison needs, for the note when it is missing.
CENSUS_FILES = {
    "ethnic_group": "the census ethnic group file (`population_ethnicity` in the config)",
    "age_group": "the census age file (`population_age` in the config)",
    "sex_label": "the census sex file (`population_sex` in the config)",
    "imd_quintile": "the census ethnic group file, which gives each area's population",
}
#: Why no referral may have a usable value, by field.
NO_VALUES = {
    "ethnic_group": "No referral has an ethnic category on the NHS list, so the ethnic group "
    "comparison cannot be shown. Check how the config maps the extract's ethnicity values "
    "(the data completeness page lists the values it could not use).",
    "age_group": "No referral has a usable age, so the age comparison cannot be shown.",
    "sex_label": "No referral is recorded as female or male, so the comparison by sex "
    "cannot be shown.",
    "imd_quintile": "No referral comes from a home area inside the catchment, so the "
    "comparison by deprivation cannot be shown.",
}
COLUMNS = ["Field", "group", "referrals", "% of referrals", "% of population", "ratio"]


def _shortfall(table: pd.DataFrame, dim: str) -> str:
    """A sentence on the group furthest below its fair share in one comparison."""
    low = table.dropna(subset=["ratio"]).sort_values("ratio").head(1)
    if low.empty:
        return f"Too few referrals are recorded by {noun(dim)} to compare."
    r = low.iloc[0]
    if r["ratio"] >= 1:
        return (
            "Every group is referred at least in line with its share of the population, "
            f"by {noun(dim)}."
        )
    return (
        f"{group_name(dim, r['group'])} has the biggest shortfall: {r['% of referrals']:.1f}% "
        f"of referrals, against {r['% of population']:.1f}% of the population."
    )


def _comparisons(service, result: StepResult) -> dict[str, pd.DataFrame]:
    data = service.data
    has_lsoa = "in_catchment" in data
    rep = {}
    for dim in DIMENSIONS:
        if dim == "imd_quintile" and not has_lsoa:
            result.notes[dim] = NO_LSOA
        elif not service.has_population(dim) or dim not in data:
            result.notes[dim] = f"This comparison needs {CENSUS_FILES[dim]}."
        else:
            table = analysis.representation(service, dim)
            if table.attrs["referrals_compared"] == 0:
                result.notes[dim] = NO_VALUES[dim]
                continue
            if dim == "imd_quintile":
                table = table.assign(group=imd_words(table["group"], dim))
            rep[dim] = table
    return rep


@cached
def run(service) -> StepResult:
    """Share of referrals against share of the catchment population, by four fields."""
    data, rule = service.data, service.rule
    result = StepResult("who-uses-the-service")
    rep = _comparisons(service, result)
    eth_n = rep["ethnic_group"].attrs["referrals_compared"] if "ethnic_group" in rep else 0
    result.values["catchment_name"] = service.cfg.catchment_name or "the catchment"
    result.values["eth_compared"] = format_count(control_counts(int(eth_n), rule))
    result.values["area_rule"] = (
        "Referrals from outside the catchment, or with no home area, are left out."
        if "in_catchment" in data
        else "This extract has no home areas, so every referral is compared, wherever the "
        "person lives."
    )
    served_children = "age_group" in rep and "0-15" in set(rep["age_group"]["group"])
    result.values["adult_note"] = (
        "Your service sees children too, so the age comparison uses the whole population."
        if served_children
        else "Your service sees adults, so the age comparison uses the population aged 16 and over."
    )
    for dim, key in zip(DIMENSIONS, ("eth", "age", "sex", "imd"), strict=True):
        if dim in rep:
            result.charts[dim] = Chart(
                "paired_bars",
                rep[dim],
                {
                    "a": "% of referrals",
                    "b": "% of population",
                    "title": f"{label(dim)}: referrals and population",
                    "xlabel": "% of the total",
                },
                values=("% of referrals", "ratio", "lower", "upper"),
                counts=("referrals",),
            )
            result.values[f"{key}_sentence"] = _shortfall(rep[dim], dim)
        else:
            result.values[f"{key}_sentence"] = f"No comparison by {noun(dim)} was possible."

    parts = [
        t.assign(Field=label(dim), group=[group_name(dim, g) for g in t["group"]])[
            [*COLUMNS, "lower", "upper"]
        ]
        for dim, t in rep.items()
    ]
    ratios = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=[*COLUMNS, "lower", "upper"])
    )
    result.tables["representation"] = Table(
        ratios,
        "Share of referrals against share of the catchment population",
        export="representation",
        shown=False,
    )
    if len(ratios):
        result.charts["ratios"] = Chart(
            "ratio_plot",
            ratios,
            {"title": "Representation ratio, by group"},
            values=("% of referrals", "ratio", "lower", "upper"),
            counts=("referrals",),
        )
    else:
        result.notes["ratios"] = "No comparison could be made, so there are no ratios to show."
    core20 = deprivation_and_core20.core20(service)
    result.values["core20_ratio"] = number_or_nan(core20["ratio"])
    result.values["core20_sentence"] = (
        "People from the most deprived fifth of areas (Core20) have a ratio of "
        f"{core20['ratio']:.2f}."
        if is_number(core20["ratio"])
        else f"The Core20 ratio could not be worked out. {core20['why_not']}".strip()
    )

    under = analysis.under_represented(ratios) if len(ratios) else ratios
    result.values["n_under_represented"] = int(len(under))
    first = under.iloc[0] if len(under) else None
    result.values["most_under_group"] = str(first["group"]) if first is not None else "no group"
    result.values["most_under_ratio"] = number_or_nan(first["ratio"] if first is not None else None)
    result.values["under_sentence"] = (
        f"The most under-represented group is {first['group']}, with a ratio of "
        f"{first['ratio']:.2f}: about {round(first['ratio'] * 10)} referrals for every 10 you "
        "would expect from its size."
        if first is not None
        else "No group is clearly under-represented."
    )
    shown = under.assign(
        ratio=under["ratio"].map("{:.2f}".format),
        interval=[
            f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(under["lower"], under["upper"], strict=True)
        ],
    )
    result.tables["under_represented"] = Table(
        shown[["group", "% of referrals", "% of population", "ratio", "interval"]].rename(
            columns={"group": "Group", "ratio": "Ratio", "interval": "95% interval"}
        ),
        "Under-represented groups (whole 95% interval below 1)",
        percents=("% of referrals", "% of population"),
        export="under_represented",
    )
    result.findings = [result.values[f"{k}_sentence"] for k in ("eth", "age", "sex", "imd")] + [
        result.values["under_sentence"]
    ]
    if is_number(core20["ratio"]):
        result.findings.append(
            f"People from Core20 areas have a representation ratio of {core20['ratio']:.2f}."
        )
    result.findings += [n for k, n in result.notes.items() if k in DIMENSIONS]
    return result
