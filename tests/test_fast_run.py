"""The fast workbook run: every step is worked out once, by a worker, and its notebook takes its
results from the step's own file in the run's private folder; a notebook run without that file
works them out itself.
Glued values look exactly as ``myst_nb.glue`` makes them. Two services run in turn each get
their own figures, and a PDF that cannot be printed does not stop the HTML workbook."""

from __future__ import annotations

import json
import math
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import papermill as pm
import pytest

from equity_helpers import open_service
from equity_helpers.config import load_config
from equity_helpers.notebooks import read_glued, to_notebook
from equity_helpers.preparation import prepare_to_file
from equity_helpers.steps import STEPS, data_completeness
from equity_helpers.steps import base as steps_base
from equity_helpers.workbook import run_many, run_workbook
from equity_helpers.workbook.execute import plan_steps, work_out_step
from equity_helpers.workbook.site import site_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"
ONE_STEP = ["data-completeness"]


@pytest.fixture(scope="module")
def worked_out(tmp_path_factory):
    """The sample prepared once and every step worked out once, as the runner's workers do:
    each in its own call, in the order the runner plans, each with its own results file."""
    folder = tmp_path_factory.mktemp("run")
    cfg = load_config(SAMPLE_CFG)
    prepared, _ = prepare_to_file(cfg, folder / "prepared.parquet")
    _, _, todo = plan_steps(
        cfg, prepared, folder, cache=folder / "cache", fingerprint="test", force=True
    )
    outcomes = {job.name: work_out_step(job) for job in todo}
    return folder, prepared, todo, outcomes


def test_each_step_is_worked_out_once_and_written_to_its_own_file(worked_out):
    folder, prepared, todo, outcomes = worked_out
    assert sorted(outcomes) == sorted(STEPS)
    for job in todo:
        written, _, computed = outcomes[job.name]
        assert written and Path(job.results).is_file(), job.name
        assert Path(job.results).parent == folder / "results"  # the run's private folder
        # Each call worked out its own step and nothing else: the steps it builds on came
        # from their files.
        assert computed == [job.name.replace("-", "_")], job.name
    for job in todo:
        service = open_service(str(SAMPLE_CFG), str(prepared), "", job.results)
        STEPS[job.name].run(service)
        # The notebook's service takes its step from the file and works nothing out...
        assert service.computed_steps == [], job.name
        # ...and never reads the extract's rows (a big extract is not held in every kernel).
        assert service._data is None, job.name
    # A service given no results reads the rows when a step needs them.
    service = open_service(str(SAMPLE_CFG), str(prepared))
    assert service._data is None
    STEPS["data-completeness"].run(service)
    assert len(service.data) == service.account["rows_used"]


def test_a_step_that_builds_on_others_is_planned_after_them(worked_out):
    _, _, todo, _ = worked_out
    order = [job.name for job in todo]
    summary = next(job for job in todo if job.name == "summary-and-plan")
    assert "access-and-outcome-gaps" in summary.reads
    for job in todo:
        for read in job.reads:
            assert order.index(read) < order.index(job.name), (read, job.name)


def test_results_made_for_another_service_are_not_taken(worked_out, tmp_path):
    folder, prepared, todo, _ = worked_out
    path = next(job.results for job in todo if job.name == "data-completeness")
    with open(path, "rb") as fh:
        saved = pickle.load(fh)
    saved["service"] = "Another service"
    other = tmp_path / "other.pickle"
    other.write_bytes(pickle.dumps(saved))
    service = open_service(str(SAMPLE_CFG), str(prepared), "", str(other))
    data_completeness.run(service)
    assert service.computed_steps == ["data_completeness"]


def _run_summary(tmp_path: Path, prepared: Path, results: str) -> tuple[list[str], dict]:
    """Run the summary notebook with papermill, then ask its kernel what it worked out."""
    nb = to_notebook(ROOT / "notebooks" / "summary-and-plan.md")
    nb.cells.append(nbformat.v4.new_code_cell("print(sorted(service.computed_steps))"))
    source = tmp_path / f"summary-{bool(results)}.ipynb"
    nbformat.write(nb, source)
    out = tmp_path / f"summary-{bool(results)}-run.ipynb"
    pm.execute_notebook(
        str(source),
        str(out),
        parameters={
            "config_path": str(SAMPLE_CFG),
            "prepared_path": str(prepared),
            "output_dir": str(tmp_path / f"tables-{bool(results)}"),
            "results_path": results,
        },
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    done = nbformat.read(out, as_version=4)
    printed = "".join(o.get("text", "") for o in done.cells[-1].outputs)
    return eval(printed.strip()), read_glued(done)  # a printed list of names


@pytest.mark.slow
def test_the_summary_notebook_takes_the_runners_results(worked_out, tmp_path):
    _, prepared, todo, _ = worked_out
    path = next(job.results for job in todo if job.name == "summary-and-plan")
    computed, glued = _run_summary(tmp_path, prepared, path)
    # The summary's kernel worked out no step: not the summary, not the steps it builds on.
    assert computed == []
    # Without the file (in the book, in JupyterLab) the notebook works everything out itself,
    # and finds the same figures.
    computed_alone, glued_alone = _run_summary(tmp_path, prepared, "")
    assert {"summary_and_plan", "access_and_outcome_gaps"} <= set(computed_alone)
    assert glued and glued == glued_alone


@pytest.mark.parametrize("value", [5974, 12.5, "Most people (95%) said so.", [1, 2], math.nan])
def test_glue_gives_what_myst_nb_gives(value, monkeypatch):
    import IPython.display
    from myst_nb.ext import glue as myst_glue

    ours, theirs = [], []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: ours.append((a, k)))
    monkeypatch.setattr(myst_glue, "ipy_display", lambda *a, **k: theirs.append((a, k)))
    steps_base.glue("figure", value)
    myst_glue.glue("figure", value, display=False)
    assert ours == theirs and len(ours) == 1


def test_no_heavy_module_is_loaded_by_a_notebooks_first_lines():
    """What every notebook imports loads neither SciPy, textstat nor myst_nb (nor nbformat)."""
    import subprocess

    code = (
        "import sys\n"
        "from equity_helpers import open_service\n"
        "from equity_helpers.steps import summary_and_plan, readability\n"
        "print(sorted(m for m in ('scipy', 'textstat', 'myst_nb', 'nbformat', 'sphinx')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_site_is_configured_from_the_books_config(tmp_path):
    """The workbook's site takes the book's settings and changes only what differs."""
    import yaml

    cfg = load_config(SAMPLE_CFG)
    book = yaml.safe_load((ROOT / "_config.yml").read_text())
    book["sphinx"]["config"]["html_theme_options"]["show_navbar_depth"] = 4
    book["parse"]["myst_enable_extensions"].append("linkify")
    changed = tmp_path / "_config.yml"
    changed.write_text(yaml.safe_dump(book))
    (tmp_path / "book" / "_ext").mkdir(parents=True)
    site = site_config(cfg, changed)
    options = site["sphinx"]["config"]
    # Taken from the book.
    assert options["html_theme_options"]["show_navbar_depth"] == 4
    assert "linkify" in site["parse"]["myst_enable_extensions"]
    assert options["html_css_files"] == book["sphinx"]["config"]["html_css_files"]
    # What differs for a workbook.
    assert site["title"] == f"Workbook: {cfg.service_name}"
    assert site["execute"] == {"execute_notebooks": "off"}
    footer = cfg.disclosure.warning() or cfg.disclosure.describe()
    assert options["html_theme_options"]["extra_footer"] == footer
    assert site["html"]["extra_footer"] == footer
    assert "equity_helpers.safe_html" in site["sphinx"]["extra_extensions"]
    assert site["sphinx"]["local_extensions"] == {
        "playbook_directives": str((tmp_path / "book" / "_ext").resolve())
    }
    assert "exclude_patterns" not in site


@pytest.mark.slow
def test_two_services_in_turn_each_get_their_own_figures(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    import second_service

    folder = tmp_path / "second"
    folder.mkdir()
    extract = second_service.make_extract(folder)
    second_cfg = second_service.write_config(folder, extract)
    results = run_many([SAMPLE_CFG, second_cfg], tmp_path / "out", jobs=2, steps=ONE_STEP)
    assert [r.ok for r in results] == [True, True]
    published = []
    for config, result in zip([SAMPLE_CFG, second_cfg], results, strict=True):
        # Each service's figures, worked out on their own, in this process.
        own = data_completeness.run(open_service(str(config))).values
        figures = json.loads((result.out_dir / "manifest.json").read_text())["headlines"]
        assert figures, result.service
        for key, value in figures.items():
            assert value == own[key], (result.service, key)
        published.append(figures)
    assert published[0]["rows_used"] != published[1]["rows_used"]


@pytest.mark.slow
def test_a_pdf_that_cannot_be_printed_still_publishes_the_html(
    tmp_path, monkeypatch, sample_one_step
):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))  # no Chromium to be found
    # As after a first run without --pdf: the step is reused, the pages are built again.
    out = sample_one_step(tmp_path / "out")
    result = run_workbook(SAMPLE_CFG, out, jobs=1, steps=ONE_STEP, pdf=True)
    assert not result.reused
    assert result.pdf is None and "[PDF001]" in (result.pdf_error or "")
    assert not result.ok
    assert result.html_index.is_file()
    assert "Derbyshire Long COVID" in result.html_index.read_text()
    assert list((tmp_path / "out").rglob("*.pdf")) == []
    # Not marked complete: the next run builds it again (and tries the PDF again).
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["complete"] is False


def test_a_kernel_that_never_started_is_started_again_once(tmp_path, monkeypatch):
    """On a busy machine a kernel can die before it answers; that is not the step's failure."""
    from equity_helpers.workbook import execute
    from equity_helpers.workbook import kernels as kept

    calls = []
    kernels = []

    class Kernel:
        """A stand-in for a started kernel: how many were started, and which were ended."""

        def __init__(self, run, logs):
            self.run, self.used, self.ended = run, False, False
            self.km = SimpleNamespace(close_clients=lambda: None)
            kernels.append(self)

        def alive(self):
            return not self.ended

        def clearing(self):
            return ("clear", self) if self.used else None

        def shutdown(self):
            self.ended = True

    def kernel_dies_first(*args, **kwargs):
        calls.append((kwargs["km"], kwargs["on_notebook_start"]))
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(kept, "Kernel", Kernel)
    monkeypatch.setattr(pm, "execute_notebook", kernel_dies_first)
    run = str(tmp_path)
    status, message, _ = execute._execute("in.ipynb", str(tmp_path / "out.ipynb"), {}, run)
    assert (status, message, len(calls)) == ("ok", "", 2)
    # The kernel that died was ended, and the notebook ran in a new one (nothing to clear),
    # kept for the run.
    assert [k.ended for k in kernels] == [True, False]
    assert calls == [(kernels[0].km, None), (kernels[1].km, None)]

    def kernel_always_dies(*args, **kwargs):
        calls.append((kwargs["km"], kwargs["on_notebook_start"]))
        raise RuntimeError("Kernel died before replying to kernel_info")

    calls.clear()
    monkeypatch.setattr(pm, "execute_notebook", kernel_always_dies)
    status, message, _ = execute._execute("in.ipynb", str(tmp_path / "out.ipynb"), {}, run)
    assert status == "failed" and "Kernel died" in message and len(calls) == 2
    # The kept kernel was tried first, cleared as the notebook started, then a new one
    # with nothing to clear; neither is kept.
    assert calls == [(kernels[1].km, ("clear", kernels[1])), (kernels[2].km, None)]
    assert len(kernels) == 3
    assert all(k.ended for k in kernels) and kept.release_kernels(run) == 0

    def kept_kernel_cannot_be_cleared(*args, **kwargs):
        calls.append((kwargs["km"], kwargs["on_notebook_start"]))
        if kwargs["on_notebook_start"] is not None:
            raise RuntimeError(kept.NOT_CLEARED)

    calls.clear()
    monkeypatch.setattr(pm, "execute_notebook", kept_kernel_cannot_be_cleared)
    run = str(tmp_path / "another-run")  # the run above is over: its kernels are not kept
    for _ in range(2):  # the first notebook starts a kernel; the second finds it kept
        status, message, _ = execute._execute("in.ipynb", str(tmp_path / "out.ipynb"), {}, run)
        assert (status, message) == ("ok", "")
    # The second notebook's kernel could not be cleared: it was ended and a new one used.
    assert calls == [
        (kernels[3].km, None),
        (kernels[3].km, ("clear", kernels[3])),
        (kernels[4].km, None),
    ]
    assert [k.ended for k in kernels[3:]] == [True, False]
    assert kept.release_kernels(run) == 1


def test_each_notebook_goes_out_as_soon_as_its_step_is_worked_out():
    """The runner's schedule, with stand-in jobs on two threads: no worker waits for the
    steps to be worked out all together, and a step that builds on another waits for it."""
    import concurrent.futures as cf
    import threading

    from equity_helpers.workbook.execute import StepJob, _schedule

    def job(name, reads=()):
        return StepJob(name, name, "", "", "", "", "", "", "", tuple(reads))

    todo = [job("gaps"), job("a"), job("b"), job("summary", ["gaps"]), job("c")]
    events: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    busy = [0, 0]  # running now, most at once

    def task(kind, name):
        with lock:
            busy[0] += 1
            busy[1] = max(busy)
            events.append(("start", kind, name))
        with lock:
            busy[0] -= 1
            events.append(("end", kind, name))
        return (True, 0.5, [name]) if kind == "work" else ("ok", "", 1.0)

    finished = []
    with cf.ThreadPoolExecutor(2) as pool:
        _schedule(
            todo,
            2,
            lambda kind, j, written: pool.submit(task, kind, j.name),
            lambda j, outcome, worked: finished.append((j.name, outcome, worked)),
        )
    assert sorted(name for name, *_ in finished) == ["a", "b", "c", "gaps", "summary"]
    assert all(outcome == ("ok", "", 1.0) and worked == 0.5 for _, outcome, worked in finished)
    assert busy[1] <= 2
    at = {(e, k, n): i for i, (e, k, n) in enumerate(events)}
    for j in todo:
        assert at[("end", "work", j.name)] < at[("start", "notebook", j.name)]
    assert at[("end", "work", "gaps")] < at[("start", "work", "summary")]
    # The first notebook starts before the last step is worked out.
    first_notebook = min(at[("start", "notebook", j.name)] for j in todo)
    assert first_notebook < at[("start", "work", "c")]
