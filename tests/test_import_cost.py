"""What a run's own processes load: jsonschema's checker of web addresses is left out.

Every process that reads or writes a notebook loads nbformat, and so jsonschema, which loads
``rfc3987_syntax`` when it is installed and builds a parser of web addresses as it does (about
a second of CPU a process). The notebook schemas never check an "iri" format, so the command
line and the runner's workers keep it from loading (``lazy.skip_iri_checker``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _formats(node) -> set[str]:
    """Every value of a JSON schema's ``format`` keyword, anywhere in it."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "format" and isinstance(value, str):
                found.add(value)
            found |= _formats(value)
    elif isinstance(node, list):
        for value in node:
            found |= _formats(value)
    return found


def test_no_notebook_schema_checks_a_web_address_format():
    schemas = sorted((Path(nbformat.__file__).parent / "v4").glob("nbformat.v4*.schema.json"))
    assert schemas, "nbformat's schemas were not found"
    formats = set().union(*(_formats(json.loads(p.read_text())) for p in schemas))
    assert not {f for f in formats if "iri" in f or "uri" in f}, formats


def _loaded_after(code: str) -> str:
    """Run ``code`` in a new Python, then read and check a notebook; say whether the
    checker of web addresses was loaded."""
    script = (
        f"{code}\n"
        "import sys, nbformat\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1 + 1')])\n"
        "nbformat.validate(nbformat.reads(nbformat.writes(nb), as_version=4))\n"
        "print('loaded' if sys.modules.get('rfc3987_syntax') else 'not loaded')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_the_command_line_reads_notebooks_without_the_web_address_checker():
    code = (
        "from equity_helpers import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert _loaded_after(code) == "not loaded"


def test_a_runner_worker_reads_notebooks_without_the_web_address_checker():
    code = (
        "import os\n"
        "from equity_helpers.workbook.execute import _worker_init\n"
        "_worker_init(os.getppid())\n"
    )
    assert _loaded_after(code) == "not loaded"


def test_without_the_skip_the_checker_would_load_when_installed():
    """The skip is what keeps it out: a plain process loads it when the package is there."""
    from importlib.machinery import PathFinder

    # Whether it is installed, looked for on the path (this test session keeps it unloaded).
    expected = "loaded" if PathFinder.find_spec("rfc3987_syntax") else "not loaded"
    assert _loaded_after("") == expected
