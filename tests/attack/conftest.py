"""What the attack tests record for the run's summary (printed by ``report_attacks``, which
tests/conftest.py calls: the run's controller loads that file whether or not it runs the
tests itself)."""

from __future__ import annotations

#: The name under which a test records (case, distinct findings, places, attacks tried)
#: for the workbook it attacked. A test's recorded properties reach the run's summary from
#: any worker when the suite runs on several (pytest-xdist).
ATTACKED = "attacked"


def report_attacks(terminalreporter) -> None:
    """How many attacks each attacked workbook met, and what they found."""
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
