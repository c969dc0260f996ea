"""Prepare a service's extract once, and know when it must be prepared again.

Used by the workbook runner (:mod:`equity_helpers.workbook`) and by
:func:`equity_helpers.service.open_service` in the book and JupyterLab. A big CSV extract
is prepared in batches of rows (:func:`equity_helpers.batches.prepare_in_batches`), so
memory follows the batch, not the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from ._version import __version__
from .batches import prepare_in_batches, streams
from .config import ServiceConfig
from .extract import prepare, read_prepared, write_prepared

#: Content hashes of input files, kept while a file's size, times and inode are unchanged,
#: so one process hashes each file once however often the fingerprint is asked for.
_DIGESTS: dict[tuple, str] = {}


def file_digest(path: str | Path) -> str:
    """A hash of a file's bytes (SHA-256).

    Hashing reads the whole file a piece at a time (never all of it in memory): a few
    seconds for each gigabyte. The result is kept for the rest of the process while the
    file is unchanged.
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _DIGESTS:
        with open(path, "rb") as fh:
            _DIGESTS[key] = hashlib.file_digest(fh, "sha256").hexdigest()
    return _DIGESTS[key]


def input_fingerprint(cfg: ServiceConfig) -> str:
    """A hash of everything the analysis reads: the config, every file it names, the letters.

    Files are hashed by content, not by date, so a file edited in place always counts.
    The extract is read in full (a few seconds for each gigabyte, once per process); the
    code version is part of the hash too.
    """
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(cfg.path.read_bytes())
    named = {
        "extract": cfg.extract_path,
        "imd": cfg.imd_path,
        "lsoa_lookup": cfg.lsoa_lookup,
        "catchment_lsoas": cfg.catchment_lsoa_file,
        "population_ethnicity": cfg.population_ethnicity,
        "population_age": cfg.population_age,
        "population_sex": cfg.population_sex,
        "appointments": cfg.appointments_path,
    }
    for key, p in named.items():
        if p is not None and Path(p).is_file():
            h.update(f"{key}:{Path(p).name}:{file_digest(p)}\n".encode())
        else:
            h.update(f"{key}:none\n".encode())
    # The readability step reads every letter in the two folders.
    for key, folder in (("before", cfg.readability_before), ("after", cfg.readability_after)):
        h.update(f"letters-{key}\n".encode())
        if folder is not None and Path(folder).is_dir():
            for p in sorted(Path(folder).iterdir(), key=lambda q: q.name):
                if p.is_file():
                    h.update(f"{p.name}:{file_digest(p)}\n".encode())
    return h.hexdigest()[:20]


def private_cache_folder() -> Path:
    """The folder for prepared files made outside a workbook run: readable by its owner only.

    ``EQUITY_CACHE`` names it; otherwise it is a folder of the user's own in the computer's
    temporary folder.
    """
    if os.environ.get("EQUITY_CACHE"):
        folder = Path(os.environ["EQUITY_CACHE"])
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder
    uid = os.getuid() if hasattr(os, "getuid") else None
    folder = Path(tempfile.gettempdir()) / (
        "equity-playbook" if uid is None else f"equity-playbook-{uid}"
    )
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid):
        # Someone else's folder, or not a folder: use a new private one instead.
        return Path(tempfile.mkdtemp(prefix="equity-playbook-"))
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(folder, 0o700)
    return folder


def prepare_to_file(cfg: ServiceConfig, path: str | Path | None = None) -> tuple[Path, dict]:
    """Prepare the extract once and write it; reuse the file when inputs are unchanged.

    The file holds rows of the extract, so only its owner can read it.
    """
    fingerprint = input_fingerprint(cfg)
    if path is None:
        path = private_cache_folder() / f"prepared-{fingerprint}.parquet"
    path = Path(path)
    if path.is_file():
        try:
            _, meta = read_prepared(path, columns=[])
        except Exception:  # a damaged file is made again
            meta = {}
        if meta.get("fingerprint") == fingerprint:
            os.chmod(path, 0o600)
            return path, meta
    if streams(cfg):  # a big CSV file: prepared a batch of rows at a time
        prepare_in_batches(cfg, path, extra={"fingerprint": fingerprint})
    else:
        write_prepared(prepare(cfg), path, extra={"fingerprint": fingerprint})
    os.chmod(path, 0o600)
    return path, read_prepared(path, columns=[])[1]
