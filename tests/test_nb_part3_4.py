"""The Part 3 and Part 4 notebooks run, and their headline figures are right.

Each notebook is the one the shared sample workbook ran under papermill (the
``sample_folder`` fixture; the book build runs them again, standalone). The figures it glues are checked against an independent computation done here with
plain pandas (and textstat for reading ages), straight from the raw sample files rather
than through ``equity_helpers``: the extract is read as text and the loader's exclusions
are mirrored by hand. Intervals are checked with a second method (Wald, the normal
approximation) with a loose tolerance, since the notebooks use Newcombe and MOVER.

The notebooks must also cope with a config that lacks an optional input: no change date,
no folders of letters, no pathway columns.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import textstat
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
CONFIG = SAMPLE / "sample_service.yml"
NOTEBOOKS = ["pathway", "readability", "evaluation", "summary-and-plan"]
CHANGE_DATE = pd.Timestamp("2024-04-01")
Z95 = 1.959963984540054
THRESHOLD = 7  # counts of 1 to 7 are hidden in the sample's rule
BROAD = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    **dict.fromkeys("RS", "Other"),
    "Z": "Not stated",
    "99": "Not known",
    "": "Not known",
}
AGE_GROUPS = ["0-15", "16-24", "25-34", "35-49", "50-64", "65+"]
UNKNOWN = {"Not known", "Not stated", "Invalid", "Unknown"}
YES_NO = {
    "carer": "Carer",
    "pregnancy": "Pregnant",
    "armed_forces": "Armed Forces",
    "disability": "Disability",
    "interpreter_needed": "Interpreter Required",
    "learning_disability": "Learning Disability",
    "smi": "SMI",
}
CATEGORIES = {
    "religion": "Religion",
    "sexual_orientation": "Sexual Orientation",
    "marital_status": "Marital Status",
}
#: A word each field's group is named by in the suggested focus.
FIELD_WORDS = {
    "ethnic_group": "ethnic group",
    "imd_quintile": "IMD quintile",
    "age_group": "aged",
    "sex_label": "recorded as",
    "religion": "religion",
    "sexual_orientation": "sexual orientation",
    "marital_status": "marital status",
    "carer": "carer",
    "pregnancy": "pregnant",
    "armed_forces": "armed forces",
    "disability": "disab",
    "interpreter_needed": "interpreter",
    "learning_disability": "learning disability",
    "smi": "mental illness",
}
#: Columns of the exported tables that hold counts of people or appointments.
COUNT_COLUMNS = {"Referred", "Accepted", "First seen", "Completed", "Number",
                 "Appointments offered", "Missed"}  # fmt: skip
IMD_DECILE_COLUMN = (
    "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)"
)


# ----------------------------------------------------------------------------- independent data


def _hidden(count: float) -> bool:
    return 1 <= count <= THRESHOLD


def _dates(values: pd.Series) -> pd.Series:
    out = pd.to_datetime(values, format="%d/%m/%Y", errors="coerce")
    return out.fillna(pd.to_datetime(values, format="%Y-%m-%d", errors="coerce"))


@pytest.fixture(scope="module")
def cfg() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def referrals(cfg: dict) -> pd.DataFrame:
    """The sample extract with the loader's exclusions applied by hand, one row a referral."""
    raw = pd.read_csv(SAMPLE / cfg["extract"]["path"], dtype=str, keep_default_na=False)
    raw = raw.apply(lambda s: s.str.strip())
    date = _dates(raw["Date Referral Received"])
    start, end = pd.Timestamp(cfg["period"]["start"]), pd.Timestamp(cfg["period"]["end"])
    keep = (
        raw["Referral Ref"].ne("")
        & date.notna()
        & (date <= pd.Timestamp.today().normalize())
        & (date >= start)
        & (date <= end)
    )
    raw, date = raw[keep], date[keep]
    df = pd.DataFrame({"referral_date": date}, index=raw.index)

    offered, attended, dna = (
        pd.to_numeric(raw[c], errors="coerce")
        for c in ("Appts Offered", "Appts Attended", "Appts DNA")
    )
    bad = (attended + dna > offered) | (offered < 0) | (attended < 0) | (dna < 0)
    df["offered"] = offered.mask(bad)  # rows whose counts do not add up have no counts
    df["dna"] = dna.mask(bad)

    imd = pd.read_csv(
        SAMPLE / "reference" / "imd2025_file7_synthetic.csv", dtype=str, encoding="utf-8-sig"
    )
    decile = dict(
        zip(imd["LSOA code (2021)"].str.strip(), imd[IMD_DECILE_COLUMN].astype(int), strict=True)
    )
    df["imd_decile"] = raw["LSOA"].str.upper().map(decile)
    df["imd_quintile"] = ((df["imd_decile"] + 1) // 2).map(
        lambda q: "Not known" if pd.isna(q) else str(int(q))
    )
    df["ethnic_group"] = raw["Ethnic Category"].str.upper().map(BROAD).fillna("Invalid")
    age = pd.to_numeric(raw["Age at Referral"], errors="coerce")
    age = age.where((age >= 0) & (age <= 120))
    groups = pd.cut(age, [-0.5, 15.5, 24.5, 34.5, 49.5, 64.5, np.inf], labels=AGE_GROUPS)
    df["age_group"] = groups.astype("object").fillna("Unknown")
    sexes = {"1": "Male", "2": "Female", "9": "Indeterminate", "X": "Not known"}
    df["sex_label"] = raw["Gender"].str.upper().map(sexes).fillna("Invalid")
    for field, column in YES_NO.items():
        df[field] = raw[column].str.upper().map({"Y": "Yes", "N": "No", "": "Not known"})
    for field, column in CATEGORIES.items():
        df[field] = raw[column].replace("", "Not known")

    reason = raw["Discharge Reason"]
    df["accepted"] = raw["Referral Accepted"].str.upper().map({"Y": "Yes", "N": "No"})
    df["closed"] = reason.ne("")
    df["completed"] = reason.eq("Completed")
    df["dropped_out"] = reason.isin(["Disengaged", "Discharged after DNA"])
    first = _dates(raw["First Contact Date"])
    df["first_seen"] = first.notna() & (first >= date)  # a contact before referral is dropped
    return df


def _measure(df: pd.DataFrame, name: str) -> tuple[pd.Series, pd.Series]:
    """Numerator and denominator of a measure, one value per referral counted."""
    if name == "dna_rate":
        d = df[df["offered"].notna()]
        return d["dna"], d["offered"]
    if name == "acceptance_rate":
        d = df[df["accepted"].notna()]
        return d["accepted"].eq("Yes").astype(int), pd.Series(1, index=d.index)
    d = df[df["closed"] & df["accepted"].eq("Yes")]
    event = "dropped_out" if name == "drop_out_rate" else "completed"
    return d[event].astype(int), pd.Series(1, index=d.index)


def _wald_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """Each group against the other named groups, with a Wald interval: every measure and field."""
    rows = []
    for name in ("dna_rate", "drop_out_rate", "completion_rate", "acceptance_rate"):
        x, n = _measure(df, name)
        for field in (
            "ethnic_group",
            "imd_quintile",
            "age_group",
            "sex_label",
            *CATEGORIES,
            *YES_NO,
        ):
            sums = (
                pd.DataFrame({"x": x, "n": n, "g": df.loc[x.index, field], "people": 1})
                .groupby("g")
                .sum()
            )
            sums = sums[~sums.index.isin(UNKNOWN)]
            for group, r in sums.iterrows():
                rx, rn = sums["x"].sum() - r["x"], sums["n"].sum() - r["n"]
                if r["n"] == 0 or rn == 0:
                    continue
                p1, p2 = r["x"] / r["n"], rx / rn
                se = math.sqrt(p1 * (1 - p1) / r["n"] + p2 * (1 - p2) / rn)
                shown = not any(_hidden(v) for v in (r["x"], r["n"], rx, rn))
                worse = p1 > p2 if name in ("dna_rate", "drop_out_rate") else p1 < p2
                lo, hi = _newcombe(r["x"], r["n"], rx, rn)
                rows.append({"measure": name, "field": field, "group": group,
                             "pct": 100 * p1, "rest": 100 * p2, "diff": 100 * (p1 - p2),
                             "credible": abs(p1 - p2) > Z95 * se, "shown": shown, "worse": worse,
                             "people": r["people"], "nearest": 100 * min(abs(lo), abs(hi)),
                             "newcombe_credible": lo > 0 or hi < 0})  # fmt: skip
    out = pd.DataFrame(rows)
    return out.iloc[np.argsort(-out["diff"].abs().to_numpy(), kind="stable")]


def _wilson(x: float, n: float) -> tuple[float, float]:
    centre, spread = 2 * x + Z95**2, Z95 * math.sqrt(Z95**2 + 4 * x * (1 - x / n))
    lower = 0.0 if x == 0 else (centre - spread) / (2 * (n + Z95**2))
    upper = 1.0 if x == n else (centre + spread) / (2 * (n + Z95**2))
    return lower, upper


def _newcombe(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    """Limits of the difference of two proportions, Newcombe's hybrid score method (10)."""
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = _wilson(x1, n1), _wilson(x2, n2)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def _reading_age(text: str) -> int:
    """Approximate UK reading age with textstat's own counters and the Flesch-Kincaid formula.

    Each line is a unit (headings, address lines and bullets end a sentence), as a reader
    sees it; a point between digits (10.30am) does not end a sentence.
    """
    units = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+", "", line).strip()
        if not line:
            continue
        line = re.sub(r"(?<=\d)\.(?=\d)", ",", line)
        units.append(line if re.search(r"[.!?:;]$", line) else line + ".")
    body = "\n".join(units)
    words, sentences = textstat.lexicon_count(body), textstat.sentence_count(body)
    grade = 0.39 * words / sentences + 11.8 * textstat.syllable_count(body) / words - 15.59
    return round(grade + 5)


def _texts(nb) -> str:
    """Every output of an executed notebook as one string."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(
                str(v) for k, v in out.get("data", {}).items() if not k.startswith("image/")
            )
            parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def _table_cells(text: str):
    """(column title, cell text) for every cell of every table shown (pandas Styler html)."""
    for table in re.findall(r"<table.*?</table>", text, flags=re.S):
        titles = re.findall(r"<th[^>]*col_heading level0 col(\d+)[^>]*>(.*?)</th>", table, re.S)
        titles = {int(k): v.strip() for k, v in titles}
        for k, value in re.findall(
            r'<td[^>]*class="data row\d+ col(\d+)"[^>]*>(.*?)</td>', table, re.S
        ):
            yield titles.get(int(k), ""), value.strip()


def _check_clean(nb) -> str:
    text = _texts(nb)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    assert "Traceback" not in text
    return text


def _config_without(tmp_path: Path, drop) -> Path:
    """A copy of the sample config with absolute paths, less what ``drop`` removes."""
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw["extract"]["path"] = str(SAMPLE / raw["extract"]["path"])
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        raw["reference"][key] = str(SAMPLE / raw["reference"][key])
    for key in ("before", "after"):
        raw["readability"][key] = str(SAMPLE / raw["readability"][key])
    drop(raw)
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _run(run_notebook, name: str):
    """The notebook as the shared sample workbook ran it (its tables are the workbook's)."""
    return run_notebook(name)


# ----------------------------------------------------------------------------- every notebook


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_cleanly_and_shows_nothing_private(run_notebook, sample_folder, name):
    nb, glued = _run(run_notebook, name)
    text = _check_clean(nb)
    assert glued, "the notebook glued nothing"
    # No identifier, raw row or raw count column reaches the output.
    for private in ("Synthetic Patient", "ZZ99", "LC10", ">_x<", ">_n<"):
        assert private not in text
    # Shown counts are never 1 to 7 (readability's tables count words, not people).
    small = {str(k) for k in range(1, 8)}
    for column, value in _table_cells(text):
        assert not (column in COUNT_COLUMNS and value in small), (column, value)
    tables = sorted((sample_folder / "tables").glob("*.csv"))
    assert tables, "the sample workbook exported no tables"
    for table in tables:
        assert "Counts of 1 to 7" in table.read_text(encoding="utf-8")
        counts = pd.read_csv(table, comment="#", dtype=str)
        for column in set(counts.columns) & COUNT_COLUMNS:
            assert not counts[column].str.strip().isin(small).any(), (table.name, column)


# ----------------------------------------------------------------------------- Step 9


@pytest.mark.slow
def test_pathway_worst_group_matches_plain_pandas(run_notebook, referrals):
    _, glued = _run(run_notebook, "pathway")
    cutoff = referrals["referral_date"].max() - pd.Timedelta(days=183)
    d = referrals[referrals["referral_date"] <= cutoff]
    found = []
    for field, title in (("imd_quintile", "IMD quintile"), ("ethnic_group", "Ethnic group"),
                         ("age_group", "Age group")):  # fmt: skip
        for group, sub in d.groupby(field):
            done = int(sub["completed"].sum())
            if group in UNKNOWN or len(sub) < 30 or _hidden(done):
                continue
            name = f"{title} {group}" if group.isdigit() else f"{title}: {group}"
            name += {"1": " (most deprived)", "5": " (least deprived)"}.get(group, "")
            stages = [
                len(sub),
                int(sub["accepted"].eq("Yes").sum()),
                int(sub["first_seen"].sum()),
                done,
            ]
            found.append((100 * done / len(sub), name, stages))
    worst, best = min(found), max(found)
    assert glued["pathway_worst_group"] == worst[1]
    assert glued["pathway_worst_completion_pct"] == pytest.approx(worst[0], abs=0.051)
    assert glued["pathway_best_completion_pct"] == pytest.approx(best[0], abs=0.051)
    names = ["Referred", "Accepted", "First seen", "Completed"]
    steps = zip(names, names[1:], worst[2], worst[2][1:], strict=False)
    losses = {f"{a} → {b}": 1 - after / before for a, b, before, after in steps}
    assert glued["pathway_biggest_loss_step"] == max(losses, key=losses.get)


@pytest.mark.slow
def test_pathway_without_its_columns_says_which_it_needs(run_notebook, tmp_path):
    def drop(raw):
        for column in ("accepted", "first_appointment_date", "discharge_reason"):
            raw["columns"].pop(column)

    nb, glued = run_notebook("pathway", config_path=str(_config_without(tmp_path, drop)))
    text = _check_clean(nb)
    assert "This step needs more columns" in text
    for column in ("accepted", "first_appointment_date", "discharge_reason"):
        assert f"`{column}`" in text
    assert glued["pathway_worst_group"] == "not available"


# ----------------------------------------------------------------------------- Step 10


@pytest.mark.slow
def test_reading_ages_match_textstat(run_notebook, cfg):
    nb, glued = _run(run_notebook, "readability")
    ages = {}
    for side in ("before", "after"):
        folder = SAMPLE / cfg["readability"][side]
        ages[side] = [
            _reading_age(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.txt"))
        ]
    assert glued["n_documents"] == len(ages["before"]) == 2
    assert glued["reading_age_before"] == pytest.approx(np.mean(ages["before"]), abs=1.0)
    assert glued["reading_age_after"] == pytest.approx(np.mean(ages["after"]), abs=1.0)
    # The sample mirrors the case study: from 17 to 10.
    assert (glued["reading_age_before"], glued["reading_age_after"]) == (17.0, 10.0)
    text = _texts(nb)
    assert "approximation" in "".join(c.source for c in nb.cells)
    assert "went from an average reading age of 17.0 to 10.0" in text


@pytest.mark.slow
def test_readability_without_folders_says_how_to_add_them(run_notebook, tmp_path):
    nb, glued = run_notebook(
        "readability",
        config_path=str(_config_without(tmp_path, lambda raw: raw.pop("readability"))),
    )
    text = _check_clean(nb)
    assert "There are no letters to score yet" in text
    assert "readability:\n  before:" in text
    assert glued["n_documents"] == 0
    assert "reading_age_before" not in glued and "reading_age_after" not in glued


# ----------------------------------------------------------------------------- Steps 11 and 12


@pytest.mark.slow
def test_evaluation_gap_matches_plain_pandas(run_notebook, referrals):
    nb, glued = _run(run_notebook, "evaluation")
    d = referrals[referrals["offered"].notna()]
    focus = d["imd_decile"].isin([1, 2])  # Core20; an unknown area counts as everyone else
    after = d["referral_date"] >= CHANGE_DATE
    p, n = {}, {}
    for period, pm in (("before", ~after), ("after", after)):
        for who, fm in (("focus", focus), ("rest", ~focus)):
            sub = d[pm & fm]
            # From the counts as published (nearest 5, halves up), like the table beside it.
            x, m = (5 * math.floor(v / 5 + 0.5) for v in (sub["dna"].sum(), sub["offered"].sum()))
            p[period, who], n[period, who] = x / m, m
    gap_before = 100 * (p["before", "focus"] - p["before", "rest"])
    gap_after = 100 * (p["after", "focus"] - p["after", "rest"])
    change = gap_after - gap_before
    se = 100 * math.sqrt(sum(p[k] * (1 - p[k]) / n[k] for k in p))
    assert glued["gap_before"] == pytest.approx(gap_before, abs=0.051)
    assert glued["gap_after"] == pytest.approx(gap_after, abs=0.051)
    assert glued["gap_change"] == pytest.approx(change, abs=0.051)
    assert glued["gap_change_lower"] == pytest.approx(change - Z95 * se, abs=1.0)
    assert glued["gap_change_upper"] == pytest.approx(change + Z95 * se, abs=1.0)
    excludes_zero = abs(change) > Z95 * se
    expected = (
        ("narrowed" if abs(gap_after) < abs(gap_before) else "widened")
        if excludes_zero
        else ("no clear change")
    )
    assert glued["gap_verdict"] == expected == "narrowed"
    words = {"common cause", "special cause improvement", "special cause concern",
             "special cause (neutral)"}  # fmt: skip
    assert glued["spc_icon_overall"] in words
    assert glued["spc_icon_focus"] in words
    # The sample's focus group improves after the change: the chart flags it.
    assert glued["spc_focus_improvement_months"] >= 7
    text = _texts(nb)
    assert f"the gap was **{glued['gap_before']:.1f} percentage points**" in text
    assert "That interval does not include 0" in text


@pytest.mark.slow
def test_evaluation_without_change_date_shows_only_spc(run_notebook, tmp_path):
    def drop(raw):
        raw["evaluation"].pop("change_date")

    nb, glued = run_notebook("evaluation", config_path=str(_config_without(tmp_path, drop)))
    text = _check_clean(nb)
    assert "Your config has no `evaluation.change_date`" in text
    assert glued["gap_verdict"].startswith("not measured")
    assert not {"gap_before", "gap_after", "gap_change"} & set(glued)
    assert glued["spc_icon_overall"] != "not available"
    charts = [
        o for c in nb.cells for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {})
    ]
    assert len(charts) == 4  # the gap, the measure, the focus group and referrals
    assert "not worked out again, because no change date is set" in glued["gap_spc_limits"]


# ----------------------------------------------------------------------------- Parts 1 to 4


@pytest.mark.slow
def test_summary_focus_matches_plain_pandas(run_notebook, referrals):
    nb, glued = _run(run_notebook, "summary-and-plan")
    gaps = _wald_gaps(referrals)
    chosen = gaps[gaps["credible"] & gaps["shown"] & gaps["worse"]]
    # The focus weighs strength of evidence and people affected: the end of the gap's 95%
    # interval nearest 0 (Newcombe) times the people in the group, largest first.
    ranked = gaps[gaps["newcombe_credible"] & gaps["shown"] & gaps["worse"]]
    top = ranked.loc[(ranked["nearest"] * ranked["people"]).idxmax()]
    text = glued["top_focus_text"]
    assert FIELD_WORDS[top["field"]].lower() in text.lower()
    shown = [float(v) for v in re.findall(r"(\d+\.\d)%", text)]
    assert shown[0] == pytest.approx(top["pct"], abs=0.051)
    assert shown[1] == pytest.approx(top["rest"], abs=0.051)
    size = float(re.search(r"a gap of (\d+\.\d) percentage points", text).group(1))
    assert size == pytest.approx(abs(top["diff"]), abs=0.051)
    # Newcombe and Wald can disagree about gaps near the edge of credibility.
    assert abs(glued["n_credible_gaps_all"] - len(chosen)) <= 3
    run = pd.Timestamp.today().normalize()
    for days in (30, 60, 90):
        expected = (run + pd.Timedelta(days=days)).strftime("%d %B %Y")
        assert glued[f"review_{days}"] == expected
        assert expected in _texts(nb)
