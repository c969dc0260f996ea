"""Report how hard the attacker tried, in the test summary of any run that attacked a workbook."""

from __future__ import annotations

#: (case, distinct findings, places, attacks tried) for each workbook attacked in this run.
ATTACKED: list[tuple[str, int, int, int]] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not ATTACKED:
        return
    terminalreporter.section("disclosure attacks on built workbooks")
    for case, distinct, places, tried in ATTACKED:
        terminalreporter.write_line(
            f"{case}: {tried} attacks tried, {distinct} distinct finding(s) in {places} places"
        )
    terminalreporter.write_line(f"total: {sum(t for *_, t in ATTACKED)} attacks tried")
