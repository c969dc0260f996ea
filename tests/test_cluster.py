"""A region's services on a Dask cluster: the same workbooks as a local run.

``equity-workbook run --scheduler`` sends each service to a worker of a Dask distributed
cluster. These tests use ``dask.distributed.LocalCluster``, the same scheduler and workers
a trust's platform runs, on this machine.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from pathlib import Path

import pytest
import yaml

from equity_helpers.errors import WorkbookError
from equity_helpers.workbook import cluster, run_many
from equity_helpers.workbook.execute import _InOrder

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "sample_service.yml"
STEP = ["data-completeness"]


def _broken_config(tmp_path: Path) -> Path:
    """A service whose extract is missing: its run stops before any notebook."""
    cfg = yaml.safe_load(SAMPLE.read_text())
    cfg["service_name"] = "Broken service"
    cfg["extract"]["path"] = str(tmp_path / "no-such-extract.csv")
    for key, value in cfg.get("reference", {}).items():
        if isinstance(value, str) and (SAMPLE.parent / value).exists():
            cfg["reference"][key] = str((SAMPLE.parent / value).resolve())
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


def test_a_scheduler_that_does_not_answer_gives_run007(tmp_path):
    with pytest.raises(WorkbookError) as info:
        cluster.run_on_cluster([SAMPLE], tmp_path, "tcp://127.0.0.1:9", timeout=2)
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


@pytest.mark.slow
def test_a_cluster_builds_the_same_workbooks_and_one_failure_stops_nothing(tmp_path):
    from distributed import LocalCluster

    broken = _broken_config(tmp_path)
    here = run_many([SAMPLE], tmp_path / "here", steps=STEP, force=True, progress=lambda m: None)
    lines: list[str] = []
    # Two worker processes, started as daemons as Dask does by default: each runs its
    # service's notebooks one after another.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        there = cluster.run_on_cluster(
            [broken, SAMPLE],
            tmp_path / "there",
            local,
            steps=STEP,
            force=True,
            progress=lines.append,
        )
    failed, built = there
    assert failed.service == "broken" and "no-such-extract.csv" in failed.error
    assert built.error is None and built.ok
    # The same figures as the local run, from the same step.
    assert built.headlines() == here[0].headlines() and built.headlines()
    assert [s.name for s in built.steps] == STEP
    assert built.html_index.is_file()
    manifest = json.loads((built.out_dir / "manifest.json").read_text())
    assert manifest["made_by"] == "equity-workbook"
    # The workers' progress came back, each line naming its service.
    assert any(line.startswith("sample_service: ") and "[1/1]" in line for line in lines)
    # The index compares both services and says which failed.
    index = (tmp_path / "there" / "index.html").read_text()
    assert "failed" in index and "Derbyshire Long COVID" in index
