"""One service's run, from config to published workbook, and several services in turn."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import ServiceConfig, load_config, resolve_path
from ..errors import PlaybookError, WorkbookError
from ..extract import account_summary
from ..notebooks import NOTEBOOK_DIR
from ..pdf import print_pdf
from ..preparation import input_fingerprint, prepare_to_file
from .cache import _code_hash, _package_hash
from .execute import _SigintIgnored, run_steps
from .folders import (
    MADE_BY,
    RUN_PREFIX,
    RunInterrupted,
    _choose_folder,
    _clean_other_stale_publishes,
    _clean_stale_publish,
    _clean_stale_runs,
    _identity,
    _Lock,
    _owned_manifest,
    _publish,
)
from .index import write_index
from .paths import _machine_roots, sanitise_paths, scrub_text
from .results import StepResult, WorkbookResult, slugify
from .site import assemble, preload

log = logging.getLogger("equity_helpers")


def run_workbook(
    config_path: str | Path,
    out: str | Path = "workbooks",
    *,
    jobs: int | None = None,
    baseline: str | Path | None = None,
    pdf: bool = False,
    force: bool = False,
    steps: list[str] | None = None,
    progress: Callable[[str], None] = lambda m: log.info(m),
    notebook_dir: str | Path | None = None,
) -> WorkbookResult:
    """Build one service's workbook. Raises ConfigError or ExtractError before any notebook runs.

    The run only ever replaces a workbook folder it made (marked in its ``manifest.json``);
    any other folder in the way stops the run (RUN005). One run at a time builds a given
    workbook (RUN006). The prepared data stays in a private temporary folder, never in
    ``out``, and is deleted when the run ends; a later run deletes what a killed run left.
    """
    started = time.perf_counter()
    notebook_dir = Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR
    cfg, out, name, identity, lock = _claim(config_path, out)
    try:
        return _run_locked(
            cfg,
            out,
            name,
            identity,
            started=started,
            jobs=jobs,
            baseline=baseline,
            pdf=pdf,
            force=force,
            steps=steps,
            progress=progress,
            notebook_dir=notebook_dir,
        )
    finally:
        lock.release()


def _claim(config_path: str | Path, out: str | Path) -> tuple:
    """Read the config, check ``out`` can be written, and lock the service's workbook folder.

    Returns the config, ``out`` in full, the folder's name, the service's identity and the
    held lock (the caller releases it).
    """
    cfg = load_config(resolve_path(config_path))
    out = Path(out).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise WorkbookError("RUN002", path=str(out), detail=exc.strerror or str(exc)) from None
    _clean_stale_runs(Path(tempfile.gettempdir()))
    _clean_other_stale_publishes(out)
    identity = _identity(cfg)
    name = _choose_folder(out, cfg, identity)
    lock = _Lock(out / ".cache" / name / ".lock")
    if not lock.acquire():
        raise WorkbookError("RUN006", path=str(out / name))
    return cfg, out, name, identity, lock


def _run_locked(
    cfg: ServiceConfig,
    out: Path,
    name: str,
    identity: dict,
    *,
    started: float,
    jobs: int | None,
    baseline: str | Path | None,
    pdf: bool,
    force: bool,
    steps: list[str] | None,
    progress: Callable[[str], None],
    notebook_dir: Path,
) -> WorkbookResult:
    """The run itself, while this process holds the workbook folder's lock."""
    run = _begin(
        cfg, out, name, identity, baseline=baseline, pdf=pdf, steps=steps, notebook_dir=notebook_dir
    )
    reused = _reused(run, force=force, baseline=baseline, started=started, progress=progress)
    if reused is not None:
        return reused
    work, work_lock = _private_folder(run)
    try:
        prepared, meta = _prepare(cfg, work, progress)
        results = run_steps(
            cfg,
            prepared,
            work,
            jobs=jobs or os.cpu_count() or 1,
            cache=out / ".cache" / name / "steps",
            fingerprint=run.fingerprint,
            progress=progress,
            steps=steps,
            notebook_dir=notebook_dir,
            force=force,
            roots=run.roots,
            while_notebooks_run=preload,
        )
        result = _finish(run, meta, results, progress)
        result.seconds = time.perf_counter() - started
        return result
    except KeyboardInterrupt:
        raise RunInterrupted() from None
    except OSError as exc:
        raise WorkbookError("RUN002", path=str(out), detail=exc.strerror or str(exc)) from None
    finally:
        with _SigintIgnored():
            shutil.rmtree(work, ignore_errors=True)
            work_lock.release()
        log.info("Workbook run took %.1f s", time.perf_counter() - started)


@dataclass
class _Run:
    """What one service's run knows before its extract is read (see :func:`_begin`)."""

    cfg: ServiceConfig
    out: Path
    name: str
    identity: dict
    fingerprint: str
    run_key: str
    baseline_figures: dict | None
    pdf: bool
    work: Path | None = None
    roots: list = field(default_factory=list)

    @property
    def final(self) -> Path:
        return self.out / self.name


def _begin(
    cfg: ServiceConfig,
    out: Path,
    name: str,
    identity: dict,
    *,
    baseline: str | Path | None,
    pdf: bool,
    steps: list[str] | None,
    notebook_dir: Path,
) -> _Run:
    """Tidy what a dead run left, and work out what this run depends on."""
    _clean_stale_publish(out, name)
    fingerprint = input_fingerprint(cfg)
    run_key = hashlib.sha256(
        f"{fingerprint}{_code_hash(notebook_dir)}{_package_hash()}{steps}{bool(pdf)}".encode()
    ).hexdigest()[:20]
    baseline_figures = _read_baseline(baseline) if baseline else None
    return _Run(cfg, out, name, identity, fingerprint, run_key, baseline_figures, bool(pdf))


def _reused(
    run: _Run,
    *,
    force: bool,
    baseline: str | Path | None,
    started: float,
    progress: Callable[[str], None],
) -> WorkbookResult | None:
    """The workbook as it is, when nothing has changed since it was built; else None."""
    final = run.final
    old = _owned_manifest(final)
    if (
        not force
        and baseline is None
        and old is not None
        and old.get("run_key") == run.run_key
        and old.get("complete")
        and (final / "html" / "index.html").is_file()
    ):
        progress("Nothing has changed since the last run: the workbook was reused.")
        steps_done = [StepResult(**s) for s in old["steps"]]
        return WorkbookResult(
            run.cfg.service_name,
            run.name,
            final,
            steps_done,
            reused=True,
            seconds=time.perf_counter() - started,
            pdf=final / "workbook.pdf" if (final / "workbook.pdf").exists() else None,
        )
    return None


def _private_folder(run: _Run) -> tuple[Path, _Lock]:
    """The run's private folder, locked while the run lives; it is deleted when it ends."""
    # Row-level data lives only here: a folder of this user's own (0700), outside ``out``.
    work = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-"))
    work_lock = _Lock(work / ".lock")
    work_lock.acquire()
    run.work = work
    run.roots = _machine_roots(
        (work, "."), (run.out, "<output folder>"), (run.cfg.path.parent, "<config folder>")
    )
    return work, work_lock


def _prepare(cfg: ServiceConfig, work: Path, progress: Callable[[str], None]):
    """Check and prepare the extract into the run's private folder."""
    progress(f"Checking and preparing the extract for {cfg.service_name}")
    prepared, meta = prepare_to_file(cfg, work / "prepared.parquet")
    progress(account_summary(meta["account"]))
    return prepared, meta


def _finish(
    run: _Run, meta: dict, results: list[StepResult], progress: Callable[[str], None]
) -> WorkbookResult:
    """Build the HTML workbook from the finished steps, and publish it (with its PDF)."""
    cfg, work, roots, out, name = run.cfg, run.work, run.roots, run.out, run.name
    progress("Assembling the HTML workbook")
    html_dir = assemble(
        cfg,
        meta,
        results,
        work,
        baseline=run.baseline_figures,
        run_date=dt.date.today(),
        roots=roots,
    )
    staged = work / "publish"
    staged.mkdir()
    shutil.move(str(html_dir), staged / "html")
    shutil.copytree(work / "tables", staged / "tables")
    (staged / "notebooks").mkdir()
    import nbformat

    for s in results:
        if s.status in ("ok", "reused"):
            nb = nbformat.read(work / "notebooks" / f"{s.name}.ipynb", as_version=4)
            nbformat.write(sanitise_paths(nb, roots), staged / "notebooks" / f"{s.name}.ipynb")
    shutil.copytree(
        work / "logs",
        staged / "logs",
        ignore=shutil.ignore_patterns("*.source.ipynb", "*.tables"),
    )
    _sanitise_logs(staged / "logs", roots)
    result = WorkbookResult(cfg.service_name, name, run.final, results)
    if run.pdf:
        progress("Printing the PDF with headless Chromium")
        try:
            result.pdf = print_pdf(staged / "html", staged / "workbook.pdf", cfg)
        except WorkbookError as exc:
            # The HTML workbook is still published; the run reports the PDF's failure.
            result.pdf_error = str(exc)
            progress("The PDF was not printed; the HTML workbook is published without it.")
    manifest = {
        "made_by": MADE_BY,
        **run.identity,
        "run_key": run.run_key,
        # A workbook without the PDF asked for is built again next time.
        "complete": result.pdf_error is None,
        "date": dt.date.today().isoformat(),
        "account": meta["account"],
        "headlines": result.headlines(),
        "steps": [asdict(s) for s in results],
    }
    for s in manifest["steps"]:
        s["notebook"] = None
    (staged / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    # Publish: the old workbook is replaced only now, when the new one is complete.
    result.out_dir = _publish(staged, out, name)
    if result.pdf:
        result.pdf = run.final / "workbook.pdf"
    return result


def _sanitise_logs(folder: Path, roots: list[tuple[str, str]]) -> None:
    """Take machine paths out of the published logs (build output and failed notebooks)."""
    import nbformat

    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        if p.suffix == ".ipynb":
            try:
                nb = nbformat.read(p, as_version=4)
            except Exception:  # not a whole notebook: keep nothing that may hold a path
                p.unlink()
                continue
            nbformat.write(sanitise_paths(nb, roots), p)
        else:
            text = p.read_text(encoding="utf-8", errors="replace")
            text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)  # terminal colours
            # A path relative to where the run started climbs through this computer's
            # folders ("../../tmp/..."): it says no more than "a folder".
            text = re.sub(r"(?:\.\./)+[^\s'\"]*", "<a folder>", text)
            p.write_text(scrub_text(text, roots), encoding="utf-8")


def _read_baseline(path: str | Path) -> dict:
    p = Path(path)
    manifest = p / "manifest.json" if p.is_dir() else p
    if not manifest.is_file():
        raise WorkbookError(
            "RUN002", path=str(p), detail="no manifest.json: give the folder of an earlier workbook"
        )
    return json.loads(manifest.read_text()).get("headlines", {})


def failed_service(
    config_path: str | Path, out: str | Path, error: BaseException
) -> WorkbookResult:
    """The result for a service whose workbook could not be built: it says why."""
    name = Path(config_path).stem
    return WorkbookResult(name, slugify(name), Path(out) / slugify(name), [], error=str(error))


def run_many(
    config_paths: list[str | Path], out: str | Path = "workbooks", **kwargs
) -> list[WorkbookResult]:
    """Build a workbook for each config here, in turn; one service's failure does not stop
    the others. (:func:`.cluster.run_on_cluster` does the same on a Dask cluster.)"""
    results = []
    for path in config_paths:
        try:
            results.append(run_workbook(path, out, **kwargs))
        except RunInterrupted:
            raise  # Ctrl-C stops every service, not just this one
        except PlaybookError as exc:
            results.append(failed_service(path, out, exc))
    if len(config_paths) > 1:
        write_index(results, Path(out))
    return results
