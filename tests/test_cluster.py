"""A region's services on a Dask cluster: the same workbooks as a local run.

``equity-workbook run --scheduler`` sends each service's steps, and then the assembly of its
workbook, to the workers of a Dask distributed cluster. These tests use ``dask.distributed.LocalCluster``, the same scheduler and workers
a trust's platform runs, on this machine.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from equity_helpers.errors import WorkbookError
from equity_helpers.workbook import cluster, run_many
from equity_helpers.workbook.execute import _InOrder
from equity_helpers.workbook.folders import RUN_PREFIX

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "sample_service.yml"
STEPS = ["data-completeness", "pathway"]


def _broken_config(tmp_path: Path) -> Path:
    """A service whose extract lacks the columns its config maps: its run stops on a
    worker, while its extract is prepared, before any step."""
    cfg = yaml.safe_load(SAMPLE.read_text())
    cfg["service"]["name"] = "Broken service"
    extract = tmp_path / "broken-extract.csv"
    extract.write_text("x,y\n1,2\n")
    cfg["extract"]["path"] = str(extract)
    for section in ("reference", "readability"):
        for key, value in cfg.get(section, {}).items():
            if isinstance(value, str) and (SAMPLE.parent / value).exists():
                cfg[section][key] = str((SAMPLE.parent / value).resolve())
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_in_order_runs_each_job_at_once_and_keeps_its_error():
    pool = _InOrder()
    ok = pool.submit(lambda a, b: a + b, 2, 3)
    bad = pool.submit(lambda: 1 / 0)
    assert ok.done() and ok.result() == 5
    assert bad.done() and isinstance(bad.exception(), ZeroDivisionError)
    assert list(cf.as_completed([ok, bad])) and pool._processes == {}


def test_a_playbook_error_comes_back_from_a_worker_as_it_was_raised():
    """A service's error crosses from a worker pickled: the same kind, code and words."""
    import pickle

    from equity_helpers.errors import ExtractError
    from equity_helpers.privacy import DisclosureConfigError

    for error in (
        ExtractError(
            "EXT004", path="extract.csv", missing="'Referral Accepted'", found="x, y", suggestion=""
        ),
        DisclosureConfigError("disclosure.rounding", 0, "a whole number of 1 or more"),
    ):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert str(back) == str(error) and back.code == error.code
        assert back.__dict__ == error.__dict__


def test_a_scheduler_that_does_not_answer_gives_run007(tmp_path):
    with pytest.raises(WorkbookError) as info:
        cluster.run_on_cluster([SAMPLE], tmp_path, "tcp://127.0.0.1:9", timeout=0.5)
    assert info.value.code == "RUN007"
    assert "tcp://127.0.0.1:9" in str(info.value)


def test_workers_with_another_version_get_run008_before_any_work(tmp_path, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(cluster, "_version", lambda: "0" * 64)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as local:
        with pytest.raises(WorkbookError) as info:
            cluster.run_on_cluster([SAMPLE], tmp_path, local)
    assert info.value.code == "RUN008"
    assert not any(tmp_path.iterdir())  # nothing was built


def _planted_failure(tmp_path: Path) -> Path:
    """The notebooks, with the pathway's failing: a step's failure must stop no other."""
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    broken = notebooks / "pathway.md"
    broken.write_text(
        broken.read_text()
        + "\n```{code-cell} ipython3\nraise RuntimeError('planted failure')\n```\n"
    )
    return notebooks


def _published(folder: Path) -> dict:
    """What a workbook publishes that a run decides: figures, steps and tables."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        "headlines": manifest["headlines"],
        "account": manifest["account"],
        "steps": [(s["name"], s["status"], s["glued"]) for s in manifest["steps"]],
        "tables": {p.name: p.read_bytes() for p in sorted((folder / "tables").glob("*.csv"))},
        # A kernel's start-up chatter is kept apart only when a notebook runs in a process's
        # main thread (a Dask worker runs its tasks in threads).
        "logs": sorted(p.name for p in (folder / "logs").iterdir() if p.suffix != ".log"),
    }


@pytest.mark.slow
def test_a_cluster_builds_the_same_workbooks_and_one_failure_stops_nothing(tmp_path):
    from distributed import LocalCluster

    broken = _broken_config(tmp_path)
    notebooks = _planted_failure(tmp_path)
    options = dict(steps=STEPS, force=True, notebook_dir=notebooks)
    here = run_many([SAMPLE], tmp_path / "here", progress=lambda m: None, **options)
    lines: list[str] = []
    # Two worker processes, started as daemons as Dask does by default: each step is a
    # task of its own, and so is the assembly of each service's workbook.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        there = cluster.run_on_cluster(
            [broken, SAMPLE], tmp_path / "there", local, progress=lines.append, **options
        )
    failed, built = there
    # The message from the catalogue, with its code, as a local run gives it.
    assert failed.service == "broken" and "[EXT004]" in failed.error
    assert "Referral Accepted" in failed.error
    assert built.error is None and built.html_index.is_file()
    # The same workbook as the local run: the failing step failed there too, and alone.
    assert {s.name: s.status for s in built.steps} == {
        "data-completeness": "ok",
        "pathway": "failed",
    }
    assert "planted failure" in built.failures[0].message
    assert _published(built.out_dir) == _published(here[0].out_dir)
    assert built.headlines() == here[0].headlines() and built.headlines()
    manifest = json.loads((built.out_dir / "manifest.json").read_text())
    assert manifest["made_by"] == "equity-workbook"
    # Progress as in a local run, each line naming its service.
    mine = [line for line in lines if line.startswith("sample_service: ")]
    assert any("Rows read from the extract: 6,000;" in line for line in mine)
    assert any("[2/2]" in line for line in mine)
    assert any("Where each group leaves the pathway: failed in " in line for line in mine)
    assert any("Assembling the HTML workbook" in line for line in mine)
    # The runs' private folders are gone: no prepared extract or step results are left.
    leftovers = list(Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}{os.getpid()}-*"))
    assert leftovers == []
    # The index compares both services and says which failed.
    index = (tmp_path / "there" / "index.html").read_text()
    assert "failed" in index and "Derbyshire Long COVID" in index


@pytest.mark.slow
def test_scheduler_local_starts_a_cluster_for_the_run_and_ends_it(tmp_path, capsys):
    """`run --scheduler local`: one command, a cluster of this machine's own for the run,
    the same outcome for each service as with a cluster's address, and nothing left after."""
    import psutil

    from equity_helpers.cli import main

    broken = _broken_config(tmp_path)
    out = tmp_path / "out"
    argv = ["run", "--config", str(broken), "--config", str(SAMPLE), "--out", str(out)]
    argv += ["--scheduler", "local", "--jobs", "1", "--steps", "data-completeness", "--force"]
    status = main(argv)
    printed = capsys.readouterr().out
    assert status == 2  # one service failed
    assert "broken: the workbook was not built." in printed and "[EXT004]" in printed
    # Progress lines come back from the cluster, each naming its service.
    assert "sample_service: [1/1] How complete is your equality data?: ok in" in printed
    built = json.loads(
        (
            out / "derbyshire-long-covid-rehabilitation-service-synthetic-example" / "manifest.json"
        ).read_text()
    )
    assert [(s["name"], s["status"]) for s in built["steps"]] == [("data-completeness", "ok")]
    assert "failed" in (out / "index.html").read_text()
    # The cluster's worker and the worker's kernel ended with the run. (Python's own
    # resource tracker, started once for this process, stays as it always does.)
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    left = [p.cmdline() for p in left if p.status() != psutil.STATUS_ZOMBIE]
    assert [c for c in left if not any("resource_tracker" in part for part in c)] == []
