"""The three journeys the playbook offers, followed as a new user would.

* The analyst: `init` a starter config for an unfamiliar extract, `check` it, fill in the
  TODOs, `check` again, then `run` a workbook.
* The trainer: the exercises notebook runs and every answer shows something.
* The reader: the landing page offers all three routes, each part says what it helps you
  decide and how long it takes, every notebook page offers downloads, and the
  troubleshooting page lists every message the tool can give.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from equity_helpers.errors import CATALOGUE
from equity_helpers.starter import guess_columns

sys.path.insert(0, str(Path(__file__).parent))
import second_service  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("equity-workbook")
SAMPLE = ROOT / "sample_data"
REFERENCE = SAMPLE / "reference"
SERVICE_NAME = "Community MSK Service (synthetic)"
# What a person puts in place of a TODO value they cannot map: the code for "unknown".
UNKNOWN_CODE = {"sex": "X", "ethnicity": "99", "discharge_reason": "other"}


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`equity-workbook ARGS` as a person types it, with its output and exit status.

    It runs in this process (the same ``main`` the command calls), which spares a Python
    start per call; `run` goes through the real command, in :func:`run_command`.
    """
    import contextlib
    import io
    import os

    from equity_helpers.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse refusing the arguments
                code = exc.code
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def run_command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, cwd=cwd)


def visible_text(path: Path) -> str:
    text = re.sub(
        r"<(script|style)[^>]*>.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S
    )
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))
    # The book turns straight quotes into curly ones.
    return text.translate(
        str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
    )


def todo_keys(node, prefix: str = "") -> list[str]:
    """Every setting of a loaded config that still says TODO."""
    if isinstance(node, dict):
        return [
            k for key, v in node.items() for k in todo_keys(v, f"{prefix}.{key}" if prefix else key)
        ]
    return [prefix] if isinstance(node, str) and node.strip().upper().startswith("TODO") else []


# ----------------------------------------------------------------------------- the analyst


@pytest.fixture(scope="module")
def second(tmp_path_factory) -> dict:
    """The differently shaped extract, and the mapping a person would give it by hand."""
    folder = tmp_path_factory.mktemp("msk")
    extract = second_service.make_extract(folder)
    known = yaml.safe_load(
        second_service.write_config(tmp_path_factory.mktemp("known"), extract).read_text()
    )
    return {"folder": folder, "extract": extract, "known": known}


@pytest.fixture(scope="module")
def starter(second) -> dict:
    cfg = second["folder"] / "community_msk.yml"
    proc = cli("init", str(second["extract"]), "--out", str(cfg))
    return {"proc": proc, "path": cfg, "text": cfg.read_text(encoding="utf-8")}


def test_init_writes_a_starter_config(starter):
    proc = starter["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"Wrote a starter config to {starter['path']}" in proc.stdout
    assert "still say TODO" in proc.stdout


def test_init_guesses_every_column_of_the_second_service(starter, second):
    guessed = yaml.safe_load(starter["text"])["columns"]
    assert guessed == second["known"]["columns"]
    # Each guess is written with a note of what the field means.
    assert "  sex: 'Stated Gender'  # NHS person stated gender code" in starter["text"]
    assert "  appointments_offered: 'Appointments Booked'" in starter["text"]
    # Fields the extract does not have are listed, as comments, for the person to see.
    for missing in ("sexual_orientation", "pregnancy", "smi"):
        assert f"  # {missing}:" in starter["text"]


def test_init_reads_past_the_title_row(starter):
    assert yaml.safe_load(starter["text"])["extract"]["header_row"] == 3


def test_init_proposes_nhs_codes_for_labels(starter, second):
    values = yaml.safe_load(starter["text"])["values"]
    assert values["sex"] == {"Male": "1", "Female": "2", "Unknown": "X"}
    for label, code in (("White British", "A"), ("Indian", "H"), ("Not known", "99")):
        assert values["ethnicity"][label] == code
    # Every distinct label in the extract is listed, so the person sees them all.
    extract = pd.read_excel(second["extract"], header=2, dtype=str)
    assert set(extract["Ethnic Origin"].dropna()) == set(values["ethnicity"])
    assert values["discharge_reason"]["Self-discharged"] == "disengaged"
    # A label the playbook does not know is guessed from its words, and flagged for checking.
    assert values["discharge_reason"]["DNA - discharged"] == "dna_discharge"
    assert "'DNA - discharged': 'dna_discharge'  # a guess: check it" in starter["text"]


def test_init_marks_what_it_could_not_guess(starter):
    todo = todo_keys(yaml.safe_load(starter["text"]))
    for key in (
        "service.name",
        "catchment.name",
        "reference.imd_path",
        "period.start",
        "period.end",
    ):
        assert key in todo
    assert not [k for k in todo if k.startswith("columns.")]


@pytest.mark.slow
def test_the_analyst_journey(tmp_path, starter, second):
    path = starter["path"]

    # 1. The starter config cannot run yet, and check says why: every TODO at once.
    first = cli("check", str(path))
    assert first.returncode != 0
    assert "Traceback" not in first.stdout + first.stderr
    todo = todo_keys(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert todo
    for key in todo:
        assert key in first.stdout, key
    assert "[CFG007]" in first.stdout
    assert "What to put in place of each TODO" in first.stdout

    # 2. Fill in the TODOs, as a person would.
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    known = second["known"]
    cfg["service"]["name"] = SERVICE_NAME
    cfg["catchment"] = known["catchment"]
    cfg["reference"] = {
        "imd_edition": 2025,
        "imd_path": str(REFERENCE / "imd2025_file7_synthetic.csv"),
        "population_ethnicity": str(REFERENCE / "census2021-ts021-lsoa-synthetic.csv"),
        "population_age": str(REFERENCE / "census2021-age6-lsoa-synthetic.csv"),
        "population_sex": str(REFERENCE / "census2021-ts008-lsoa-synthetic.csv"),
    }
    cfg["period"] = {"start": "2022-04-01", "end": "2025-03-31"}
    for field, mapping in (cfg.get("values") or {}).items():
        for raw, code in list(mapping.items()):
            if str(code).upper().startswith("TODO"):
                if field in UNKNOWN_CODE:
                    mapping[raw] = UNKNOWN_CODE[field]
                else:
                    del mapping[raw]
    assert not todo_keys(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")

    # 3. Now it is ready.
    second_check = cli("check", str(path))
    assert second_check.returncode == 0, second_check.stdout + second_check.stderr
    assert "Ready to run" in second_check.stdout

    # 4. Run two steps of the workbook.
    out = tmp_path / "workbooks"
    run = run_command(
        "run",
        "--config",
        str(path),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--steps",
        "data-completeness,who-uses-the-service",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    index = next(out.glob("*/html/index.html"))
    assert f"Open: {index}" in run.stdout
    assert SERVICE_NAME in visible_text(index)


def test_init_keeps_the_sample_columns(tmp_path):
    """The sample's own column names are guessed just as its config maps them."""
    out = tmp_path / "sample.yml"
    proc = cli("init", str(SAMPLE / "long_covid_service_extract.csv"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    guessed = yaml.safe_load(out.read_text(encoding="utf-8"))["columns"]
    expected = yaml.safe_load((SAMPLE / "sample_service.yml").read_text())["columns"]
    for canonical, column in expected.items():
        assert guessed.get(canonical) == column, canonical
    # The planted codes that are not on the NHS list are shown for a person to decide.
    todo = todo_keys(yaml.safe_load(out.read_text(encoding="utf-8")))
    assert "values.sex.Q" in todo and "values.ethnicity.W" in todo


def test_init_finds_downloaded_reference_files(tmp_path):
    """Files saved by `reference download` beside the extract are filled in, not left TODO."""
    import shutil

    extract = shutil.copy(SAMPLE / "long_covid_service_extract.csv", tmp_path / "extract.csv")
    (tmp_path / "reference").mkdir()
    shutil.copy(
        REFERENCE / "imd2025_file7_synthetic.csv", tmp_path / "reference" / "imd2025_file7.csv"
    )
    shutil.copy(
        REFERENCE / "census2021-ts021-lsoa-synthetic.csv",
        tmp_path / "reference" / "census2021-ts021-lsoa.csv",
    )
    proc = cli("init", str(extract))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cfg = yaml.safe_load((tmp_path / "extract_service.yml").read_text(encoding="utf-8"))
    assert cfg["reference"]["imd_edition"] == 2025
    assert cfg["reference"]["imd_path"] == "reference/imd2025_file7.csv"
    assert cfg["reference"]["population_ethnicity"] == "reference/census2021-ts021-lsoa.csv"
    assert "reference.imd_path" not in todo_keys(cfg)


def test_identifiers_are_never_guessed():
    columns = ["NHS Number", "Patient Name", "Date of Birth", "Postcode", "Referral Ref"]
    guesses = guess_columns(columns)
    assert guesses["referral_id"] == "Referral Ref"
    assert set(guesses.values()) <= {"Referral Ref", None}


def test_short_forms_and_owner_words_in_column_names_are_read():
    names = ["Pt Ref No", "Referral Recvd Dt", "Pt Age", "Sex", "Ethnicity (NHS)", "Disch Dt"]
    guesses = guess_columns(names + ["Disch Reason", "Client LSOA"])
    assert {k: guesses[k] for k in ("referral_id", "referral_date", "age", "discharge_date")} == {
        "referral_id": "Pt Ref No",
        "referral_date": "Referral Recvd Dt",
        "age": "Pt Age",
        "discharge_date": "Disch Dt",
    }
    assert guesses["discharge_reason"] == "Disch Reason"
    assert guesses["lsoa_code"] == "Client LSOA"


def test_guesses_do_not_depend_on_column_order():
    names = list(second_service.RENAME.values())
    assert guess_columns(names) == guess_columns(names[::-1])


# ----------------------------------------------------------------------------- the trainer


def test_exercise_answers_run(run_notebook):
    nb, _ = run_notebook("training-exercises")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0] if errors else ""
    answers = [
        c for c in nb.cells if c.cell_type == "code" and "hide-cell" in c.metadata.get("tags", [])
    ]
    assert 6 <= len(answers) <= 8
    for cell in answers:
        shown = [
            o for o in cell.outputs if o.get("output_type") in ("display_data", "execute_result")
        ]
        assert shown, cell.source[:80]


def test_each_exercise_has_a_task_a_blank_and_an_answer():
    from equity_helpers.notebooks import to_notebook

    nb = to_notebook("training-exercises")
    headings = [c for c in nb.cells if c.cell_type == "markdown" and "## Exercise" in c.source]
    assert 6 <= len(headings) <= 8
    blanks = [
        c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "# Your answer here"
    ]
    answers = [c for c in nb.cells if "hide-cell" in c.metadata.get("tags", [])]
    assert len(blanks) == len(answers) == len(headings) - 1  # the last is a discussion
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert ":::{dropdown} Model answer" in text
    for word in ("EAST", "COM-B", "co-production"):
        assert word in text


# ----------------------------------------------------------------------------- the reader


def test_troubleshooting_lists_every_message(built_book):
    page = next(built_book.rglob("using/troubleshooting.html"))
    text = visible_text(page)
    for code, message in CATALOGUE.items():
        assert code in text, code
        assert message.title in text, message.title


def test_landing_page_offers_three_journeys(built_book):
    index = built_book / "index.html"
    target = re.search(r'url=([^"]+)"', index.read_text(encoding="utf-8"))
    landing = built_book / target.group(1) if target else index
    links = set(re.findall(r'href="([^"#]+)', landing.read_text(encoding="utf-8")))
    for page in ("how-to-use.html", "using/run-on-your-data.html", "using/for-trainers.html"):
        assert any(link.endswith(page) for link in links), page


@pytest.mark.parametrize("part", [1, 2, 3, 4, 5])
def test_each_part_says_what_it_decides_and_how_long(part):
    text = (ROOT / "book" / f"part-{part}" / "index.md").read_text(encoding="utf-8").lower()
    assert "decide" in text
    assert "minutes" in text


def test_notebook_pages_offer_the_markdown_source(built_book):
    pages = sorted((built_book / "notebooks").glob("*.html"))
    assert {p.stem for p in pages} >= {"data-completeness", "training-exercises"}
    for page in pages:
        source = f"_sources/notebooks/{page.stem}.md"
        assert f'href="../{source}"' in page.read_text(encoding="utf-8"), page.name
        assert (built_book / source).is_file()


def test_notebook_pages_offer_the_ipynb(built_book):
    pages = sorted((built_book / "notebooks").glob("*.html"))
    missing = []
    for page in pages:
        notebook = f"_sources/notebooks/{page.stem}.ipynb"
        if (
            f'href="../{notebook}"' not in page.read_text(encoding="utf-8")
            or not (built_book / notebook).is_file()
        ):
            missing.append(page.name)
    assert pages
    assert not missing


# ----------------------------------------------------------------------------- real exports
#
# Each journey makes a file the way a clinical system writes it, runs `init`, fills in the
# TODOs as a person would, runs `check`, then prepares the extract and recomputes one figure
# with plain pandas from the rows the file was made from.

ETHNIC_WORDS = {
    "A": "A - White - British",
    "B": "White - Irish (B)",
    "C": "C - White - Any other White background",
    "H": "H - Asian or Asian British - Indian",
    "J": "Asian or Asian British - Pakistani (J)",
    "Z": "Z - Not stated",
    "99": "99 - Not known",
}
GENDER_WORDS = {"1": "Male", "2": "Female", "X": "Not stated"}


def sample_rows(n: int, seed: int = 3) -> pd.DataFrame:
    """Clean referral rows of the sample: a real ID, a date in the period, known codes."""
    df = pd.read_csv(SAMPLE / "long_covid_service_extract.csv", dtype=str, keep_default_na=False)
    dates = pd.to_datetime(df["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    ok = (
        df["Referral Ref"].ne("")
        & dates.between("2022-04-01", "2025-03-31")
        & df["Gender"].isin(list(GENDER_WORDS))
        & df["Ethnic Category"].isin(list(ETHNIC_WORDS))
    )
    return df[ok].sample(n, random_state=seed).sort_index().reset_index(drop=True)


def fill_in(path: Path) -> dict:
    """Put in place of each TODO what a person would, and save the config."""
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["service"]["name"] = SERVICE_NAME
    cfg["catchment"] = {
        "name": "Derby and Derbyshire",
        "local_authorities": ["E06000015"] + [f"E0700003{i}" for i in range(2, 10)],
    }
    cfg["reference"] = {
        "imd_edition": 2025,
        "imd_path": str(REFERENCE / "imd2025_file7_synthetic.csv"),
        "population_ethnicity": str(REFERENCE / "census2021-ts021-lsoa-synthetic.csv"),
        "population_age": str(REFERENCE / "census2021-age6-lsoa-synthetic.csv"),
        "population_sex": str(REFERENCE / "census2021-ts008-lsoa-synthetic.csv"),
    }
    cfg["period"] = {"start": "2022-04-01", "end": "2025-03-31"}
    for field, mapping in (cfg.get("values") or {}).items():
        for raw, code in list(mapping.items()):
            if str(code).upper().startswith("TODO"):
                mapping[raw] = UNKNOWN_CODE.get(field, "X")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return cfg


def init_and_check(extract: Path, *args: str) -> tuple[subprocess.CompletedProcess, str, Path]:
    """`init` the extract, fill in the TODOs, and `check` it: it must be ready to run.

    Returns what init printed, the config as init wrote it, and the filled-in config."""
    path = extract.with_name("service.yml")
    proc = cli("init", str(extract), "--out", str(path), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    written = path.read_text(encoding="utf-8")
    fill_in(path)
    checked = cli("check", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Ready to run" in checked.stdout
    return proc, written, path


def write_system_workbook(path: Path, rows: pd.DataFrame) -> dict:
    """A referral report as a clinical system saves it to Excel: a cover sheet first; on the
    report sheet a merged title, a run line and a blank row above the header; totals, a run
    note and notes under the data; a codes sheet last. Returns the sheet rows of each part."""
    from openpyxl import Workbook

    wb = Workbook()
    cover = wb.active
    cover.title = "Cover"
    for line in (
        ["Community rehabilitation: referrals report"],
        ["Filters", "Team = Long COVID; Referral date 01/04/2022 to 31/03/2025"],
        ["Contents", "Referrals sheet: one row per referral"],
    ):
        cover.append(line)
    sheet = wb.create_sheet("Referrals")
    sheet.append(["Referrals received: 01/04/2022 to 31/03/2025"])
    sheet.merge_cells("A1:H1")
    sheet.append(["Run date: 01/12/2026 09:14"])
    sheet.append([])
    columns = [
        "Referral Ref",
        "Identifier",
        "Referral Received",
        "Age at Referral",
        "Gender",
        "Ethnic Category",
        "LSOA",
        "Clinician Notes",
    ]
    sheet.append(columns)
    for i, r in rows.iterrows():
        received = dt.datetime.strptime(r["Date Referral Received"], "%d/%m/%Y")
        sheet.append(
            [
                r["Referral Ref"],
                f"999 {100 + i:03d} {1000 + i:04d}",
                received.replace(hour=9 + i % 8, minute=i % 60),  # a date-time cell
                int(r["Age at Referral"]) if r["Age at Referral"].isdigit() else None,
                "Non-binary" if i % 50 == 7 else GENDER_WORDS[r["Gender"]],
                ETHNIC_WORDS[r["Ethnic Category"]],
                r["LSOA"] or None,
                "Seen at home; prefers phone calls" if i % 9 == 0 else None,
            ]
        )
    last = 4 + len(rows)
    sheet.append([f"Total records: {len(rows)}"])
    sheet.append(["Report run 01/12/2026 by A Analyst (Information Team)"])
    sheet.append([])
    sheet.append(["Notes: ages are at referral; ethnicity as recorded, where recorded."])
    codes_sheet = wb.create_sheet("Codes")
    codes_sheet.append(["Gender", "Meaning"])
    for code, word in GENDER_WORDS.items():
        codes_sheet.append([code, word])
    wb.save(path)
    return {"header": 4, "first": 5, "last": last, "footer": [last + 1, last + 2, last + 4]}


def test_a_system_workbook_goes_through_on_the_first_try(tmp_path):
    from equity_helpers.config import load_config
    from equity_helpers.extract import prepare

    rows = sample_rows(400)
    extract = tmp_path / "referrals_report.xlsx"
    where = write_system_workbook(extract, rows)
    proc, text, path = init_and_check(extract)
    written = yaml.safe_load(text)

    # The report sheet is chosen, and the reason is said and written down.
    assert written["extract"]["sheet"] == "Referrals"
    assert written["extract"]["header_row"] == where["header"]
    assert "sheet 'Referrals' holds the table: 400 rows" in proc.stdout
    assert "'Cover' has no table header" in proc.stdout
    assert written["columns"]["referral_date"] == "Referral Received"
    assert written["columns"]["ethnicity"] == "Ethnic Category"
    # NHS numbers (known by their values) and free text are never mapped, and are named.
    assert "Identifier" not in written["columns"].values()
    assert "Clinician Notes" not in written["columns"].values()
    assert "# Identifier columns, never read: Identifier" in text
    assert "# Free-text columns, never read: Clinician Notes" in text
    # Words are proposed as NHS codes: a combined code and label by its code.
    assert written["values"]["sex"]["Non-binary"] == "9"
    assert written["values"]["sex"]["Not stated"] == "X"
    assert written["values"]["ethnicity"]["A - White - British"] == "A"
    assert written["values"]["ethnicity"]["White - Irish (B)"] == "B"

    prepared = prepare(load_config(path))
    acc = prepared.account
    assert acc.adds_up()
    assert acc.rows_read == len(rows) and acc.rows_used == len(rows)
    assert acc.outside_table == {
        "titles above the column names": 2,
        "totals, run details and notes below the data": 3,
    }
    table = acc.table()
    assert list(table["Rows"])[:3] == [2, 3, 400]
    assert prepared.issue("EXT014").rows == where["footer"]
    assert "Identifier" in prepared.dropped_identifiers
    assert prepared.free_text == ["Clinician Notes"]
    assert "Free-text columns not read: Clinician Notes" in prepared.report()
    assert "A Analyst" not in prepared.report()  # the run line's name is never repeated
    # One figure, recomputed with plain pandas from the rows the file was made from.
    asian = rows["Ethnic Category"].isin(["H", "J"]).sum()
    assert (prepared.data["ethnic_group"] == "Asian").sum() == asian
    non_binary = sum(1 for i in range(len(rows)) if i % 50 == 7)
    assert (prepared.data["sex"] == "9").sum() == non_binary
    monthly = pd.to_datetime(rows["Date Referral Received"], format="%d/%m/%Y").dt.to_period("M")
    got = prepared.data["referral_date"].dt.to_period("M").value_counts().sort_index()
    assert got.to_dict() == monthly.value_counts().sort_index().to_dict()


def test_init_sheet_option_chooses_the_sheet(tmp_path):
    rows = sample_rows(60)
    extract = tmp_path / "report.xlsx"
    write_system_workbook(extract, rows)
    out = tmp_path / "chosen.yml"
    proc = cli("init", str(extract), "--out", str(out), "--sheet", "Referrals")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["extract"]["sheet"] == "Referrals"


def test_a_windows_csv_report_with_totals_goes_through(tmp_path):
    """A Windows-1252 CSV with a title line, Excel serial dates, age bands and a footer."""
    from equity_helpers.config import load_config
    from equity_helpers.extract import prepare

    rows = sample_rows(300, seed=5)
    dates = pd.to_datetime(rows["Date Referral Received"], format="%d/%m/%Y")
    serial = (dates - pd.Timestamp("1899-12-30")).dt.days
    age = pd.to_numeric(rows["Age at Referral"], errors="coerce")
    band = (age // 5 * 5).map(lambda a: "" if pd.isna(a) else f"{int(a)}-{int(a) + 4}")
    body = pd.DataFrame(
        {
            "Referral Ref": rows["Referral Ref"],
            "Date Referral Received": serial.astype(str),
            "Age Band": band,
            "Gender": rows["Gender"].map(GENDER_WORDS),
            "Ethnic Category": rows["Ethnic Category"].map(ETHNIC_WORDS),
            "LSOA": rows["LSOA"],
            "Comments": "Café referral – see letter",
        }
    )
    text = "Referrals report – Long COVID service\r\n" + body.to_csv(
        index=False, lineterminator="\r\n"
    )
    text += (
        f"Total records: {len(body)}\r\nReport run 01/12/2026 by A Analyst\r\n\r\nNotes: none\r\n"
    )
    extract = tmp_path / "report.csv"
    extract.write_bytes(text.encode("cp1252"))
    _, text, path = init_and_check(extract)
    written = yaml.safe_load(text)
    assert written["columns"]["age_band"] == "Age Band"
    assert "age" not in written["columns"]
    assert "Comments" not in written["columns"].values()

    prepared = prepare(load_config(path))
    acc = prepared.account
    assert prepared.encoding == "cp1252"
    assert acc.adds_up() and acc.rows_read == len(body) == acc.rows_used
    assert acc.outside_table == {
        "titles above the column names": 1,
        "totals, run details and notes below the data": 3,
    }
    # Lines 1 and 2 are the title and the header; the data is lines 3 to 302.
    assert prepared.issue("EXT014").rows == [303, 304, 306]
    assert prepared.free_text == ["Comments"]
    got = prepared.data["referral_date"].dt.normalize()
    assert got.tolist() == dates.tolist()
    expected = pd.Series(band[band.ne("")]).value_counts().to_dict()
    assert (
        prepared.data["age_band"][prepared.data["age_band"].ne("Unknown")].value_counts().to_dict()
        == expected
    )


def appointment_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per appointment, from the referral rows' own counts: the attended ones
    first (the first on the first contact date), then the missed ones, then cancellations.
    Statuses alternate between national codes and the words systems use."""
    out = []
    for r in rows.itertuples(index=False):
        offered, attended, dna = (
            int(getattr(r, c)) for c in ("_12", "_13", "_14")
        )  # Appts Offered, Attended, DNA
        start = pd.to_datetime(r._11 or r._5, format="%d/%m/%Y")  # first contact, or referral
        kinds = ["attended"] * attended + ["missed"] * dna
        kinds += ["cancelled"] * (offered - attended - dna)
        for k, kind in enumerate(kinds):
            when = start + pd.Timedelta(days=7 * k, hours=9 + k % 7, minutes=15 * (k % 4))
            words = {
                "attended": ("5", "Attended", "6", "Seen"),
                "missed": ("3", "DNA", "7", "Did not attend"),
                "cancelled": ("2", "Patient cancelled", "4", "Cancelled by provider"),
            }[kind]
            out.append((r._0, when.strftime("%d/%m/%Y %H:%M"), words[k % 4], kind))
    return pd.DataFrame(out, columns=["Referral Ref", "Appointment Date", "Outcome", "kind"])


def test_an_appointment_level_export_goes_through(tmp_path):
    """Referrals in one file, appointments in another: init finds the second by its columns,
    and the steps get the counts and first contact the appointments give."""
    from equity_helpers.config import load_config
    from equity_helpers.extract import prepare

    rows = sample_rows(250, seed=11)
    counts = rows[["Appts Offered", "Appts Attended", "Appts DNA"]].apply(
        pd.to_numeric, errors="coerce"
    )
    whole = counts.notna().all(axis=1) & (
        counts["Appts Offered"] >= counts["Appts Attended"] + counts["Appts DNA"]
    )
    rows = rows[whole].reset_index(drop=True)
    referrals = rows[
        ["Referral Ref", "Date Referral Received", "Age at Referral", "Gender", "Ethnic Category"]
    ]
    extract = tmp_path / "referrals.csv"
    referrals.to_csv(extract, index=False)
    appts = appointment_rows(rows)
    planted = pd.DataFrame(
        [
            ("LC999999", "01/06/2023 10:00", "5", "unmatched"),  # no such referral
            (rows["Referral Ref"][0], "02/06/2023 11:00", "Rescheduled", "unknown"),
        ],
        columns=appts.columns,
    )
    repeat = appts.iloc[[3]].assign(kind="repeat")  # the system wrote one appointment twice
    written_rows = pd.concat([appts, planted, repeat], ignore_index=True)
    written_rows.drop(columns="kind").to_csv(tmp_path / "appointments.csv", index=False)

    proc, text, path = init_and_check_with(extract, {"Rescheduled": "cancelled"})
    assert "Found a file of appointments beside the extract: appointments.csv" in proc.stdout
    written = yaml.safe_load(text)
    assert written["appointments"]["path"] == "appointments.csv"
    assert written["appointments"]["columns"] == {
        "referral_id": "Referral Ref",
        "appointment_date": "Appointment Date",
        "attendance": "Outcome",
    }
    assert "appointments.values.attendance.Rescheduled" in todo_keys(written)
    for derived in ("appointments_offered", "first_appointment_date"):
        assert derived not in written["columns"]

    prepared = prepare(load_config(path))
    a = prepared.appointments
    assert a["rows_read"] == len(written_rows)
    assert a["rows_read"] == a["rows_used"] + sum(a["excluded"].values())
    assert a["excluded"] == {"APP001": 1, "APP003": 1}
    unmatched = prepared.issue("APP001")
    assert unmatched.rows == [len(appts) + 2] and unmatched.example == "LC999999"
    assert prepared.issue("APP003").rows == [len(written_rows) + 1]
    assert "Appointments counted" in prepared.report()
    # The counts each referral gets are those of its rows, recomputed with plain pandas.
    data = prepared.data
    assert prepared.account.rows_used == len(rows)
    assert data["appointments_offered"].sum() == counts.loc[whole, "Appts Offered"].sum() + 1
    assert data["appointments_attended"].sum() == (appts["kind"] == "attended").sum()
    assert data["appointments_dna"].sum() == (appts["kind"] == "missed").sum()
    first = pd.to_datetime(rows["First Contact Date"], format="%d/%m/%Y", errors="coerce")
    first = first.where(counts.loc[whole, "Appts Attended"].to_numpy() > 0)  # seen at least once
    received = pd.to_datetime(rows["Date Referral Received"], format="%d/%m/%Y")
    first = first.where(first >= received)  # a first contact before the referral is not used
    got = data["first_appointment_date"].dt.normalize()
    assert got.isna().tolist() == first.isna().tolist()
    assert (got.dropna() == first.dropna()).all()


def init_and_check_with(extract: Path, attendance: dict) -> tuple:
    """As init_and_check, mapping the attendance values init could not read."""
    path = extract.with_name("service.yml")
    proc = cli("init", str(extract), "--out", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = path.read_text(encoding="utf-8")
    cfg = fill_in(path)
    cfg["appointments"]["values"]["attendance"].update(attendance)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    checked = cli("check", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Appointments: " in checked.stdout and "Appointments counted" in checked.stdout
    return proc, text, path


def test_init_takes_an_appointments_file_named_on_the_command_line(tmp_path):
    rows = sample_rows(40, seed=4)
    extract = tmp_path / "referrals.csv"
    rows[["Referral Ref", "Date Referral Received", "Age at Referral", "Gender"]].to_csv(
        extract, index=False
    )
    elsewhere = tmp_path / "from_another_report"
    elsewhere.mkdir()
    appts = appointment_rows(rows).drop(columns="kind")
    appts.columns = ["Referral Number", "Appt Date/Time", "Attendance Status"]
    appts.to_csv(elsewhere / "contacts.csv", index=False)
    out = tmp_path / "service.yml"
    plain = cli("init", str(extract), "--out", str(out))
    assert "appointments" not in yaml.safe_load(out.read_text(encoding="utf-8"))
    named = cli(
        "init",
        str(extract),
        "--out",
        str(out),
        "--force",
        "--appointments",
        str(elsewhere / "contacts.csv"),
    )
    assert plain.returncode == named.returncode == 0, named.stdout + named.stderr
    written = yaml.safe_load(out.read_text(encoding="utf-8"))["appointments"]
    assert written["path"] == "from_another_report/contacts.csv"
    assert written["columns"] == {
        "referral_id": "Referral Number",
        "appointment_date": "Appt Date/Time",
        "attendance": "Attendance Status",
    }


def test_init_looks_through_a_folder_of_exports_by_their_column_names(tmp_path, monkeypatch):
    """An extract saved among many other exports: init finds the file of appointments and
    reads whole only the files whose column names could be appointments; the others are
    named, with why they were passed over."""
    from equity_helpers import starter

    rows = sample_rows(40, seed=5)
    extract = tmp_path / "referrals.csv"
    rows[["Referral Ref", "Date Referral Received", "Age at Referral", "Gender"]].to_csv(
        extract, index=False
    )
    for i in range(30):  # other reports of the same system, one of them a workbook
        rows.assign(Report=i).to_csv(tmp_path / f"export_{i:02d}.csv", index=False)
    rows.head(20).to_excel(tmp_path / "monthly_report.xlsx", index=False)
    for name in ("minutes.pdf", "letter.docx", "notes.txt"):
        (tmp_path / name).write_text("Team meeting: appointments were discussed.\n")
    appts = appointment_rows(rows).drop(columns="kind")
    appts.columns = ["Referral Number", "Appt Date/Time", "Attendance Status"]
    # Named like appointments, but its attendance column holds no attendance: read, refused.
    appts.assign(**{"Attendance Status": "see notes"}).to_csv(tmp_path / "a_draft.csv", index=False)
    appts.to_csv(tmp_path / "x_contacts.csv", index=False)  # after nearly every other file
    (tmp_path / "z_later.csv").write_text("Referral Number,Appt Date,Outcome\nLC1,,\n")

    read_whole = []
    real_read = starter._read
    monkeypatch.setattr(
        starter,
        "_read",
        lambda path, *a, **k: read_whole.append(Path(path).name) or real_read(path, *a, **k),
    )
    notes: list[str] = []
    path, _ = starter.write_starter_config(extract, tmp_path / "service.yml", notes=notes)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))["appointments"]
    assert written["path"] == "x_contacts.csv"
    # The extract, the two files named like appointments, and the one found (its section).
    assert sorted(set(read_whole)) == ["a_draft.csv", "referrals.csv", "x_contacts.csv"]
    assert "Found a file of appointments beside the extract: x_contacts.csv" in notes
    (skipped,) = [n for n in notes if n.startswith("Not read as a file of appointments")]
    assert "36 files beside the extract" in skipped
    assert "export_00.csv" in skipped and "and 24 more (their column names are not" in skipped
    assert "a_draft.csv (their values are not those of appointments)" in skipped
    assert "letter.docx, minutes.pdf (not a CSV, text or Excel file)" in skipped
    assert "z_later.csv (a file of appointments was found first)" in skipped
    assert "referrals.csv" not in skipped and "service.yml" not in skipped


def test_split_lsoa_2011_codes_get_a_stated_rule_that_file_order_does_not_change(tmp_path):
    """An export of LSOA 2011 codes, some of areas split in 2021, with the real ONS lookup,
    IMD 2025 and census files."""
    from equity_helpers.config import load_config
    from equity_helpers.extract import prepare

    real = ROOT.parent / "shared" / "reference"
    lookup = real / "lookups" / "lsoa11_lsoa21_lad22_lookup_derby_derbyshire.csv"
    census = real / "census2021" / "age6_usual_residents_lsoa21_derby_derbyshire.csv"
    imd_file = real / "imd2025" / "imd2025_lsoa21_derby_derbyshire.csv"
    lk = pd.read_csv(lookup, dtype=str)
    split = sorted(lk.loc[lk["chgind"] == "S", "lsoa11cd"].unique())
    same = lk.loc[lk["chgind"] == "U", "lsoa11cd"].head(20).tolist()
    rows = sample_rows(120, seed=2)
    codes11 = (split * 10)[:80] + (same * 2)[:40]
    extract = tmp_path / "export.csv"
    pd.DataFrame(
        {
            "Referral Ref": rows["Referral Ref"],
            "Date Referral Received": rows["Date Referral Received"],
            "Age at Referral": rows["Age at Referral"],
            "Gender": rows["Gender"],
            "Ethnic Category": rows["Ethnic Category"],
            "LSOA 2011": codes11,
        }
    ).to_csv(extract, index=False)
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "lsoa11_lsoa21_lookup.csv").symlink_to(lookup)
    _, text, path = init_and_check(extract)
    assert yaml.safe_load(text)["reference"]["lsoa_lookup"] == "reference/lsoa11_lsoa21_lookup.csv"

    def prepared_with(lookup_path: Path):
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        cfg["reference"].update(
            imd_path=str(imd_file), population_age=str(census), lsoa_lookup=str(lookup_path)
        )
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        assert cli("check", str(path)).returncode == 0
        return prepare(load_config(path))

    first = prepared_with(lookup)
    # The rule, recomputed with plain pandas: the new area with the most residents.
    residents = pd.read_csv(census, dtype={"lsoa21cd": str}).set_index("lsoa21cd")
    kids = lk[lk["lsoa11cd"].isin(split)].assign(
        residents=lambda d: d["lsoa21cd"].map(residents["total_usual_residents"])
    )
    biggest = kids.sort_values("residents").groupby("lsoa11cd")["lsoa21cd"].last()
    expected = [biggest.get(c, c) for c in codes11]
    assert first.data["lsoa_code"].tolist() == expected
    # How many rows were in split areas, and how many of those the choice moves between
    # IMD quintiles.
    quintile = pd.read_csv(imd_file, dtype={"lsoa21cd": str}).set_index("lsoa21cd")["imd_decile"]
    quintile = (quintile + 1) // 2
    moves = kids.assign(q=kids["lsoa21cd"].map(quintile)).groupby("lsoa11cd")["q"].nunique() > 1
    note = first.issue("VAL011")
    assert note.count == 80
    assert "80 of them are in areas that were split" in note.message
    assert f"{sum(moves.get(c, False) for c in codes11):,} of these would be in another IMD" in (
        note.message
    )
    assert "the most residents in the census population file" in note.message
    assert "Another 40 rows hold codes that are the same in 2011 and 2021" in note.message
    # The same lookup in another row order gives the same areas.
    shuffled = tmp_path / "shuffled_lookup.csv"
    lk.iloc[::-1].to_csv(shuffled, index=False)
    again = prepared_with(shuffled)
    assert again.data["lsoa_code"].tolist() == expected
    assert again.data["imd_quintile"].tolist() == first.data["imd_quintile"].tolist()


def test_findings_name_groups_as_they_are_written():
    """Group names keep their capitals inside sentences, and a missing group is never nan."""
    from equity_helpers.wording import group_label, group_name, group_phrase, noun

    assert group_phrase("ethnic_group", "Asian") == "people in the Asian ethnic group"
    assert group_label("imd_quintile", 1) == "IMD quintile 1 (most deprived)"
    assert group_name("imd_quintile", "Quintile 1 (most deprived)") == (
        "IMD quintile 1 (most deprived)"
    )
    assert noun("lsoa_code") == "home area (LSOA)"
    assert group_phrase("lsoa_code", "Outside catchment").endswith("(LSOA) is Outside catchment")
    for missing in (float("nan"), None, pd.NA):
        for said in (
            group_phrase("religion", missing),
            group_name("religion", missing),
            group_label("religion", missing),
        ):
            assert "nan" not in said.lower() and "none" not in said.lower(), said
            assert "Not known" in said


def test_appointments_on_another_sheet_of_the_report(tmp_path):
    """One workbook: a cover, the referrals, and a longer sheet of appointments whose header
    shares names with the referrals ('Referral Ref', 'Attended')."""
    from openpyxl import load_workbook

    from equity_helpers.config import load_config
    from equity_helpers.extract import prepare

    rows = sample_rows(150, seed=8)
    counts = rows[["Appts Offered", "Appts Attended", "Appts DNA"]].apply(pd.to_numeric)
    rows = rows[
        counts["Appts Offered"] >= counts["Appts Attended"] + counts["Appts DNA"]
    ].reset_index(drop=True)
    extract = tmp_path / "report.xlsx"
    write_system_workbook(extract, rows)
    appts = appointment_rows(rows)
    assert len(appts) > len(rows)
    wb = load_workbook(extract)
    sheet = wb.create_sheet("Appointments", 2)
    sheet.append(["Referral Ref", "Appointment Date", "Attended"])
    for r in appts.itertuples(index=False):
        sheet.append([r[0], r[1], r[2]])
    wb.save(extract)

    proc, text, path = init_and_check(extract)
    assert "Found appointments in sheet 'Appointments' of the workbook." in proc.stdout
    written = yaml.safe_load(text)
    assert written["extract"]["sheet"] == "Referrals"
    assert written["appointments"]["path"] == "report.xlsx"
    assert written["appointments"]["sheet"] == "Appointments"
    assert written["appointments"]["columns"]["attendance"] == "Attended"
    prepared = prepare(load_config(path))
    assert prepared.account.rows_used == len(rows)
    assert prepared.appointments["rows_used"] == len(appts)
    assert prepared.data["appointments_dna"].sum() == (appts["kind"] == "missed").sum()


def test_a_title_above_column_names_the_playbook_does_not_know(tmp_path):
    """Title lines above a header of a system's own column names: the header is the first
    line as wide as the rows below it, init says so, and the two titles are accounted for."""
    from equity_helpers.config import load_config
    from equity_helpers.extract import prepare

    rows = sample_rows(300, seed=7)
    body = rows.rename(columns={c: "Pt " + c.upper().replace(" ", "_") for c in rows.columns})
    extract = tmp_path / "activity.csv"
    extract.write_text(
        "Referral activity report\nRun by: the system\n" + body.to_csv(index=False),
        encoding="utf-8",
    )
    proc, written, path = init_and_check(extract)
    assert f"line 3, the first with as many values as most rows ({body.shape[1]})" in proc.stdout
    assert yaml.safe_load(written)["columns"]["referral_id"] == "Pt REFERRAL_REF"

    prepared = prepare(load_config(path))
    acc = prepared.account
    assert acc.adds_up() and acc.rows_read == len(body)
    assert acc.outside_table == {
        "titles above the column names": 2,
        "totals, run details and notes below the data": 0,
    }
    dates = pd.to_datetime(rows["Date Referral Received"], format="%d/%m/%Y")
    assert sorted(prepared.data["referral_date"].dt.normalize()) == sorted(dates)
