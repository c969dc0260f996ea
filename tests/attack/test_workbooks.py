"""Every crafted workbook survives the attacker: nothing about a small group can be read,
worked out or undone from anything it publishes.

Each case in :data:`tests.attack.crafted.CASES` is built once with every step, then
attacked with the truth of its extract; the sample service is the session's shared sample
workbook (the ``sample_folder`` fixture), built once for every test that reads it. The
number of attacks tried is printed in the test summary.

The crafted workbooks are built together, two at a time, the first time a test asks
for one, then attacked two at a time; they are part of ``make test``, so a change that
lets a reader work out anything about a small group fails the suite. A finding's full reasoning is written to
``test-output/attack/<case>-findings.txt``.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from pathlib import Path

import pytest

from .attacks import Report, attack_folder
from .conftest import ATTACKED
from .crafted import CASES, SAMPLE_CONFIG, build_workbooks
from .truth import truth_from_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _attack(workbook: Path, config: Path) -> Report:
    return attack_folder(workbook, truth_from_config(config))


@pytest.fixture(scope="module")
def crafted_workbooks(tmp_path_factory) -> tuple[dict[str, tuple[Path, Path]], Path, dict]:
    """Every crafted case's workbook, built side by side, the folder of the runs' logs, and
    the attacker's report on each workbook that was built (two attacked at a time, each in
    a process of its own; a report, or the error the attack raised)."""
    folder = tmp_path_factory.mktemp("attack")
    workbooks = build_workbooks([name for name in CASES if name != "sample"], folder)
    built = {n: wc for n, wc in workbooks.items() if (wc[0] / "manifest.json").is_file()}
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = {name: pool.submit(_attack, *built[name]) for name in built}
        reports = {}
        for name, future in futures.items():
            try:
                reports[name] = future.result()
            except Exception as exc:  # noqa: BLE001 - raised again by that case's test
                reports[name] = exc
    return workbooks, folder, reports


@pytest.fixture(params=list(CASES))
def built(request):
    """(case, its published workbook, its config, the attacker's report or None)."""
    name = request.param
    if name == "sample":  # the shared build: attacking only reads it
        return name, request.getfixturevalue("sample_folder"), SAMPLE_CONFIG, None
    workbooks, folder, reports = request.getfixturevalue("crafted_workbooks")
    workbook, config = workbooks[name]
    if not (workbook / "manifest.json").is_file():
        logs = "\n".join(p.read_text()[-3000:] for p in sorted(folder.glob("run-*.log")))
        pytest.fail(f"The {name!r} workbook was not built:\n{logs}")
    if isinstance(reports[name], Exception):
        raise reports[name]
    return name, workbook, config, reports[name]


def test_the_attacker_finds_nothing(built, record_property):
    name, folder, config, report = built
    if report is None:
        report = _attack(folder, config)
    record_property(
        ATTACKED, (name, len(report.grouped()), len(report.findings), report.attacks_tried)
    )
    out = ROOT / "test-output" / "attack"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}-findings.txt").write_text(report.text())
    assert report.tried["iv cell"] > 0 and report.tried["vii small exact count"] > 0
    assert not report.findings, (
        f"{CASES[name][1]}: {len(report.grouped())} disclosure(s); "
        f"all in test-output/attack/{name}-findings.txt\n" + report.text()[:6000]
    )
