"""Every notebook runs without an error, and the headline-figure contract matches.

The book build runs every notebook, top to bottom, with errors not allowed (``_config.yml``:
``allow_errors: false``; the build treats warnings as errors): a notebook it ran keeps
its outputs in the build's execution cache only when no cell failed. So each notebook
is checked against that record here rather than run a second time.

The contract notebook ``tests/nbval/headlines.ipynb`` keeps expected outputs for the cells
marked ``NBVAL_CHECK_OUTPUT`` and is run with nbval (lax mode): those cells must print
exactly the stored output (regenerate it with ``make nbval-expected`` after an intended
change, and review the diff).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "tests" / "nbval" / "headlines.ipynb"
pytestmark = pytest.mark.slow


def test_every_notebook_ran_without_an_error_in_the_book_build(built_book):
    from jupyter_cache import get_cache

    cache = get_cache(built_book.parent / ".jupyter_cache")
    sources = sorted((ROOT / "notebooks").glob("*.md"))
    assert len(sources) >= 8
    for md in sources:
        # A cached copy of the notebook as it is now: the build ran this text to the end.
        record = cache.get_cached_project_nb(str(md))
        assert record is not None, f"{md.name}: the book build has no finished run of it"
        nb = cache.get_cache_bundle(record.pk).nb
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), md.name
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert errors == [], f"{md.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"


def test_the_headline_contract_passes_nbval():
    expected = nbformat.read(CONTRACT, as_version=4)
    checked = sum("NBVAL_CHECK_OUTPUT" in c.source for c in expected.cells)
    code = sum(c.cell_type == "code" for c in expected.cells)
    assert checked >= 5
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "nbval",  # off by default (pyproject.toml): on for this session
            "-n",
            "0",  # one notebook: no workers
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(CONTRACT.parent),
            str(CONTRACT),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-5000:]
    # nbval makes one test per code cell (lax mode: only the marked cells compare outputs).
    assert int(re.search(r"(\d+) passed", last).group(1)) == code, last
    assert "failed" not in last and "error" not in last, last
