"""Every notebook passes nbval (lax mode), and the headline-figure contract matches.

The notebooks are stored as MyST markdown; jupytext converts them for nbval. The
contract notebook ``tests/nbval/headlines.ipynb`` keeps expected outputs for the cells
marked ``NBVAL_CHECK_OUTPUT`` (regenerate with ``make nbval-expected`` after an
intended change, and review the diff).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_notebooks_pass_nbval():
    out = ROOT / "test-output" / "nbval"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ipynb"):
        old.unlink()
    sources = sorted((ROOT / "notebooks").glob("*.md"))
    for md in sources:
        jupytext.write(jupytext.read(md), out / f"{md.stem}.ipynb")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "nbval",  # off by default (pyproject.toml): on for this session
            "--nbval-lax",
            # Two notebooks at a time; every cell of a notebook stays in its one kernel.
            "-n",
            "2",
            "--dist",
            "loadscope",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(out),
            str(out),
            str(ROOT / "tests" / "nbval" / "headlines.ipynb"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-5000:]
    passed = int(re.search(r"(\d+) passed", last).group(1))
    # nbval makes one test per code cell: at least one per notebook plus the contract cells.
    assert passed >= len(sources) + 5, last
    assert "failed" not in last and "error" not in last, last
