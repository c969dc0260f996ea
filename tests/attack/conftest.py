"""Report how hard the attacker tried, in the test summary of any run that attacked a workbook."""

from __future__ import annotations

#: The name under which a test records (case, distinct findings, places, attacks tried)
#: for the workbook it attacked. A test's recorded properties reach the run's summary from
#: any worker when the suite runs on several (pytest-xdist).
ATTACKED = "attacked"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    attacked = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for key, value in getattr(report, "user_properties", ())
        if key == ATTACKED
    ]
    if not attacked:
        return
    terminalreporter.section("disclosure attacks on built workbooks")
    for case, distinct, places, tried in attacked:
        terminalreporter.write_line(
            f"{case}: {tried} attacks tried, {distinct} distinct finding(s) in {places} places"
        )
    terminalreporter.write_line(f"total: {sum(t for *_, t in attacked)} attacks tried")
