"""One kernel per worker per service: the notebooks of a run share a kernel, cleared between
them, and no kernel outlives its run or carries one service's data into another's.
"""

from __future__ import annotations

import threading
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from equity_helpers.workbook import cluster, execute, run_workbook

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "sample_service.yml"


def _notebook(folder: Path, name: str, *cells: str) -> str:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return str(path)


def _run(run: Path, source: str) -> tuple[str, nbformat.NotebookNode]:
    """Run a notebook as a step of ``run`` in this thread; its status and what it printed."""
    output = run / "notebooks" / Path(source).name
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


def test_notebooks_of_a_run_share_a_kernel_cleared_between_them(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
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
        assert execute.release_kernels(str(run)) == 1
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
        execute.release_kernels(str(one), str(two))
    assert _kernels_of(psutil.Process().pid) == []


def test_each_thread_keeps_its_own_kernel(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    who = _notebook(tmp_path, "who", WHO)
    pids: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        pids[name] = [_printed(_run(run, who)[1])[0].split()[0] for _ in range(2)]

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
        assert execute.release_kernels(str(run)) == 2
    assert _kernels_of(psutil.Process().pid) == []


@pytest.mark.slow
def test_no_kernel_is_left_after_a_local_run(tmp_path):
    result = run_workbook(
        SAMPLE, tmp_path / "out", jobs=2, steps=["data-completeness", "pathway"], force=True
    )
    assert result.ok, result.failures
    assert _kernels_of(psutil.Process().pid) == []


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
