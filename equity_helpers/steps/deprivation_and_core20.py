"""Step 3: do people from the most deprived areas (Core20) reach the service?"""

from __future__ import annotations

import pandas as pd

from .. import analysis, stats
from ..privacy import control_counts, published_percentage
from ..wording import NO_LSOA, imd_words, is_number
from .base import Chart, StepResult, Table, cached, number_or_nan

HEADLINES = {
    "core20_share_referrals": "Referrals from Core20 areas (%)",
    "core20_ratio": "Core20 representation ratio",
}
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
    inside = data[data["in_catchment"]]
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
    else:
        result.notes["deciles"] = why_not
        result.values["decile1_sentence"] = "No comparison by decile was possible."

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
        result.values[name] = number_or_nan(c20[key])
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
    return result
