"""Shared fixtures: paths, the real reference data, and one book build per test session.

The suite runs on one worker per core, at most two (pytest-xdist, ``--dist loadfile``,
set in pyproject.toml; ``-n 0`` runs it in one process). A test module's tests stay on one worker, so a module's fixtures are
made once; the session's book and sample workbook are made once for the whole run, by
whichever worker needs them first (see :func:`_once_per_run`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from equity_helpers.lazy import skip_iri_checker

# Loading nbformat (many test modules do) would build jsonschema's parser of web addresses,
# about a second of CPU, which no notebook schema uses: left out here as in a run's own
# processes. (nbval, which loads nbformat before this file is read, is off by default in
# pyproject.toml; tests/test_nbval.py turns it on for its own session.)
skip_iri_checker()

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

    On pytest-xdist workers, modules holding slow tests go first, so the run's last
    minutes are short tests that fill the gaps (see :func:`pytest_xdist_make_scheduler`).
    """
    for item in items:
        # Notebook cells that nbval collects have no fixtures.
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("browser") or SLOW_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)
    if hasattr(config, "workerinput"):
        modules: dict[str, bool] = {}
        for item in items:
            module = item.nodeid.split("::")[0]
            modules[module] = modules.get(module, False) or bool(item.get_closest_marker("slow"))
        items.sort(key=lambda item: not modules[item.nodeid.split("::")[0]])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadfile``, a module's tests run on one worker (so its fixtures are
    made once), and so do all the modules that read the built book: the worker that
    builds it uses it, and no other worker sits waiting for it.

    (pytest-xdist's ``loadgroup`` marks would do this, but its release here cannot rename
    the tests of pytest 9 that it groups.)
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    reads_book: dict[str, bool] = {}

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module not in reads_book:
                path = Path(config.rootpath) / module
                reads_book[module] = path.is_file() and "built_book" in path.read_text()
            return "built-book" if reads_book[module] else module

    return ModuleScheduling(config, log)


def _once_per_run(tmp_path_factory, request, name: str, build):
    """``build()`` (which returns something JSON can hold) run once for the whole test run.

    On one process this is just ``build()``. On several pytest-xdist workers, the first
    worker to ask builds while holding a lock and writes down what it built; the others
    wait for the lock and read that. The lock and the record live in the run's own
    temporary folder, which every worker of this run shares and no other run does.
    """
    if not hasattr(request.config, "workerinput"):
        return build()
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent
    record = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.is_file():
            return json.loads(record.read_text())
        value = build()
        record.write_text(json.dumps(value))
        return value


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
def sample_service():
    """The sample service opened once for the session. A step's ``run`` keeps its result on
    the service, so each step is worked out on the sample once, whichever modules ask.

    For tests that only read it: never change its data, config or results.
    """
    from equity_helpers import open_service

    return open_service(str(SAMPLE_CONFIG))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, request) -> Path:
    """Build the whole book once, as `make book` does, and return its HTML folder.

    The build uses the strict flags of the book's definition of green
    (nitpicky, warnings as errors, keep going to list every problem).
    """
    return Path(_once_per_run(tmp_path_factory, request, "built-book", _build_book))


def _package_hash() -> str:
    """A fingerprint of the package's code, as `make book` takes it."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(str(p) for p in (ROOT / "equity_helpers").rglob("*.py")):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def _build_book() -> str:
    out = TEST_OUTPUT / "book"
    out.mkdir(parents=True, exist_ok=True)
    # An earlier run's build is reused where nothing has changed: Sphinx reads again only
    # the pages whose text changed, and Jupyter Book reuses the outputs of the notebooks
    # whose code is unchanged. Neither knows about the package that computes the outputs,
    # so when it has changed the earlier build is dropped and every notebook runs again.
    stamp = out / "_build" / ".package-hash"
    if not stamp.is_file() or stamp.read_text().strip() != _package_hash():
        shutil.rmtree(out / "_build", ignore_errors=True)
        stamp.parent.mkdir(parents=True)
        stamp.write_text(_package_hash())
    _run_book_notebooks(out / "_build" / ".jupyter_cache")
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
    return str(out / "_build" / "html")


def _run_book_notebooks(cache_path: Path, at_once: int = 2) -> None:
    """Run the book's notebooks two at a time into its execution cache, before the build.

    The build (``execute_notebooks: cache``) runs each notebook it finds no finished run
    of, one after another; a notebook run here is read, run and kept exactly as the build
    would (MyST-NB's reader, the notebook's folder as the working folder, errors not
    allowed, the book's time limit), so the build takes its outputs from the cache. A
    notebook that fails here is not kept: the build runs it again and reports the error.
    """
    import concurrent.futures as cf

    import yaml
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution
    from myst_nb.core.read import read_myst_markdown_notebook

    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    cache = get_cache(cache_path)
    todo = []
    for md in sorted((ROOT / "notebooks").glob("*.md")):
        nb = read_myst_markdown_notebook(md.read_text(encoding="utf-8"), path=md)
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            todo.append((md, nb))

    def run(item):
        md, nb = item
        return single_nb_execution(
            nb, cwd=str(md.parent), timeout=execute["timeout"], allow_errors=False
        )

    with cf.ThreadPoolExecutor(max_workers=at_once) as pool:
        for (md, nb), result in zip(todo, pool.map(run, todo), strict=True):
            if result.err is None:
                record = cache.add_nb_to_project(
                    str(md), read_data={"type": "plugin", "name": "myst_nb_md"}
                )
                cache.cache_notebook_bundle(
                    CacheBundleIn(nb, record.uri, data={"execution_seconds": result.time}),
                    check_validity=False,
                    overwrite=True,
                )


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
            if hasattr(request.config, "workerinput"):  # each worker writes its own copies
                out_dir = out_dir / request.config.workerinput["workerid"]
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
def sample_workbook(tmp_path_factory, request):
    """Build the sample service's workbook once, with the CLI as a user would.

    Returns (output folder, completed process, seconds taken).
    """
    run = _once_per_run(tmp_path_factory, request, "sample-workbook", _build_sample_workbook)
    proc = subprocess.CompletedProcess(run["args"], run["returncode"], run["stdout"], run["stderr"])
    return Path(run["out"]), proc, run["seconds"]


def _build_sample_workbook() -> dict:
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
    seconds = time.perf_counter() - start
    return {
        "out": str(out),
        "args": proc.args,
        "returncode": proc.returncode,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "seconds": seconds,
    }


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
def sample_one_step(tmp_path_factory, request):
    """An output folder holding the sample's one-step workbook (data completeness) and its
    step cache, built once. Returns a function that copies it to a new folder and returns
    the copy (``<out>``; the workbook is ``<out>/<slug>``), for tests whose first run is
    this one: a copy is the same files as a run of its own, without the minute it takes.
    """
    from equity_helpers.workbook import run_workbook

    def build() -> str:
        built = tmp_path_factory.mktemp("one-step") / "out"
        result = run_workbook(SAMPLE_CONFIG, built, jobs=1, steps=["data-completeness"])
        if not result.ok:
            pytest.fail(f"The sample's one-step workbook did not build: {result.failures}")
        return str(built)

    built = Path(_once_per_run(tmp_path_factory, request, "one-step", build))

    def copy(to: Path) -> Path:
        shutil.copytree(built, to, symlinks=True)
        return to

    return copy


def pytest_terminal_summary(terminalreporter):
    """Say how many attacks the built workbooks met, how many pages the browser and axe
    checked, and what they found."""
    from attack.conftest import report_attacks  # tests/attack, beside this file

    report_attacks(terminalreporter)
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
    if hasattr(session.config, "workerinput"):  # a worker: the run's controller did this
        return
    for name in ("accessibility.json", "readability.txt"):
        (TEST_OUTPUT / name).unlink(missing_ok=True)
