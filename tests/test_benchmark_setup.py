"""The benchmark measures what a user meets: its cold run starts from what a fresh clone holds
(no environment, no compiled files) and from a new user's empty Matplotlib, IPython and Jupyter
folders, and its prepare-only row reads the figures its script prints."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"

_spec = importlib.util.spec_from_file_location("benchmark_run", ROOT / "benchmarks" / "run.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _git_listed() -> set[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the cold run cannot be measured here")
    return {n for n in out.decode().split("\0") if n and (ROOT / n).exists()}


def test_a_fresh_clone_holds_the_projects_files_and_nothing_built(tmp_path):
    listed = _git_listed()
    # Something built is there to be left out: the package compiled as `make setup` leaves it.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "equity_helpers"], cwd=ROOT)
    assert any((ROOT / "equity_helpers" / "__pycache__").glob("*.pyc"))

    clone = bench.fresh_clone(tmp_path / "project")

    copied = {p.relative_to(clone).as_posix() for p in clone.rglob("*") if not p.is_dir()}
    assert copied == listed
    assert not [c for c in copied if "__pycache__" in c or c.startswith((".venv/", "_build/"))]
    for name in ("Makefile", "requirements.txt", "equity_helpers/cli.py"):
        assert (clone / name).read_bytes() == (ROOT / name).read_bytes()


def test_a_new_user_has_empty_folders_and_the_install_ignores_make_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MAKEFLAGS", " -- VENV=/elsewhere")
    monkeypatch.setenv("MAKELEVEL", "1")

    env = bench.new_user_env(tmp_path / "user")

    for variable in ("MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR"):
        folder = Path(env[variable])
        assert folder.is_dir() and tmp_path in folder.parents
        assert not any(folder.iterdir())
    assert "MAKEFLAGS" not in env and "MAKELEVEL" not in env
    assert env["PATH"] == os.environ["PATH"]


def test_prepare_only_reads_the_time_and_peak_memory_its_script_prints():
    figures = bench.bench_prepare(SAMPLE_CFG)

    assert 0 < figures["prepare_s"] <= figures["wall_s"]
    assert figures["peak_gb"] > 0
    assert {"load_before", "load_after"} <= set(figures)
