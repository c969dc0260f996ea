"""Steps 1, 3 and 4: who uses the service, and who is missing?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis, stats
from ..codes import CENSUS_AGE_GROUPS
from ..privacy import control_counts, format_count, people_publishable
from ..wording import NO_LSOA, group_name, imd_words, is_number, label, noun
from . import deprivation_and_core20
from .base import Chart, StepResult, Table, cached, headline, number_or_none

#: The prepared columns this step reads, with those of the Core20 comparison it makes.
READS = (
    "age",
    "age_band",
    "age_group",
    "sex",
    "sex_label",
    "ethnic_group",
    *deprivation_and_core20.READS,
)

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
#: Why the ethnic group comparison is crude (the census files give no ethnic group by age).
ETHNIC_CRUDE = (
    "The ethnic group comparison is crude: it does not allow for age. The census file in the "
    "config gives each area's ethnic groups but not their ages, so the expected share of each "
    "group cannot be worked out age by age. A group with more young people can look "
    "under-represented in a service that mostly sees older adults, even when people of each "
    "age are referred fairly."
)
#: A crude and a standardised ratio this close are treated as the same.
SMALL_CHANGE = 0.05
STANDARDISED_COLUMNS = [
    "Field",
    "Group",
    "Referrals",
    "Crude ratio",
    "Age-standardised ratio",
    "95% lower",
    "95% upper",
]


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


def expected_by_area(service) -> pd.DataFrame | None:
    """Each catchment area's referrals, and those expected from the catchment's age-specific rates.

    Counts referrals from inside the catchment with a known age group, by home area (LSOA)
    and census age group, and gives each area its expected referrals by indirect
    standardisation (:func:`equity_helpers.stats.expected_counts`): the service's own rate
    in each age group across the catchment, applied to the area's people of that age. The
    census files give age and sex separately, not age by sex, so only age is standardised.
    Referrals in an area and age group with no census population are left out (their
    number is in ``attrs["left_out"]``). None when there are no home areas or no age file.
    """
    data = service.data
    if (
        "in_catchment" not in data
        or not service.has_population("age_group")
        or "age_group" not in data
    ):
        return None
    catchment = service.catchment
    population = catchment.melt(
        id_vars="lsoa_code",
        value_vars=CENSUS_AGE_GROUPS,
        var_name="age_band",
        value_name="population",
    ).fillna({"population": 0})
    # Only the two columns counted: filtering the whole table would copy every column.
    inside = data.loc[data["in_catchment"].fillna(False).astype(bool), ["lsoa_code", "age_group"]]
    inside = inside[inside["age_group"].astype("string").isin(CENSUS_AGE_GROUPS)]
    observed = (
        pd.DataFrame(
            {"lsoa_code": inside["lsoa_code"], "age_band": inside["age_group"].astype(str)}
        )
        .value_counts()
        .rename("count")
        .reset_index()
    )
    known = observed.merge(population[population["population"] > 0], on=["lsoa_code", "age_band"])
    if known["count"].sum() == 0:
        return None
    out = stats.expected_counts(known[["lsoa_code", "age_band", "count"]], population, "lsoa_code")
    out.attrs["left_out"] = int(observed["count"].sum() - known["count"].sum())
    return out


def standardised_ratios(areas: pd.DataFrame, groups: pd.Series, rule) -> pd.DataFrame:
    """Crude and age-standardised representation ratios for groups of areas.

    ``areas`` is :func:`expected_by_area`; ``groups`` maps each area code to its group (a
    deprivation fifth, a local authority). Both ratios are observed over expected referrals
    (:func:`equity_helpers.stats.indirectly_standardised_ratio`, exact Poisson limits below
    10 and Byar's from 10). The crude expected count shares the referrals out by population
    alone; the standardised one by the catchment's age-specific referral rates. Both are
    scaled to the published total and use the published counts (rule 3 in
    :mod:`equity_helpers.privacy`), so a ratio cannot undo the rounding; a group with too few
    people to show gets no ratio at all. ``people`` is the unrounded number of referrals
    behind each row (for the chart guard; never shown).
    """
    g = areas.assign(group=areas["lsoa_code"].map(groups))
    g = (
        g.dropna(subset=["group"])
        .groupby("group", sort=True)[["observed", "expected", "population"]]
        .sum()
    )
    g = g[g["population"] > 0]
    published = control_counts(g["observed"].astype("int64"), rule)
    pub_total = control_counts(int(g["observed"].sum()), rule)
    pub_total = 0 if pd.isna(pub_total) else int(pub_total)
    obs = published.fillna(0).astype(float)
    ok = people_publishable(g["observed"].to_numpy(), rule) & published.notna().to_numpy()
    out = pd.DataFrame(
        {"group": g.index.astype(str), "referrals": published.to_numpy(), "people": g["observed"]}
    ).reset_index(drop=True)
    for kind, share in (
        ("crude", g["population"] / g["population"].sum()),
        ("standardised", g["expected"] / g["expected"].sum()),
    ):
        expected = np.maximum(pub_total * share.to_numpy(dtype=float), 1e-9)
        isr = stats.indirectly_standardised_ratio(obs.to_numpy(), expected)
        ok_here = ok & (pub_total > 0) & (share.to_numpy() > 0)
        out[kind] = np.where(ok_here, isr["ratio"].round(2), np.nan)
        if kind == "standardised":
            out["lower"] = np.where(ok_here, isr["lower"].round(2), np.nan)
            out["upper"] = np.where(ok_here, isr["upper"].round(2), np.nan)
    return out


def _difference_sentence(table: pd.DataFrame) -> str:
    """One plain sentence on how much allowing for age changes the ratios."""
    both = table.dropna(subset=["crude", "standardised"])
    if both.empty:
        return "Too few referrals are recorded to compare crude and age-standardised ratios."
    change = (both["standardised"] - both["crude"]).abs()
    row = both.loc[change.idxmax()]
    if change.max() < SMALL_CHANGE:
        return (
            "Allowing for age makes little difference: no ratio changes by "
            f"{SMALL_CHANGE:.2f} or more, so the ages of the people in each area do not explain "
            "the ratios."
        )
    why = (
        "its people are mostly of ages the service sees less often, so fewer referrals are "
        "expected from it"
        if row["standardised"] > row["crude"]
        else "its people are mostly of ages the service sees more often, so more referrals are "
        "expected from it"
    )
    return (
        f"Allowing for age matters most for {row['group']}: its ratio is {row['crude']:.2f} "
        f"crude and {row['standardised']:.2f} age-standardised, because {why}."
    )


def _standardised(service, result: StepResult) -> None:
    """Age-standardised ratios for deprivation fifths and local authorities, beside crude ones."""
    result.values["eth_crude_note"] = ETHNIC_CRUDE
    areas = expected_by_area(service)
    if areas is None:
        result.notes["standardised"] = result.notes["standardised_ratios"] = (
            NO_LSOA
            if "in_catchment" not in service.data
            else f"Age-standardised ratios need {CENSUS_FILES['age_group']}."
        )
        result.values["standardised_sentence"] = "No age-standardised comparison was possible."
        result.values["standardised_left_out"] = ""
        return
    c = service.catchment
    imd = service.imd.set_index("lsoa_code")
    fifths = c.set_index("lsoa_code")["imd_quintile"].astype("Int64").astype("string")
    parts = [
        standardised_ratios(areas, fifths, service.rule).assign(
            Field="Deprivation fifth", group=lambda t: imd_words(t["group"], "imd_quintile")
        ),
        standardised_ratios(areas, imd["lad_name"].fillna(imd["lad_code"]), service.rule).assign(
            Field="Local authority"
        ),
    ]
    both = pd.concat(parts, ignore_index=True)
    shown = both.rename(
        columns={
            "group": "Group",
            "referrals": "Referrals",
            "crude": "Crude ratio",
            "standardised": "Age-standardised ratio",
            "lower": "95% lower",
            "upper": "95% upper",
        }
    )[STANDARDISED_COLUMNS].copy()
    for column in STANDARDISED_COLUMNS[3:]:  # ratios to two decimal places; * where hidden
        shown[column] = [f"{v:.2f}" if is_number(v) else "*" for v in shown[column]]
    result.tables["standardised"] = Table(
        shown,
        "Representation ratios before (crude) and after allowing for age (age-standardised)",
        counts=("Referrals",),
        export="representation_age_standardised",
    )
    chart = both.assign(
        label=[f"{f}: {g}" for f, g in zip(both["Field"], both["group"], strict=True)]
    )
    result.charts["standardised_ratios"] = Chart(
        "crude_and_standardised",
        chart[["label", "crude", "standardised", "lower", "upper", "people"]].rename(
            columns={"people": "_people"}
        ),
        {"title": "Crude and age-standardised ratios"},
        people="_people",  # the referrals behind each point
        values=("crude", "standardised", "lower", "upper"),
    )
    result.values["standardised_sentence"] = _difference_sentence(both)
    left_out = areas.attrs["left_out"]
    result.values["standardised_left_out"] = (
        f"{format_count(control_counts(left_out, service.rule))} referrals are left out because "
        "the census gives no people of their age in their home area."
        if left_out
        else "Every referral from the catchment with a known age is counted."
    )


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
    headline(result, "core20_ratio", core20["ratio"], core20["why_not"])
    result.values["core20_sentence"] = (
        "People from the most deprived fifth of areas (Core20) have a ratio of "
        f"{core20['ratio']:.2f}."
        if is_number(core20["ratio"])
        else f"The Core20 ratio could not be worked out. {core20['why_not']}".strip()
    )

    _standardised(service, result)
    under = analysis.under_represented(ratios) if len(ratios) else ratios
    result.values["n_under_represented"] = int(len(under))
    first = under.iloc[0] if len(under) else None
    result.values["most_under_group"] = str(first["group"]) if first is not None else "no group"
    result.values["most_under_ratio"] = number_or_none(
        first["ratio"] if first is not None else None
    )
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
        result.values["under_sentence"],
        result.values["standardised_sentence"],
    ]
    if is_number(core20["ratio"]):
        result.findings.append(
            f"People from Core20 areas have a representation ratio of {core20['ratio']:.2f}."
        )
    result.findings += [n for k, n in result.notes.items() if k in DIMENSIONS]
    return result
