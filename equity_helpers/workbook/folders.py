"""Never lose anything: locks, the workbook folder's choice, clean-up and publishing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from ..config import ServiceConfig
from ..errors import WorkbookError
from .results import slugify

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
