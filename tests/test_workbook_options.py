"""Workbook options and faults: several services, a baseline, a PDF, interruption and
an output folder that cannot be written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from equity_helpers.errors import WorkbookError
from equity_helpers.workbook import run_many, run_workbook

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"
ONE_STEP = ["data-completeness"]
pytestmark = pytest.mark.slow


def test_several_services_one_failing(tmp_path, sample_one_step):
    raw = yaml.safe_load(SAMPLE_CFG.read_text())
    base = SAMPLE_CFG.parent
    raw["extract"]["path"] = str(base / "absent.csv")
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        raw["reference"][key] = str(base / raw["reference"][key])
    raw.pop("readability")
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(raw))
    # The sample's workbook is there from an earlier run (and is reused): what is checked
    # is that the failing service is reported beside it on the index.
    out = sample_one_step(tmp_path / "out")
    results = run_many([SAMPLE_CFG, broken], out, jobs=1, steps=ONE_STEP)
    assert [r.ok for r in results] == [True, False]
    assert "CFG006" in results[1].error
    index = (out / "index.html").read_text()
    assert "Derbyshire Long COVID Rehabilitation Service (synthetic example)" in index
    assert "failed: A file named in the config cannot be found [CFG006]" in index
    # The first service's headline figure is on the index, from its own manifest.
    rows_used = json.loads((results[0].out_dir / "manifest.json").read_text())["headlines"][
        "rows_used"
    ]
    assert f"<td>{rows_used}</td>" in index


def test_baseline_adds_change_since(tmp_path, sample_one_step):
    first = sample_one_step(tmp_path / "before")  # an earlier run's output folder
    kept = tmp_path / "baseline"
    shutil.copytree(next(p for p in first.iterdir() if not p.name.startswith(".")), kept)
    manifest = json.loads((kept / "manifest.json").read_text())
    manifest["headlines"]["ethnicity_recorded_pct"] -= 5.0  # as if recording was worse then
    (kept / "manifest.json").write_text(json.dumps(manifest))
    # The step is taken from the cache; a baseline is read when the pages are assembled.
    after = sample_one_step(tmp_path / "after")
    second = run_workbook(SAMPLE_CFG, after, jobs=1, steps=ONE_STEP, baseline=kept)
    assert [s.status for s in second.steps] == ["reused"] and not second.reused
    page = (second.out_dir / "html" / "index.html").read_text()
    front = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "Baseline" in front and "Change" in front
    assert re.search(
        r"Ethnicity recorded \(%\) (\d+\.\d) (\d+\.\d) \+5\.0 ",
        front,
    )


@pytest.mark.browser
def test_pdf_is_printed_with_chromium(tmp_path, sample_one_step):
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Chromium is missing: `make test` installs it.")
    # As after a first run without --pdf: the step is reused, the pages are built and printed.
    out = sample_one_step(tmp_path / "out")
    result = run_workbook(SAMPLE_CFG, out, jobs=1, steps=ONE_STEP, pdf=True)
    assert not result.reused
    pdf = result.out_dir / "workbook.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 20_000


def test_interrupted_run_publishes_nothing(tmp_path):
    out = tmp_path / "out"

    def interrupt(message):
        if message.startswith("Assembling"):
            raise KeyboardInterrupt

    with pytest.raises(WorkbookError) as err:
        run_workbook(SAMPLE_CFG, out, jobs=1, steps=ONE_STEP, progress=interrupt)
    assert err.value.code == "RUN004"
    assert [p.name for p in out.iterdir() if not p.name.startswith(".cache")] == []
    # The next run starts clean and reuses the step that had finished.
    messages = []
    result = run_workbook(SAMPLE_CFG, out, jobs=1, steps=ONE_STEP, progress=messages.append)
    assert result.ok and result.steps[0].status == "reused"
    assert (result.out_dir / "html" / "index.html").is_file()


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkbookError) as err:
        run_workbook(SAMPLE_CFG, blocker / "out", jobs=1, steps=ONE_STEP)
    assert err.value.code == "RUN002"
    assert "The output folder cannot be written" in str(err.value)


def test_an_extract_with_only_the_required_columns(tmp_path):
    """Every step runs or is skipped with a reason; none fails for want of a column."""
    import pandas as pd

    raw = pd.read_csv(ROOT / "sample_data" / "long_covid_service_extract.csv", dtype=str)
    keep = [
        "Referral Ref",
        "Date Referral Received",
        "Age at Referral",
        "Gender",
        "Ethnic Category",
    ]
    raw[keep].to_csv(tmp_path / "extract.csv", index=False)
    cfg = yaml.safe_load(SAMPLE_CFG.read_text())
    cfg["extract"]["path"] = str(tmp_path / "extract.csv")
    cfg["columns"] = {k: v for k, v in cfg["columns"].items() if v in keep}
    cfg["values"] = {}
    cfg["reference"] = {
        "imd_edition": 2025,
        "imd_path": str(SAMPLE_CFG.parent / cfg["reference"]["imd_path"]),
    }
    cfg.pop("readability")
    cfg["evaluation"].pop("change_date")
    path = tmp_path / "minimal.yml"
    path.write_text(yaml.safe_dump(cfg))
    result = run_workbook(path, tmp_path / "out", jobs=2)
    statuses = {s.name: s.status for s in result.steps}
    assert result.ok, [s.message for s in result.failures]
    assert statuses["pathway"] == "skipped" and statuses["evaluation"] == "skipped"
    assert statuses["data-completeness"] == "ok" and statuses["summary-and-plan"] == "ok"
    page = (result.out_dir / "html" / "steps" / "pathway.html").read_text()
    assert "This step was skipped" in page and "accepted" in page


def test_switching_control_off_is_stated_on_every_page_and_table(tmp_path):
    cfg = yaml.safe_load(SAMPLE_CFG.read_text())
    base = SAMPLE_CFG.parent
    cfg["extract"]["path"] = str(base / cfg["extract"]["path"])
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        cfg["reference"][key] = str(base / cfg["reference"][key])
    cfg["readability"] = {k: str(base / v) for k, v in cfg["readability"].items()}
    cfg["disclosure"] = {"enabled": False}
    path = tmp_path / "off.yml"
    path.write_text(yaml.safe_dump(cfg))
    result = run_workbook(
        path, tmp_path / "out", jobs=2, steps=["data-completeness", "readability"]
    )
    warning = "disclosure control is OFF"
    pages = [p for p in (result.out_dir / "html").rglob("*.html") if "_static" not in p.parts]
    assert len(pages) >= 5
    assert [p.name for p in pages if warning not in p.read_text()] == []
    tables = list((result.out_dir / "tables").glob("*.csv"))
    assert tables and all(warning in t.read_text().splitlines()[2] for t in tables)
