"""A second synthetic service shaped differently from the sample, as a real export might be:
other column names, labels instead of codes, an Excel file with a title row above the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sample_data"))
import generate  # noqa: E402

RENAME = {
    "Referral Ref": "Referral Number",
    "Date Referral Received": "Date Referred",
    "Age at Referral": "Age (years)",
    "Gender": "Stated Gender",
    "Ethnic Category": "Ethnic Origin",
    "LSOA": "LSOA 2021",
    "Referral Accepted": "Opted In",
    "First Contact Date": "First Seen Date",
    "Appts Offered": "Appointments Booked",
    "Appts Attended": "Appointments Attended",
    "Appts DNA": "DNAs",
    "Discharge Date": "Date Discharged",
    "Discharge Reason": "Reason For Discharge",
    "C19-YRS Start": "Baseline Score",
    "C19-YRS End": "Final Score",
}
SEX_LABELS = {"1": "Male", "2": "Female", "X": "Unknown", "9": "Indeterminate"}
ETHNIC_LABELS = {
    "A": "White British",
    "B": "White Irish",
    "C": "Any other White background",
    "D": "White and Black Caribbean",
    "E": "White and Black African",
    "F": "White and Asian",
    "G": "Any other mixed background",
    "H": "Indian",
    "J": "Pakistani",
    "K": "Bangladeshi",
    "L": "Any other Asian background",
    "M": "Caribbean",
    "N": "African",
    "P": "Any other Black background",
    "R": "Chinese",
    "S": "Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}


def make_extract(folder: Path, rows: int = 1500, seed: int = 7) -> Path:
    """Write the differently shaped extract as .xlsx and return its path."""
    _, raw = generate.build(rows, seed)
    df = raw[[c for c in RENAME] + ["Religion", "Carer", "Disability"]].rename(columns=RENAME)
    df["Stated Gender"] = df["Stated Gender"].map(SEX_LABELS).fillna("Unknown")
    df["Ethnic Origin"] = df["Ethnic Origin"].map(ETHNIC_LABELS).fillna("Not known")
    df["Opted In"] = df["Opted In"].map({"Y": "Yes", "N": "No"})
    df["Reason For Discharge"] = df["Reason For Discharge"].replace(
        {"Discharged after DNA": "DNA - discharged", "Disengaged": "Self-discharged"}
    )
    # Dates as ISO text, as many systems export them.
    for col in ("Date Referred", "First Seen Date", "Date Discharged"):
        d = pd.to_datetime(df[col], format="%d/%m/%Y", errors="coerce")
        df[col] = d.dt.strftime("%Y-%m-%d").where(d.notna(), df[col])
    path = folder / "community_msk_extract.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame([["Community MSK service: referrals export"]]).to_excel(
            xl, index=False, header=False
        )
        df.to_excel(xl, index=False, startrow=2)
    return path


def write_config(folder: Path, extract: Path) -> Path:
    """A complete config for the second service (what a filled-in `init` config looks like)."""
    ref = ROOT / "sample_data" / "reference"
    cfg = {
        "service": {
            "name": "Community <MSK> Service & Friends (synthetic)",
            "organisation": "Test trust",
        },
        "extract": {"path": str(extract)},
        "columns": {
            "referral_id": "Referral Number",
            "referral_date": "Date Referred",
            "age": "Age (years)",
            "sex": "Stated Gender",
            "ethnicity": "Ethnic Origin",
            "lsoa_code": "LSOA 2021",
            "accepted": "Opted In",
            "first_appointment_date": "First Seen Date",
            "appointments_offered": "Appointments Booked",
            "appointments_attended": "Appointments Attended",
            "appointments_dna": "DNAs",
            "discharge_date": "Date Discharged",
            "discharge_reason": "Reason For Discharge",
            "outcome_start": "Baseline Score",
            "outcome_end": "Final Score",
            "religion": "Religion",
            "carer": "Carer",
            "disability": "Disability",
        },
        "values": {"discharge_reason": {"DNA - discharged": "dna_discharge"}},
        "catchment": {
            "name": "Derby and Derbyshire",
            "local_authorities": ["E06000015"] + [f"E0700003{i}" for i in range(2, 10)],
        },
        "reference": {
            "imd_edition": 2025,
            "imd_path": str(ref / "imd2025_file7_synthetic.csv"),
            "population_ethnicity": str(ref / "census2021-ts021-lsoa-synthetic.csv"),
            "population_age": str(ref / "census2021-age6-lsoa-synthetic.csv"),
            "population_sex": str(ref / "census2021-ts008-lsoa-synthetic.csv"),
        },
        "period": {"start": "2022-04-01", "end": "2025-03-31"},
        "evaluation": {
            "change_date": "2024-04-01",
            "measure": "dna_rate",
            "focus_field": "core20",
            "focus_group": "Core20",
        },
        "outcome": {"name": "MSK-HQ", "higher_is_better": False},
        "disclosure": {"threshold": 7, "rounding": 5},
    }
    path = folder / "community_msk.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
