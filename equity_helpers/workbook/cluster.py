"""Build many services' workbooks on a Dask distributed cluster.

``equity-workbook run --scheduler ADDRESS`` sends the same work as a local run to a Dask
cluster, which many analytics platforms already run. Each service's run is split into
tasks: preparing its extract; for each step, working the step out and then running its
notebook (a step that builds on another waits for that step's results); and assembling
its HTML workbook once its steps are done. The workers take the tasks of every service as
they come free, with the same outputs, the same failure isolation (a failing step, or a
service whose extract cannot be read, never stops the others) and the same progress
lines as a local run.

What the cluster needs:

- the workers see the configs, the extracts, the reference files and the output folder
  at the same paths as the machine that starts the run (shared storage);
- each run's private folder (the prepared extract and the steps' results, deleted when
  the run ends) is made in the temporary folder of the machine that starts the run, so
  on a cluster of several machines that folder (``TMPDIR``) must be a shared folder that
  every worker can read and write, at the same path, and that only the team can open;
- the workers have the same version of the playbook installed: checked before any work
  is sent (RUN008 names the version on each side).

Tasks pass each other only files in the run's private folder and small records (the
steps' results as they appear on the page); nothing of one service's data stays in a
worker's memory for another. Each worker thread keeps one kernel for the service whose
notebooks it is running, cleared between them; it ends that kernel before it runs a
notebook of another service, and every worker ends a service's kernels as soon as the
service's workbook is assembled.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import PlaybookError, WorkbookError
from ..notebooks import NOTEBOOK_DIR, NOTEBOOKS
from .cache import _package_hash
from .execute import _reads, finish_step, plan_steps, run_notebook, work_out_step
from .folders import RunInterrupted
from .index import write_index
from .kernels import release_kernels
from .pipeline import (
    _begin,
    _claim,
    _finish,
    _prepare,
    _private_folder,
    _reused,
    _Run,
    failed_service,
)
from .results import StepResult, WorkbookResult

#: The topic the workers' progress lines travel on.
TOPIC = "equity-workbook-progress"


def _version() -> str:
    """This machine's playbook version: a hash of the package and the notebooks."""
    return _package_hash()


def _sender(service: str) -> Callable[[str], None]:
    """On a worker: send progress lines back to the machine that started the run."""
    from distributed import get_worker

    worker = get_worker()

    def progress(message: str) -> None:
        worker.log_event(TOPIC, {"service": service, "message": message})

    return progress


def _prepare_task(run: _Run, steps, notebook_dir: Path, force: bool) -> dict:
    """On a worker: prepare the extract and plan the service's steps."""
    try:
        prepared, meta = _prepare(run.cfg, run.work, _sender(run.cfg.path.stem))
        chosen, known, todo = plan_steps(
            run.cfg,
            prepared,
            run.work,
            cache=run.out / ".cache" / run.name / "steps",
            fingerprint=run.fingerprint,
            steps=steps,
            notebook_dir=notebook_dir,
            force=force,
        )
    except OSError as exc:
        raise WorkbookError("RUN002", path=str(run.work), detail=exc.strerror or str(exc)) from None
    return {
        "meta": meta,
        "chosen": [n.name for n in chosen],
        "known": known,
        "todo": {job.name: job for job in todo},
    }


def _work_task(plan: dict, name: str, *_before):
    """On a worker: work out one step (after the steps it builds on, given as ``_before``)."""
    job = plan["todo"].get(name)
    return None if job is None else work_out_step(job)


def _notebook_task(plan: dict, name: str, worked, roots: list) -> StepResult | None:
    """On a worker: run one step's notebook and take in its result."""
    job = plan["todo"].get(name)
    if job is None:
        return None  # skipped, or reused from the kept copy
    written, worked_seconds, _ = worked
    try:
        status, message, seconds = run_notebook(job, written)
    except Exception as exc:  # noqa: BLE001 - one step's failure, as in a local run
        status, message, seconds = "failed", f"{type(exc).__name__}: {exc}"[:500], 0.0
    return finish_step(job, status, message, seconds + worked_seconds, roots)


def _finish_task(run: _Run, plan: dict, *made: StepResult | None) -> WorkbookResult:
    """On a worker: assemble the service's HTML workbook from its steps, and publish it."""
    by_name = {r.name: r for r in made if r is not None} | plan["known"]
    results = [by_name[name] for name in plan["chosen"] if name in by_name]
    try:
        return _finish(run, plan["meta"], results, _sender(run.cfg.path.stem))
    except OSError as exc:
        raise WorkbookError("RUN002", path=str(run.out), detail=exc.strerror or str(exc)) from None


def _in_order(names: list[str]) -> list[str]:
    """The steps with each one after the steps it builds on (otherwise as given)."""
    ordered: list[str] = []

    def add(name: str, seen: tuple = ()) -> None:
        if name in ordered or name in seen:
            return
        for read in _reads(name):
            if read in names:
                add(read, (*seen, name))
        ordered.append(name)

    for name in names:
        add(name)
    return ordered


class _Service:
    """One service's run as the machine that started it sees it: its lock, folder and tasks."""

    def __init__(self, index: int, path: str, out: Path, started: float):
        self.index, self.path, self.out, self.started = index, path, out, started
        self.lock = self.work_lock = self.run = None
        self.total = self.done = 0

    def tidy(self) -> None:
        """Delete the run's private folder and let the workbook folder go."""
        if self.run is not None and self.run.work is not None:
            shutil.rmtree(self.run.work, ignore_errors=True)
        for lock in (self.work_lock, self.lock):
            if lock is not None:
                lock.release()


def _submit_service(client, service: _Service, options: dict) -> dict:
    """Claim the service's workbook folder here, then send its tasks to the cluster.

    Returns the futures to watch, each with what it is; a workbook that is reused (nothing
    changed) or a service that cannot start is given as the result at once.
    """
    steps = options.get("steps")
    force = bool(options.get("force"))
    baseline = options.get("baseline")
    notebook_dir = Path(options.get("notebook_dir") or NOTEBOOK_DIR)
    cfg, out, name, identity, service.lock = _claim(service.path, service.out)
    run = _begin(
        cfg,
        out,
        name,
        identity,
        baseline=baseline,
        pdf=bool(options.get("pdf")),
        steps=steps,
        notebook_dir=notebook_dir,
    )
    reused = _reused(
        run, force=force, baseline=baseline, started=service.started, progress=lambda m: None
    )
    if reused is not None:
        return {"result": reused}
    _, service.work_lock = _private_folder(run)
    service.run = run
    plan = client.submit(_prepare_task, run, steps, notebook_dir, force, pure=False)
    names = [n.name for n in NOTEBOOKS if steps is None or n.name in steps]
    worked: dict = {}
    notebooks: dict = {}
    for step in _in_order(names):
        before = [worked[r] for r in _reads(step) if r in worked]
        worked[step] = client.submit(_work_task, plan, step, *before, pure=False)
        notebooks[step] = client.submit(
            _notebook_task, plan, step, worked[step], run.roots, pure=False
        )
    finish = client.submit(_finish_task, run, plan, *notebooks.values(), pure=False)
    watch = {plan: (service, "plan", None), finish: (service, "finish", None)}
    watch |= {fut: (service, "step", step) for step, fut in notebooks.items()}
    return {"watch": watch}


#: The scheduler named ``local``: a cluster of this machine's own, for one run.
LOCAL = "local"


def _on_this_machine(config_paths, out, *, progress, timeout, **options):
    """Build the workbooks on a Dask cluster started on this machine for the run: one
    worker process for each of ``jobs`` (each core, unless given), each taking one task at a
    time. Services then overlap: one service's HTML is built while another's steps run."""
    from distributed import LocalCluster

    workers = options.pop("jobs", None) or os.cpu_count() or 1
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        return run_on_cluster(
            config_paths, out, local, progress=progress, timeout=timeout, **options
        )


def run_on_cluster(
    config_paths: list[str | Path],
    out: str | Path,
    scheduler,
    *,
    progress: Callable[[str], None] = print,
    timeout: float = 20,
    **options,
):
    """Build every service's workbook on the Dask cluster at ``scheduler``.

    ``scheduler`` is the scheduler's address (``tcp://host:8786``), a Dask cluster
    object (such as ``LocalCluster``), or ``"local"``: a cluster of this machine's own,
    started for the run and ended with it. Returns one result per config, in the order given,
    and writes the index page comparing them when there are several. ``timeout`` is how
    long to wait for the scheduler to answer, in seconds; ``options`` are those of
    :func:`~equity_helpers.workbook.run_workbook` (``jobs`` is left to the cluster).
    """
    from distributed import Client, as_completed

    if scheduler == LOCAL:
        return _on_this_machine(config_paths, out, progress=progress, timeout=timeout, **options)
    out = Path(out).resolve()
    paths = [str(Path(p).resolve()) for p in config_paths]
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise WorkbookError(
            "RUN007", address=str(scheduler), detail=str(exc) or "no answer"
        ) from None
    results: list = [None] * len(paths)
    try:
        here = _version()
        there = set(client.run(_package_hash).values())
        if there - {here}:
            raise WorkbookError(
                "RUN008",
                address=str(scheduler),
                here=here[:12],
                there=", ".join(sorted(t[:12] for t in there)),
            )
        # Services run side by side, so each line says whose it is.
        client.subscribe_topic(
            TOPIC, lambda event: progress(f"{event[1]['service']}: {event[1]['message']}")
        )
        services = [_Service(i, path, out, time.perf_counter()) for i, path in enumerate(paths)]
        watch: dict = {}
        try:
            for service in services:
                try:
                    sent = _submit_service(client, service, options)
                except PlaybookError as exc:
                    service.tidy()
                    results[service.index] = failed_service(service.path, out, exc)
                    continue
                if "result" in sent:
                    service.tidy()
                    results[service.index] = sent["result"]
                    progress(f"{Path(service.path).stem}: {_REUSED}")
                watch |= sent.get("watch", {})
            for future in as_completed(list(watch)):
                service, kind, step = watch[future]
                if kind == "finish":
                    _end_kernels(client, [service])
                _take(future, service, kind, results, progress)
        except KeyboardInterrupt:
            client.cancel(list(watch))
            raise RunInterrupted() from None
        finally:  # stopped or not, the kernels end and the private folders go
            _end_kernels(client, services)
            for service in services:
                service.tidy()
        # The last progress lines may still be on their way from the scheduler.
        client.unsubscribe_topic(TOPIC)
    finally:
        client.close()
    if len(paths) > 1:
        write_index(results, out)
    return results


_REUSED = "Nothing has changed since the last run: the workbook was reused."


def _end_kernels(client, services: list[_Service]) -> None:
    """Have every worker end the kernels it keeps for these services' runs."""
    runs = [str(s.run.work) for s in services if s.run is not None and s.run.work is not None]
    if not runs:
        return
    try:
        client.run(release_kernels, *runs)
    except Exception:  # noqa: BLE001 - a worker that is gone took its kernels with it
        pass


def _take(future, service: _Service, kind: str, results: list, progress) -> None:
    """Take in one finished task of a service: report its progress, or its result."""
    name = Path(service.path).stem
    if kind == "finish":
        try:
            result = future.result()
            result.seconds = time.perf_counter() - service.started
        except Exception as exc:  # noqa: BLE001 - a service's error, or a worker that died
            result = failed_service(service.path, service.out, exc)
        service.tidy()
        results[service.index] = result
        return
    if future.status != "finished":
        return  # the service's assembly reports why
    value = future.result()
    if kind == "plan":
        service.total = len(value["chosen"])
        for r in value["known"].values():
            service.done += 1
            progress(f"{name}: [{service.done}/{service.total}] {r.title}: {r.status}")
    elif value is not None:
        service.done += 1
        progress(
            f"{name}: [{service.done}/{service.total}] {value.title}: "
            f"{value.status} in {value.seconds:.1f} s"
        )
