"""The row account reads the same wherever it is shown.

The front page, the data completeness page and the command line's ``check`` report each
show the account of the extract's rows (and of the appointments file's rows). They are
made from the same lines, so their labels and figures cannot disagree; the runner's
progress line uses the same labels.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import yaml

from equity_helpers import open_service
from equity_helpers.cli import main
from equity_helpers.config import load_config
from equity_helpers.extract import LEFT_OUT, ROWS_READ, ROWS_USED
from equity_helpers.preparation import prepare_to_file
from equity_helpers.steps import data_completeness
from equity_helpers.workbook.pages import _front_page
from equity_helpers.workbook.pipeline import _prepare

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "sample_data" / "appointments_example"
TITLES = ["Long COVID referrals: monthly report", "Run on 01/04/2025"]
FOOTER = ["", "Total referrals,300", "End of report"]


def _example(tmp_path: Path) -> Path:
    """The appointments example with titles, a footer, rows left out and rows not counted."""
    referrals = pd.read_csv(EXAMPLE / "referrals.csv", dtype=str, keep_default_na=False)
    referrals.loc[10, "Referral Ref"] = ""  # no referral ID: left out
    referrals.loc[20, "Date Referral Received"] = "15/03/2021"  # before the period: left out
    body = referrals.to_csv(index=False, lineterminator="\n")
    (tmp_path / "referrals.csv").write_text(
        "\n".join(TITLES) + "\n" + body + "\n".join(FOOTER) + "\n", encoding="utf-8"
    )
    appointments = pd.read_csv(EXAMPLE / "appointments.csv", dtype=str, keep_default_na=False)
    extra = pd.DataFrame(
        [["LC999999", "01/06/2022 10:00", "Attended"]],  # no such referral: not counted
        columns=appointments.columns,
    )
    repeat = appointments.iloc[[5]]  # one appointment written twice: not counted again
    pd.concat([appointments, extra, repeat]).to_csv(tmp_path / "appointments.csv", index=False)
    cfg = yaml.safe_load((EXAMPLE / "service.yml").read_text(encoding="utf-8"))
    for key, value in cfg["reference"].items():
        if isinstance(value, str) and value.startswith("../"):
            cfg["reference"][key] = str((EXAMPLE / value).resolve())
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _front_page_lines(page: str) -> list[tuple[str, int]]:
    account = page[page.index("## Row account") : page.index("## Steps")]
    return [
        (label, int(n.replace(",", "")))
        for label, n in re.findall(r"^\| ([^|]*[^| ]) \| ([\d,]+) \|$", account, re.MULTILINE)
    ]


def _report_lines(report: str) -> list[tuple[str, int]]:
    return [
        (label, int(n.replace(",", "")))
        for label, n in re.findall(r"^  (\S.*?) {2,}([\d,]+)$", report, re.MULTILINE)
    ]


def _html_lines(html: str) -> list[tuple[str, int]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.DOTALL) for row in rows]
    return [
        (c[-2].strip(), int(c[-1].replace(",", "")))
        for c in cells
        if len(c) >= 2 and c[-1].replace(",", "").strip().isdigit()
    ]


def test_the_row_account_is_the_same_on_every_page_and_report(tmp_path, capsys):
    config = _example(tmp_path)

    # The command line: `equity-workbook check`.
    assert main(["check", str(config)]) == 0
    checked = capsys.readouterr().out
    assert checked.startswith("Ready to run.")
    in_check = _report_lines(checked)

    # The front page, from the prepared file's metadata as the workbook runner reads it.
    cfg = load_config(config)
    prepared_path, meta = prepare_to_file(cfg, tmp_path / "prepared.parquet")
    page = _front_page(cfg, meta, [], None, {}, dt.date(2026, 12, 2))
    on_front = _front_page_lines(page)

    # The data completeness page's table, as its notebook shows it.
    service = open_service(config, prepared_path)
    shown = data_completeness.run(service).show("row_account")
    on_step = _html_lines(shown.to_html())

    assert on_front == in_check == on_step
    # And the lines are the right ones: every line of each file is accounted for.
    labels = dict(on_front)
    assert labels["Not part of the table: titles above the column names"] == len(TITLES)
    footer = labels["Not part of the table: totals, run details and notes below the data"]
    assert footer == len([line for line in FOOTER if line])
    assert labels["Rows read from the extract"] == 300
    assert labels["Rows analysed"] == 298
    left_out = [n for label, n in on_front if label.startswith("Left out: ")]
    assert sorted(left_out) == [1, 1]
    appointments = len(pd.read_csv(EXAMPLE / "appointments.csv")) + 2
    assert labels["Appointment rows read"] == appointments
    assert labels["Appointments counted"] + 2 <= appointments
    not_counted = [n for label, n in on_front if label.startswith("Not counted: ")]
    assert labels["Appointments counted"] + sum(not_counted) == appointments
    # The runner's progress line says the same, in the same words.
    lines: list[str] = []
    _prepare(cfg, tmp_path / "work", lines.append)
    (progress,) = [line for line in lines if "Rows read" in line]
    said = [
        (label, int(n.replace(",", "")))
        for label, n in re.findall(r"(\w[\w ]*): ([\d,]+)", progress)
    ]
    assert [label for label, _ in said] == [ROWS_READ, ROWS_USED.lower(), LEFT_OUT.lower()]
    assert said[0][1] == labels[ROWS_READ] and said[1][1] == labels[ROWS_USED]
    assert said[2][1] == sum(left_out) and "(for 2 reasons)" in progress
    # The order a reader follows: the extract, then the appointments file.
    order = [label.split(":")[0] for label, _ in on_front]
    assert order.index("Rows read from the extract") < order.index("Rows analysed")
    assert order.index("Rows analysed") < order.index("Appointment rows read")
    assert order[-1] == "Appointments counted"
