"""Reusing finished steps: what a result depends on (fingerprints), and the kept copies."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from .._version import __version__
from ..notebooks import NOTEBOOK_DIR, NotebookInfo
from ..preparation import file_digest
from .folders import _read_json
from .paths import ROOT

log = logging.getLogger("equity_helpers")


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


def _code_hash(notebook_dir: Path = NOTEBOOK_DIR) -> str:
    """A hash of the notebooks and what the workbook's pages are built with.

    The package's own code is covered by :func:`_package_hash`.
    """
    h = hashlib.sha256(__version__.encode())
    site = (
        sorted((ROOT / "book" / "_ext").glob("*.py"))
        + [
            ROOT / "book" / "_static" / name
            for name in ("playbook.js", "playbook.css", "print.css", "favicon.svg")
        ]
        + [ROOT / "book" / "data" / "templates.yml"]
    )  # each step page links its templates
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
