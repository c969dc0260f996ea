"""Every analytic step's ``run(service)``, called directly (no notebooks), on the sample and
on extracts that real services produce: only the required columns, no home areas, no
``accepted`` column, a single group, everyone in one home area, a 400-referral service, an
80-referral one and an extract whose ethnicity values are all invalid.

Headline figures are checked against plain pandas on the raw sample file, and every step
must say in words why a view it cannot show is missing, never print "nan" or crash.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from equity_helpers import open_service, steps
from equity_helpers.codes import ETHNIC_CATEGORIES
from equity_helpers.notebooks import NOTEBOOK_DIR
from equity_helpers.privacy import published_percentage
from equity_helpers.steps import (
    access_and_outcome_gaps,
    deprivation_and_core20,
    evaluation,
    pathway,
    readability,
    summary_and_plan,
    who_uses_the_service,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
CONFIG = SAMPLE / "sample_service.yml"
Z95 = 1.959963984540054
BAD_WORDS = re.compile(r"\b(nan|None|inf|NaN|<NA>)\b")
REQUIRED = ("referral_id", "referral_date", "age", "sex", "ethnicity")


# ----------------------------------------------------------------------------- services


def _raw() -> tuple[dict, pd.DataFrame]:
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    extract = pd.read_csv(SAMPLE / cfg["extract"]["path"], dtype=str, keep_default_na=False)
    return cfg, extract


def _service(folder: Path, change, rows: int | None = None) -> object:
    """The sample config and extract, changed by ``change(cfg, extract)``, opened as a service.

    ``rows`` keeps only the extract's first rows, which keeps these tests fast.
    """
    cfg, extract = _raw()
    cfg, extract = change(cfg, extract if rows is None else extract.head(rows))
    extract.to_csv(folder / "extract.csv", index=False)
    cfg["extract"]["path"] = str(folder / "extract.csv")
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        cfg["reference"][key] = str(SAMPLE / cfg["reference"][key])
    for key in ("before", "after"):
        cfg["readability"][key] = str(SAMPLE / cfg["readability"][key])
    path = folder / "service.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return open_service(path)


def _only_required(cfg, extract):
    keep = {k: v for k, v in cfg["columns"].items() if k in REQUIRED}
    cfg["columns"] = keep
    cfg["values"] = {}
    return cfg, extract[list(keep.values())]


def _without(*columns):
    def change(cfg, extract):
        names = [cfg["columns"].pop(c) for c in columns]
        return cfg, extract.drop(columns=names)

    return change


def _one_group(cfg, extract):
    extract["Ethnic Category"] = "A"
    return cfg, extract


def _one_area(cfg, extract):
    extract["LSOA"] = "E01900109"  # a catchment area in the synthetic IMD file
    return cfg, extract


def _first_400(cfg, extract):
    date = pd.to_datetime(extract["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    in_year = extract[(date >= "2023-04-01") & (date <= "2024-03-31")]
    order = date[in_year.index].sort_values(kind="stable").index
    return cfg, extract.loc[order[:400]]


def _first_80(cfg, extract):
    """A tiny service: the first 80 referrals of one year."""
    cfg, extract = _first_400(cfg, extract)
    return cfg, extract.head(80)


def _ethnicity_invalid(cfg, extract):
    extract["Ethnic Category"] = "Q9"
    return cfg, extract


EDGES = {
    "only-required-columns": _only_required,
    "no-home-areas": _without("lsoa_code"),
    "no-accepted": _without("accepted"),
    "one-ethnic-group": _one_group,
    "one-home-area": _one_area,
    "400-referrals": _first_400,
    "80-referrals": _first_80,
    "ethnicity-all-invalid": _ethnicity_invalid,
}


@pytest.fixture(scope="module")
def sample(sample_service):
    return sample_service


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    made = {}

    def get(name):
        if name not in made:
            rows = None if name in ("400-referrals", "80-referrals") else 2500
            made[name] = _service(tmp_path_factory.mktemp(name), EDGES[name], rows)
        return made[name]

    return get


def _show_names(step_name: str) -> set[str]:
    """The views a notebook shows with ``result.show("...")``."""
    text = (NOTEBOOK_DIR / f"{step_name}.md").read_text(encoding="utf-8")
    return set(re.findall(r'result\.show\("([^"]+)"\)', text))


def _glue_names(step_name: str) -> set[str]:
    text = (NOTEBOOK_DIR / f"{step_name}.md").read_text(encoding="utf-8")
    return {m.split(":")[0] for m in re.findall(r"\{glue:text\}`([^`]+)`", text)}


def check_result(result, step_name: str) -> None:
    """What every result must hold, whatever the extract."""
    # Every view the notebook shows is there, or a note says why it is not.
    for name in _show_names(step_name) - {"notice", "summary", "case_study", "gap"}:
        views = (
            {k for k, t in result.tables.items() if t.shown}
            | set(result.charts)
            | set(result.lists)
            | set(result.texts)
        )
        assert name in views or result.notes.get(name), f"{step_name}: {name} is missing silently"
    # Every value the prose quotes is glued.
    assert _glue_names(step_name) <= set(result.values), _glue_names(step_name) - set(result.values)
    # No missing value or Python word reaches a sentence.
    for text in result.words():
        assert not BAD_WORDS.search(text), f"{step_name}: {text!r}"
    assert result.findings, f"{step_name} found nothing to say"
    # A headline figure is a number, words, or None with the reason it is not shown: never
    # NaN or infinity (read back from a notebook as the text "nan" or "inf").
    for key in steps.STEPS[step_name].HEADLINES:
        if key not in result.values:
            continue
        value = result.values[key]
        if value is None:
            why = result.values.get(f"{key}_why")
            assert isinstance(why, str) and why.strip(), f"{step_name}: {key} says not why"
            assert not BAD_WORDS.search(why), (step_name, key, why)
        elif isinstance(value, str):
            assert value.strip() and not BAD_WORDS.search(value), (step_name, key, value)
        else:
            assert math.isfinite(value), (step_name, key, value)
    # Shown counts are controlled: none of 1 to 7 in a count column (the row account and the
    # counts of areas are exact on purpose: they count rows of the file and published areas).
    for name, table in result.tables.items():
        if name in ("row_account", "local_authorities"):
            continue
        for column in table.counts:
            values = pd.to_numeric(table.frame[column], errors="coerce").dropna()
            assert not values.between(1, 7).any(), (step_name, column)


# ----------------------------------------------------------------------------- the sample


@pytest.mark.parametrize("step_name", list(steps.STEPS))
def test_every_step_on_the_sample(sample, step_name):
    result = steps.STEPS[step_name].run(sample)
    check_result(result, step_name)
    assert not result.notes, result.notes  # the sample has every column the steps need
    for key in steps.STEPS[step_name].HEADLINES:
        assert key in result.values, key


def test_run_is_cached_per_service(sample):
    assert access_and_outcome_gaps.run(sample) is access_and_outcome_gaps.run(sample)


def test_headlines_are_declared_once_and_read_by_the_runner():
    from equity_helpers.workbook import HEADLINES

    keys = [k for k, _ in HEADLINES]
    assert len(keys) == len(set(keys))
    declared = [k for m in steps.STEPS.values() for k in m.HEADLINES]
    assert keys == declared
    assert {"rows_used", "core20_ratio", "top_focus_text", "dna_sii"} <= set(keys)


@pytest.fixture(scope="module")
def referrals() -> pd.DataFrame:
    """The sample with the loader's exclusions mirrored by hand (plain pandas)."""
    cfg, raw = _raw()
    date = pd.to_datetime(raw["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    date = date.fillna(pd.to_datetime(raw["Date Referral Received"], errors="coerce"))
    keep = (
        raw["Referral Ref"].ne("")
        & date.between(pd.Timestamp(cfg["period"]["start"]), pd.Timestamp(cfg["period"]["end"]))
        & (date <= pd.Timestamp.today())
    )
    raw = raw[keep]
    offered, attended, dna = (
        pd.to_numeric(raw[c], errors="coerce")
        for c in ("Appts Offered", "Appts Attended", "Appts DNA")
    )
    bad = (attended + dna > offered) | (offered < 0) | (attended < 0) | (dna < 0)
    imd = pd.read_csv(SAMPLE / "reference" / "imd2025_file7_synthetic.csv", dtype=str)
    decile_col = [c for c in imd.columns if c.startswith("Index of Multiple Deprivation (IMD) Dec")]
    lad = imd["Local Authority District code (2024)"].str.strip()
    imd = imd[lad.isin(cfg["catchment"]["local_authorities"])]
    decile = dict(
        zip(imd["LSOA code (2021)"].str.strip(), imd[decile_col[0]].astype(int), strict=True)
    )
    return pd.DataFrame(
        {
            "offered": offered.mask(bad),
            "dna": dna.mask(bad),
            "decile": raw["LSOA"].str.upper().map(decile),
            "ethnicity": raw["Ethnic Category"].str.upper(),
        }
    )


def test_headline_figures_match_plain_pandas(sample, referrals):
    result = access_and_outcome_gaps.run(sample)
    gaps = result.values
    valid = referrals.dropna(subset=["offered", "dna"])
    # The overall rate is across the groups shown: the few people with an ethnic code not
    # on the NHS list are too few to show, so they are left out. It is worked out from the
    # published (rounded) counts, like every other percentage.
    shown = result.charts["dna_ethnic_group"].data.dropna(subset=["pct"])
    assert "Invalid" not in set(shown["group"]) and len(shown) == 7
    code = valid["ethnicity"].fillna("").str.strip()
    valid = valid[code.isin(list(ETHNIC_CATEGORIES)) | code.eq("")]
    dna, offered = (int(valid[c].sum()) for c in ("dna", "offered"))
    assert gaps["dna_overall_pct"] == published_percentage(dna, offered, sample.rule)
    assert gaps["dna_overall_pct"] == pytest.approx(100 * dna / offered, abs=0.1)
    inside = referrals.dropna(subset=["decile"])
    x, n = int(inside["decile"].le(2).sum()), len(inside)
    ethnic = pd.read_csv(SAMPLE / "reference" / "census2021-ts021-lsoa-synthetic.csv")
    imd = pd.read_csv(SAMPLE / "reference" / "imd2025_file7_synthetic.csv", dtype=str)
    decile_col = [c for c in imd.columns if c.startswith("Index of Multiple Deprivation (IMD) Dec")]
    cfg, _ = _raw()
    imd = imd[
        imd["Local Authority District code (2024)"].isin(cfg["catchment"]["local_authorities"])
    ]
    pop = ethnic.merge(imd, left_on="geography code", right_on="LSOA code (2021)")
    total = pop["Ethnic group: Total: All usual residents"]
    px, pn = total[pop[decile_col[0]].astype(int) <= 2].sum(), total.sum()
    # The ratio and the share are worked out from the published counts (rounded to the
    # nearest 5, halves up), so that they cannot undo the rounding.
    x, n = (5 * math.floor(v / 5 + 0.5) for v in (x, n))
    ratio = (x / n) / (px / pn)
    se = math.sqrt(1 / x - 1 / n + 1 / px - 1 / pn)
    dep = deprivation_and_core20.run(sample).values
    assert dep["core20_ratio"] == pytest.approx(ratio, rel=1e-9)
    assert dep["core20_ratio_lower"] == pytest.approx(ratio * math.exp(-Z95 * se), rel=1e-9)
    assert dep["core20_share_referrals"] == pytest.approx(100 * x / n, abs=0.051)
    # One Core20 ratio on every page: the who-uses page glues the same number.
    assert who_uses_the_service.run(sample).values["core20_ratio"] == dep["core20_ratio"]


def test_summary_reports_the_gaps_page_count(sample):
    gaps = access_and_outcome_gaps.run(sample)
    summary = summary_and_plan.run(sample)
    assert (
        summary.values["n_credible_gaps"]
        == gaps.values["n_credible_gaps"]
        == len(gaps.tables["gaps"].frame)
    )
    worse = int(gaps.data["gaps"]["worse off"].sum())
    assert summary.values["n_credible_gaps_all"] == gaps.values["n_credible_gaps_worse"] == worse
    assert len(summary.tables["largest_gaps"].frame) == min(10, worse)


def test_suggested_focus_weighs_evidence_and_people(sample):
    """The focus is the gap whose interval end nearest 0, times the group's people, is largest."""
    gaps = access_and_outcome_gaps.run(sample).data["gaps"]
    worse = gaps[gaps["worse off"]]
    ends = zip(worse["lower"], worse["upper"], worse["_people"], strict=True)
    score = [min(abs(lo), abs(hi)) * people for lo, hi, people in ends]
    best = worse.iloc[max(range(len(score)), key=score.__getitem__)]
    values = summary_and_plan.run(sample).values
    assert f"{best['pct']:.1f}%" in values["top_focus_text"]
    assert f"{abs(best['difference']):.1f} percentage points" in values["top_focus_text"]
    assert "strength of evidence and people affected" in values["focus_reason"]
    # On the sample the largest gap (learning disability) has a wide interval; it is not chosen.
    largest = worse.loc[worse["difference"].abs().idxmax()]
    assert largest.name != best.name
    assert "learning disability" in values["focus_reason"]
    # The sample's evaluation follows Core20 missed appointments: the summary says how they relate.
    assert (best["measure"], best["field"], best["group"]) == ("dna_rate", "imd_quintile", "1")
    assert "also the evaluation's focus" in values["focus_and_evaluation"]


def test_summary_says_why_the_evaluation_focus_differs(tmp_path):
    def change(cfg, extract):
        cfg["evaluation"].update(focus_field="ethnic_group", focus_group="Black")
        return cfg, extract

    values = summary_and_plan.run(_service(tmp_path, change, rows=2500)).values
    text = values["focus_and_evaluation"]
    assert "follows a different focus" in text and "Black ethnic group" in text
    assert "Both matter" in text


# ----------------------------------------------------------------------------- edge extracts


@pytest.mark.parametrize("edge_name", list(EDGES))
@pytest.mark.parametrize("step_name", list(steps.STEPS))
def test_every_step_on_edge_extracts(edge, edge_name, step_name):
    result = steps.STEPS[step_name].run(edge(edge_name))
    check_result(result, step_name)


def test_without_home_areas_each_view_says_why(edge):
    service = edge("no-home-areas")
    who = who_uses_the_service.run(service)
    assert "home area (LSOA) codes" in who.notes["imd_quintile"]
    assert {"ethnic_group", "age_group", "sex_label"} <= set(who.charts)
    gaps = access_and_outcome_gaps.run(service)
    for view in ("dna_imd_quintile", "gradient", "funnel", "two_way"):
        assert "home area (LSOA) codes" in gaps.notes[view]
    deprivation = deprivation_and_core20.run(service)
    assert deprivation.values["core20_ratio"] is None
    assert "home area (LSOA) codes" in deprivation.values["core20_ratio_why"]


def test_areas_that_match_no_deprivation_data(tmp_path):
    """If no home area is in the IMD file, the deprivation views say so instead of failing."""
    imd = tmp_path / "imd.csv"
    imd.write_text(
        "lsoa21cd,lad24cd,imd_rank,imd_decile\n"
        + "".join(f"E0100000{i},E06000015,{i * 100},{i}\n" for i in range(1, 10))
    )
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    cfg["extract"]["path"] = str(SAMPLE / cfg["extract"]["path"])
    cfg["reference"] = {"imd_edition": 2025, "imd_path": str(imd)}
    cfg.pop("readability")
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    service = open_service(str(path))
    for name in ("deprivation-and-core20", "access-and-outcome-gaps", "evaluation"):
        check_result(steps.STEPS[name].run(service), name)
    deprivation = deprivation_and_core20.run(service)
    assert "home area (LSOA) codes" in deprivation.notes["core20"]
    assert deprivation.values["core20_ratio"] is None
    gaps = access_and_outcome_gaps.run(service)
    assert "home area (LSOA) codes" in gaps.notes["gradient"]
    assert gaps.values["dna_overall_pct"] > 0  # what needs no home area is still measured


def test_ethnicity_all_invalid_still_shows_age_sex_and_deprivation(edge):
    result = who_uses_the_service.run(edge("ethnicity-all-invalid"))
    assert {"age_group", "sex_label", "imd_quintile"} <= set(result.charts)
    assert "ethnic_group" not in result.charts
    assert "No referral has an ethnic category on the NHS list" in result.notes["ethnic_group"]
    assert result.values["eth_compared"] == "0"


def test_without_accepted_the_measures_still_count(edge):
    from equity_helpers import analysis

    data = edge("no-accepted").data
    monthly = analysis.monthly_rate(data, "drop_out_rate")
    assert monthly["_n"].sum() == int(data["closed"].sum())
    assert monthly["_x"].sum() == int(data["dropped_out"].sum())


def test_a_400_referral_service_says_the_pathway_is_too_recent(edge):
    from equity_helpers.steps import pathway

    result = pathway.run(edge("400-referrals"))
    assert "No referral is old enough to follow" in result.texts["notice"]
    assert result.values["pathway_worst_group"] == "not available"


def test_a_change_date_after_every_referral_is_not_called_small_numbers(edge):
    from equity_helpers.steps import evaluation

    # The 400 referrals are all from 2023-24, before the sample's change date.
    result = evaluation.run(edge("400-referrals"))
    assert result.values["gap_verdict"] == "not measured: one period has no one to count"
    assert "no before and after to compare yet" in result.texts["gap"]
    assert "gap_change" not in result.values


def test_only_required_columns_leave_the_optional_views_explained(edge):
    gaps = access_and_outcome_gaps.run(edge("only-required-columns"))
    assert "dna_rate" not in gaps.data.get("measure_tables", {})
    assert gaps.values["n_credible_gaps"] == 0
    assert "appointments" in gaps.notes["dna_ethnic_group"]


def test_a_step_with_nothing_to_work_on_says_so_on_the_front_page(tmp_path):
    """No letters and no change date: the front page says what the steps need, not "ran"."""
    import datetime as dt

    from equity_helpers.workbook.pages import _front_page
    from equity_helpers.workbook.results import StepResult as RunStep

    def change(cfg, extract):
        cfg["evaluation"].pop("change_date", None)
        return cfg, extract

    service = _service(tmp_path, change, rows=400)
    service.cfg.readability_before = service.cfg.readability_after = None
    letters = readability.run(service).values["step_status"]
    assert letters.startswith("not run: needs letters")
    gap = evaluation.run(service).values["step_status"]
    assert "needs a change date (evaluation.change_date)" in gap
    assert "step_status" not in pathway.run(service).values  # a step that ran in full
    ran = [
        RunStep("readability", "Letters", "ok", glued={"step_status": letters}),
        RunStep("evaluation", "Gap", "reused", glued={"step_status": gap}),
        RunStep("pathway", "Pathway", "ok", glued={}),
    ]
    account = {"rows_read": 400, "rows_used": 400, "excluded": {}}
    page = _front_page(service.cfg, {"account": account}, ran, None, {}, dt.date(2026, 12, 2))
    assert "| not run: needs letters to score" in page
    assert "| ran in part: the before-and-after comparison needs a change date" in page
    assert "<steps/pathway>` | ran |" in page


def test_the_front_page_accounts_for_lines_outside_the_table_and_appointments(sample):
    """Titles and footers, and an appointment file's rows, are in the front page's account."""
    import datetime as dt

    from equity_helpers.workbook.pages import _front_page

    meta = {
        "source": "export.xlsx",
        "account": {
            "rows_read": 400,
            "rows_used": 398,
            "excluded": {"VAL001": 2},
            "outside_table": {"2 title lines above the column names": 2},
        },
        "appointments": {
            "source": "appointments.csv",
            "rows_read": 2051,
            "rows_used": 2040,
            "excluded": {"APP002": 7, "APP003": 4},
        },
        "free_text": ["Clinician notes"],
    }
    page = _front_page(sample.cfg, meta, [], None, {}, dt.date(2026, 12, 2))
    account = page[page.index("## Row account") : page.index("## Steps")]
    assert account.index("| Not part of the table: 2 title lines above the column names | 2 |") < (
        account.index("| Rows read from the extract | 400 |")
    )
    assert "| Appointment rows read | 2,051 |" in account
    assert "| Appointments counted | 2,040 |" in account
    # Every appointment row read is accounted for on the page.
    counted = [
        int(n.replace(",", "")) for n in re.findall(r"\| Not counted: [^|]+\| ([\d,]+) \|", account)
    ]
    assert 2040 + sum(counted) == 2051 and len(counted) == 2
    assert "not read: Clinician notes." in account


# ----------------------------------------------------------------------------- columns read


def _same(a, b, where: str = "result") -> None:
    """Two step results hold the same tables, charts, values and words."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
        _same(dict(a.attrs), dict(b.attrs), f"{where}.attrs")
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, obj=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for key in a:
            _same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b), where
        _same(dict(a.__dict__), dict(b.__dict__), where)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, (where, a, b)


@pytest.mark.parametrize("edge_name", ["sample", "no-accepted", "only-required-columns"])
@pytest.mark.parametrize("step_name", list(steps.STEPS))
def test_a_step_reading_only_its_columns_finds_the_same(sample, edge, edge_name, step_name):
    """The workbook runner reads only the columns a step declares: the results must not change.

    A step that came to read a column it does not declare would find less (or fail) here.
    """
    # The service the other tests use reads every column (its results are kept, so each
    # step is worked out on it once); a new one on the same prepared file reads only the
    # declared columns.
    every = sample if edge_name == "sample" else edge(edge_name)
    assert every.columns is None, "the service to compare with reads every column"
    declared = open_service(str(every.cfg.path), every.prepared_path)
    declared.columns = steps.columns_for(step_name, declared.cfg)
    assert declared.columns is not None, "every step names the columns it reads"
    _same(steps.STEPS[step_name].run(every), steps.STEPS[step_name].run(declared), step_name)
    assert set(declared.data.columns) <= set(declared.columns)
    assert len(declared.data.columns) < len(every.data.columns)


def test_a_step_that_needs_no_rows_reads_none(sample):
    """Merging small free-text groups waits for the rows, so the letters step reads none."""
    from equity_helpers.steps.base import protect_labels

    service = open_service(str(sample.cfg.path), sample.prepared_path)
    readability.run(service)
    assert service._data is None
    rows = service.data  # read now, and merged as they are read
    eager = open_service(str(sample.cfg.path), sample.prepared_path)
    raw = eager.data.copy()
    protect_labels(eager)  # the rows already read: merged at once
    merged = 0
    for name in ("religion", "sexual_orientation", "marital_status"):
        pd.testing.assert_series_equal(rows[name], eager.data[name])
        merged += int((rows[name].astype(str) != raw[name].astype(str)).sum())
    assert merged > 0  # the sample has groups too small to name, so merging did something
