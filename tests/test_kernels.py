"""One kernel per worker per service: the notebooks of a run share a kernel, cleared between
them, and no kernel outlives its run or carries one service's data into another's.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import re
import tempfile
import threading
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from equity_helpers.workbook import cluster, execute, kernels, run_workbook
from equity_helpers.workbook.folders import RUN_PREFIX

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "sample_service.yml"


@pytest.fixture
def run(tmp_path) -> Path:
    """A run's private folder, as the runner makes it."""
    folder = tmp_path / "run"
    folder.mkdir()
    return folder


def _notebook(folder: Path, name: str, *cells: str) -> str:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return str(path)


def _run(run: Path, source: str, name: str = "") -> tuple[str, nbformat.NotebookNode]:
    """Run a notebook as a step of ``run`` in this thread (saved as ``name``); its status
    and the notebook as it ran."""
    output = run / "notebooks" / (name or Path(source).name)
    output.parent.mkdir(parents=True, exist_ok=True)
    status, message, _ = execute._execute(source, str(output), {}, str(run))
    assert message == "" or status == "failed", message
    return status, nbformat.read(output, as_version=4)


def _printed(nb) -> list[str]:
    return [o.text for cell in nb.cells for o in cell.outputs if o.output_type == "stream"]


def _kernels_of(pid: int) -> list[psutil.Process]:
    """The ipykernel processes started by the process ``pid`` or anything it started."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if any("ipykernel_launcher" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


WHO = "import os\nprint(os.getpid(), os.getcwd())"


def test_notebooks_of_a_run_share_a_kernel_cleared_between_them(tmp_path, run):
    first = _notebook(
        tmp_path,
        "first",
        WHO,
        "secret = 'row of the first notebook'\n"
        "import matplotlib.pyplot as plt\n"
        "plt.figure()\n"
        "print(plt.get_fignums())",
    )
    second = _notebook(
        tmp_path,
        "second",
        WHO,
        "print('secret' in dir(), 'plt' in dir())\n"
        "import matplotlib.pyplot as plt\n"
        "print(plt.get_fignums())",
    )
    try:
        status1, nb1 = _run(run, first)
        status2, nb2 = _run(run, second)
        assert (status1, status2) == ("ok", "ok")
        who1, figures1 = _printed(nb1)
        who2, seen, figures2 = _printed(nb2)[0], *_printed(nb2)[1].splitlines()
        # The same kernel process, started in the run's private folder.
        assert who1 == who2
        assert who1.split(maxsplit=1)[1].strip() == str(run)
        # Nothing of the first notebook is seen by the second: no name, no open chart.
        assert figures1.strip() == "[1]"
        assert seen == "False False"
        assert figures2 == "[]"
        # Each saved notebook numbers its cells from 1, as in a new kernel.
        assert [c.execution_count for c in nb2.cells] == [1, 2]
        assert len(_kernels_of(psutil.Process().pid)) == 1
    finally:
        assert kernels.release_kernels(str(run)) == 1
    assert _kernels_of(psutil.Process().pid) == []


def test_a_kernel_started_ahead_has_loaded_the_package_and_leaves_no_trace(tmp_path, run):
    first = _notebook(
        tmp_path,
        "first",
        WHO,
        "import sys\n"
        "print(sorted(m for m in ('equity_helpers.steps', 'matplotlib.pyplot') if m in sys.modules))",
        "import matplotlib.pyplot as plt\n"
        "names = ('_fig', '_ax', '_plt', '_io', '_plots', 'equity_helpers')\n"
        "print([n for n in names if n in dir()], plt.get_fignums())",
    )
    try:
        kernels.start_kernel(str(run), run / "notebooks")
        started = _kernels_of(psutil.Process().pid)
        assert len(started) == 1
        status, nb = _run(run, first)
        assert status == "ok"
        who, loaded, seen = _printed(nb)
        # The notebook ran in the kernel started ahead, in the run's private folder.
        assert int(who.split()[0]) == started[0].pid
        assert who.split(maxsplit=1)[1].strip() == str(run)
        # That kernel had loaded the package's steps and Matplotlib before the notebook...
        assert loaded.strip() == "['equity_helpers.steps', 'matplotlib.pyplot']"
        # ...and the notebook sees none of its names and no open chart, and numbers its
        # cells from 1, as in a new kernel.
        assert seen.strip() == "[] []"
        assert [c.execution_count for c in nb.cells] == [1, 2, 3]
    finally:
        assert kernels.release_kernels(str(run)) == 1
    assert _kernels_of(psutil.Process().pid) == []


def test_another_run_and_a_dead_kernel_each_get_a_new_kernel(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for run in (one, two):
        run.mkdir()
    who = _notebook(tmp_path, "who", WHO)
    dies = _notebook(tmp_path, "dies", "import os\nos._exit(1)")
    try:
        pid_one = _printed(_run(one, who)[1])[0].split()[0]
        kernel_one = _kernels_of(psutil.Process().pid)
        # A notebook that kills its kernel fails alone; the next one gets a new kernel.
        assert _run(one, dies)[0] == "failed"
        pid_after = _printed(_run(one, who)[1])[0].split()[0]
        assert pid_after != pid_one
        # Another service's run never reuses the kernel: the old one is ended first.
        pid_two = _printed(_run(two, who)[1])[0].split()[0]
        assert pid_two not in (pid_one, pid_after)
        assert [int(pid_two)] == [p.pid for p in _kernels_of(psutil.Process().pid)]
        assert not any(p.is_running() for p in kernel_one)
    finally:
        kernels.release_kernels(str(one), str(two))
    assert _kernels_of(psutil.Process().pid) == []


def test_each_thread_keeps_its_own_kernel(tmp_path, run):
    who = _notebook(tmp_path, "who", WHO)
    pids: dict[str, list[str]] = {}
    both = threading.Barrier(2)  # both threads alive at once, so never one thread's id

    def worker(name: str) -> None:
        both.wait()
        runs = [_run(run, who, f"{name}{i}.ipynb")[1] for i in range(2)]
        pids[name] = [_printed(nb)[0].split()[0] for nb in runs]
        both.wait()

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Each thread ran both its notebooks in one kernel, not shared with the other thread.
        assert len(set(pids["a"])) == 1 and len(set(pids["b"])) == 1
        assert pids["a"][0] != pids["b"][0]
    finally:
        assert kernels.release_kernels(str(run)) == 2
    assert _kernels_of(psutil.Process().pid) == []


def test_a_worker_ends_its_kernel_when_it_exits(tmp_path):
    """A pool's worker ends without ``atexit``: its kernel is still ended as it exits."""
    run = tmp_path / "run"
    (run / "notebooks").mkdir(parents=True)
    who = _notebook(tmp_path, "who", WHO)
    pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        for name in ("one", "two"):
            output = str(run / "notebooks" / f"{name}.ipynb")
            assert pool.submit(execute._execute, who, output, {}, str(run)).result()[0] == "ok"
    finally:
        pool.shutdown(wait=True)
    pids = {
        _printed(nbformat.read(run / "notebooks" / f"{n}.ipynb", 4))[0].split()[0]
        for n in ("one", "two")
    }
    assert len(pids) == 1  # both notebooks ran in the worker's one kernel
    assert not _running(int(pids.pop()))


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kernels_in_runs_of_this_process() -> list[psutil.Process]:
    """Kernels anywhere on the machine started in a private folder of a run of this
    process (a kernel whose worker ended is no longer a child of this process)."""
    mine = str(Path(tempfile.gettempdir()) / f"{RUN_PREFIX}{os.getpid()}-")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any("ipykernel_launcher" in part for part in proc.info["cmdline"] or ()):
                if proc.cwd().startswith(mine) and _running(proc.pid):
                    found.append(proc)
        except psutil.Error:
            pass
    return found


@pytest.mark.slow
def test_no_kernel_is_left_after_a_local_run(tmp_path):
    result = run_workbook(
        SAMPLE, tmp_path / "out", jobs=2, steps=["data-completeness", "pathway"], force=True
    )
    assert result.ok, result.failures
    assert _kernels_of(psutil.Process().pid) == []
    assert _kernels_in_runs_of_this_process() == []


@pytest.mark.slow
def test_no_kernel_is_left_on_the_workers_after_a_cluster_run(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
    ) as local:
        (result,) = cluster.run_on_cluster(
            [SAMPLE],
            tmp_path / "out",
            local,
            progress=lambda m: None,
            steps=["data-completeness", "pathway", "demographics"],
            force=True,
        )
        assert result.ok, result.failures
        # The worker is still up: its kernels were ended when the service finished.
        assert _kernels_of(psutil.Process().pid) == []
        assert _kernels_in_runs_of_this_process() == []


def _cells(nb) -> list[tuple]:
    """Each cell's code, number and outputs, without what differs between any two runs:
    the time a chart was drawn, the random names of a table's HTML elements and where an
    object was in memory."""
    text = json.dumps([[c.source, c.get("execution_count"), c.get("outputs")] for c in nb.cells])
    text = re.sub(r"<dc:date>[^<]*</dc:date>", "<dc:date/>", text)
    text = re.sub(r" at 0x[0-9a-f]+>", " at 0x>", text)
    return [
        tuple(json.dumps(v) for v in cell)
        for cell in json.loads(re.sub(r"T_[0-9a-f]{5}", "T_", text))
    ]


def _files(folder: Path) -> dict:
    """The files in a folder with their contents (a workbook's, without the time it was
    written)."""
    found: dict = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                found[path.relative_to(folder)] = {
                    n: book.read(n) for n in book.namelist() if n != "docProps/core.xml"
                }
        elif path.is_file():
            found[path.relative_to(folder)] = path.read_bytes()
    return found


@pytest.mark.slow
def test_notebooks_in_kept_kernels_match_a_new_kernel_for_each(tmp_path, sample_workbook):
    """Every step's notebook as the sample workbook ran it, several one after another in
    each worker's kept kernel, gives the same page as the notebook run in a new kernel of
    its own: the same outputs, glued values and tables.

    The kept-kernel side is the session's sample build (as ``equity-workbook run`` ran it,
    two workers with a kernel each): its kept copy of each step, written before anything
    else is done to the notebook, with its tables. The new-kernel side is each notebook
    run here with papermill in a kernel started for it, two at a time.
    """
    import papermill as pm

    from equity_helpers.config import load_config
    from equity_helpers.notebooks import read_glued
    from equity_helpers.preparation import prepare_to_file
    from equity_helpers.workbook.pages import for_the_service
    from equity_helpers.workbook.paths import _machine_roots, sanitise_paths

    out, proc, _ = sample_workbook
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The build started from an empty folder: every step ran, none was reused.
    kept = {
        entry.name.rsplit("-", 1)[0]: entry
        for entry in out.glob(".cache/*/steps/*")
        if (entry / "notebook.ipynb").is_file()
    }
    cfg = load_config(SAMPLE)
    work = tmp_path / "work"
    work.mkdir()
    prepared, _ = prepare_to_file(cfg, work / "prepared.parquet")
    _, _, todo = execute.plan_steps(
        cfg, prepared, work, cache=tmp_path / "cache", fingerprint="test", force=True
    )
    assert len(todo) == 8
    assert set(kept) == {job.name for job in todo}
    written = {job.name: execute.work_out_step(job)[0] for job in todo}
    assert all(written.values()), written
    # What the workbook takes out of every notebook it keeps: this machine's folders and
    # the notes about the synthetic sample.
    roots = _machine_roots((work, "."), (SAMPLE.parent, "<config folder>"))

    def fresh(job) -> nbformat.NotebookNode:
        params = {
            "config_path": job.config,
            "prepared_path": job.prepared,
            "output_dir": job.tables,
            "results_path": job.results,
        }
        pm.execute_notebook(
            job.source,
            job.target,
            parameters=params,
            cwd=job.work,
            kernel_name="python3",
            progress_bar=False,
        )
        return for_the_service(sanitise_paths(nbformat.read(job.target, as_version=4), roots))

    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        new_notebooks = dict(zip((job.name for job in todo), pool.map(fresh, todo), strict=True))
    for job in todo:
        one = nbformat.read(kept[job.name] / "notebook.ipynb", as_version=4)
        new = new_notebooks[job.name]
        # The parameters cell names where things go: the one place the two may differ.
        cells, cells_new = _cells(one), _cells(new)
        differ = [i for i, (a, b) in enumerate(zip(cells, cells_new, strict=True)) if a != b]
        assert all(one.cells[i].metadata.get("tags") == ["injected-parameters"] for i in differ), (
            job.name,
            [one.cells[i].source[:200] for i in differ],
        )
        assert read_glued(one) == read_glued(new) and read_glued(one), job.name
        tables, tables_new = _files(kept[job.name] / "tables"), _files(Path(job.tables))
        assert tables == tables_new and tables, job.name


def test_a_notebook_is_written_when_it_starts_and_ends_not_after_every_cell(
    tmp_path, run, monkeypatch
):
    import papermill.engines
    import papermill.execute

    writes = []
    for module in (papermill.engines, papermill.execute):
        original = module.write_ipynb

        def counted(nb, path, _original=original):
            writes.append(path)
            return _original(nb, path)

        monkeypatch.setattr(module, "write_ipynb", counted)
    cells = [f"print({i})" for i in range(6)]
    try:
        status, nb = _run(run, _notebook(tmp_path, "six", *cells))
        assert status == "ok"
        assert _printed(nb) == [f"{i}\n" for i in range(6)]
        assert len(writes) <= 2  # at the start and the end; papermill's default is 13
        # A notebook whose kernel dies is still written, with what ran before it died.
        writes.clear()
        status, nb = _run(
            run, _notebook(tmp_path, "dies", "print('before')", "import os\nos._exit(1)")
        )
        assert status == "failed" and _printed(nb) == ["before\n"]
        assert len(writes) <= 2
    finally:
        kernels.release_kernels(str(run))
