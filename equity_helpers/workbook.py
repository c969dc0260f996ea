"""Build a service's personalised workbook: run every notebook on its extract, then assemble.

The steps, in order:

1. Validate the config and the extract (fast, clear errors); stop before any notebook
   runs if the data cannot serve.
2. Prepare the extract once (Parquet) and pass its path to every notebook.
3. Run the notebooks with papermill, in parallel, reporting progress. A failing notebook
   does not lose the others.
4. Assemble a browsable HTML workbook with Jupyter Book (execution off: the notebooks
   already ran), plus the executed notebooks and the controlled summary tables.

The workbook is built in a temporary folder and moved into place only when it is
complete, so an interrupted run never leaves a half-built workbook that looks finished.
Re-running with unchanged inputs reuses the earlier result.

Example
-------
>>> from equity_helpers.workbook import run_workbook
>>> result = run_workbook("sample_data/sample_service.yml", "workbooks")  # doctest: +SKIP
>>> result.html_index  # doctest: +SKIP
PosixPath('workbooks/derbyshire-long-covid-rehabilitation-service-synthetic-example/html/index.html')
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from . import __version__
from .config import ServiceConfig, load_config, resolve_path
from .errors import CATALOGUE, PlaybookError, WorkbookError, render
from .notebooks import NOTEBOOK_DIR, NOTEBOOKS, NotebookInfo, read_glued, to_notebook
from .pdf import print_pdf
from .safe_html import html_text, md_text
from .service import file_digest, input_fingerprint, prepare_to_file
from .steps import headlines as step_headlines

log = logging.getLogger("equity_helpers")
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "equity-helpers",
    "pandas",
    "numpy",
    "scipy",
    "matplotlib",
    "papermill",
    "jupyter-book",
    "myst-nb",
    "textstat",
    "pyarrow",
]

#: The headline figures shown on the front page and compared across runs and services.
#: Each step declares its own (glue name, label) pairs in ``equity_helpers.steps``.
HEADLINES = step_headlines()


@dataclass
class StepResult:
    name: str
    title: str
    status: str  # "ok", "failed", "skipped" or "reused"
    seconds: float = 0.0
    message: str = ""
    notebook: str | None = None
    glued: dict = field(default_factory=dict)


@dataclass
class WorkbookResult:
    service: str
    slug: str
    out_dir: Path
    steps: list[StepResult]
    reused: bool = False
    seconds: float = 0.0
    pdf: Path | None = None
    error: str | None = None

    @property
    def html_index(self) -> Path:
        return self.out_dir / "html" / "index.html"

    @property
    def failures(self) -> list[StepResult]:
        return [s for s in self.steps if s.status == "failed"]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures

    def headlines(self) -> dict:
        glued = {}
        for s in self.steps:
            glued.update(s.glued)
        return {k: glued[k] for k, _ in HEADLINES if k in glued}


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "service"


def _code_hash(notebook_dir: Path = NOTEBOOK_DIR) -> str:
    """A hash of the notebooks and what the workbook's pages are built with.

    The package's own code is covered by :func:`_package_hash`.
    """
    h = hashlib.sha256(__version__.encode())
    site = sorted((ROOT / "book" / "_ext").glob("*.py")) + [
        ROOT / "book" / "_static" / name
        for name in ("playbook.js", "playbook.css", "print.css", "favicon.svg")
    ]
    for p in sorted(notebook_dir.glob("*.md")) + [p for p in site if p.is_file()]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def _versions() -> dict[str, str]:
    out = {"Python": sys.version.split()[0]}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _package_hash() -> str:
    """A hash of the playbook's own code and the versions of what it runs on."""
    h = hashlib.sha256(__version__.encode())
    package = ROOT / "equity_helpers"
    for p in sorted(package.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            h.update(str(p.relative_to(package)).encode())
            h.update(p.read_bytes())
    h.update(json.dumps(_versions(), sort_keys=True).encode())
    return h.hexdigest()[:20]


# ----------------------------------------------------------------------------- never lose anything

#: The mark of a workbook folder the runner made; only such a folder is ever replaced.
MADE_BY = "equity-workbook"
#: The private temporary folders of runs, in the computer's temporary folder.
RUN_PREFIX = "equity-workbook-run-"
#: The mark of the index page of several workbooks (only such a page is replaced).
INDEX_MARK = '<meta name="generator" content="equity-workbook">'
#: The mark inside a half-copied workbook in the output folder.
PARTIAL_MARK = ".equity-workbook-partial"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


class RunInterrupted(WorkbookError):
    """The person stopped the run (Ctrl-C): nothing was published."""

    def __init__(self):
        super().__init__("RUN004")


class _Lock:
    """An exclusive lock on a file; the system lets it go if the process dies."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def acquire(self, wait: float = 0.0) -> bool:
        deadline = time.monotonic() + wait
        while True:
            fh = open(self.path, "a+b")  # held open while the lock is held
            try:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:
                    import msvcrt

                    fh.seek(0)
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                self._fh = fh
                return True
            except OSError:
                fh.close()
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.1)

    def release(self) -> None:
        if self._fh is not None:
            try:
                if fcntl is not None:
                    fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            finally:
                self._fh.close()
                self._fh = None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process, or a system that cannot tell
        return True
    return True


def _owned_manifest(folder: Path) -> dict | None:
    """The manifest of a workbook folder the runner made, or None for any other folder."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(manifest, dict) and manifest.get("made_by") == MADE_BY:
        return manifest
    return None


def _identity(cfg: ServiceConfig) -> dict:
    """Which service a workbook belongs to: its name and (a hash of) its config's place."""
    where = hashlib.sha256(str(Path(cfg.path).resolve()).encode()).hexdigest()[:12]
    return {"service": cfg.service_name, "config_id": where}


def _same(record: dict | None, identity: dict) -> bool:
    return bool(record) and all(record.get(k) == v for k, v in identity.items())


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_atomic(path: Path, text: str) -> None:
    """Write a file under a temporary name and move it into place in one step."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _choose_folder(out: Path, cfg: ServiceConfig, identity: dict) -> str:
    """The workbook folder for this service under ``out``; never one the runner did not make.

    The folder is named from the service, as ``a-b``. A different service whose name gives
    the same folder name (``A & B`` and ``A / B``) gets ``a-b-`` and a short code of its
    own, and keeps it on every later run. The choice is recorded in ``.cache``.
    """
    slug = slugify(cfg.service_name)
    state = out / ".cache"
    state.mkdir(parents=True, exist_ok=True)
    claims = _Lock(state / ".claims.lock")
    if not claims.acquire(wait=30):
        raise WorkbookError("RUN006", path=str(out))
    try:
        for name in (slug, f"{slug}-{identity['config_id'][:8]}"):
            folder = out / name
            claim_file = state / name / "owner.json"
            if folder.exists() or folder.is_symlink():
                manifest = _owned_manifest(folder)
                if manifest is None:
                    raise WorkbookError("RUN005", path=str(folder))
                if not _same(manifest, identity):
                    continue  # another service's workbook
            elif not _same(_read_json(claim_file), identity) and claim_file.exists():
                continue  # another service's name, kept for it
            (state / name).mkdir(exist_ok=True)
            _write_atomic(claim_file, json.dumps(identity))
            return name
        raise WorkbookError("RUN005", path=str(out / f"{slug}-{identity['config_id'][:8]}"))
    finally:
        claims.release()


def _clean_stale_runs(temp_root: Path) -> None:
    """Delete the private temporary folders of runs that died (killed, or the power went)."""
    try:
        entries = list(temp_root.glob(f"{RUN_PREFIX}*"))
    except OSError:
        return
    uid = os.getuid() if hasattr(os, "getuid") else None
    for d in entries:
        m = re.fullmatch(re.escape(RUN_PREFIX) + r"(\d+)-[\w-]+", d.name)
        try:
            st = d.lstat()
        except OSError:
            continue
        if not m or d.is_symlink() or not d.is_dir() or (uid is not None and st.st_uid != uid):
            continue
        if _pid_alive(int(m.group(1))):
            continue
        lock = _Lock(d / ".lock")
        try:
            if not lock.acquire():
                continue  # a live run holds it
        except OSError:
            continue
        try:
            shutil.rmtree(d, ignore_errors=True)
        finally:
            lock.release()


def _clean_stale_publish(out: Path, name: str) -> None:
    """Tidy what a dead run left while it published ``name`` (the caller holds its lock).

    A half-copied new workbook is deleted. An old workbook moved aside is put back if the
    new one never took its place, and deleted otherwise.
    """
    final = out / name
    pattern = re.compile(re.escape(f".{name}.") + r"(partial|old)-\d+")
    for d in sorted(out.glob(f".{name}.*")):
        m = pattern.fullmatch(d.name)
        if not m or d.is_symlink() or not d.is_dir():
            continue
        ours = (d / PARTIAL_MARK).is_file() or _owned_manifest(d) is not None
        if not ours:
            continue
        if m.group(1) == "old" and not final.exists() and _owned_manifest(d) is not None:
            os.replace(d, final)
        else:
            shutil.rmtree(d, ignore_errors=True)


def _clean_other_stale_publishes(out: Path) -> None:
    """Tidy what dead runs left while publishing other workbooks in ``out`` (if no run is on)."""
    names = set()
    for d in out.glob(".*"):
        m = re.fullmatch(r"\.(.+)\.(?:partial|old)-\d+", d.name)
        if m and (out / ".cache" / m.group(1)).is_dir():
            names.add(m.group(1))
    for name in sorted(names):
        lock = _Lock(out / ".cache" / name / ".lock")
        try:
            if not lock.acquire():
                continue  # a run is publishing it now
        except OSError:
            continue
        try:
            _clean_stale_publish(out, name)
        finally:
            lock.release()


def _publish(staged: Path, out: Path, name: str) -> Path:
    """Swap the finished workbook into place; the old one goes only once the new one is in.

    The new workbook is copied beside the old one under a marked name, then renamed into
    place. If anything fails, the old workbook stays where it was.
    """
    final = out / name
    partial = out / f".{name}.partial-{os.getpid()}"
    aside = out / f".{name}.old-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    (partial / PARTIAL_MARK).write_text("a workbook being published\n")
    try:
        shutil.copytree(staged, partial, dirs_exist_ok=True)
        (partial / PARTIAL_MARK).unlink()
        if final.exists() or final.is_symlink():
            if _owned_manifest(final) is None:
                raise WorkbookError("RUN005", path=str(final))
            os.replace(final, aside)
        try:
            os.replace(partial, final)
        except BaseException:
            if aside.exists() and not final.exists():
                os.replace(aside, final)
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(aside, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------- machine paths


def _machine_roots(*extra: tuple[Path | str | None, str]) -> list[tuple[str, str]]:
    """Absolute folders of this computer, each with the short text that replaces it."""
    roots = [
        *extra,
        (ROOT, "<playbook folder>"),
        (sys.prefix, "<python>"),
        (sys.base_prefix, "<python>"),
        (Path.home(), "~"),
        (tempfile.gettempdir(), "<temporary folder>"),
    ]
    seen = {}
    for path, label in roots:
        if not path:
            continue
        for variant in {str(path), str(Path(path).resolve())}:
            if len(variant) > 1 and variant not in seen:
                seen[variant] = label
    return sorted(seen.items(), key=lambda kv: -len(kv[0]))


def scrub_text(text: str, roots: list[tuple[str, str]]) -> str:
    """Replace every machine folder named in ``roots`` by its short label."""
    for path, label in roots:
        if path in text:
            # Whole folder names only: not the end of a web address such as ".org/root".
            text = re.sub(
                r"(?<![\w-])" + re.escape(path) + r"(?![\w.-])", lambda _m, lab=label: lab, text
            )
    return text


def _scrub(value, roots):
    """``scrub_text`` on every string inside lists and dicts, changed in place."""
    if isinstance(value, str):
        return scrub_text(value, roots)
    if isinstance(value, list):
        value[:] = [_scrub(v, roots) for v in value]
    elif isinstance(value, dict):
        for k in list(value):
            value[k] = _scrub(value[k], roots)
    return value


# ----------------------------------------------------------------------------- worker processes


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


# ----------------------------------------------------------------------------- the step cache


def _step_key(info: NotebookInfo, fingerprint: str, code: str, notebook_dir: Path) -> str:
    """What a step's result depends on: the inputs, the code and the step's notebook."""
    h = hashlib.sha256(f"{info.name}\n{fingerprint}\n{code}\n".encode())
    h.update((notebook_dir / f"{info.name}.md").read_bytes())
    return h.hexdigest()[:20]


def _cache_get(entry: Path) -> Path | None:
    """A cached step result, checked file by file; a damaged entry is deleted and None given."""
    if not entry.is_dir():
        return None
    record = _read_json(entry / "entry.json")
    ok = record is not None and isinstance(record.get("files"), dict)
    if ok:
        try:
            files = sorted(
                str(p.relative_to(entry).as_posix())
                for p in entry.rglob("*")
                if p.is_file() and p.name != "entry.json"
            )
            ok = files == sorted(record["files"]) and all(
                file_digest(entry / name) == digest for name, digest in record["files"].items()
            )
            if ok:
                import nbformat

                nbformat.read(entry / "notebook.ipynb", as_version=4)
        except Exception:  # unreadable or not a notebook: a damaged entry
            ok = False
    if not ok:
        log.info("A damaged cached result was found and discarded: %s", entry.name)
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return entry


def _cache_put(entry: Path, notebook, tables: Path | None) -> None:
    """Keep a finished step's result, written whole under a temporary name, then renamed."""
    import nbformat

    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        nbformat.write(notebook, tmp / "notebook.ipynb")
        if tables is not None and tables.is_dir():
            shutil.copytree(tables, tmp / "tables")
        files = {
            str(p.relative_to(tmp).as_posix()): file_digest(p)
            for p in tmp.rglob("*")
            if p.is_file()
        }
        (tmp / "entry.json").write_text(json.dumps({"files": files}, indent=1))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Only the newest result of each step is kept.
    prefix = entry.name.rsplit("-", 1)[0] + "-"
    for old in entry.parent.glob(f"{prefix}*"):
        if old != entry and old.is_dir() and re.fullmatch(r"[0-9a-f]{20}", old.name[len(prefix) :]):
            shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- running notebooks


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
        pm.execute_notebook(
            source,
            output,
            parameters=params,
            cwd=cwd,
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
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
) -> list[StepResult]:
    """Run the notebooks for one service in parallel; reuse unchanged finished steps.

    A step's result is reused only when nothing it reads has changed (the extract, the
    config, every reference file and letter, the package and the step's notebook) and the
    kept copy is whole. ``force`` runs every step again.
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
        with _SigintHeld():
            pool = cf.ProcessPoolExecutor(
                max_workers=max(1, min(jobs, len(todo))),
                mp_context=ctx,
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
            futures = {
                pool.submit(_execute, str(job[1]), str(job[2]), job[3], str(work)): job
                for job in todo
            }
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


# ----------------------------------------------------------------------------- assembling


def _public_config(cfg: ServiceConfig) -> str:
    """The config as run, with paths shortened to file names (no machine paths)."""

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()}
        if isinstance(o, list):
            return [strip(v) for v in o]
        if isinstance(o, str) and ("/" in o or "\\" in o):
            return Path(o.replace("\\", "/")).name
        return o

    return yaml.safe_dump(strip(cfg.raw), sort_keys=False, allow_unicode=True)


def _as_number(v) -> float | None:
    """A headline figure as a number ("5,974" counts too), or None for text."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return None


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _front_page(
    cfg: ServiceConfig,
    meta: dict,
    steps: list[StepResult],
    baseline: dict | None,
    headlines: dict,
    run_date: dt.date,
) -> str:
    rule = cfg.disclosure
    lines = ["(workbook-front)=", f"# {md_text(cfg.service_name)}", ""]
    warning = rule.warning()
    if warning:
        lines += ["```{warning}", md_text(warning), "```", ""]
    lines += [
        "This is the service's own health-inequalities workbook.",
        "Each step runs one analysis of the playbook on the service's extract.",
        "Read a step, talk about it as a team, and write your notes in the space at its end.",
        "",
        "| About this workbook | |",
        "|---|---|",
        f"| Organisation | {md_text(cfg.organisation) or '-'} |",
        f"| Data period | {cfg.period_start:%d %B %Y} to {cfg.period_end:%d %B %Y} |",
        f"| Date run | {run_date:%d %B %Y} |",
        f"| Extract | {md_text(meta.get('source', ''))} |",
        f"| Deprivation | IMD {cfg.imd_edition} |",
        f"| Small-number rule | {md_text(rule.describe())} |",
        "",
        "## Row account",
        "",
        "Every row of the extract is accounted for.",
        "",
        "| | Rows |",
        "|---|---:|",
        f"| Rows read from the extract | {meta['account']['rows_read']:,} |",
    ]
    for code, n in meta["account"]["excluded"].items():
        lines.append(f"| Left out: {CATALOGUE[code].title.lower()} | {n:,} |")
    lines += [f"| Rows analysed | {meta['account']['rows_used']:,} |", ""]
    if meta.get("dropped_identifiers"):
        lines += [
            "Identifier columns were found in the extract and not read: "
            + ", ".join(md_text(c) for c in meta["dropped_identifiers"])
            + ".",
            "",
        ]
    lines += ["## Steps", "", "| Step | Status |", "|---|---|"]
    words = {
        "ok": "ran",
        "reused": "ran (reused from an earlier run)",
        "failed": "**failed**",
        "skipped": "skipped: a column it needs is missing",
    }
    for s in steps:
        # Step titles are the playbook's own text: a role's title is not Markdown.
        lines.append(f"| {{doc}}`{s.title} <steps/{s.name}>` | {words[s.status]} |")
    lines.append("")
    if headlines:
        lines += ["## Headline figures", ""]
        if baseline:
            lines += ["| Figure | Now | Baseline | Change |", "|---|---:|---:|---:|"]
        else:
            lines += ["| Figure | Value |", "|---|---:|"]
        for key, label in HEADLINES:
            if key not in headlines:
                continue
            now = headlines[key]
            if baseline:
                old = baseline.get(key)
                change = ""
                a, b = _as_number(now), _as_number(old)
                if a is not None and b is not None:
                    change = f"{a - b:+,.1f}"
                lines.append(
                    f"| {label} | {md_text(_fmt(now))} | "
                    f"{md_text(_fmt(old)) if old is not None else '-'} | {change} |"
                )
            else:
                lines.append(f"| {label} | {md_text(_fmt(now))} |")
        lines.append("")
    lines += [
        "## Versions and config",
        "",
        "The workbook was made with these versions, and this config (paths shortened).",
        "",
        "| Package | Version |",
        "|---|---|",
    ]
    for k, v in _versions().items():
        lines.append(f"| {k} | {v} |")
    # The config is included from its own file: a code block shows it as written, and
    # the page's copied source then holds no user text unescaped.
    lines += ["", "```{literalinclude} " + CONFIG_AS_RUN, ":language: yaml", "```", ""]
    return "\n".join(lines)


#: The config as run, shown on the front page (written beside the page, not published).
CONFIG_AS_RUN = "config-as-run.yml"

NOTES_CELL = """## Your team's notes

Use this space in the notebook copy (`notebooks/{name}.ipynb`), or print this page and write on it.

| What did we learn? | What will we do? | Who | By when |
|---|---|---|---|
| | | | |
| | | | |
"""


def _file_name(value):
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value.replace("\\", "/")).name
    return value


#: Markdown cells tagged so speak of the synthetic sample; a service's workbook leaves them out.
SAMPLE_NOTE_TAG = "sample-note"


def for_the_service(nb):
    """Leave out the cells that speak of the synthetic sample: this notebook ran on a service's data."""
    nb.cells = [c for c in nb.cells if SAMPLE_NOTE_TAG not in c.metadata.get("tags", [])]
    return nb


def sanitise_paths(nb, roots: list[tuple[str, str]] | None = None):
    """Take this computer's folders out of a notebook, so no machine path is shared.

    The paths papermill injected (in the parameters cell and in ``metadata.papermill``)
    become file names. Any other mention of a machine folder (in ``roots``, by default the
    playbook's, Python's, the home and the temporary folder) in a cell or its output is
    replaced by a short label.
    """
    roots = roots if roots is not None else _machine_roots()
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = re.sub(
                r'(["\'])((?:[A-Za-z]:)?[\\/][^"\']*[\\/])([^"\'\\/]*)\1',
                lambda m: f"{m.group(1)}{m.group(3)}{m.group(1)}",
                cell.source,
            )
        cell.source = scrub_text(cell.source, roots)
        if cell.get("outputs"):
            cell.outputs = _scrub(cell.outputs, roots)
    papermill = nb.metadata.get("papermill")
    if isinstance(papermill, dict):
        for key in ("input_path", "output_path"):
            if papermill.get(key):
                papermill[key] = _file_name(papermill[key])
        if "cwd" in papermill:
            papermill["cwd"] = None
        if isinstance(papermill.get("parameters"), dict):
            papermill["parameters"] = {k: _file_name(v) for k, v in papermill["parameters"].items()}
        nb.metadata["papermill"] = _scrub(papermill, roots)
    return nb


def _step_notebook(
    step: StepResult, info: NotebookInfo, dest: Path, roots: list[tuple[str, str]] | None = None
) -> None:
    """The executed notebook, framed for the workbook: guide's ask on top, notes space below."""
    import nbformat

    nb = sanitise_paths(nbformat.read(step.notebook, as_version=4), roots)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if tags & {"parameters", "injected-parameters"}:
            tags.add("remove-cell")
        elif not tags & {"remove-input", "remove-cell"}:
            tags.add("hide-input")
        cell.metadata["tags"] = sorted(tags)
    intro = nbformat.v4.new_markdown_cell(
        f"```{{admonition}} What the guide asks ({info.steps}, {info.part})\n:class: note\n"
        f"{info.guide_asks}\n```"
    )
    first_heading = next(
        (
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and c.source.lstrip().startswith(("#", "("))
        ),
        0,
    )
    nb.cells.insert(first_heading + 1, intro)
    nb.cells.append(nbformat.v4.new_markdown_cell(NOTES_CELL.format(name=step.name)))
    # Cross-references to other notebooks resolve inside the workbook too (same labels);
    # links to book pages do not, so they become plain text.
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = re.sub(
                r"\{doc\}`(?:([^`<]*?)\s*<)?/book/[^`>]*>?`",
                lambda m: (m.group(1) or "the playbook's book").strip(),
                cell.source,
            )
    nbformat.write(nb, dest)


def _problem_page(step: StepResult, info: NotebookInfo) -> str:
    title = "This step did not run" if step.status == "failed" else "This step was skipped"
    body = "\n".join(md_text(line.strip()) for line in step.message.splitlines())
    return (
        f"(nb:{step.name})=\n# {md_text(info.title)}\n\n"
        f"```{{admonition}} What the guide asks ({info.steps}, {info.part})\n:class: note\n"
        f"{info.guide_asks}\n```\n\n```{{admonition}} {title}\n:class: warning\n{body}\n```\n\n"
        f"**Key question:** {info.key_question}\n\n" + NOTES_CELL.format(name=step.name)
    )


def _tables_page(tables: list[Path], rule_text: str) -> str:
    lines = [
        "(workbook-tables)=",
        "# Summary tables",
        "",
        "These tables hold the figures behind each step, under the small-number rule.",
        md_text(rule_text),
        "Each table comes as CSV and as Excel.",
        "",
    ]
    for p in sorted(tables):
        if p.suffix == ".csv":
            xlsx = p.with_suffix(".xlsx")
            lines.append(
                f"- {md_text(p.stem.replace('_', ' ').capitalize())}: "
                f"{{download}}`CSV <tables/{p.name}>`"
                + (f", {{download}}`Excel <tables/{xlsx.name}>`" if xlsx.exists() else "")
            )
    if len(lines) == 7:
        lines.append("No summary tables were written.")
    return "\n".join(lines) + "\n"


def assemble(
    cfg: ServiceConfig,
    meta: dict,
    steps: list[StepResult],
    work: Path,
    *,
    baseline: dict | None,
    run_date: dt.date,
    roots: list[tuple[str, str]] | None = None,
) -> Path:
    """Write the workbook's Jupyter Book sources into ``work/site`` and build the HTML."""
    site = work / "site"
    (site / "steps").mkdir(parents=True, exist_ok=True)
    (site / "tables").mkdir(parents=True, exist_ok=True)
    for p in (work / "tables").glob("*"):
        shutil.copy2(p, site / "tables" / p.name)
    headlines = {}
    for s in steps:
        headlines.update(s.glued)
    headlines = {k: headlines[k] for k, _ in HEADLINES if k in headlines}
    (site / CONFIG_AS_RUN).write_text(_public_config(cfg), encoding="utf-8")
    (site / "index.md").write_text(_front_page(cfg, meta, steps, baseline, headlines, run_date))
    chapters = []
    by_name = {n.name: n for n in NOTEBOOKS}
    for s in steps:
        info = by_name[s.name]
        if s.status in ("ok", "reused"):
            _step_notebook(s, info, site / "steps" / f"{s.name}.ipynb", roots)
        else:
            (site / "steps" / f"{s.name}.md").write_text(_problem_page(s, info))
        chapters.append({"file": f"steps/{s.name}"})
    (site / "tables.md").write_text(
        _tables_page(list((site / "tables").glob("*")), cfg.disclosure.describe())
    )
    chapters.append({"file": "tables"})
    toc = {
        "format": "jb-book",
        "root": "index",
        "parts": [{"caption": "Steps", "chapters": chapters}],
    }
    (site / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    # Plain text: the theme's title, author and footer slots are escaped once by the
    # safe_html extension, wherever the theme writes them.
    footer = cfg.disclosure.warning() or cfg.disclosure.describe()
    config = {
        "title": f"Workbook: {cfg.service_name}",
        "author": cfg.organisation or cfg.service_name,
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "parse": {"myst_enable_extensions": ["colon_fence", "deflist", "dollarmath"]},
        "html": {"home_page_in_navbar": True, "extra_footer": footer},
        "sphinx": {
            "config": {
                "html_show_copyright": False,
                "language": "en",
                # The rule (and any warning) in every page's footer.
                "html_theme_options": {
                    "use_download_button": True,
                    "show_navbar_depth": 1,
                    "extra_footer": footer,
                },
                "html_context": {"default_mode": "light"},
                "html_favicon": "_static/favicon.svg",
                "html_static_path": ["_static"],
                "html_js_files": ["playbook.js"],
                "html_css_files": ["playbook.css"],
            },
            "extra_extensions": [
                "sphinx_togglebutton",
                "sphinx_design",
                "equity_helpers.safe_html",
            ],
            "local_extensions": {"playbook_directives": str(ROOT / "book" / "_ext")},
        },
    }
    (site / "_static").mkdir(exist_ok=True)
    for name in ("playbook.js", "playbook.css", "favicon.svg"):
        shutil.copy2(ROOT / "book" / "_static" / name, site / "_static" / name)
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", "site", "--path-output", "."]
    # Its own session: Ctrl-C goes to the run, which then ends the build.
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=work, start_new_session=True
    )
    (work / "logs" / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        raise WorkbookError(
            "RUN001",
            step="Assemble the workbook",
            detail="the HTML build failed",
            log="logs/build.log",
        )
    return work / "_build" / "html"


# ----------------------------------------------------------------------------- the run


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
    final = out / name
    _clean_stale_publish(out, name)
    fingerprint = input_fingerprint(cfg)
    run_key = hashlib.sha256(
        f"{fingerprint}{_code_hash(notebook_dir)}{_package_hash()}{steps}{bool(pdf)}".encode()
    ).hexdigest()[:20]
    baseline_figures = _read_baseline(baseline) if baseline else None
    old = _owned_manifest(final)
    if (
        not force
        and baseline is None
        and old is not None
        and old.get("run_key") == run_key
        and old.get("complete")
        and (final / "html" / "index.html").is_file()
    ):
        progress("Nothing has changed since the last run: the workbook was reused.")
        steps_done = [StepResult(**s) for s in old["steps"]]
        return WorkbookResult(
            cfg.service_name,
            name,
            final,
            steps_done,
            reused=True,
            seconds=time.perf_counter() - started,
            pdf=final / "workbook.pdf" if (final / "workbook.pdf").exists() else None,
        )

    # Row-level data lives only here: a folder of this user's own (0700), outside ``out``.
    work = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-"))
    work_lock = _Lock(work / ".lock")
    work_lock.acquire()
    roots = _machine_roots(
        (work, "."), (out, "<output folder>"), (cfg.path.parent, "<config folder>")
    )
    try:
        progress(f"Checking and preparing the extract for {cfg.service_name}")
        prepared, meta = prepare_to_file(cfg, work / "prepared.parquet")
        acc = meta["account"]
        progress(
            f"Read {acc['rows_read']:,} rows; {acc['rows_used']:,} used, "
            f"{acc['rows_read'] - acc['rows_used']:,} left out with reasons"
        )
        results = run_steps(
            cfg,
            prepared,
            work,
            jobs=jobs or os.cpu_count() or 1,
            cache=out / ".cache" / name / "steps",
            fingerprint=fingerprint,
            progress=progress,
            steps=steps,
            notebook_dir=notebook_dir,
            force=force,
            roots=roots,
        )
        progress("Assembling the HTML workbook")
        html_dir = assemble(
            cfg,
            meta,
            results,
            work,
            baseline=baseline_figures,
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
        result = WorkbookResult(cfg.service_name, name, final, results)
        if pdf:
            progress("Printing the PDF with headless Chromium")
            result.pdf = print_pdf(staged / "html", staged / "workbook.pdf", cfg)
        manifest = {
            "made_by": MADE_BY,
            **identity,
            "run_key": run_key,
            "complete": True,
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
        result.seconds = time.perf_counter() - started
        if result.pdf:
            result.pdf = final / "workbook.pdf"
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
            p.write_text(scrub_text(text, roots), encoding="utf-8")


def _read_baseline(path: str | Path) -> dict:
    p = Path(path)
    manifest = p / "manifest.json" if p.is_dir() else p
    if not manifest.is_file():
        raise WorkbookError(
            "RUN002", path=str(p), detail="no manifest.json: give the folder of an earlier workbook"
        )
    return json.loads(manifest.read_text()).get("headlines", {})


def run_many(
    config_paths: list[str | Path], out: str | Path = "workbooks", **kwargs
) -> list[WorkbookResult]:
    """Build a workbook for each config; one service's failure does not stop the others."""
    results = []
    for path in config_paths:
        try:
            results.append(run_workbook(path, out, **kwargs))
        except RunInterrupted:
            raise  # Ctrl-C stops every service, not just this one
        except PlaybookError as exc:
            name = Path(path).stem
            results.append(
                WorkbookResult(name, slugify(name), Path(out) / slugify(name), [], error=str(exc))
            )
    if len(config_paths) > 1:
        write_index(results, Path(out))
    return results


def write_index(results: list[WorkbookResult], out: Path) -> Path:
    """An index page comparing the services' headline figures."""
    rows = []
    keys = [k for k, _ in HEADLINES]
    labels = dict(HEADLINES)
    for r in results:
        h = r.headlines() if r.error is None else {}
        link = (
            f'<a href="{html_text(r.out_dir.name)}/html/index.html">{html_text(r.service)}</a>'
            if r.error is None
            else html_text(r.service)
        )
        status = (
            "complete"
            if r.ok
            else (
                "failed: " + html_text((r.error or "").splitlines()[0])
                if r.error
                else f"{len(r.failures)} step(s) failed"
            )
        )
        cells = "".join(f"<td>{html_text(_fmt(h[k])) if k in h else '-'}</td>" for k in keys)
        rows.append(f"<tr><th scope='row'>{link}</th><td>{status}</td>{cells}</tr>")
    head = "".join(f"<th scope='col'>{html_text(labels[k])}</th>" for k in keys)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{INDEX_MARK}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Health-inequalities workbooks</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}}table{{border-collapse:collapse}}
th,td{{border:1px solid #767676;padding:.4rem .6rem;text-align:left}}a{{color:#005eb8}}
a:focus{{outline:3px solid #ffb81c}}</style></head>
<body><main><h1>Health-inequalities workbooks</h1>
<p>One workbook for each service, with its headline figures. Figures follow each workbook's small-number rule.</p>
<table><caption>Headline figures by service</caption><thead><tr><th scope="col">Service</th><th scope="col">Status</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></main></body></html>"""
    path = out / "index.html"
    if path.exists() and INDEX_MARK not in path.read_text(encoding="utf-8", errors="replace"):
        raise WorkbookError("RUN005", path=str(path))
    _write_atomic(path, page)
    return path
