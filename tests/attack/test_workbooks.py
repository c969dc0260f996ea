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

The same builds show what a tiny service's front page looks like: every headline figure is
the step's own controlled figure or says why it is not shown, and no page shows "nan".
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import re
from pathlib import Path

import pytest

from .attacks import Report, attack_folder
from .conftest import ATTACKED
from .crafted import CASES, SAMPLE_CONFIG, build_workbooks
from .facts import parse_cell, read_publication
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


#: Words that are never a figure: a missing value printed as it is held.
NOT_A_FIGURE = re.compile(r"\b(nan|none|inf|infinity|<na>|nat)\b", re.IGNORECASE)
#: The columns of the summary's table of gaps that hold figures.
FIGURE_COLUMN = re.compile(r"%|number|gap|limit", re.IGNORECASE)
NOT_AVAILABLE = "not available. "


def headline_problems(folder: Path) -> list[str]:
    """What is wrong with the headline figures on a built workbook's front page, and with
    the figures of its summary page (an empty list when nothing is)."""
    from equity_helpers.steps import STEPS
    from equity_helpers.workbook.results import DECIMALS, HEADLINES

    pub = read_publication(folder)
    manifest = json.loads((folder / "manifest.json").read_text())["headlines"]
    key_of = {label: key for key, label in HEADLINES}
    step_of = {key: name for name, module in STEPS.items() for key in module.HEADLINES}
    page_text = {}
    for text in pub.texts:
        page_text.setdefault(text.source, []).append(text.text)
    problems = []
    (table,) = [
        t for t in pub.tables if t.source == "html/index.html" and t.header[:1] == ["Figure"]
    ]
    for label, shown, *_ in table.rows:
        key = key_of[label.replace("\u2019", "'")]  # the book curls quotes
        where = f"front page, {label!r}: {shown!r}"
        if not shown.strip() or NOT_A_FIGURE.search(shown):
            problems.append(f"{where} is not a figure")
        elif shown.startswith(NOT_AVAILABLE):  # withheld or not worked out: says why
            if manifest[key] is not None or len(shown) <= len(NOT_AVAILABLE) + 10:
                problems.append(f"{where} does not say why it is not shown")
        elif isinstance(manifest[key], int | float):
            # The step's own figure, shown on its page too, where the rule controls it.
            places = DECIMALS.get(key, 1)
            cell = parse_cell(shown)
            if cell.kind not in ("int", "number") or shown != f"{manifest[key]:,.{places}f}":
                problems.append(f"{where} is not the step's figure {manifest[key]!r}")
            page = " ".join(page_text[f"html/steps/{step_of[key]}.html"])
            if not re.search(rf"(?<![\d.]){re.escape(shown)}(?![\d])", page):
                problems.append(f"{where} is not on the page of step {step_of[key]!r}")
        elif not isinstance(manifest[key], str):
            problems.append(f"{where}: the manifest holds {manifest[key]!r}")
    summary = "html/steps/summary-and-plan.html"
    for text in page_text[summary]:
        if NOT_A_FIGURE.search(text):
            problems.append(f"summary page: {text[:200]!r}")
    for t in pub.tables:
        if t.source != summary:
            continue
        for j, header in enumerate(t.header):
            if not FIGURE_COLUMN.search(header):
                continue
            for row in t.rows:
                cell = parse_cell(row[j] if j < len(row) else "")
                if cell.kind not in ("int", "number", "hidden"):
                    problems.append(f"summary page, {t.where}, {header!r}: {cell.text!r}")
    return problems


def test_the_front_page_and_summary_show_figures_or_say_why_not(built):
    """A tiny service (400 referrals) and every crafted one: each headline figure on the
    front page is the step's controlled figure, as its page shows it, or says why it is not
    shown; no page shows "nan", "None", "inf" or an empty figure."""
    name, folder, *_ = built
    assert not headline_problems(folder), f"{CASES[name][1]}:\n" + "\n".join(
        headline_problems(folder)
    )
