"""Every crafted workbook survives the attacker: nothing about a small group can be read,
worked out or undone from anything it publishes.

Each case in :data:`tests.attack.crafted.CASES` is built once with every step, then
attacked with the truth of its extract; the sample service is the session's shared sample
workbook (the ``sample_folder`` fixture), built once for every test that reads it. The
number of attacks tried is printed in the test summary.

The six crafted builds take a few minutes; they are part of ``make test``, so a change that
lets a reader work out anything about a small group fails the suite. A finding's full
reasoning is written to ``test-output/attack/<case>-findings.txt``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .attacks import attack_folder
from .conftest import ATTACKED
from .crafted import CASES, SAMPLE_CONFIG, build_workbook
from .truth import truth_from_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=list(CASES))
def built(request, tmp_path_factory):
    name = request.param
    if name == "sample":  # the shared build: attacking only reads it
        return name, request.getfixturevalue("sample_folder"), SAMPLE_CONFIG
    folder, config = build_workbook(name, tmp_path_factory.mktemp(f"attack-{name}"))
    return name, folder, config


def test_the_attacker_finds_nothing(built):
    name, folder, config = built
    report = attack_folder(folder, truth_from_config(config))
    ATTACKED.append((name, len(report.grouped()), len(report.findings), report.attacks_tried))
    out = ROOT / "test-output" / "attack"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}-findings.txt").write_text(report.text())
    assert report.tried["iv cell"] > 0 and report.tried["vii small exact count"] > 0
    assert not report.findings, (
        f"{CASES[name][1]}: {len(report.grouped())} disclosure(s); "
        f"all in test-output/attack/{name}-findings.txt\n" + report.text()[:6000]
    )
