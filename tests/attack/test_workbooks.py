"""Every crafted workbook survives the attacker: nothing about a small group can be read,
worked out or undone from anything it publishes.

Each case in :data:`tests.attack.crafted.CASES` is built once with every step, then
attacked with the truth of its extract; the sample service is the session's shared sample
workbook (the ``sample_folder`` fixture), built once for every test that reads it. The
number of attacks tried is printed in the test summary.

The crafted workbooks are built together, two at a time, the first time a test asks
for one; they are part of ``make test``, so a change that lets a reader work out anything
about a small group fails the suite. A finding's full reasoning is written to
``test-output/attack/<case>-findings.txt``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .attacks import attack_folder
from .conftest import ATTACKED
from .crafted import CASES, SAMPLE_CONFIG, build_workbooks
from .truth import truth_from_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crafted_workbooks(tmp_path_factory) -> tuple[dict[str, tuple[Path, Path]], Path]:
    """Every crafted case's workbook, built side by side, and the folder of the runs' logs."""
    folder = tmp_path_factory.mktemp("attack")
    return build_workbooks([name for name in CASES if name != "sample"], folder), folder


@pytest.fixture(params=list(CASES))
def built(request):
    name = request.param
    if name == "sample":  # the shared build: attacking only reads it
        return name, request.getfixturevalue("sample_folder"), SAMPLE_CONFIG
    workbooks, folder = request.getfixturevalue("crafted_workbooks")
    workbook, config = workbooks[name]
    if not (workbook / "manifest.json").is_file():
        logs = "\n".join(p.read_text()[-3000:] for p in sorted(folder.glob("run-*.log")))
        pytest.fail(f"The {name!r} workbook was not built:\n{logs}")
    return name, workbook, config


def test_the_attacker_finds_nothing(built, record_property):
    name, folder, config = built
    report = attack_folder(folder, truth_from_config(config))
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
