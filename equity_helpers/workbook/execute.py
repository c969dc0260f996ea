"""Running the notebooks: the papermill worker pool, its workers' lifecycle, and Ctrl-C.

The kernels the workers keep for a service's notebooks are in :mod:`.kernels`."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import ServiceConfig
from ..errors import render
from ..lazy import skip_iri_checker
from ..notebooks import NOTEBOOK_DIR, NOTEBOOKS, NotebookInfo, read_glued, to_notebook
from . import kernels
from .cache import _cache_get, _cache_put, _package_hash, _step_key
from .pages import for_the_service
from .paths import _machine_roots, sanitise_paths
from .results import StepResult

log = logging.getLogger("equity_helpers")


def _kill_children() -> None:
    """End every process this one started (a notebook's kernel and what it started)."""
    try:
        import psutil
    except ImportError:  # the kernels still end: they watch for their parent going
        return
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            if hasattr(os, "killpg") and os.getpgid(child.pid) == child.pid:
                os.killpg(child.pid, signal.SIGKILL)  # a kernel leads its own group
            else:
                child.kill()
        except (OSError, psutil.Error):
            pass


def _worker_stop(*_args) -> None:
    _kill_children()
    os._exit(1)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            _worker_stop()


def _worker_init(parent: int) -> None:
    """Set up a worker: it leaves Ctrl-C to the run, and ends (with its kernel) if the run dies.

    It reads and writes notebooks without jsonschema's checker of web addresses (see
    :func:`~equity_helpers.lazy.skip_iri_checker`).
    """
    skip_iri_checker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, _worker_stop)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        _worker_stop()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class _SigintHeld:
    """Hold Ctrl-C back while worker processes start, so they never see it.

    Workers inherit the held signal and ignore it; the run itself gets a Ctrl-C pressed in
    that moment as soon as the workers have started.
    """

    def __enter__(self):
        self.active = (
            hasattr(signal, "pthread_sigmask")
            and threading.current_thread() is threading.main_thread()
        )
        if self.active:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return False


class _SigintIgnored:
    """Ignore further Ctrl-C while a stopped run tidies up (a second press cannot cut it short)."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        return False


class _InOrder:
    """Runs each notebook at once, in this process, one after another.

    For a process that may not start processes of its own: a Dask worker started as a
    daemon (its default). The notebooks still run in a kernel, which is not a Python child
    process of this one but a program started for the run (and ended when it ends).
    """

    _processes: dict = {}

    def submit(self, fn, *args) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # as a pool would report it, from the future
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """End the workers now (their kernels with them), without waiting for their steps."""
    processes = list(getattr(pool, "_processes", {}).values())
    for p in processes:
        try:
            p.terminate()
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + 3
    for p in processes:
        try:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1)
        except (OSError, ValueError, AssertionError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def _warm_up(work: str) -> None:
    """Get a worker ready before its first step comes: start its kernel for the run whose
    private folder is ``work`` (which then loads what notebooks use, in its own process),
    and load what working out a step and running a notebook need."""
    try:
        kernels.start_kernel(work, Path(work) / "notebooks")
    except Exception as exc:  # noqa: BLE001 - the first notebook starts a kernel itself
        log.info("A kernel could not be started ahead of the notebooks: %s", exc)
    import papermill  # noqa: F401

    from .. import steps  # noqa: F401


#: How papermill reports a kernel that died while starting, before any cell ran.
_KERNEL_NEVER_STARTED = "Kernel died before replying to kernel_info"

#: The name the runner's papermill engine is registered under (see :func:`_engine`).
_ENGINE = "equity_helpers"


@functools.cache
def _engine() -> str:
    """papermill's own engine, writing the output notebook when the notebook starts and
    ends (and when its kernel dies, with what ran), not after every cell.

    papermill writes the whole notebook before and after each cell by default: about 40
    writes of a notebook that grows with each chart, all while the kernel waits.
    """
    from papermill.engines import NBClientEngine, papermill_engines

    class _FewerWrites(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            output_path, nb_man.output_path = nb_man.output_path, None
            try:
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
            except BaseException:
                nb_man.output_path = output_path  # the notebook as far as it ran, for the log
                raise

    papermill_engines.register(_ENGINE, _FewerWrites)
    return _ENGINE


def _execute(source: str, output: str, params: dict, cwd: str) -> tuple[str, str, float]:
    """Run one notebook with papermill (in a worker). Returns status, message, seconds.

    The notebook runs in this thread's kernel for the run whose private folder is ``cwd``:
    the kernel its last notebook ran in, cleared first, or a new one.
    """
    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.ERROR)
    start = time.perf_counter()
    kernel = None
    try:
        for attempt in (1, 2):
            try:
                kernel = kernels.take_kernel(cwd, Path(output).parent)
                clear, kernel.used = kernel.clearing(), True
                pm.execute_notebook(
                    source,
                    output,
                    parameters=params,
                    engine_name=_engine(),
                    kernel_name="python3",
                    km=kernel.km,
                    on_notebook_start=clear,
                    progress_bar=False,
                    log_output=False,
                )
                break
            except RuntimeError as exc:
                # A kernel that never started (on a busy machine two kernels can be given
                # the same port), that died before this notebook, or that could not be
                # cleared of the last one, ran nothing of the notebook: start a new one, once.
                if kernel is not None:
                    kernel.shutdown()
                    kernel = None
                if attempt == 2 or not str(exc).startswith(
                    (_KERNEL_NEVER_STARTED, kernels.NOT_CLEARED)
                ):
                    raise
        return "ok", "", time.perf_counter() - start
    except pm.PapermillExecutionError as exc:
        detail = f"{exc.ename}: {exc.evalue}".strip()
        first = detail.splitlines()[0] if detail else "the notebook stopped with an error"
        return "failed", first[:500], time.perf_counter() - start
    except Exception as exc:  # a kernel that dies, a missing kernel: still one step's failure
        return "failed", f"{type(exc).__name__}: {exc}"[:500], time.perf_counter() - start
    finally:
        if kernel is not None:
            kernels.keep_kernel(kernel)  # kept for the run's next notebook, unless it died


@dataclass(frozen=True)
class StepJob:
    """One step of a run to work out and whose notebook to run, with where everything goes.

    Paths are text, so a job can travel to a worker process or a Dask worker as it is.
    """

    name: str
    title: str
    config: str
    prepared: str
    #: The run's private folder.
    work: str
    source: str
    target: str
    tables: str
    #: The kept copy of the finished step (in the workbook's cache).
    entry: str
    #: The steps of this run whose results this step builds on (worked out before it).
    reads: tuple[str, ...] = ()

    @property
    def results(self) -> str:
        """This step's results file, in the run's private folder."""
        return results_file(self.work, self.name)


def results_file(work: str | Path, name: str) -> str:
    """Where a step's results are written for its notebook: the run's private folder."""
    return str(Path(work) / "results" / f"{name}.pickle")


def _reads(name: str) -> list[str]:
    """The steps whose results a step builds on: the other step modules it imports."""
    from ..steps import STEPS

    module = STEPS.get(name)
    if module is None:
        return []
    found = vars(module).values()
    return [other for other, m in STEPS.items() if m is not module and any(v is m for v in found)]


def _missing_columns(info: NotebookInfo, columns: set[str]) -> list[str]:
    return [c for c in info.needs if c not in columns]


def plan_steps(
    cfg: ServiceConfig,
    prepared: Path,
    work: Path,
    *,
    cache: Path,
    fingerprint: str,
    steps: list[str] | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
    force: bool = False,
) -> tuple[list[NotebookInfo], dict[str, StepResult], list[StepJob]]:
    """Decide what each chosen step needs: nothing (skipped), its kept copy, or a run.

    A step's result is reused only when nothing it reads has changed (the extract, the
    config, every reference file and letter, the package and the step's notebook) and the
    kept copy is whole. ``force`` runs every step again. Returns the chosen steps, the
    results already known (skipped and reused), and the jobs to run: first the steps
    others build on, then in the order of the notebooks.
    """
    import nbformat
    import pyarrow.parquet as pq

    columns = set(pq.read_schema(prepared).names)
    for folder in ("notebooks", "tables", "logs", "results"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    code = _package_hash()
    results: dict[str, StepResult] = {}
    todo: list[StepJob] = []
    chosen = [n for n in NOTEBOOKS if steps is None or n.name in steps]
    for info in chosen:
        missing = _missing_columns(info, columns)
        if missing:
            msg = render("RUN003", step=info.title, columns=", ".join(missing))
            results[info.name] = StepResult(info.name, info.title, "skipped", message=msg)
            continue
        entry = cache / f"{info.name}-{_step_key(info, fingerprint, code, notebook_dir)}"
        target = work / "notebooks" / f"{info.name}.ipynb"
        if not force and _cache_get(entry) is not None:
            shutil.copy2(entry / "notebook.ipynb", target)
            if (entry / "tables").is_dir():
                shutil.copytree(entry / "tables", work / "tables", dirs_exist_ok=True)
            results[info.name] = StepResult(
                info.name, info.title, "reused", notebook=str(target), glued=read_glued(target)
            )
            continue
        source = work / "logs" / f"{info.name}.source.ipynb"
        nbformat.write(to_notebook(notebook_dir / f"{info.name}.md"), source)
        todo.append(
            StepJob(
                info.name,
                info.title,
                str(cfg.path),
                str(prepared),
                str(work),
                str(source),
                str(target),
                str(work / "logs" / f"{info.name}.tables"),
                str(entry),
            )
        )
    names = {job.name for job in todo}
    todo = [replace(job, reads=tuple(r for r in _reads(job.name) if r in names)) for job in todo]
    read = {r for job in todo for r in job.reads}
    todo.sort(key=lambda job: job.name not in read)  # a stable sort: notebook order otherwise
    return chosen, results, todo


def work_out_step(job: StepJob) -> tuple[bool, float, list[str]]:
    """Work out one step once (in a worker) and write its results for its notebook.

    The results of the steps it builds on are taken from their files, so each step is
    worked out once per run. A step that fails here is left out: its notebook works it
    out again and reports the error on its own page. Returns whether the results were
    written, the seconds taken and the steps this call worked out itself.
    """
    from ..service import open_service
    from ..steps import STEPS, columns_for
    from ..steps.base import load_results, save_results

    start = time.perf_counter()
    if job.name not in STEPS:
        return False, 0.0, []
    service = None
    try:
        service = open_service(job.config, job.prepared)
        service.columns = columns_for(job.name, service.cfg)  # only what the step reads
        for name in job.reads:
            if Path(results_file(job.work, name)).is_file():
                load_results(service, results_file(job.work, name))
        STEPS[job.name].run(service)
        save_results(service, job.results)
        written = True
    except OSError as exc:  # a full disk: the notebook works its step out itself
        log.warning("The results of %s were not written for its notebook: %s", job.name, exc)
        written = False
    except Exception as exc:  # noqa: BLE001 - reported by the step's own notebook
        log.info("%s could not be worked out ahead: %s", job.name, exc)
        written = False
    computed = list(service.computed_steps) if service is not None else []
    return written, time.perf_counter() - start, computed


def run_notebook(job: StepJob, written: bool) -> tuple[str, str, float]:
    """Run one step's notebook (in a worker), with its results file when it was written."""
    params = {"config_path": job.config, "prepared_path": job.prepared, "output_dir": job.tables}
    if written:
        params["results_path"] = job.results
    return _execute(job.source, job.target, params, job.work)


def finish_step(
    job: StepJob, status: str, message: str, seconds: float, roots: list[tuple[str, str]]
) -> StepResult:
    """Take in a step's finished notebook: keep it for reuse, or file its failure."""
    import nbformat

    work, target, tables = Path(job.work), Path(job.target), Path(job.tables)
    if status == "ok":
        nb = sanitise_paths(nbformat.read(target, as_version=4), roots)
        nbformat.write(for_the_service(nb), target)
        try:
            _cache_put(Path(job.entry), nb, tables)
        except OSError as exc:  # a full disk loses the kept copy, not the step
            log.warning("The result of %s was not kept for reuse: %s", job.name, exc)
        if tables.is_dir():
            shutil.copytree(tables, work / "tables", dirs_exist_ok=True)
        return StepResult(
            job.name, job.title, "ok", seconds, notebook=str(target), glued=read_glued(target)
        )
    log_path = work / "logs" / f"{job.name}.ipynb"
    if target.is_file():
        shutil.move(target, log_path)
    msg = render("RUN001", step=job.title, detail=message, log=f"logs/{job.name}.ipynb")
    return StepResult(job.name, job.title, "failed", seconds, msg)


def _schedule(
    todo: list[StepJob],
    workers: int,
    submit: Callable[[str, StepJob, bool], cf.Future],
    finished: Callable[[StepJob, tuple, float], None],
    started: Callable[[], object] | None = None,
) -> None:
    """Keep ``workers`` busy: each notebook as soon as its step's results exist, else the
    next step that can be worked out (a step another builds on comes first).

    ``submit(kind, job, written)`` hands a job ("work" or "notebook") to a worker;
    ``finished(job, outcome, seconds)`` takes each notebook's outcome with the seconds
    spent working its step out. ``started`` is called once the first jobs are out.
    """
    pending = list(todo)
    ready: list[StepJob] = []
    worked: dict[str, tuple] = {}
    running: dict[cf.Future, tuple[str, StepJob]] = {}
    while pending or ready or running:
        while len(running) < workers and (ready or pending):
            if ready:
                job = ready.pop(0)
                running[submit("notebook", job, worked[job.name][0])] = ("notebook", job)
                continue
            job = next((j for j in pending if all(r in worked for r in j.reads)), None)
            if job is None and running:
                break  # it waits for a step it builds on
            job = job or pending[0]
            pending.remove(job)
            running[submit("work", job, False)] = ("work", job)
        if started is not None:
            started()
            started = None
        done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            kind, job = running.pop(fut)
            try:
                outcome = fut.result()
            except cf.process.BrokenProcessPool:
                raise
            except Exception as exc:  # noqa: BLE001 - the job could not run: the step's failure
                outcome = (
                    (False, 0.0, [])
                    if kind == "work"
                    else ("failed", f"{type(exc).__name__}: {exc}"[:500], 0.0)
                )
            if kind == "work":
                worked[job.name] = outcome
                ready.append(job)
            else:
                finished(job, outcome, worked[job.name][1])


def run_steps(
    cfg: ServiceConfig,
    prepared: Path,
    work: Path,
    *,
    jobs: int,
    cache: Path,
    fingerprint: str,
    progress: Callable[[str], None],
    steps: list[str] | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
    force: bool = False,
    roots: list[tuple[str, str]] | None = None,
    while_notebooks_run: Callable[[], object] | None = None,
) -> list[StepResult]:
    """Run the steps for one service on a pool of ``jobs`` workers; reuse unchanged ones.

    Each step is worked out once, by a worker, and its notebook is handed to a worker as
    soon as its results are written (see :func:`plan_steps` for what is reused). Each
    worker starts one kernel for the service and runs its notebooks there one after
    another, clearing it between them (see :func:`_execute`); the workers, and their
    kernels, end when the service's steps are done.
    ``while_notebooks_run`` is called once the first steps are handed to the workers (the
    pipeline gets the HTML build ready).
    """
    roots = roots if roots is not None else _machine_roots()
    chosen, results, todo = plan_steps(
        cfg,
        prepared,
        work,
        cache=cache,
        fingerprint=fingerprint,
        steps=steps,
        notebook_dir=notebook_dir,
        force=force,
    )
    total = len(chosen)
    done = len(results)
    for r in results.values():
        progress(f"[{done}/{total}] {r.title}: {r.status}")
    if not todo:
        return [results[n.name] for n in chosen if n.name in results]
    ctx = multiprocessing.get_context("spawn")
    pool = None
    workers = max(1, min(jobs, len(todo)))

    def submit(kind: str, job: StepJob, written: bool) -> cf.Future:
        nonlocal pool
        args = (work_out_step, job) if kind == "work" else (run_notebook, job, written)
        try:
            with _SigintHeld():
                return pool.submit(*args)
        except cf.process.BrokenProcessPool:
            # Worker processes could not start (for example when Python runs from
            # standard input): every step is run here instead.
            pool = _InOrder()
            return pool.submit(*args)

    def finished(job: StepJob, outcome: tuple, worked_seconds: float) -> None:
        nonlocal done
        status, message, seconds = outcome
        seconds += worked_seconds
        done += 1
        results[job.name] = finish_step(job, status, message, seconds, roots)
        progress(f"[{done}/{total}] {job.title}: {status} in {seconds:.1f} s")

    try:
        # Workers start with Ctrl-C held back: the run, not each worker, answers it.
        with _SigintHeld():
            pool = (
                _InOrder()
                if multiprocessing.current_process().daemon
                else cf.ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=ctx,
                    initializer=_worker_init,
                    initargs=(os.getpid(),),
                )
            )
            for _ in range(workers):  # each worker loads what it needs before its first step
                pool.submit(_warm_up, str(work))
        progress(f"Working out the steps and running their notebooks, {workers} at a time")
        while True:
            try:
                _schedule(todo, workers, submit, finished, while_notebooks_run)
                break
            except cf.process.BrokenProcessPool:
                # The workers could not start or died: what is not finished runs here.
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _InOrder()
                todo = [job for job in todo if job.name not in results]
                while_notebooks_run = None
    except BaseException:
        if pool is not None:
            with _SigintIgnored():
                _stop_pool(pool)
                kernels.release_kernels(str(work))
        raise
    # The workers end their kernels as they exit; notebooks run here (no worker processes)
    # leave theirs in this process.
    pool.shutdown(wait=True)
    kernels.release_kernels(str(work))
    return [results[n.name] for n in chosen if n.name in results]
