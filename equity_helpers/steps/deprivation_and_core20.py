"""Step 3: do people from the most deprived areas (Core20) reach the service?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import analysis, stats
from ..codes import BROAD_GROUPS
from ..privacy import control_counts, people_publishable, published_percentage
from ..wording import NO_LSOA, imd_words, is_number
from .base import Chart, StepResult, Table, cached, headline, number_or_none

#: The prepared columns this step reads (see :func:`equity_helpers.steps.columns_for`).
READS = (
    "ethnicity",
    "ethnic_group",
    "learning_disability",
    "smi",
    "pregnancy",
    "interpreter_needed",
    "lsoa_code",
    "lad_code",
    "in_catchment",
    "imd_decile",
    "imd_quintile",
    "core20",
)

HEADLINES = {
    "core20_share_referrals": "Referrals from Core20 areas (%)",
    "core20_ratio": "Core20 representation ratio",
}
#: Decimal places of a headline figure where it is not one (the pages give ratios to two).
HEADLINE_DECIMALS = {"core20_ratio": 2}
NO_POP = (
    "This comparison needs the census ethnic group file (`population_ethnicity` in the config)."
)
ETHNIC_MINORITY = ["Asian", "Black", "Mixed", "Other"]


def _has_imd(data: pd.DataFrame) -> bool:
    return "imd_decile" in data and bool(data["imd_decile"].notna().any())


def core20(service) -> dict:
    """The Core20 comparison: the one place its share and representation ratio are worked out.

    Counts referrals from inside the catchment. Returns the raw counts (``x, n`` referrals,
    ``px, pn`` people), the controlled share of referrals, the population share, and the
    representation ratio with its Katz interval; NaN where it cannot be worked out.
    """
    nan = float("nan")
    out = dict.fromkeys(["share_ref", "share_pop", "ratio", "lower", "upper"], nan)
    out["why_not"] = ""
    data = service.data
    if not _has_imd(data):
        out["why_not"] = NO_LSOA
        return out
    if not service.has_population("imd_decile"):
        out["why_not"] = NO_POP
        return out
    inside = data.loc[data["in_catchment"], ["core20"]]  # one column, not a copy of all
    x, n = int(inside["core20"].sum()), len(inside)
    pop = analysis.population_by(service, "imd_decile")
    px, pn = float(pop.reindex(["1", "2"]).fillna(0).sum()), float(pop.sum())
    out.update(x=x, n=n, px=px, pn=pn)
    if n == 0 or px == 0:
        out["why_not"] = "No referral comes from a home area inside the catchment."
        return out
    # From the published counts, like the share itself (rule 3 in privacy).
    cx, cn = control_counts(x, service.rule), control_counts(n, service.rule)
    cx, cn = (0 if cx is pd.NA else cx), (0 if cn is pd.NA else cn)
    if cn == 0:
        out["why_not"] = "Too few referrals come from a home area inside the catchment."
        return out
    ratio, lower, upper = (float(v) for v in stats.representation_ratio(cx, cn, px, pn))
    out.update(
        share_ref=float(published_percentage(x, n, service.rule)),
        share_pop=round(100 * px / pn, 1),
    )
    if not pd.isna(out["share_ref"]):  # a hidden count hides its ratio too
        out.update(ratio=ratio, lower=lower if x else nan, upper=upper if x else nan)
    else:
        out["why_not"] = "Too few referrals come from Core20 areas to show their share."
    return out


def _verdict(c20: dict) -> str:
    if not is_number(c20["ratio"]):
        return "Core20 could not be compared."
    if is_number(c20["upper"]) and c20["upper"] < 1:
        return "People from Core20 areas are under-represented."
    if is_number(c20["lower"]) and c20["lower"] > 1:
        return "People from Core20 areas are referred more than their share."
    return "People from Core20 areas are referred about in line with their share."


def _sentence(c20: dict) -> str:
    if not is_number(c20["ratio"]):
        return f"The Core20 share could not be compared. {c20['why_not']}".strip()
    text = (
        f"Core20 areas hold {c20['share_pop']:.1f}% of the catchment's people and give "
        f"{c20['share_ref']:.1f}% of referrals: a ratio of {c20['ratio']:.2f}"
    )
    if is_number(c20["lower"]) and is_number(c20["upper"]):
        text += f" (95% interval {c20['lower']:.2f} to {c20['upper']:.2f})"
    return text + "."


def _plus_groups(data: pd.DataFrame, rule) -> pd.DataFrame:
    def yes(field):
        return data[field].eq("Yes").fillna(False) if field in data else None

    has_imd = _has_imd(data)
    plus = [
        (
            "People from Core20 areas",
            "home area (LSOA)",
            data["core20"].fillna(False).astype(bool) if has_imd else None,
        ),
        ("Ethnic minority communities", "ethnicity", data["ethnic_group"].isin(ETHNIC_MINORITY)),
        ("People with a learning disability", "learning disability", yes("learning_disability")),
        ("People living with severe mental illness", "SMI", yes("smi")),
        ("Pregnant women (maternity)", "pregnancy", yes("pregnancy")),
        ("People who need an interpreter", "interpreter needed", yes("interpreter_needed")),
        ("Inclusion health groups", "none", None),
    ]
    return pd.DataFrame(
        {
            "PLUS group": [p[0] for p in plus],
            "Field": [p[1] for p in plus],
            "In your extract": ["Yes" if p[2] is not None else "No" for p in plus],
            "Referrals": [
                control_counts(int(p[2].sum()), rule) if p[2] is not None else pd.NA for p in plus
            ],
            "% of referrals": [
                published_percentage(int(p[2].sum()), len(data), rule)
                if p[2] is not None
                else float("nan")
                for p in plus
            ],
        }
    )


#: Simulations for the confidence limits of each SII (as analysis.sii_by_decile).
SII_REPETITIONS = 20_000
FIFTHS = ("National fifths", "Local fifths")


def fifths_by_area(service) -> pd.DataFrame | None:
    """Each catchment area's people, referrals, national IMD fifth and local fifth.

    Local fifths rank the catchment's own areas by national IMD rank and split its people
    into five equal parts (:func:`equity_helpers.stats.local_quintiles`, population-weighted;
    1 = most deprived). Referrals are those from inside the catchment. None when the census
    file gives no people for the catchment's areas.
    """
    c = service.catchment
    people = c["total"] if "total" in c else c[BROAD_GROUPS].sum(axis=1)
    if not people.fillna(0).sum() > 0:
        return None
    rank = service.imd.set_index("lsoa_code")["imd_rank"].reindex(c["lsoa_code"]).to_numpy()
    local = stats.local_quintiles(c["lsoa_code"], rank, people.fillna(0), most_deprived="low")
    data = service.data
    referrals = data.loc[data["in_catchment"].fillna(False).astype(bool), "lsoa_code"]
    return pd.DataFrame(
        {
            "lsoa_code": c["lsoa_code"].to_numpy(),
            "people": people.fillna(0).to_numpy(dtype=float),
            "National fifths": c["imd_quintile"].astype("Int64").to_numpy(),
            "Local fifths": local.to_numpy(),
            "referrals": referrals.value_counts().reindex(c["lsoa_code"]).fillna(0).to_numpy(),
        }
    )


def fifths_table(areas: pd.DataFrame, scheme: str, rule) -> pd.DataFrame:
    """People, referrals and referrals per 1,000 people in each fifth of one scheme.

    The rate uses the published referral count (rule 3 in :mod:`equity_helpers.privacy`)
    and is shown only for a fifth with more people referred than the threshold.
    ``_referrals`` keeps the unrounded count (never shown).
    """
    g = areas.groupby(scheme)[["people", "referrals"]].sum().reindex(range(1, 6), fill_value=0)
    published = control_counts(g["referrals"].astype("int64"), rule)
    ok = people_publishable(g["referrals"].to_numpy(), rule) & (g["people"].to_numpy() > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = 1000 * published.fillna(0).to_numpy(dtype=float) / g["people"].to_numpy()
    total = g["people"].sum()
    return pd.DataFrame(
        {
            "Fifths": scheme,
            "Fifth": [
                f"Fifth {i}{' (most deprived)' if i == 1 else ' (least deprived)' if i == 5 else ''}"
                for i in range(1, 6)
            ],
            "People living there": g["people"].round().astype("int64").to_numpy(),
            "% of people": np.round(100 * g["people"].to_numpy() / total, 1) if total else np.nan,
            "Referrals": published.to_numpy(),
            "Referrals per 1,000 people": np.where(ok, np.round(rate, 1), np.nan),
            "_referrals": g["referrals"].to_numpy(),
            "_quintile": range(1, 6),
        }
    )


def fifths_sii(table: pd.DataFrame) -> dict:
    """SII of referrals per 1,000 people across one scheme's fifths (``phe_sii`` method).

    ``sii`` is NaN with a reason in ``why_not`` when a fifth has no people or no shown rate.
    """
    t = table.dropna(subset=["Referrals per 1,000 people"])
    t = t[(t["People living there"] > 0) & (t["Referrals per 1,000 people"] > 0)]
    out = analysis.sii_of_counts(
        t["_quintile"],
        t["Referrals"].astype(float),
        t["People living there"].astype(float),
        value_type=1,
        multiplier=1000,
        repetitions=SII_REPETITIONS,
        rii=False,
    )
    if out is None:
        return {
            "sii": float("nan"),
            "why_not": "a fifth has no people, or too few referrals to show",
        }
    out = out.iloc[0]
    return {
        "sii": float(out["sii"]),
        "lower": float(out["sii_lower95_0cl"]),
        "upper": float(out["sii_upper95_0cl"]),
        "why_not": "",
    }


def _sii_words(s: dict, scheme: str) -> str:
    if not is_number(s["sii"]):
        return f"On {scheme.lower()} no slope could be fitted: {s['why_not']}."
    side = "least" if s["sii"] > 0 else "most"
    return (
        f"On {scheme.lower()} the slope index of inequality is {s['sii']:.1f} referrals per "
        f"1,000 people (95% interval {s['lower']:.1f} to {s['upper']:.1f}): the fitted rate is "
        f"higher at the {side} deprived end."
    )


def _no_local_fifths(result: StepResult, why: str) -> None:
    result.notes["local_fifths"] = result.notes["fifths_rates"] = why
    result.values["local_fifths_sentence"] = "No comparison by local fifth was possible."
    for key in ("national", "local"):
        result.values[f"{key}_fifths_sii"] = None
        result.values[f"{key}_fifths_sii_sentence"] = "No slope could be fitted."


def _local_fifths(service, result: StepResult) -> None:
    """Local fifths beside national fifths, each with its SII of referrals per 1,000 people."""
    areas = fifths_by_area(service)
    if areas is None:
        _no_local_fifths(
            result,
            "The census file gives no people for the catchment's areas, so local fifths "
            "cannot be made.",
        )
        return
    tables = {scheme: fifths_table(areas, scheme, service.rule) for scheme in FIFTHS}
    both = pd.concat(tables.values(), ignore_index=True)
    result.tables["local_fifths"] = Table(
        both.drop(columns=["_quintile", "_referrals"]),
        "People and referrals in each deprivation fifth: national and local fifths",
        counts=("People living there", "Referrals"),
        percents=("% of people",),
        numbers=("Referrals per 1,000 people",),
        export="referrals_by_local_fifth",
    )
    result.charts["fifths_rates"] = Chart(
        "line_chart",
        both.drop(columns=["_quintile"]),
        {
            "x": "Fifth",
            "y": "Referrals per 1,000 people",
            "series": "Fifths",
            "title": "Referrals per 1,000 people, by national and local fifth",
            "ylabel": "Referrals per 1,000 people",
            "legend_below": 2,
        },
        people="_referrals",  # the referrals behind each point
        values=("Referrals per 1,000 people", "% of people"),
        counts=("Referrals",),
    )
    sii = {scheme: fifths_sii(t) for scheme, t in tables.items()}
    for scheme, key in zip(FIFTHS, ("national", "local"), strict=True):
        result.values[f"{key}_fifths_sii"] = number_or_none(sii[scheme]["sii"])
        result.values[f"{key}_fifths_sii_sentence"] = _sii_words(sii[scheme], scheme)
    national = tables["National fifths"]["% of people"]
    result.values["local_fifths_sentence"] = (
        f"Ranked against all of England, {national.iloc[0]:.1f}% of the catchment's people live "
        f"in the most deprived fifth and {national.iloc[4]:.1f}% in the least deprived fifth. "
        "Local fifths rank the catchment's own areas, so each holds about a fifth of its "
        "people and the comparison is between the most and least deprived people who live here."
    )
    a, b = sii["National fifths"]["sii"], sii["Local fifths"]["sii"]
    if is_number(a) and is_number(b):
        result.values["local_fifths_sentence"] += (
            f" The slope is {abs(b):.1f} referrals per 1,000 people on local fifths against "
            f"{abs(a):.1f} on national fifths: "
            + (
                "about the same, so national fifths describe this catchment well."
                if abs(b - a) < 0.1 * max(abs(a), abs(b))
                else "local fifths show a steeper gradient within the catchment."
                if abs(b) > abs(a)
                else "local fifths show a gentler gradient within the catchment."
            )
        )


@cached
def run(service) -> StepResult:
    """IMD decile profile, the Core20 share against the catchment, where Core20 areas are."""
    data, rule = service.data, service.rule
    result = StepResult("deprivation-and-core20")
    has_imd, has_pop = _has_imd(data), service.has_population("imd_decile")
    why_not = NO_LSOA if not has_imd else NO_POP
    if not has_imd:
        result.texts["notice"] = (
            f"**{NO_LSOA}** The sections that need it say so; the rest still apply."
        )

    if has_imd and has_pop:
        deciles = analysis.representation(service, "imd_decile")
        deciles["group"] = imd_words(deciles["group"], "imd_decile")
        result.tables["deciles"] = Table(
            deciles,
            "Referrals and population by IMD decile",
            export="referrals_by_imd_decile",
            shown=False,
        )
        result.charts["deciles"] = Chart(
            "paired_bars",
            deciles,
            {
                "a": "% of referrals",
                "b": "% of population",
                "xlabel": "% of the total",
                "title": "Referrals and population, by IMD decile",
            },
            values=("% of referrals", "ratio", "lower", "upper"),
            counts=("referrals",),
        )
        d1 = deciles.iloc[0]
        result.values["decile1_sentence"] = (
            f"Decile 1 holds {d1['% of population']:.1f}% of the catchment's people and "
            + (
                f"{d1['% of referrals']:.1f}% of its referrals."
                if is_number(d1["% of referrals"])
                else "too few referrals to show."
            )
        )
        _local_fifths(service, result)
    else:
        result.notes["deciles"] = why_not
        result.values["decile1_sentence"] = "No comparison by decile was possible."
        _no_local_fifths(result, why_not)

    c20 = core20(service)
    if "n" in c20 and c20["n"]:
        table = pd.DataFrame(
            {
                "": ["Referrals from the catchment", "People living in the catchment"],
                "Core20": [control_counts(c20["x"], rule), round(c20["px"])],
                "Total": [control_counts(c20["n"], rule), round(c20["pn"])],
                "% Core20": [c20["share_ref"], c20["share_pop"]],
            }
        )
        result.tables["core20"] = Table(
            table,
            "Core20 share of referrals and of the catchment population",
            counts=("Core20", "Total"),
            percents=("% Core20",),
            export="core20_share",
        )
    else:
        result.notes["core20"] = c20["why_not"]
    for key, name in (
        ("ratio", "core20_ratio"),
        ("share_ref", "core20_share_referrals"),
        ("share_pop", "core20_share_population"),
        ("lower", "core20_ratio_lower"),
        ("upper", "core20_ratio_upper"),
    ):
        result.values[name] = number_or_none(c20[key])
    for key, name in (("ratio", "core20_ratio"), ("share_ref", "core20_share_referrals")):
        headline(result, name, c20[key], c20["why_not"])
    result.values["core20_verdict"] = _verdict(c20)
    result.values["core20_sentence"] = _sentence(c20)
    result.data["core20"] = c20

    imd = service.imd.assign(lad=service.imd["lad_name"].fillna(service.imd["lad_code"]))
    las = (
        imd.groupby("lad")
        .agg(areas=("lsoa_code", "size"), core20=("core20", "sum"))
        .sort_values(["core20", "areas"], ascending=False)
        .reset_index()
    )
    las["% Core20"] = (100 * las["core20"] / las["areas"]).round(1)
    top = las.iloc[0]
    result.values["top_la"] = str(top["lad"])
    result.values["top_la_core20"] = int(top["core20"])
    result.values["catchment_core20_areas"] = int(las["core20"].sum())
    result.tables["local_authorities"] = Table(
        las.rename(
            columns={"lad": "Local authority", "areas": "Areas (LSOAs)", "core20": "Core20 areas"}
        ),
        "Core20 areas in each local authority of the catchment (counts of areas, not people)",
        counts=("Areas (LSOAs)", "Core20 areas"),
        percents=("% Core20",),
        exact=True,
    )

    plus = _plus_groups(data, rule)
    result.tables["plus_groups"] = Table(
        plus,
        "PLUS groups your extract can show (* where hidden or not in the extract)",
        counts=("Referrals",),
        percents=("% of referrals",),
        export="plus_groups",
    )
    result.values["n_plus_fields"] = int(plus["In your extract"].eq("Yes").sum())
    result.values["n_plus_rows"] = len(plus)
    result.findings = [result.values["decile1_sentence"], result.values["core20_verdict"]]
    result.findings.append(result.values["core20_sentence"])
    result.findings += [
        result.values[k]
        for k in (
            "local_fifths_sentence",
            "national_fifths_sii_sentence",
            "local_fifths_sii_sentence",
        )
    ]
    return result
