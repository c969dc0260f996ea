"""Build many services' workbooks on a Dask distributed cluster.

``equity-workbook run --scheduler ADDRESS`` sends the same work as a local run to a Dask
cluster, which many analytics platforms already run: each service's workbook is built by
:func:`~equity_helpers.workbook.run_workbook` on one of the cluster's workers, with the
same outputs, the same failure isolation (one service's failure never stops the others)
and the same progress lines, which the workers send back as they go.

What the cluster needs:

- the workers see the configs, the extracts, the reference files and the output folder
  at the same paths as the machine that starts the run (shared storage);
- the workers have the same version of the playbook installed: checked before any work
  is sent (RUN008 names the version on each side).

A worker that Dask starts as a daemon process (its default) may not start processes of
its own, so it runs one service's notebooks one after another; a worker started with
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` runs them in parallel, as a local run does.
Each service is its own task with its own run folder, so nothing of one service's data
stays in memory for the next.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import PlaybookError, WorkbookError
from .cache import _package_hash
from .folders import RunInterrupted
from .index import write_index
from .pipeline import failed_service, run_workbook

#: The topic the workers' progress lines travel on.
TOPIC = "equity-workbook-progress"


def _version() -> str:
    """This machine's playbook version: a hash of the package and the notebooks."""
    return _package_hash()


def _run_service(config_path: str, out: str, options: dict):
    """On a worker: build one service's workbook, sending each progress line back."""
    from distributed import get_worker

    worker = get_worker()

    def progress(message: str) -> None:
        worker.log_event(TOPIC, {"service": Path(config_path).stem, "message": message})

    try:
        return run_workbook(config_path, out, progress=progress, **options)
    except PlaybookError as exc:
        return failed_service(config_path, out, exc)


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

    ``scheduler`` is the scheduler's address (``tcp://host:8786``) or a Dask cluster
    object (such as ``LocalCluster``). Returns one result per config, in the order given,
    and writes the index page comparing them when there are several. ``timeout`` is how
    long to wait for the scheduler to answer, in seconds; ``options`` are those of
    :func:`~equity_helpers.workbook.run_workbook`.
    """
    from distributed import Client, as_completed

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
        futures = {
            client.submit(_run_service, path, str(out), options, pure=False): i
            for i, path in enumerate(paths)
        }
        try:
            for future in as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except Exception as exc:  # the worker died, or the task could not run
                    results[i] = failed_service(paths[i], out, exc)
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise RunInterrupted() from None
        # The last progress lines may still be on their way from the scheduler.
        client.unsubscribe_topic(TOPIC)
    finally:
        client.close()
    if len(paths) > 1:
        write_index(results, out)
    return results
