"""Shared fixtures: paths, the real reference data, and one book build per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
TEST_OUTPUT = ROOT / "test-output"
SAMPLE_CONFIG = ROOT / "sample_data" / "sample_service.yml"

#: Fixtures that build the book, a workbook or run notebooks: a test using one is slow.
SLOW_FIXTURES = {
    "built_book",
    "sample_workbook",
    "sample_folder",
    "run_notebook",
    "sample_one_step",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark as slow every test that builds the book or a workbook, or starts Chromium.

    So ``pytest -m "not slow"`` is the fast loop, whatever a new test forgets to say.
    (Runs before pytest deselects by mark.)
    """
    for item in items:
        # Notebook cells that nbval collects have no fixtures.
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("browser") or SLOW_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The real public reference data kept beside the repository (never copied into it)."""
    if not SHARED_REFERENCE.is_dir():
        pytest.fail(
            f"The real reference data is missing: expected it at {SHARED_REFERENCE}. "
            "Tests check the loaders and statistics against it."
        )
    return SHARED_REFERENCE


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the whole book once, as `make book` does, and return its HTML folder.

    The build uses the strict flags of the book's definition of green
    (nitpicky, warnings as errors, keep going to list every problem).
    """
    out = TEST_OUTPUT / "book"
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    cmd = [
        str(bin_dir / "jupyter-book"),
        "build",
        str(ROOT),
        "-n",
        "-W",
        "--keep-going",
        "--path-output",
        str(out),
    ]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    (out / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        pytest.fail(
            "The book build failed or warned; see test-output/book/build.log\n"
            + proc.stdout[-4000:]
        )
    return out / "_build" / "html"


@pytest.fixture(scope="session")
def run_notebook(request):
    """A notebook executed under papermill, as the workbook runs it, cached for the session.

    Usage: ``nb, glued = run_notebook("data-completeness", config_path=...)``.
    Returns the executed notebook and the values it glued. A workbook step asked for with
    no parameters is the notebook the shared sample workbook ran (so each step runs once
    per session, not once per test file); any other is run here.
    """
    import nbformat
    import papermill as pm

    from equity_helpers.notebooks import NOTEBOOKS, read_glued, to_notebook

    steps = {info.name for info in NOTEBOOKS}
    cache: dict = {}

    def _run(name: str, **params):
        key = (name, tuple(sorted(params.items())))
        if key not in cache and name in steps and not params:
            published = request.getfixturevalue("sample_folder") / "notebooks" / f"{name}.ipynb"
            nb = nbformat.read(published, as_version=4)
            cache[key] = (nb, read_glued(nb))
        if key not in cache:
            out_dir = TEST_OUTPUT / "notebooks"
            out_dir.mkdir(parents=True, exist_ok=True)
            src = out_dir / f"{name}.source.ipynb"
            nbformat.write(to_notebook(name), src)
            out = out_dir / f"{name}-{abs(hash(key)) % 10**8}.ipynb"
            pm.execute_notebook(
                str(src),
                str(out),
                parameters=params,
                cwd=str(ROOT),
                kernel_name="python3",
                progress_bar=False,
            )
            nb = nbformat.read(out, as_version=4)
            cache[key] = (nb, read_glued(nb))
        return cache[key]

    return _run


@pytest.fixture(scope="session")
def sample_workbook():
    """Build the sample service's workbook once, with the CLI as a user would.

    Returns (output folder, completed process, seconds taken).
    """
    import time

    out = TEST_OUTPUT / "workbooks"
    shutil.rmtree(out, ignore_errors=True)
    cli = Path(sys.executable).with_name("equity-workbook")
    start = time.perf_counter()
    proc = subprocess.run(
        [
            str(cli),
            "run",
            "--config",
            str(SAMPLE_CONFIG),
            "--out",
            str(out),
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return out, proc, time.perf_counter() - start


@pytest.fixture(scope="session")
def sample_folder(sample_workbook) -> Path:
    """The sample's published workbook folder (``<out>/<slug>``), from the one shared build.

    For tests that only read the workbook: never write into it, copy it first.
    """
    from equity_helpers.config import load_config
    from equity_helpers.workbook import slugify

    out, proc, _ = sample_workbook
    folder = out / slugify(load_config(SAMPLE_CONFIG).service_name)
    if proc.returncode != 0 or not (folder / "manifest.json").is_file():
        pytest.fail("The sample workbook did not build:\n" + (proc.stdout + proc.stderr)[-4000:])
    return folder


@pytest.fixture(scope="session")
def sample_one_step(tmp_path_factory):
    """An output folder holding the sample's one-step workbook (data completeness) and its
    step cache, built once. Returns a function that copies it to a new folder and returns
    the copy (``<out>``; the workbook is ``<out>/<slug>``), for tests whose first run is
    this one: a copy is the same files as a run of its own, without the minute it takes.
    """
    from equity_helpers.workbook import run_workbook

    built = tmp_path_factory.mktemp("one-step") / "out"
    result = run_workbook(SAMPLE_CONFIG, built, jobs=1, steps=["data-completeness"])
    if not result.ok:
        pytest.fail(f"The sample's one-step workbook did not build: {result.failures}")

    def copy(to: Path) -> Path:
        shutil.copytree(built, to, symlinks=True)
        return to

    return copy


def pytest_terminal_summary(terminalreporter):
    """Say how many pages the browser and axe checked, and what they found."""
    report = TEST_OUTPUT / "accessibility.json"
    if report.is_file():
        import json

        data = json.loads(report.read_text())
        terminalreporter.write_line(
            f"Accessibility: axe-core checked {data['pages']} pages (book and workbook); "
            f"{data['violations']} violations in all, {len(data['serious_or_critical'])} serious or critical."
        )
    readability = TEST_OUTPUT / "readability.txt"
    if readability.is_file():
        terminalreporter.write_line(
            "Readability: " + readability.read_text().strip().replace("\n", "; ")
        )


def pytest_sessionstart(session):
    """Reports from an earlier session must not be mistaken for this one's.

    (Not in the nested nbval session that tests/test_nbval.py starts.)
    """
    if Path(session.config.rootpath).resolve() != ROOT:
        return
    for name in ("accessibility.json", "readability.txt"):
        (TEST_OUTPUT / name).unlink(missing_ok=True)
