"""The Part 1 notebooks (Steps 1, 3 and 4) run, and their headline figures are right.

Each notebook is the one the shared sample workbook ran under papermill (the
``sample_folder`` fixture; the book build runs them again, standalone). The figures it glues are checked against an independent computation done here with
plain pandas, straight from the raw sample files (not through ``equity_helpers``):
the extract is read as text and the loader's exclusions are mirrored by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
CONFIG = SAMPLE / "sample_service.yml"
NOTEBOOKS = ["who-uses-the-service", "deprivation-and-core20", "access-and-outcome-gaps"]
Z95 = 1.959963984540054
Z998 = 3.090232306167813
THRESHOLD = 7  # counts of 1 to 7 are hidden in the sample's rule
BROAD = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    **dict.fromkeys("RS", "Other"),
}
AGE_GROUPS = ["0-15", "16-24", "25-34", "35-49", "50-64", "65+"]
IMD_DECILE_COLUMN = (
    "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)"
)


# ----------------------------------------------------------------------------- independent data


def _hidden(count: float) -> bool:
    return 1 <= count <= THRESHOLD


@pytest.fixture(scope="module")
def cfg() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def referrals(cfg: dict) -> pd.DataFrame:
    """The sample extract with the loader's exclusions applied by hand."""
    cols = cfg["columns"]
    raw = pd.read_csv(SAMPLE / cfg["extract"]["path"], dtype=str, keep_default_na=False)
    df = raw.rename(columns={v: k for k, v in cols.items()})[list(cols)].apply(
        lambda s: s.str.strip()
    )
    date = pd.to_datetime(df["referral_date"], format="%d/%m/%Y", errors="coerce")
    date = date.fillna(pd.to_datetime(df["referral_date"], format="%Y-%m-%d", errors="coerce"))
    start, end = pd.Timestamp(cfg["period"]["start"]), pd.Timestamp(cfg["period"]["end"])
    keep = (
        df["referral_id"].ne("")
        & date.notna()
        & (date <= pd.Timestamp.today().normalize())
        & (date >= start)
        & (date <= end)
    )
    df = df[keep].copy()
    age = pd.to_numeric(df["age"], errors="coerce")
    age = age.where((age >= 0) & (age <= 120))
    df["age_group"] = pd.cut(
        age, [-0.5, 15.5, 24.5, 34.5, 49.5, 64.5, np.inf], labels=AGE_GROUPS
    ).astype("object")
    df["ethnic_group"] = df["ethnicity"].str.upper().map(BROAD)
    df["sex_label"] = df["sex"].map({"1": "Male", "2": "Female"})
    offered, attended, dna = (
        pd.to_numeric(df[f"appointments_{c}"], errors="coerce")
        for c in ("offered", "attended", "dna")
    )
    bad = (attended + dna > offered) | (offered < 0) | (attended < 0) | (dna < 0)
    df["offered"] = offered.mask(bad)  # rows whose counts do not add up have no counts
    df["dna"] = dna.mask(bad)
    imd = imd_table()
    code = df["lsoa_code"].str.upper()
    df["lsoa"] = code
    df["imd_decile"] = code.map(imd.set_index("lsoa")["decile"])
    catchment = set(imd.loc[imd["lad"].isin(cfg["catchment"]["local_authorities"]), "lsoa"])
    df["in_catchment"] = code.isin(catchment)
    return df


def imd_table() -> pd.DataFrame:
    imd = pd.read_csv(
        SAMPLE / "reference" / "imd2025_file7_synthetic.csv", dtype=str, encoding="utf-8-sig"
    )
    return pd.DataFrame(
        {
            "lsoa": imd["LSOA code (2021)"].str.strip(),
            "lad": imd["Local Authority District code (2024)"].str.strip(),
            "decile": imd[IMD_DECILE_COLUMN].astype(int),
        }
    )


@pytest.fixture(scope="module")
def population(cfg: dict) -> pd.DataFrame:
    """Census population of each catchment LSOA, with its IMD decile."""
    imd = imd_table()
    imd = imd[imd["lad"].isin(cfg["catchment"]["local_authorities"])]
    ref = SAMPLE / "reference"
    eth = pd.read_csv(ref / "census2021-ts021-lsoa-synthetic.csv")
    eth = eth.rename(
        columns={
            "geography code": "lsoa",
            "Ethnic group: Total: All usual residents": "total",
            "Ethnic group: Asian, Asian British or Asian Welsh": "Asian",
            "Ethnic group: Black, Black British, Black Welsh, Caribbean or African": "Black",
            "Ethnic group: Mixed or Multiple ethnic groups": "Mixed",
            "Ethnic group: White": "White",
            "Ethnic group: Other ethnic group": "Other",
        }
    )
    age = pd.read_csv(ref / "census2021-age6-lsoa-synthetic.csv")
    age.columns = ["date", "geography", "lsoa", "age_total", *AGE_GROUPS]
    sex = pd.read_csv(ref / "census2021-ts008-lsoa-synthetic.csv")
    sex = sex.rename(
        columns={"geography code": "lsoa", "Sex: Female": "Female", "Sex: Male": "Male"}
    )
    out = imd.merge(
        eth[["lsoa", "total", "Asian", "Black", "Mixed", "White", "Other"]], on="lsoa", how="left"
    )
    out = out.merge(age[["lsoa", *AGE_GROUPS]], on="lsoa", how="left")
    return out.merge(sex[["lsoa", "Female", "Male"]], on="lsoa", how="left")


def published(count: float) -> int:
    """A count as published: rounded to the nearest 5, halves up. Shares, ratios and
    intervals are worked out from published counts, so they cannot undo the rounding."""
    return 5 * math.floor(count / 5 + 0.5)


def katz(a: float, n1: float, b: float, n2: float) -> tuple[float, float, float]:
    """Ratio of two proportions with the Katz log interval (textbook formula)."""
    ratio = (a / n1) / (b / n2)
    se = math.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n2)
    return ratio, ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se)


def representation(referrals: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """Representation ratio of every group in the four comparisons."""
    inside = referrals[referrals["in_catchment"]]
    served_children = referrals["age_group"].eq("0-15").any()
    quintile = (inside["imd_decile"] + 1) // 2
    pop_quintile = population.groupby((population["decile"] + 1) // 2)["total"].sum()
    specs = {
        "ethnic group": (
            inside["ethnic_group"],
            population[["Asian", "Black", "Mixed", "White", "Other"]].sum(),
        ),
        "age group": (
            inside["age_group"],
            population[AGE_GROUPS if served_children else AGE_GROUPS[1:]].sum(),
        ),
        "sex": (inside["sex_label"], population[["Female", "Male"]].sum()),
        "IMD quintile": (quintile, pop_quintile),
    }
    rows = []
    for dim, (groups, pop) in specs.items():
        counts = groups[groups.isin(pop.index)].value_counts().reindex(pop.index, fill_value=0)
        for group, a in counts.items():
            if a == 0 or _hidden(a):
                continue
            ratio, lo, hi = katz(published(a), published(counts.sum()), pop[group], pop.sum())
            name = f"{group} ({dim})"
            if dim == "IMD quintile":
                name = {
                    1: "IMD quintile 1 (most deprived)",
                    5: "IMD quintile 5 (least deprived)",
                }.get(group, f"IMD quintile {group}")
            rows.append(
                {"dim": dim, "group": group, "name": name, "ratio": ratio, "lower": lo, "upper": hi}
            )
    return pd.DataFrame(rows)


def wilson(x: float, n: float) -> tuple[float, float]:
    centre, spread = 2 * x + Z95**2, Z95 * math.sqrt(Z95**2 + 4 * x * (1 - x / n))
    lower = 0.0 if x == 0 else (centre - spread) / (2 * (n + Z95**2))
    upper = 1.0 if x == n else (centre + spread) / (2 * (n + Z95**2))
    return lower, upper


def newcombe(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float, float]:
    """Difference of two proportions with Newcombe's hybrid score interval (method 10)."""
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson(x1, n1), wilson(x2, n2)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def output_text(out) -> str:
    """What one cell output printed or displayed, as text."""
    parts = [out.get("text", ""), out.get("evalue", ""), "".join(out.get("traceback", []))]
    for mime in ("text/plain", "text/markdown", "text/html"):
        value = out.get("data", {}).get(mime, "")
        parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(str(p) for p in parts)


def all_text(nb) -> str:
    """Everything a notebook printed or displayed, as one string."""
    return "\n".join(output_text(out) for cell in nb.cells for out in cell.get("outputs", []))


def check_clean_run(nb, name: str) -> None:
    """Every code cell ran, and no output is an error or shows a traceback."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.get("execution_count") is not None, f"{name}: a cell did not run"
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", (
                f"{name}: {out.get('ename')}: {out.get('evalue')}"
            )
            assert "Traceback" not in output_text(out), f"{name} printed a traceback"


# ----------------------------------------------------------------------------- the notebooks run


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_cleanly(run_notebook, name: str) -> None:
    nb, glued = run_notebook(name)
    check_clean_run(nb, name)
    assert glued, f"{name} glued nothing"
    assert "Small numbers" in all_text(nb)


@pytest.mark.slow
def test_no_raw_counts_or_ids_are_shown(run_notebook) -> None:
    for name in NOTEBOOKS:
        nb, _ = run_notebook(name)
        text = all_text(nb)
        assert "LC1000" not in text, f"{name} shows a referral ID"
        assert ">_x<" not in text and ">_n<" not in text, f"{name} shows raw count columns"


# ----------------------------------------------------------------------------- who uses the service


@pytest.mark.slow
def test_who_uses_matches_independent_ratios(run_notebook, referrals, population) -> None:
    _, glued = run_notebook("who-uses-the-service")
    rep = representation(referrals, population)
    under = rep[rep["upper"].round(2) < 1].sort_values("ratio")
    assert glued["n_under_represented"] == len(under)
    assert glued["most_under_group"] == under["name"].iloc[0]
    assert glued["most_under_ratio"] == pytest.approx(under["ratio"].iloc[0], abs=0.006)
    core20 = rep[(rep["dim"] == "IMD quintile") & (rep["group"] == 1)].iloc[0]
    assert glued["core20_ratio"] == pytest.approx(core20["ratio"], abs=0.006)


def test_who_uses_ratio_interval_is_katz(referrals, population, sample_service) -> None:
    """The helper's interval for one group equals the textbook Katz interval."""
    from equity_helpers.analysis import representation as helper_representation

    table = helper_representation(sample_service, "ethnic_group").set_index("group")
    rep = representation(referrals, population)
    asian = rep[(rep["dim"] == "ethnic group") & (rep["group"] == "Asian")].iloc[0]
    assert table.loc["Asian", "ratio"] == pytest.approx(asian["ratio"], abs=0.006)
    assert table.loc["Asian", "lower"] == pytest.approx(asian["lower"], abs=0.006)
    assert table.loc["Asian", "upper"] == pytest.approx(asian["upper"], abs=0.006)


# ----------------------------------------------------------------------------- deprivation and Core20


@pytest.mark.slow
def test_core20_matches_independent_computation(run_notebook, referrals, population) -> None:
    _, glued = run_notebook("deprivation-and-core20")
    inside = referrals[referrals["in_catchment"]]
    x, n = int(inside["imd_decile"].le(2).sum()), len(inside)
    px, pn = population.loc[population["decile"] <= 2, "total"].sum(), population["total"].sum()
    ratio, lo, hi = katz(published(x), published(n), px, pn)
    share = 100 * published(x) / published(n)
    assert glued["core20_share_referrals"] == pytest.approx(share, abs=0.051)
    assert glued["core20_share_population"] == pytest.approx(100 * px / pn, abs=0.051)
    assert glued["core20_ratio"] == pytest.approx(ratio, rel=1e-9)
    assert glued["core20_ratio_lower"] == pytest.approx(lo, rel=1e-9)
    assert glued["core20_ratio_upper"] == pytest.approx(hi, rel=1e-9)


@pytest.mark.slow
def test_core20_agrees_across_notebooks(run_notebook) -> None:
    _, who = run_notebook("who-uses-the-service")
    _, dep = run_notebook("deprivation-and-core20")
    assert who["core20_ratio"] == pytest.approx(dep["core20_ratio"], abs=0.006)


# ----------------------------------------------------------------------------- access and outcome gaps


@pytest.mark.slow
def test_overall_dna_rate(run_notebook, referrals) -> None:
    _, glued = run_notebook("access-and-outcome-gaps")
    valid = referrals.dropna(subset=["dna", "offered"])
    # Across the groups shown (an ethnic code not on the NHS list is too rare to show), from
    # the published (rounded) counts, to one decimal place.
    code = valid["ethnicity"].str.upper()
    valid = valid[code.isin(list(BROAD)) | code.eq("")]
    rate = 100 * published(valid["dna"].sum()) / published(valid["offered"].sum())
    assert glued["dna_overall_pct"] == pytest.approx(rate, abs=0.05)


@pytest.mark.slow
def test_sii_matches_weighted_least_squares(run_notebook, referrals) -> None:
    _, glued = run_notebook("access-and-outcome-gaps")
    valid = referrals.dropna(subset=["dna", "offered", "imd_decile"])
    by = valid.groupby("imd_decile")[["dna", "offered"]].sum().sort_index()
    by = by[(by["offered"] > 0) & (by["dna"] > 0) & (by["dna"] < by["offered"])]
    share = by["offered"] / by["offered"].sum()
    rank = share.cumsum() - share / 2  # mid-point of each decile in the cumulative population
    slope, intercept = np.polyfit(rank, by["dna"] / by["offered"], 1, w=np.sqrt(share))
    assert glued["dna_sii"] == pytest.approx(100 * slope, abs=1e-6)
    assert glued["dna_rii"] == pytest.approx((intercept + slope) / intercept, abs=1e-6)
    assert glued["dna_sii_lower"] < glued["dna_sii"] < glued["dna_sii_upper"]
    assert glued["dna_sii"] < 0  # the sample misses more appointments in deprived areas


@pytest.mark.slow
def test_funnel_count_above_998(run_notebook, referrals) -> None:
    _, glued = run_notebook("access-and-outcome-gaps")
    inside = referrals[referrals["in_catchment"]].dropna(subset=["dna", "offered"])
    inside = inside[inside["lsoa"].ne("")]
    by_area = inside.groupby("lsoa")
    areas = by_area[["dna", "offered"]].sum()
    areas["people"], areas["top"] = by_area.size(), by_area["offered"].max()
    areas = areas[areas["offered"] > 0]
    # Areas shown: more than 7 people, no hidden count, no one person with over half the
    # appointments; each at its published counts, which also give the baseline.
    shown = areas[
        (areas["people"] > 7)
        & ~(areas["dna"].map(_hidden) | areas["offered"].map(_hidden))
        & (2 * areas["top"] <= areas["offered"])
    ]
    x, n = shown["dna"].map(published), shown["offered"].map(published)
    base = x.sum() / n.sum()
    # Limits widened for over-dispersion (Spiegelhalter 2005): z-scores winsorised at the
    # 10th and 90th percentiles, then the between-area variance.
    s2 = base * (1 - base) / n
    z = (x / n - base) / np.sqrt(s2)
    k, w = len(z), 1 / s2
    phi = float(np.mean(np.clip(z, *np.quantile(z, [0.1, 0.9])) ** 2))
    tau2 = max(0.0, (k * phi - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    assert glued["funnel_phi"] == pytest.approx(phi) and tau2 > 0
    rate = x / n
    limit = base + Z998 * np.sqrt(base * (1 - base) / n + tau2)
    assert glued["funnel_above_998"] == int((rate > limit).sum())
    assert glued["funnel_above_998"] > 0
    plain = base + Z95 * np.sqrt(base * (1 - base) / n)
    assert glued["funnel_plain_above_95"] == int((rate > plain).sum())


@pytest.mark.slow
def test_credible_dna_gaps_by_ethnic_group(run_notebook, referrals) -> None:
    nb, glued = run_notebook("access-and-outcome-gaps")
    valid = referrals.dropna(subset=["dna", "offered", "ethnic_group"])
    by = valid.groupby("ethnic_group")[["dna", "offered"]].sum()
    text = all_text(nb)
    found = 0
    for group, row in by.iterrows():
        if _hidden(row["dna"]) or _hidden(row["offered"]):
            continue
        rest = by.drop(index=group).sum()
        d, lo, hi = newcombe(
            *(published(v) for v in (row["dna"], row["offered"])),
            *(published(v) for v in (rest["dna"], rest["offered"])),
        )
        if round(lo * 100, 1) > 0 or round(hi * 100, 1) < 0:
            found += 1
            word = "higher" if d > 0 else "lower"
            assert (
                f"{group} (ethnic group) had a {word} missed-appointment rate than everyone else"
                in text
            )
    assert found >= 1
    assert glued["n_credible_gaps"] >= found
    assert isinstance(glued["largest_gap_text"], str)
    assert "than everyone else" in glued["largest_gap_text"]


# ----------------------------------------------------------------------------- without home areas


@pytest.fixture(scope="module")
def no_lsoa_config(tmp_path_factory) -> Path:
    """The sample service with its LSOA column dropped from the extract and the config."""
    folder = tmp_path_factory.mktemp("no-lsoa")
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    extract = pd.read_csv(SAMPLE / cfg["extract"]["path"], dtype=str, keep_default_na=False)
    extract.drop(columns=[cfg["columns"]["lsoa_code"]]).to_csv(folder / "extract.csv", index=False)
    del cfg["columns"]["lsoa_code"]
    cfg["extract"]["path"] = str(folder / "extract.csv")
    for key, value in cfg["reference"].items():
        if key.endswith("path") or key.startswith("population"):
            cfg["reference"][key] = str((SAMPLE / value).resolve())
    for key, value in cfg["readability"].items():
        cfg["readability"][key] = str((SAMPLE / value).resolve())
    path = folder / "service.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_without_lsoa_codes(run_notebook, no_lsoa_config: Path, name: str) -> None:
    nb, glued = run_notebook(name, config_path=str(no_lsoa_config))
    check_clean_run(nb, name)
    assert "This step needs home area (LSOA) codes" in all_text(nb)
    if name == "deprivation-and-core20":
        # No made-up figure: a missing one, read back as None (never the text "nan").
        assert glued["core20_ratio"] is None
        assert "home area (LSOA) codes" in glued["core20_ratio_why"]
    if name == "access-and-outcome-gaps":
        assert glued["funnel_above_998"] == 0
        assert glued["dna_overall_pct"] == pytest.approx(glued_sample_dna(run_notebook), abs=1e-9)


def glued_sample_dna(run_notebook) -> float:
    """The overall missed-appointment rate does not depend on home areas."""
    return run_notebook("access-and-outcome-gaps")[1]["dna_overall_pct"]
