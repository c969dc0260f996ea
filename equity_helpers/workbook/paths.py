"""No machine path in what is published: folders of this computer become short labels."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def _file_name(value):
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value.replace("\\", "/")).name
    return value


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
