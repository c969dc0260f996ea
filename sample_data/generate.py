"""Generate the synthetic sample: a fictional Derbyshire long COVID rehabilitation service.

Run from the repository root (``make sample-data``)::

    python sample_data/generate.py            # the committed sample (about 6,000 referrals)
    python sample_data/generate.py --rows 100000 --out /tmp/big   # larger extracts for benchmarks

Everything here is made up. Area codes use the LSOA format (E01 and six digits) but sit
outside the real range (E019xxxxx), so no real neighbourhood is given invented figures.
The mix of deprivation and ethnicity follows Derby and Derbyshire's published figures in
broad terms (Census 2021 and the English Indices of Deprivation 2025, rounded).

Built-in patterns for the notebooks to find:

* people from the most deprived areas miss more appointments and drop out more;
* Asian and Black residents are referred less often than their share of the population;
* after the change date (1 April 2024) the missed-appointment gap for Core20 areas narrows;
* recording of ethnicity improves over time; some codes, dates and areas are invalid.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20250201
PERIOD_START = dt.date(2022, 4, 1)
PERIOD_END = dt.date(2025, 3, 31)
CHANGE_DATE = dt.date(2024, 4, 1)

# Local authorities of Derby and Derbyshire, with a rough share of the areas and a
# deprivation lean (positive = more deprived than average).
LADS = [
    ("E06000015", "Derby", 0.23, 0.45),
    ("E07000032", "Amber Valley", 0.12, 0.0),
    ("E07000033", "Bolsover", 0.07, 0.5),
    ("E07000034", "Chesterfield", 0.11, 0.45),
    ("E07000035", "Derbyshire Dales", 0.07, -0.8),
    ("E07000036", "Erewash", 0.11, 0.1),
    ("E07000037", "High Peak", 0.09, -0.3),
    ("E07000038", "North East Derbyshire", 0.10, -0.1),
    ("E07000039", "South Derbyshire", 0.10, -0.6),
]
# Areas in each national IMD 2025 decile, Derby and Derbyshire (decile 1 = most deprived).
DECILE_MIX = np.array([56, 71, 66, 67, 67, 58, 67, 68, 65, 66], dtype=float)
ETHNIC_GROUPS = ["Asian", "Black", "Mixed", "White", "Other"]
# Census 2021 broad ethnic mix, rounded: Derby city and the Derbyshire districts.
ETHNIC_MIX = {
    "Derby": [0.16, 0.04, 0.04, 0.73, 0.03],
    "county": [0.013, 0.005, 0.013, 0.965, 0.004],
}
NHS_CODES = {
    "White": (["A", "B", "C"], [0.88, 0.02, 0.10]),
    "Mixed": (["D", "E", "F", "G"], [0.35, 0.15, 0.30, 0.20]),
    "Asian": (["H", "J", "K", "L"], [0.40, 0.35, 0.05, 0.20]),
    "Black": (["M", "N", "P"], [0.30, 0.60, 0.10]),
    "Other": (["R", "S"], [0.25, 0.75]),
}
AGE_GROUPS = ["0-15", "16-24", "25-34", "35-49", "50-64", "65+"]
AGE_MIX = np.array([0.18, 0.10, 0.125, 0.18, 0.20, 0.215])
AGE_RANGES = {
    "16-24": (16, 24),
    "25-34": (25, 34),
    "35-49": (35, 49),
    "50-64": (50, 64),
    "65+": (65, 94),
}
# Relative chance of referral per resident, by group (need and access together).
UPTAKE_AGE = {"0-15": 0.0, "16-24": 0.45, "25-34": 0.9, "35-49": 1.35, "50-64": 1.4, "65+": 0.75}
UPTAKE_SEX = {"Female": 1.45, "Male": 1.0}
UPTAKE_ETHNIC = {"Asian": 0.55, "Black": 0.6, "Mixed": 0.85, "White": 1.0, "Other": 0.7}
UPTAKE_DECILE = np.array([0.8, 0.85, 0.95, 1.0, 1.0, 1.05, 1.05, 1.05, 1.1, 1.1])


def make_areas(rng: np.random.Generator, n_areas: int = 130) -> pd.DataFrame:
    """Fictional LSOA-like areas with a national IMD 2025 decile, rank and score."""
    shares = np.array([s for *_, s, _ in LADS])
    counts = np.maximum(1, np.round(shares / shares.sum() * n_areas)).astype(int)
    rows = []
    serial = 1
    for (code, name, _, lean), k in zip(LADS, counts, strict=True):
        for i in range(k):
            rows.append(
                {
                    "lsoa_code": f"E019{serial:05d}",
                    "lsoa_name": f"{name} 9{i // 4:02d}{'ABCD'[i % 4]}",
                    "lad_code": code,
                    "lad_name": name,
                    "lean": lean + rng.normal(0, 0.9),
                }
            )
            serial += 1
    areas = pd.DataFrame(rows)
    # Allocate deciles so the overall mix follows Derby and Derbyshire's.
    target = np.round(DECILE_MIX / DECILE_MIX.sum() * len(areas)).astype(int)
    target[-1] += len(areas) - target.sum()
    order = np.argsort(-areas["lean"].to_numpy())
    deciles = np.repeat(np.arange(1, 11), target)
    areas.loc[areas.index[order], "imd_decile"] = deciles
    areas["imd_decile"] = areas["imd_decile"].astype(int)
    width = 33755 / 10
    lo = (areas["imd_decile"] - 1) * width + 1
    areas["imd_rank"] = (lo + rng.uniform(0, width - 1, len(areas))).astype(int)
    areas["imd_score"] = np.round(
        75 * np.exp(-areas["imd_rank"] / 9000) + rng.normal(0, 1, len(areas)), 3
    )
    areas["population"] = rng.integers(1300, 2100, len(areas))
    mix = np.where(
        areas["lad_name"].eq("Derby").to_numpy()[:, None], ETHNIC_MIX["Derby"], ETHNIC_MIX["county"]
    )
    # More diverse populations in Derby's more deprived areas, as in the census.
    tilt = np.clip((5 - areas["imd_decile"].to_numpy()) / 4, 0, 1) * areas["lad_name"].eq("Derby")
    mix = mix * (1 + np.outer(tilt, [1.2, 1.2, 0.4, -0.25, 0.8]))
    mix = mix / mix.sum(axis=1, keepdims=True)
    for j, g in enumerate(ETHNIC_GROUPS):
        areas[g] = np.round(areas["population"] * mix[:, j]).astype(int)
    areas["population"] = areas[ETHNIC_GROUPS].sum(axis=1)
    for g, p in zip(AGE_GROUPS, AGE_MIX, strict=True):
        areas[g] = np.round(areas["population"] * p).astype(int)
    areas[AGE_GROUPS[-1]] += areas["population"] - areas[AGE_GROUPS].sum(axis=1)
    areas["Female"] = np.round(areas["population"] * 0.508).astype(int)
    areas["Male"] = areas["population"] - areas["Female"]
    return areas.drop(columns="lean")


def make_referrals(rng: np.random.Generator, areas: pd.DataFrame, n: int) -> pd.DataFrame:
    """Referrals drawn from the population cells with the uptake pattern above."""
    cells = []
    for g in ETHNIC_GROUPS:
        for a in AGE_GROUPS:
            for s in ("Female", "Male"):
                share = areas[g] / areas["population"] * areas[a] / areas["population"]
                pop = areas["population"] * share * (areas[s] / areas["population"])
                w = pop * UPTAKE_AGE[a] * UPTAKE_SEX[s] * UPTAKE_ETHNIC[g]
                w = w * UPTAKE_DECILE[areas["imd_decile"] - 1]
                cells.append(
                    pd.DataFrame({"area": areas.index, "eth": g, "age_group": a, "sex": s, "w": w})
                )
    cells = pd.concat(cells, ignore_index=True)
    pick = rng.choice(len(cells), size=n, p=(cells["w"] / cells["w"].sum()).to_numpy())
    r = cells.iloc[pick, :4].reset_index(drop=True)
    r = r.join(areas[["lsoa_code", "imd_decile"]], on="area").drop(columns="area")
    lo = r["age_group"].map(lambda a: AGE_RANGES[a][0]).to_numpy()
    hi = r["age_group"].map(lambda a: AGE_RANGES[a][1]).to_numpy()
    r["age"] = rng.integers(lo, hi + 1)
    days = (PERIOD_END - PERIOD_START).days
    # Referrals grow slowly over the three years.
    offset = np.floor(days * rng.uniform(0, 1, n) ** 0.8).astype(int)
    r["referral_date"] = pd.Timestamp(PERIOD_START) + pd.to_timedelta(offset, unit="D")
    return r


def add_pathway(rng: np.random.Generator, r: pd.DataFrame) -> pd.DataFrame:
    n = len(r)
    core20 = (r["imd_decile"] <= 2).to_numpy()
    after = (r["referral_date"] >= pd.Timestamp(CHANGE_DATE)).to_numpy()
    minority = r["eth"].isin(["Asian", "Black"]).to_numpy()
    young = (r["age"] < 25).to_numpy()
    r["accepted"] = rng.uniform(size=n) < np.where(core20, 0.84, 0.9)
    wait = rng.gamma(4, 8.5, n) + np.where(core20, 6, 0) + np.where(minority, 4, 0)
    r["first_date"] = r["referral_date"] + pd.to_timedelta(np.round(wait), unit="D")
    offered = 1 + rng.poisson(5, n)
    dna_p = 0.07 + 0.03 * young + 0.03 * minority
    dna_p = dna_p + np.where(core20, np.where(after, 0.04, 0.10), 0)
    dna_p = dna_p + 0.03 * ((r["imd_decile"] >= 3) & (r["imd_decile"] <= 4)).to_numpy()
    dna = rng.binomial(offered, dna_p)
    cancelled = rng.binomial(offered - dna, 0.04)
    attended = offered - dna - cancelled
    drop_p = 0.11 + np.where(core20, np.where(after, 0.06, 0.12), 0) + 0.04 * young
    u = rng.uniform(size=n)
    reason = np.where(
        u < drop_p * 0.6,
        "Disengaged",
        np.where(
            u < drop_p,
            "Discharged after DNA",
            np.where(
                u < drop_p + 0.05, "Transferred", np.where(u < drop_p + 0.07, "Other", "Completed")
            ),
        ),
    )
    length = np.round(rng.gamma(3, 35, n)) + offered * 7
    discharge = r["first_date"] + pd.to_timedelta(length, unit="D")
    open_case = discharge > pd.Timestamp(PERIOD_END)
    acc = r["accepted"].to_numpy()
    first_seen = acc & (attended > 0)
    r["first_date"] = r["first_date"].where(first_seen)
    r["offered"] = np.where(acc, offered, 0)
    r["attended"] = np.where(acc, attended, 0)
    r["dna"] = np.where(acc, dna, 0)
    r["discharge_date"] = discharge.where(acc & ~open_case)
    r.loc[~acc, "discharge_date"] = r.loc[~acc, "referral_date"] + pd.Timedelta(days=10)
    reason = np.where(
        ~acc,
        "Other",
        np.where(acc & ~first_seen & (reason == "Completed"), "Discharged after DNA", reason),
    )
    r["discharge_reason"] = np.where(r["discharge_date"].isna(), "", reason)
    completed = r["discharge_reason"].eq("Completed").to_numpy()
    start = np.clip(rng.normal(48, 12, n), 5, 95)
    gain = rng.normal(12, 8, n) - 4 * core20
    r["outcome_start"] = np.where(first_seen, np.round(start), np.nan)
    r["outcome_end"] = np.where(completed, np.round(np.clip(start - gain, 0, 100)), np.nan)
    return r


def add_equality_fields(rng: np.random.Generator, r: pd.DataFrame) -> pd.DataFrame:
    n = len(r)
    codes = np.empty(n, dtype=object)
    for g, (cs, ps) in NHS_CODES.items():
        m = (r["eth"] == g).to_numpy()
        codes[m] = rng.choice(cs, size=m.sum(), p=ps)
    # Recording improves: 'not stated' and 'not known' fall over the three years.
    t = ((r["referral_date"] - pd.Timestamp(PERIOD_START)).dt.days / 1095).to_numpy()
    u = rng.uniform(size=n)
    p_z, p_99 = 0.15 - 0.08 * t, 0.11 - 0.06 * t
    codes = np.where(
        u < p_z, "Z", np.where(u < p_z + p_99, np.where(u < p_z + p_99 / 2, "99", ""), codes)
    )
    r["ethnicity"] = codes
    sex = np.where(r["sex"] == "Female", "2", "1").astype(object)
    sex[rng.uniform(size=n) < 0.004] = "X"
    r["sex_code"] = sex
    r["religion"] = rng.choice(
        [
            "Christian",
            "No religion",
            "Muslim",
            "Hindu",
            "Sikh",
            "Buddhist",
            "Jewish",
            "Other",
            "Not stated",
            "",
        ],
        size=n,
        p=[0.42, 0.33, 0.05, 0.015, 0.015, 0.005, 0.002, 0.013, 0.05, 0.1],
    )
    minority = r["eth"].isin(["Asian", "Black"]).to_numpy()
    r.loc[minority, "religion"] = rng.choice(
        ["Muslim", "Hindu", "Sikh", "Christian", "Not stated"],
        size=minority.sum(),
        p=[0.4, 0.15, 0.15, 0.2, 0.1],
    )
    r["sexual_orientation"] = rng.choice(
        ["Heterosexual or straight", "Gay or lesbian", "Bisexual", "Other", "Not stated", ""],
        size=n,
        p=[0.8, 0.02, 0.02, 0.005, 0.08, 0.075],
    )
    r["marital_status"] = rng.choice(
        ["Married or civil partnership", "Single", "Divorced", "Widowed", "Separated", ""],
        size=n,
        p=[0.45, 0.3, 0.1, 0.06, 0.03, 0.06],
    )

    def yes_no(p_yes, p_blank):
        return rng.choice(["Y", "N", ""], size=n, p=[p_yes, 1 - p_yes - p_blank, p_blank])

    r["carer"] = yes_no(0.12, 0.35)
    r["pregnancy"] = np.where((r["sex"] == "Female") & (r["age"] < 50), yes_no(0.02, 0.5), "")
    r["armed_forces"] = yes_no(0.03, 0.45)
    r["disability"] = yes_no(0.25, 0.2)
    r["interpreter"] = np.where(
        minority & (rng.uniform(size=n) < 0.15), "Y", np.where(rng.uniform(size=n) < 0.7, "N", "")
    )
    r["learning_disability"] = yes_no(0.01, 0.3)
    r["smi"] = yes_no(0.02, 0.3)
    return r


def add_identifiers(rng: np.random.Generator, r: pd.DataFrame) -> pd.DataFrame:
    """Identifier columns a real export often carries; the loader must drop them."""
    n = len(r)
    # 999 numbers are reserved for testing and never issued to patients.
    r["nhs_number"] = [
        f"999 {a:03d} {b:04d}"
        for a, b in zip(rng.integers(0, 1000, n), rng.integers(0, 10000, n), strict=True)
    ]
    r["name"] = [f"Synthetic Patient {i:05d}" for i in range(1, n + 1)]
    birth = r["referral_date"] - pd.to_timedelta(
        r["age"] * 365.25 + rng.integers(0, 365, n), unit="D"
    )
    r["dob"] = birth.dt.strftime("%d/%m/%Y")
    # ZZ99 is the NHS pseudo-postcode area: never a real address.
    r["postcode"] = [
        f"ZZ99 {d}{a}{b}"
        for d, a, b in zip(
            rng.integers(1, 10, n),
            rng.choice(list("ABDEFG"), n),
            rng.choice(list("HJLNPQ"), n),
            strict=True,
        )
    ]
    return r


def add_data_quality_problems(rng: np.random.Generator, out: pd.DataFrame) -> pd.DataFrame:
    """Plant the kinds of error real extracts have, in known numbers (see the data card)."""
    n = len(out)
    idx = rng.permutation(n)
    k = 0

    def take(m):
        nonlocal k
        sel = out.index[idx[k : k + m]]
        k += m
        return sel

    out.loc[take(5), "Date Referral Received"] = [
        "31/02/2023",
        "2023-13-01",
        "not known",
        "00/00/0000",
        "15/15/2024",
    ]
    out.loc[take(3), "Date Referral Received"] = ""
    out.loc[take(4), "Date Referral Received"] = [
        "04/01/2091",
        "12/06/2092",
        "01/01/2095",
        "20/11/2097",
    ]
    out.loc[take(12), "Date Referral Received"] = [
        f"{d:02d}/0{m}/2021" for d, m in zip(range(1, 13), [3] * 12, strict=True)
    ]
    out.loc[take(2), "Referral Ref"] = ""
    out.loc[take(max(3, n // 2000)), "Ethnic Category"] = "W"
    out.loc[take(max(2, n // 3000)), "Ethnic Category"] = "White Other British"
    out.loc[take(2), "Gender"] = "Q"
    out.loc[take(max(8, n // 500)), "Age at Referral"] = ""
    out.loc[take(3), "Age at Referral"] = ["-1", "-4", "-2"]
    out.loc[take(2), "Age at Referral"] = ["130", "207"]
    sel = take(max(30, n // 100))
    out.loc[sel, "LSOA"] = ""
    sel = take(max(10, n // 300))
    out.loc[sel, "LSOA"] = [f"E019{rng.integers(0, 99999):05d}0" for _ in sel]  # too long
    sel = take(max(20, n // 150))
    out.loc[sel, "LSOA"] = [f"E0195{rng.integers(1, 13):04d}" for _ in sel]  # outside catchment
    sel = take(5)
    out.loc[sel, "First Contact Date"] = (
        (
            pd.to_datetime(
                out.loc[sel, "Date Referral Received"], format="%d/%m/%Y", errors="coerce"
            )
            - pd.Timedelta(days=20)
        )
        .dt.strftime("%d/%m/%Y")
        .fillna("")
    )
    sel = take(4)
    out.loc[sel, "Appts Offered"] = "1"
    out.loc[sel, "Appts Attended"] = "2"
    out.loc[sel, "Appts DNA"] = "1"
    sel = take(3)
    out.loc[sel, "Discharge Date"] = "01/01/2020"
    return out


def build(n: int = 6000, seed: int = SEED, n_areas: int = 130):
    rng = np.random.default_rng(seed)
    areas = make_areas(rng, n_areas)
    r = make_referrals(rng, areas, n)
    r = add_pathway(rng, r)
    r = add_equality_fields(rng, r)
    r = add_identifiers(rng, r)
    r = r.sort_values("referral_date", kind="stable").reset_index(drop=True)

    def uk(d):
        return d.dt.strftime("%d/%m/%Y").fillna("")

    def num(x):
        return pd.Series(x).map(lambda v: "" if pd.isna(v) else str(int(v)))

    out = pd.DataFrame(
        {
            "Referral Ref": [f"LC{100000 + i}" for i in range(len(r))],
            "NHS Number": r["nhs_number"],
            "Patient Name": r["name"],
            "Date of Birth": r["dob"],
            "Postcode": r["postcode"],
            "Date Referral Received": uk(r["referral_date"]),
            "Age at Referral": r["age"].astype(str),
            "Gender": r["sex_code"],
            "Ethnic Category": r["ethnicity"],
            "LSOA": r["lsoa_code"],
            "Referral Accepted": np.where(r["accepted"], "Y", "N"),
            "First Contact Date": uk(r["first_date"]),
            "Appts Offered": r["offered"].astype(str),
            "Appts Attended": r["attended"].astype(str),
            "Appts DNA": r["dna"].astype(str),
            "Discharge Date": uk(r["discharge_date"]),
            "Discharge Reason": r["discharge_reason"],
            "C19-YRS Start": num(r["outcome_start"]).to_numpy(),
            "C19-YRS End": num(r["outcome_end"]).to_numpy(),
            "Religion": r["religion"],
            "Sexual Orientation": r["sexual_orientation"],
            "Marital Status": r["marital_status"],
            "Carer": r["carer"],
            "Pregnant": r["pregnancy"],
            "Armed Forces": r["armed_forces"],
            "Disability": r["disability"],
            "Interpreter Required": r["interpreter"],
            "Learning Disability": r["learning_disability"],
            "SMI": r["smi"],
        }
    )
    out = add_data_quality_problems(rng, out)
    return areas, out


def write_reference(areas: pd.DataFrame, folder: Path) -> None:
    """Synthetic deprivation and population files in the official layouts."""
    folder.mkdir(parents=True, exist_ok=True)
    # A few areas outside the catchment, so that out-of-area referrals can be matched.
    extra = pd.DataFrame(
        {
            "lsoa_code": [f"E0195{i:04d}" for i in range(1, 13)],
            "lsoa_name": [f"Elsewhere 9{i:02d}A" for i in range(1, 13)],
            "lad_code": "E07000170",
            "lad_name": "Outside the catchment (synthetic)",
            "imd_decile": [(i % 10) + 1 for i in range(12)],
        }
    )
    extra["imd_rank"] = ((extra["imd_decile"] - 0.5) * 3375.5).astype(int)
    extra["imd_score"] = np.round(75 * np.exp(-extra["imd_rank"] / 9000), 3)
    imd = pd.concat([areas, extra], ignore_index=True)
    file7 = pd.DataFrame(
        {
            "LSOA code (2021)": imd["lsoa_code"],
            "LSOA name (2021)": imd["lsoa_name"],
            "Local Authority District code (2024)": imd["lad_code"],
            "Local Authority District name (2024)": imd["lad_name"],
            "Index of Multiple Deprivation (IMD) Score": imd["imd_score"].map("{:.3f}".format),
            "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)": imd[
                "imd_rank"
            ].map("{:,}".format),
            "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)": imd[
                "imd_decile"
            ],
        }
    )
    file7.to_csv(folder / "imd2025_file7_synthetic.csv", index=False, encoding="utf-8-sig")

    def nomis(cols: dict[str, pd.Series]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "date": 2021,
                "geography": areas["lsoa_name"],
                "geography code": areas["lsoa_code"],
                **cols,
            }
        )

    eth = {"Ethnic group: Total: All usual residents": areas["population"]}
    names = {
        "Asian": "Ethnic group: Asian, Asian British or Asian Welsh",
        "Black": "Ethnic group: Black, Black British, Black Welsh, Caribbean or African",
        "Mixed": "Ethnic group: Mixed or Multiple ethnic groups",
        "White": "Ethnic group: White",
        "Other": "Ethnic group: Other ethnic group",
    }
    eth |= {names[g]: areas[g] for g in ETHNIC_GROUPS}
    nomis(eth).to_csv(folder / "census2021-ts021-lsoa-synthetic.csv", index=False)
    age = {"Age: Total": areas["population"]}
    age |= {
        f"Age: Aged {g.replace('-', ' to ').replace('+', ' years and over')}"
        + ("" if g.endswith("+") else " years"): areas[g]
        for g in AGE_GROUPS
    }
    nomis(age).to_csv(folder / "census2021-age6-lsoa-synthetic.csv", index=False)
    sex = {
        "Sex: All persons": areas["population"],
        "Sex: Female": areas["Female"],
        "Sex: Male": areas["Male"],
    }
    nomis(sex).to_csv(folder / "census2021-ts008-lsoa-synthetic.csv", index=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args(argv)
    areas, extract = build(args.rows, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "long_covid_service_extract"
    if args.format == "parquet":
        extract.to_parquet(args.out / f"{name}.parquet", index=False)
    else:
        extract.to_csv(args.out / f"{name}.csv", index=False)
    write_reference(areas, args.out / "reference")
    print(f"Wrote {len(extract):,} synthetic referrals and reference files to {args.out}")


if __name__ == "__main__":
    main()
