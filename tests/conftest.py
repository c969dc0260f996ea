"""Shared fixtures: paths, the real reference data, and one book build per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = ROOT.parent / "shared" / "reference"
TEST_OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The real public reference data kept beside the repository (never copied into it)."""
    if not SHARED_REFERENCE.is_dir():
        pytest.fail(
            f"The real reference data is missing: expected it at {SHARED_REFERENCE}. "
            "Tests check the loaders and statistics against it."
        )
    return SHARED_REFERENCE


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the whole book once, as `make book` does, and return its HTML folder.

    The build uses the strict flags of the book's definition of green
    (nitpicky, warnings as errors, keep going to list every problem).
    """
    out = TEST_OUTPUT / "book"
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    cmd = [
        str(bin_dir / "jupyter-book"),
        "build",
        str(ROOT),
        "-n",
        "-W",
        "--keep-going",
        "--path-output",
        str(out),
    ]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    (out / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        pytest.fail(
            "The book build failed or warned; see test-output/book/build.log\n"
            + proc.stdout[-4000:]
        )
    return out / "_build" / "html"


@pytest.fixture(scope="session")
def run_notebook():
    """Run a notebook under papermill, as the workbook does, and cache the result.

    Usage: ``nb, glued = run_notebook("data-completeness", config_path=...)``.
    Returns the executed notebook and the values it glued.
    """
    import nbformat
    import papermill as pm

    from equity_helpers.notebooks import read_glued, to_notebook

    cache: dict = {}

    def _run(name: str, **params):
        key = (name, tuple(sorted(params.items())))
        if key not in cache:
            out_dir = TEST_OUTPUT / "notebooks"
            out_dir.mkdir(parents=True, exist_ok=True)
            src = out_dir / f"{name}.source.ipynb"
            nbformat.write(to_notebook(name), src)
            out = out_dir / f"{name}-{abs(hash(key)) % 10**8}.ipynb"
            pm.execute_notebook(
                str(src),
                str(out),
                parameters=params,
                cwd=str(ROOT),
                kernel_name="python3",
                progress_bar=False,
            )
            nb = nbformat.read(out, as_version=4)
            cache[key] = (nb, read_glued(nb))
        return cache[key]

    return _run
