"""Write the appointments worked example from the sample's own referrals.

Most clinical systems export one row per appointment. This example shows that shape:
``appointments_example/referrals.csv`` holds the first 300 referrals of the sample
extract (without their appointment counts), and ``appointments_example/appointments.csv``
one row per appointment, made from those referrals' own counts, so every figure agrees
with the sample. Run from the repository root:

    .venv/bin/python sample_data/make_appointments.py

Each referral's attended appointments come first, the first on its first contact date,
then the missed ones, then the cancelled ones, a week apart. Attendance is written as
the national codes (5 and 6 attended, 3 and 7 did not attend, 2 and 4 cancelled) and in
words, as systems differ. A referral whose counts do not add up gets no appointments.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "appointments_example"
N_REFERRALS = 300
# The referral file holds the columns the example's config maps, in its order.
REFERRAL_COLUMNS = list(
    yaml.safe_load((FOLDER / "service.yml").read_text(encoding="utf-8"))["columns"].values()
)
STATUS = {
    "attended": ("5", "Attended", "6", "Seen"),
    "missed": ("3", "DNA", "7", "Did not attend"),
    "cancelled": ("2", "Patient cancelled", "4", "Cancelled by provider"),
}


def appointments(referrals: pd.DataFrame) -> pd.DataFrame:
    """One row per appointment, from each referral's offered, attended and DNA counts."""
    out = []
    for r in referrals.itertuples(index=False):
        counts = pd.to_numeric(pd.Series([r.offered, r.attended, r.dna]), errors="coerce").tolist()
        if any(pd.isna(counts)) or counts[1] + counts[2] > counts[0] or min(counts) < 0:
            continue
        offered, attended, dna = (int(c) for c in counts)
        start = pd.to_datetime(r.first or r.received, format="%d/%m/%Y")
        kinds = ["attended"] * attended + ["missed"] * dna
        kinds += ["cancelled"] * (offered - attended - dna)
        for k, kind in enumerate(kinds):
            when = start + pd.Timedelta(days=7 * k, hours=9 + k % 7, minutes=15 * (k % 4))
            out.append((r.ref, when.strftime("%d/%m/%Y %H:%M"), STATUS[kind][k % 4]))
    return pd.DataFrame(out, columns=["Referral Ref", "Appointment Date", "Attendance"])


def build(extract: Path = HERE / "long_covid_service_extract.csv") -> dict[str, pd.DataFrame]:
    """The two files of the example, as tables."""
    sample = pd.read_csv(extract, dtype=str, keep_default_na=False).head(N_REFERRALS)
    counts = sample.rename(
        columns={
            "Referral Ref": "ref",
            "Date Referral Received": "received",
            "First Contact Date": "first",
            "Appts Offered": "offered",
            "Appts Attended": "attended",
            "Appts DNA": "dna",
        }
    )
    counts = counts[counts["ref"].ne("")]
    return {"referrals.csv": sample[REFERRAL_COLUMNS], "appointments.csv": appointments(counts)}


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for name, table in build().items():
        table.to_csv(FOLDER / name, index=False)


if __name__ == "__main__":
    main()
