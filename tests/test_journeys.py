"""The three journeys the playbook offers, followed as a new user would.

* The analyst: `init` a starter config for an unfamiliar extract, `check` it, fill in the
  TODOs, `check` again, then `run` a workbook.
* The trainer: the exercises notebook runs and every answer shows something.
* The reader: the landing page offers all three routes, each part says what it helps you
  decide and how long it takes, every notebook page offers downloads, and the
  troubleshooting page lists every message the tool can give.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from equity_helpers.errors import CATALOGUE
from equity_helpers.init import guess_columns

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
