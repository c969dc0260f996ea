"""Step 1: how complete is the service's equality data?"""

from __future__ import annotations

from .. import analysis
from ..config import EQUALITY_FIELDS
from ..errors import CATALOGUE
from ..extract import ACCOUNT_COUNT_HEADER, account_lines, account_table
from ..privacy import count_words
from ..wording import is_number, number
from .base import Chart, StepResult, Table, cached, headline, number_or_none

#: The prepared columns this step reads (see :func:`equity_helpers.steps.columns_for`).
READS = ("referral_month", *EQUALITY_FIELDS, "lsoa_code", "lsoa_status")

#: Headline figures for the workbook's front page: glue name and label.
HEADLINES = {
    "rows_used": "Referrals analysed",
    "ethnicity_recorded_pct": "Ethnicity recorded (%)",
}
COUNTS = ("Records", "Recorded", "Not stated", "Not known", "Invalid")
PERCENTS = ("% recorded", "% not stated or not known")


@cached
def run(service) -> StepResult:
    """Row account, completeness of every equality field, its trend, and an action list."""
    data, rule, account = service.data, service.rule, service.account
    result = StepResult("data-completeness")
    result.values["rows_read"] = f"{account['rows_read']:,}"
    result.values["rows_used"] = f"{account['rows_used']:,}"
    appointments = service.meta.get("appointments")
    files = "the extract's rows" + (" and the appointment file's rows" if appointments else "")
    result.tables["row_account"] = Table(
        account_table(account_lines(account, appointments)),
        f"Row account (exact counts of {files}, not of people)",
        counts=(ACCOUNT_COUNT_HEADER,),
        exact=True,
    )

    comp = analysis.completeness(data, rule)
    shown = comp.drop(columns=["field"])
    result.tables["completeness"] = Table(
        shown, "Completeness of equality fields", COUNTS, PERCENTS, export="data_completeness"
    )
    eth = comp.set_index("field").loc["ethnicity"]
    headline(
        result,
        "ethnicity_recorded_pct",
        eth["% recorded"],
        "Too few referrals have ethnicity recorded to show a share.",
    )
    result.values["ethnicity_gap_pct"] = number_or_none(eth["% not stated or not known"])
    result.values["ethnicity_sentence"] = (
        f"Ethnicity is recorded for {number(eth['% recorded'])}% of referrals. For "
        f"{number(eth['% not stated or not known'])}% it is not stated or not known."
        if is_number(eth["% recorded"]) and is_number(eth["% not stated or not known"])
        else "Too few referrals to show how completely ethnicity is recorded."
    )
    result.charts["recorded"] = Chart(
        "bar_ci",
        comp.rename(columns={"Field": "group"}),
        {
            "value": "% recorded",
            "lower": None,
            "upper": None,
            "title": "Share of referrals with each field recorded",
            "xlabel": "% recorded",
            "xlim": (0, 110),
        },
        people="Records",
        values=PERCENTS,
        counts=("Records",),
    )

    monthly = analysis.completeness_by_month(data, "ethnicity", rule)
    first, last = analysis.recording_trend(data, "ethnicity")
    result.values["eth_first_year"] = first
    result.values["eth_last_year"] = last
    trend = (
        "improved"
        if last > first + 1
        else "fallen"
        if last < first - 1
        else "stayed about the same"
    )
    result.values["eth_trend_word"] = trend
    result.values["trend_sentence"] = (
        f"In the first year, ethnicity was recorded for {first:.1f}% of referrals. In the last "
        f"year it was {last:.1f}%. Recording has {trend}."
        if is_number(first) and is_number(last)
        else "There are too few months to see a trend."
    )
    result.charts["monthly"] = Chart(
        "line_chart",
        monthly,
        {
            "x": "month",
            "y": "% recorded",
            "title": "Ethnicity recorded, by month of referral",
            "ylabel": "% of referrals",
        },
        people="Referrals",
        values=("% recorded",),
        counts=("Referrals",),
    )

    issues = [i for i in service.meta["issues"] if i["kind"] != "exclusion"]
    # The catalogue's title, never the message itself: the message names row numbers and an
    # example value, and its exact count could give a small group away (rule 4).
    result.lists["issues"] = [
        f"{CATALOGUE[i['code']].title}: {count_words(i['count'], rule)} rows in "
        f"'{i['column'] or 'the extract'}'"
        for i in issues
    ]
    actions = analysis.quality_actions(comp)
    result.lists["actions"] = actions
    result.values["n_quality_actions"] = len(actions)
    result.findings = [
        f"The extract held {result.values['rows_read']} rows, and "
        f"{result.values['rows_used']} are analysed.",
        f"Ethnicity is recorded for {number(eth['% recorded'])}% of referrals, and recording "
        f"has {trend}."
        if is_number(eth["% recorded"])
        else "Too few referrals to show how completely ethnicity is recorded.",
        *actions,
    ]
    return result
