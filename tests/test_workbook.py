"""End to end: the workbook command on the sample, on a differently shaped service,
with a failing step, and re-run with nothing changed."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from equity_helpers.notebooks import NOTEBOOKS
from equity_helpers.workbook import run_workbook, slugify

sys.path.insert(0, str(Path(__file__).parent))
import second_service  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("equity-workbook")
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"
pytestmark = pytest.mark.slow


def visible_text(path: Path) -> str:
    text = re.sub(
        r"<(script|style)[^>]*>.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S
    )
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))
    return text.replace("\u2019", "'")  # the book's typography curls apostrophes


@pytest.fixture(scope="module")
def sample_run(sample_workbook):
    return sample_workbook


def test_sample_workbook_builds(sample_run):
    out, proc, _ = sample_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    folder = out / slugify("Derbyshire Long COVID Rehabilitation Service (synthetic example)")
    assert f"Open: {folder / 'html' / 'index.html'}" in proc.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert [s["status"] for s in manifest["steps"]] == ["ok"] * len(NOTEBOOKS)
    # No half-built folders are left behind.
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "partial" in p.name]


def test_front_page_shows_service_account_and_rule(sample_run):
    out, _, _ = sample_run
    folder = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    front = visible_text(folder / "html" / "index.html")
    manifest = json.loads((folder / "manifest.json").read_text())
    acc = manifest["account"]
    raw = pd.read_csv(ROOT / "sample_data" / "long_covid_service_extract.csv", dtype=str)
    assert acc["rows_read"] == len(raw)
    assert "Derbyshire Long COVID Rehabilitation Service (synthetic example)" in front
    assert f"Rows read from the extract {len(raw):,}" in front
    assert f"Rows analysed {acc['rows_used']:,}" in front
    assert acc["rows_read"] == acc["rows_used"] + sum(acc["excluded"].values())
    assert "Counts of 1 to 7" in front
    for info in NOTEBOOKS:
        assert info.title in front
    assert "pandas" in front and "Versions and config" in front
    # Paths in the config are shown as file names only.
    assert str(ROOT) not in (folder / "html" / "index.html").read_text()


def test_each_step_page_has_results_key_question_and_notes(sample_run):
    out, _, _ = sample_run
    folder = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    manifest = json.loads((folder / "manifest.json").read_text())
    glued = {k: v for s in manifest["steps"] for k, v in s["glued"].items()}
    for info in NOTEBOOKS:
        page = folder / "html" / "steps" / f"{info.name}.html"
        text = visible_text(page)
        assert "What the guide asks" in text, info.name
        assert "Key question" in text, info.name
        assert "Your team's notes" in text, info.name
        assert "Traceback" not in text, info.name
        # The book's note that a page runs on the synthetic sample is not in a service's
        # own workbook, neither on its pages nor in its notebooks.
        source = (ROOT / "notebooks" / f"{info.name}.md").read_text(encoding="utf-8")
        assert "synthetic sample service" in source, info.name
        assert "synthetic sample service" not in text, info.name
        published = (folder / "notebooks" / f"{info.name}.ipynb").read_text(encoding="utf-8")
        assert "synthetic sample service" not in published, info.name
        # Charts are SVG: sharp on screen and in print.
        assert len(list((folder / "html" / "_images").glob("*.svg"))) > 0
        assert not list((folder / "html" / "_images").glob("*.png"))
    completeness = visible_text(folder / "html" / "steps" / "data-completeness.html")
    # A glued figure appears in the narrative, with the service's own number.
    assert f"The extract held {glued['rows_read']} rows" in completeness
    # (the glued number sits in its own element, so a space may separate it from the %)
    pct = f"{glued['ethnicity_recorded_pct']:.1f}"
    assert re.search(rf"Ethnicity is recorded for {re.escape(pct)} ?%", completeness)


def test_tables_notebooks_and_downloads(sample_run):
    out, _, _ = sample_run
    folder = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    csvs = sorted((folder / "tables").glob("*.csv"))
    assert csvs, "no summary tables were exported"
    for csv in csvs:
        assert csv.read_text(encoding="utf-8").startswith("#"), csv.name
        assert csv.with_suffix(".xlsx").is_file()
        wb = openpyxl.load_workbook(csv.with_suffix(".xlsx"))
        assert "Counts of 1 to 7" in str(wb.active["A1"].value) + str(wb.active["A2"].value)
    assert sorted(p.stem for p in (folder / "notebooks").glob("*.ipynb")) == sorted(
        n.name for n in NOTEBOOKS
    )
    tables_page = (folder / "html" / "tables.html").read_text()
    assert "_downloads" in tables_page and ".xlsx" in tables_page


def test_unchanged_rerun_is_reused_and_fast(sample_run):
    out, _, first = sample_run
    start = time.perf_counter()
    proc = subprocess.run(
        [str(CLI), "run", "--config", str(SAMPLE_CFG), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    second = time.perf_counter() - start
    assert proc.returncode == 0
    assert "reused" in proc.stdout
    # Reuse must skip the notebooks entirely; the ratio is reported, not timed strictly.
    assert second < first


def test_second_service_excel_with_labels(tmp_path):
    extract = second_service.make_extract(tmp_path)
    config = second_service.write_config(tmp_path, extract)
    result = run_workbook(config, tmp_path / "out", jobs=2)
    assert result.ok, [s.message for s in result.failures]
    front = (result.out_dir / "html" / "index.html").read_text()
    # The service name holds HTML characters: it is escaped, never injected.
    assert "Community &lt;MSK&gt; Service &amp; Friends" in front
    assert "<MSK>" not in front
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["account"]["rows_read"] == 1500
    headlines = manifest["headlines"]
    assert headlines["rows_used"] == f"{manifest['account']['rows_used']:,}"
    # Labels were mapped to codes: ethnicity is mostly recorded, so the figure is high.
    assert headlines["ethnicity_recorded_pct"] > 70


def test_a_failing_step_does_not_lose_the_others(tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    broken = notebooks / "pathway.md"
    broken.write_text(
        broken.read_text()
        + "\n```{code-cell} ipython3\nraise RuntimeError('planted failure')\n```\n"
    )
    proc = subprocess.run(
        [
            str(CLI),
            "run",
            "--config",
            str(SAMPLE_CFG),
            "--out",
            str(tmp_path / "out"),
            "--notebooks",
            str(notebooks),
            "--steps",
            "data-completeness,pathway,evaluation",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert "1 step(s) failed" in proc.stdout and "planted failure" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    folder = next((tmp_path / "out").glob("derbyshire*"))
    statuses = {
        s["name"]: s["status"] for s in json.loads((folder / "manifest.json").read_text())["steps"]
    }
    assert statuses == {"data-completeness": "ok", "pathway": "failed", "evaluation": "ok"}
    page = visible_text(folder / "html" / "steps" / "pathway.html")
    assert "This step did not run" in page and "planted failure" in page
    assert "logs/pathway.ipynb" in page
    assert (folder / "logs" / "pathway.ipynb").is_file()
    assert (
        "Special cause" in visible_text(folder / "html" / "steps" / "evaluation.html")
        or "common cause" in visible_text(folder / "html" / "steps" / "evaluation.html").lower()
    )


def test_bad_config_stops_before_any_notebook(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text(
        SAMPLE_CFG.read_text().replace(
            "extract:\n  path: long_covid_service_extract.csv", "extract:\n  path: missing.csv"
        )
    )
    proc = subprocess.run(
        [str(CLI), "run", "--config", str(cfg), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "A file named in the config cannot be found [CFG006]" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list((tmp_path / "out").glob("*/manifest.json"))


def test_plain_papermill_works(tmp_path):
    """Analysts can run one notebook with papermill alone, as the README shows."""
    bin_dir = Path(sys.executable).parent
    nb = tmp_path / "data-completeness.ipynb"
    subprocess.run(
        [
            str(bin_dir / "jupytext"),
            "--to",
            "ipynb",
            str(ROOT / "notebooks" / "data-completeness.md"),
            "-o",
            str(nb),
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [str(bin_dir / "papermill"), str(nb), str(out), "-p", "config_path", str(SAMPLE_CFG)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from equity_helpers.notebooks import read_glued

    assert read_glued(out)["rows_read"] == "6,000"
    helped = subprocess.run(
        [str(bin_dir / "papermill"), "--help-notebook", str(nb)], capture_output=True, text=True
    )
    assert 'config_path: str (default "sample_data/sample_service.yml")' in helped.stdout
    assert "the service's config file" in helped.stdout


def test_a_headline_figure_that_could_not_be_worked_out_reads_not_available():
    """On a tiny service the Core20 share is withheld and the slope index cannot be worked
    out: the steps glue None (read back as None, never the text "nan"), the front page and
    the index say so in words, with the step's reason, and no change is worked out from
    such a figure."""
    from equity_helpers.notebooks import glued_value
    from equity_helpers.workbook.results import _as_number, _fmt

    assert glued_value("nan") is None and glued_value("-inf") is None
    assert glued_value("[1.5, nan]") == [1.5, None] and glued_value("'nan'") == "nan"
    assert _fmt(None, "core20_ratio") == "not available"
    why = "Too few referrals come from Core20 areas to show their share."
    assert _fmt(None, "core20_share_referrals", why) == f"not available. {why}"
    assert _fmt(12.25, "core20_share_referrals", why) == "12.2"  # a figure needs no reason
    assert _fmt(float("nan"), "core20_pct") == "not available"  # an older run's manifest
    assert _fmt(float("inf")) == "not available"
    assert _fmt([1.25, None]) == "1.2, not available"
    assert _fmt(80.0, "core20_pct") == "80.0" and _fmt("no group") == "no group"
    assert _as_number(float("nan")) is None and _as_number("nan") is None
    assert _as_number("5,974") == 5974.0 and _as_number(3) == 3.0 and _as_number("none") is None
