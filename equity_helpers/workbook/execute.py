"""Running the notebooks: the papermill worker pool, its workers' lifecycle, and Ctrl-C."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import ServiceConfig
from ..errors import render
from ..notebooks import NOTEBOOK_DIR, NOTEBOOKS, NotebookInfo, read_glued, to_notebook
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
    """Set up a worker: it leaves Ctrl-C to the run, and ends (with its kernel) if the run dies."""
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
    daemon (its default). Each notebook still runs in its own kernel, which is not a
    Python child process of this one but a program papermill starts.
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


def _warm_up() -> None:
    """Load what running a notebook needs, in a worker, before its first notebook comes."""
    import papermill  # noqa: F401


#: How papermill reports a kernel that died while starting, before any cell ran.
_KERNEL_NEVER_STARTED = "Kernel died before replying to kernel_info"


def _execute(source: str, output: str, params: dict, cwd: str) -> tuple[str, str, float]:
    """Run one notebook with papermill (in a worker process). Returns status, message, seconds."""
    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.ERROR)
    # The kernel's own start-up chatter goes to a log file, not the user's terminal.
    err_log = Path(output).with_suffix(".stderr.log")
    saved = os.dup(2)
    with open(err_log, "w") as fh:
        os.dup2(fh.fileno(), 2)
    start = time.perf_counter()
    try:
        for attempt in (1, 2):
            try:
                pm.execute_notebook(
                    source,
                    output,
                    parameters=params,
                    cwd=cwd,
                    kernel_name="python3",
                    progress_bar=False,
                    log_output=False,
                )
                break
            except RuntimeError as exc:
                # A kernel that never started (on a busy machine two kernels can be given
                # the same port) ran nothing of the notebook: start a new one, once.
                if attempt == 2 or not str(exc).startswith(_KERNEL_NEVER_STARTED):
                    raise
        return "ok", "", time.perf_counter() - start
    except pm.PapermillExecutionError as exc:
        detail = f"{exc.ename}: {exc.evalue}".strip()
        first = detail.splitlines()[0] if detail else "the notebook stopped with an error"
        return "failed", first[:500], time.perf_counter() - start
    except Exception as exc:  # a kernel that dies, a missing kernel: still one step's failure
        return "failed", f"{type(exc).__name__}: {exc}"[:500], time.perf_counter() - start
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def work_out_results(cfg: ServiceConfig, prepared: Path, names: list[str], path: Path) -> list[str]:
    """Run each named step's ``run`` once in this process and write the results to ``path``.

    The steps a step builds on (the summary reads the gaps and the evaluation) are worked
    out once too and written with them. A step that fails here is left out: its notebook
    works it out again and reports the error on its own page. Returns the steps written.
    """
    from ..service import open_service
    from ..steps import STEPS
    from ..steps.base import save_results

    service = open_service(str(cfg.path), str(prepared))
    for name in names:
        if name not in STEPS:
            continue
        start = time.perf_counter()
        try:
            STEPS[name].run(service)
        except Exception as exc:  # noqa: BLE001 - reported by the step's own notebook
            log.info("%s could not be worked out ahead: %s", name, exc)
            continue
        log.debug("%s worked out in %.2f s", name, time.perf_counter() - start)
    try:
        return save_results(service, path)
    except OSError as exc:  # a full disk: each notebook works its step out itself
        log.warning("The step results were not written for the notebooks: %s", exc)
        return []


def _missing_columns(info: NotebookInfo, columns: set[str]) -> list[str]:
    return [c for c in info.needs if c not in columns]


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
    """Run the notebooks for one service in parallel; reuse unchanged finished steps.

    A step's result is reused only when nothing it reads has changed (the extract, the
    config, every reference file and letter, the package and the step's notebook) and the
    kept copy is whole. ``force`` runs every step again. ``while_notebooks_run`` is called
    once the notebooks are handed to the workers (the pipeline gets the HTML build ready).
    """
    import nbformat
    import pyarrow.parquet as pq

    columns = set(pq.read_schema(prepared).names)
    (work / "notebooks").mkdir(parents=True, exist_ok=True)
    (work / "tables").mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    code = _package_hash()
    roots = roots if roots is not None else _machine_roots()
    results: dict[str, StepResult] = {}
    todo = []
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
        step_tables = work / "logs" / f"{info.name}.tables"
        params = {
            "config_path": str(cfg.path),
            "prepared_path": str(prepared),
            "output_dir": str(step_tables),
        }
        todo.append((info, source, target, params, entry, step_tables))

    total = len(chosen)
    done = len(results)
    for r in results.values():
        progress(f"[{done}/{total}] {r.title}: {r.status}")
    if not todo:
        return [results[n.name] for n in chosen if n.name in results]
    ctx = multiprocessing.get_context("spawn")
    pool = None
    try:
        # Workers start with Ctrl-C held back: the run, not each worker, answers it.
        workers = max(1, min(jobs, len(todo)))
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
            # The workers start and load papermill while this process works out the steps.
            for _ in range(workers):
                pool.submit(_warm_up)
        # Every step is worked out once, here; the notebooks take the results from the file.
        shared = work / "step-results.pickle"
        start = time.perf_counter()
        if work_out_results(cfg, prepared, [job[0].name for job in todo], shared):
            for job in todo:
                job[3]["results_path"] = str(shared)
        progress(
            f"Worked out the steps in {time.perf_counter() - start:.1f} s; running the notebooks"
        )
        with _SigintHeld():
            futures = {
                pool.submit(_execute, str(job[1]), str(job[2]), job[3], str(work)): job
                for job in todo
            }
        if while_notebooks_run is not None:
            while_notebooks_run()
        for fut in cf.as_completed(futures):
            info, src, tgt, params, entry, step_tables = futures[fut]
            try:
                status, message, seconds = fut.result()
            except cf.process.BrokenProcessPool:
                # Worker processes could not start (for example when Python runs
                # from standard input): run this step here instead.
                status, message, seconds = _execute(str(src), str(tgt), params, str(work))
            done += 1
            if status == "ok":
                nb = sanitise_paths(nbformat.read(tgt, as_version=4), roots)
                nbformat.write(for_the_service(nb), tgt)
                try:
                    _cache_put(entry, nb, step_tables)
                except OSError as exc:  # a full disk loses the kept copy, not the step
                    log.warning("The result of %s was not kept for reuse: %s", info.name, exc)
                if step_tables.is_dir():
                    shutil.copytree(step_tables, work / "tables", dirs_exist_ok=True)
                results[info.name] = StepResult(
                    info.name,
                    info.title,
                    "ok",
                    seconds,
                    notebook=str(tgt),
                    glued=read_glued(tgt),
                )
            else:
                log_path = work / "logs" / f"{info.name}.ipynb"
                if tgt.is_file():
                    shutil.move(tgt, log_path)
                msg = render(
                    "RUN001", step=info.title, detail=message, log=f"logs/{info.name}.ipynb"
                )
                results[info.name] = StepResult(info.name, info.title, "failed", seconds, msg)
            progress(f"[{done}/{total}] {info.title}: {status} in {seconds:.1f} s")
    except BaseException:
        if pool is not None:
            with _SigintIgnored():
                _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return [results[n.name] for n in chosen if n.name in results]
