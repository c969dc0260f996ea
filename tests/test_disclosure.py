"""Disclosure across a whole step: can a reader learn about one person from what is shown?

Each test builds a small service (400 rows of the sample) with one planted person or small
group, runs the steps' ``run`` directly, and looks at everything a step would publish:
tables, chart data, glued values, findings, lists, texts and notes. It checks the four
rules in :mod:`equity_helpers.privacy`: figures about people only for groups of more than
the threshold, free-text labels of small groups never shown, percentages that cannot undo
the rounding, and no exact small count in words.
"""

from __future__ import annotations

import itertools
import math
import re
from fractions import Fraction
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import yaml

from equity_helpers import open_service, plots, steps
from equity_helpers.privacy import (
    OTHER_SMALL_GROUPS,
    DisclosureRule,
    count_words,
    merge_small_groups,
    people_publishable,
    published_percentage,
)
from equity_helpers.steps import (
    access_and_outcome_gaps,
    data_completeness,
    evaluation,
    pathway,
    who_uses_the_service,
)
from equity_helpers.steps.base import Chart, seal_chart

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
CONFIG = SAMPLE / "sample_service.yml"
RULE = DisclosureRule()
LONE = "Lone Religion 485 777 3456"


# ----------------------------------------------------------------------------- crafted services


def _rows() -> pd.DataFrame:
    """400 referrals drawn from the whole sample (a small service), in their file order."""
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw = pd.read_csv(SAMPLE / cfg["extract"]["path"], dtype=str, keep_default_na=False)
    return raw.sample(n=400, random_state=2024).sort_index().reset_index(drop=True)


def _clean_row(data: pd.DataFrame) -> int:
    """The first referral that is accepted, seen, early enough to follow, in the catchment."""
    date = pd.to_datetime(data["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    ok = (
        date.between("2022-04-01", "2024-03-31")
        & data["Referral Accepted"].eq("Y")
        & data["LSOA"].str.fullmatch(r"E019\d{5}")
        & data["Age at Referral"].str.fullmatch(r"\d{2}")
        & data["First Contact Date"].ne("")
        & data["Appts Offered"].str.fullmatch(r"\d+")
    )
    return int(ok.to_numpy().nonzero()[0][0])


def _service(folder: Path, data: pd.DataFrame):
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    data.to_csv(folder / "extract.csv", index=False)
    cfg["extract"]["path"] = str(folder / "extract.csv")
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        cfg["reference"][key] = str(SAMPLE / cfg["reference"][key])
    for key in ("before", "after"):
        cfg["readability"][key] = str(SAMPLE / cfg["readability"][key])
    path = folder / "service.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return open_service(path)


def _jedi(data):
    i = _clean_row(data)
    data.loc[i, "Religion"] = "Jedi"
    data.loc[i, ["Appts Offered", "Appts Attended", "Appts DNA"]] = ["20", "5", "15"]
    return data


def _jedi_alone(data):
    """As above, with everyone else sharing one religion: the merged line is one person."""
    data["Religion"] = "No religion"
    return _jedi(data)


def _lone(data):
    data.loc[_clean_row(data), "Religion"] = LONE
    return data


def _one_age_unknown(data):
    data["Age at Referral"] = "40"
    data.loc[_clean_row(data), "Age at Referral"] = ""
    return data


def _bad_codes(data):
    data.loc[[0, 1, 2], "Gender"] = "Q"
    data.loc[[3, 4], "Ethnic Category"] = "ZZ"
    return data


def _one_black_person(data):
    """One Black person, still open: their "Completed" is 0, which must not be shown."""
    data["Ethnic Category"] = "A"
    i = _clean_row(data)
    data.loc[i, "Ethnic Category"] = "M"
    data.loc[i, ["Discharge Date", "Discharge Reason"]] = ["", ""]
    return data


def _clean_rows(data: pd.DataFrame, k: int) -> list[int]:
    """The first ``k`` referrals that pass :func:`_clean_row`'s checks."""
    rows = []
    for _ in range(k):
        keep = data.drop(index=rows)
        rows.append(int(keep.index[_clean_row(keep)]))
    return rows


def _lone_month(data):
    """One referral alone in its month, offered 20 appointments and missing none."""
    date = pd.to_datetime(data["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    i = _clean_row(data)
    month = date.dt.to_period("M")
    others = month.eq(month.iloc[i]) & (data.index != i)
    moved = date[others] + pd.DateOffset(months=1)
    data.loc[others, "Date Referral Received"] = moved.dt.strftime("%d/%m/%Y")
    data.loc[i, ["Appts Offered", "Appts Attended", "Appts DNA"]] = ["20", "20", "0"]
    return data


def _small_area(data):
    """Home areas of about 60 people each, and three people alone in their own area, who
    missed 15 of 20 appointments each."""
    valid = data["LSOA"].str.fullmatch(r"E019\d{5}")
    areas = list(dict.fromkeys(data.loc[valid, "LSOA"]))[:6]
    data.loc[valid, "LSOA"] = [areas[k % 5] for k in range(int(valid.sum()))]
    rows = _clean_rows(data, 3)
    data.loc[rows, "LSOA"] = areas[5]
    data.loc[rows, ["Appts Offered", "Appts Attended", "Appts DNA"]] = ["20", "5", "15"]
    return data


def _one_dominates(data):
    """Nine people alone in an ethnic group; one of them has 40 of its 72 appointments."""
    data.loc[data["Ethnic Category"].isin(["R", "S"]), "Ethnic Category"] = "A"
    rows = _clean_rows(data, 9)
    data.loc[rows, "Ethnic Category"] = "S"
    data.loc[rows, ["Appts Offered", "Appts Attended", "Appts DNA"]] = ["4", "4", "0"]
    data.loc[rows[0], ["Appts Offered", "Appts Attended", "Appts DNA"]] = ["40", "10", "30"]
    return data


CASES = {
    "lone-month": _lone_month,
    "small-area": _small_area,
    "one-dominates": _one_dominates,
    "jedi": _jedi,
    "jedi-alone": _jedi_alone,
    "lone": _lone,
    "age-unknown": _one_age_unknown,
    "bad-codes": _bad_codes,
    "one-black-person": _one_black_person,
}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    made = {}

    def get(name):
        if name not in made:
            made[name] = _service(tmp_path_factory.mktemp(name), CASES[name](_rows()))
        return made[name]

    return get


def _published_text(result) -> str:
    """Everything a step would publish, as one string."""
    parts = list(result.words())
    parts += [str(v) for v in result.values.values()]
    for table in result.tables.values():
        parts += [table.caption, table.frame.to_csv()]
    for chart in result.charts.values():
        data = chart.data
        parts.append(data.to_csv() if isinstance(data, pd.DataFrame) else str(data))
        parts.append(str(chart.options))
    return "\n".join(parts)


def _all_results(service):
    return {name: module.run(service) for name, module in steps.STEPS.items()}


# ----------------------------------------------------------------------------- rule 1 and 2


@pytest.mark.parametrize("case", ["jedi", "jedi-alone"])
def test_one_person_with_many_appointments_has_no_rate_label_or_headline(crafted, case):
    service = crafted(case)
    results = _all_results(service)
    for name, result in results.items():
        assert "Jedi" not in _published_text(result), name
    table = results["access-and-outcome-gaps"].tables["every_measure"].frame
    religion = table[table["Field"].str.lower().str.contains("religion")]
    other = religion[religion["Group"].eq(OTHER_SMALL_GROUPS)]
    assert len(other) == 1  # the one person is merged, not dropped silently
    figures = other.drop(columns=["Field", "Group"])
    people = int(service.data["religion"].eq(OTHER_SMALL_GROUPS).sum())
    if people <= RULE.hidden_up_to:
        assert figures.isna().all(axis=None), figures  # a group of one: every rate hidden
        # No headline or sentence speaks about the merged group of one.
        for name, result in results.items():
            for words in result.words():
                assert OTHER_SMALL_GROUPS not in words, (name, words)
    else:  # merged with enough others: shown, and not the one person's 75.0
        assert figures.iloc[0]["Missed appointments %"] != 75.0
    assert case != "jedi-alone" or people == 1


def test_a_label_seen_once_never_appears_anywhere(crafted):
    service = crafted("lone")
    for name, result in _all_results(service).items():
        text = _published_text(result)
        assert "Lone Religion" not in text, name
        assert "485 777" not in text, name


def test_merge_small_groups_keeps_groups_over_the_threshold():
    values = pd.Series(["Jedi"] + ["Sith"] * 7 + ["Christian"] * 8 + [None])
    merged = merge_small_groups(values, RULE)
    assert merged.value_counts().to_dict() == {"Christian": 8, OTHER_SMALL_GROUPS: 8}
    assert merged.isna().sum() == 1
    assert merge_small_groups(values, DisclosureRule(enabled=False)).equals(values.astype("string"))


def test_a_one_person_group_shows_hidden_never_zero(crafted):
    service = crafted("one-black-person")
    table = pathway.run(service).tables["numbers"].frame
    black = table[table["Group"].astype(str).str.startswith("Black")]
    assert len(black) == 1
    row = black.iloc[0]
    for column in ("Referred", "Accepted", "First seen", "Completed"):
        assert row[column] is pd.NA, (column, row[column])
    assert math.isnan(row["% completed"])
    who = who_uses_the_service.run(service).tables["representation"].frame
    black = who[who["group"].astype(str).str.startswith("Black")].iloc[0]
    assert black["referrals"] is pd.NA
    assert all(pd.isna(black[c]) for c in ("% of referrals", "ratio", "lower", "upper"))


def test_people_publishable_counts_people_not_other_units():
    assert people_publishable([0, 1, 7, 8, 400], RULE).tolist() == [
        False,
        False,
        False,
        True,
        True,
    ]
    assert people_publishable([7, 8], DisclosureRule(threshold=10)).tolist() == [False, False]


# ----------------------------------------------------------------------------- rule 3


def _half_up(numerator: int, denominator: int) -> float:
    return math.floor(Fraction(100 * numerator, denominator) * 10 + Fraction(1, 2)) / 10


def _band(published, rule: DisclosureRule, records: int) -> range:
    """True values behind a published count. A hidden cell is 1 to the threshold, unless
    the rule does not round: then secondary suppression may hide a cell of any size."""
    if published is pd.NA or pd.isna(published):
        top = records if rule.rounding == 1 else rule.hidden_up_to
        return range(1, top + 1)
    low, high = rule.possible_range(int(published))
    return range(low, high + 1)


def _hidden_values(row, rule: DisclosureRule) -> dict[str, set[int]]:
    """Every true value each hidden cell can take, given the row's published figures.

    The attacker knows the rule, that the four parts add up to the records, and reads each
    percentage as worked out either from the exact counts or from the published ones.
    """
    parts = ["Recorded", "Not stated", "Not known", "Invalid"]
    hidden = [p for p in parts if row[p] is pd.NA]
    found: dict[str, set[int]] = {p: set() for p in hidden}
    for records in _band(row["Records"], rule, 0):
        bands = [_band(row[p], rule, records) for p in parts[:-1]]
        for combo in itertools.product(*bands):
            last = records - sum(combo)  # the parts add up to the records
            if last not in _band(row[parts[-1]], rule, records):
                continue
            cell = dict(zip(parts, [*combo, last], strict=True))
            checks = [
                ("% recorded", cell["Recorded"]),
                ("% not stated or not known", cell["Not stated"] + cell["Not known"]),
            ]
            consistent = True
            for column, numerator in checks:
                shown = row[column]
                if pd.isna(shown) or records == 0:
                    continue
                exact = _half_up(numerator, records)
                published = published_percentage(numerator, records, rule)
                if shown not in (exact, published):
                    consistent = False
            if consistent:
                for p in hidden:
                    found[p].add(cell[p])
    return found


@pytest.mark.parametrize("rule", [RULE, DisclosureRule(rounding=1)], ids=["nhs", "no-rounding"])
def test_completeness_percentages_cannot_recover_a_hidden_count(crafted, rule):
    from equity_helpers import analysis

    service = crafted("age-unknown")
    frame = analysis.completeness(service.data, rule).drop(columns=["field"])
    age = frame[frame["Field"].str.lower().str.startswith("age")].iloc[0]
    assert age["Not known"] is pd.NA  # the one unknown age is hidden...
    checked = 0
    for _, row in frame.iterrows():
        if row["Records"] is pd.NA:
            # Only without rounding: the total of a row with a hidden part is hidden too, so
            # no published figure binds the hidden parts (each could be one more)...
            assert rule.rounding == 1, row["Field"]
            # ...and no percentage is worked out from them.
            assert pd.isna(row["% recorded"]) and pd.isna(row["% not stated or not known"])
            checked += 1
            continue
        for column, values in _hidden_values(row, rule).items():
            checked += 1
            # ...and no published figure pins it down to one value.
            assert len(values) > 1, (row["Field"], column, sorted(values))
    assert checked >= 1
    # The step shows the same table.
    shown = data_completeness.run(service).tables["completeness"].frame
    assert shown.equals(analysis.completeness(service.data, service.rule).drop(columns=["field"]))


def test_representation_percentages_come_from_the_published_counts(crafted):
    service = crafted("jedi")
    result = who_uses_the_service.run(service)
    total = int(result.values["eth_compared"].replace(",", ""))
    assert total % RULE.rounding == 0
    table = result.tables["representation"].frame
    eth = table[table["Field"].str.lower().str.startswith("ethnic")]
    shown = eth.dropna(subset=["% of referrals"])
    assert len(shown) >= 2
    for _, row in shown.iterrows():
        assert row["% of referrals"] == _half_up(int(row["referrals"]), total), row["group"]


def test_every_rate_comes_from_published_counts_on_the_gaps_page(crafted):
    service = crafted("jedi")
    access_and_outcome_gaps.run(service)
    data = service.data
    from equity_helpers import analysis

    t = analysis.measure(data, "dna_rate", "ethnic_group", service.rule)
    shown = t.dropna(subset=["pct"])
    assert len(shown)
    for _, row in shown.iterrows():
        assert row["pct"] == _half_up(int(row["x"]), int(row["n"])), row["group"]


# ----------------------------------------------------------------------------- rule 4


def test_data_quality_notes_give_no_exact_small_count(crafted):
    service = crafted("bad-codes")
    notes = data_completeness.run(service).lists["issues"]
    assert notes
    joined = "\n".join(notes)
    assert not re.search(r"(?<![\d,])[1-7] rows", joined), joined
    assert "ZZ" not in joined and "'Q'" not in joined  # no example values
    assert not re.search(r"\(rows? \d", joined), joined  # no row numbers
    assert "fewer than 8" in joined


def test_count_words_never_gives_a_small_count():
    for n in range(1, 8):
        assert str(n) not in count_words(n, RULE).replace("fewer than 8", "")
    assert count_words(0, RULE) == "0"
    assert count_words(402, RULE) == "about 400"
    assert count_words(402, DisclosureRule(enabled=False)) == "402"


# ----------------------------------------------------------------------------- the last guard


def test_a_count_that_slips_through_a_step_is_sealed_under_the_rule():
    from types import SimpleNamespace

    from equity_helpers.steps.base import StepResult, Table, cached

    @cached
    def careless(service):
        result = StepResult("careless")
        frame = pd.DataFrame({"Group": ["A", "B", "C", "D"], "People": [3, 12, 0, 400]})
        result.tables["people"] = Table(frame, "People", counts=("People",))
        result.tables["rows"] = Table(
            frame.copy(), "Rows of the file", counts=("People",), exact=True
        )
        return result

    service = SimpleNamespace(data=pd.DataFrame({"religion": ["Jedi"]}), rule=RULE)
    result = careless(service)
    assert result.tables["people"].frame["People"].tolist() == [pd.NA, 10, 0, 400]
    assert result.tables["rows"].frame["People"].tolist() == [3, 12, 0, 400]
    assert service.data["religion"].tolist() == [OTHER_SMALL_GROUPS]  # labels merged first


def test_before_and_after_hides_a_focus_group_of_too_few_people():
    from equity_helpers import analysis

    table = pd.DataFrame(
        {
            "period": ["Before", "Before"],
            "who": ["Focus group", "Everyone else"],
            "_x": [15, 300],
            "_n": [20, 2000],
            "_people": [1, 400],
        }
    )
    shown = analysis.before_after_table(table, "dna_rate", RULE)
    focus, rest = shown.iloc[0], shown.iloc[1]
    assert focus.drop(["Period", "Who"]).isna().all(), focus  # 20 appointments, one person
    assert rest["%"] == 15.0


def test_an_area_of_one_person_with_many_appointments_is_not_plotted():
    from equity_helpers import analysis

    data = pd.DataFrame(
        {
            "lsoa_code": ["E01000001"] + ["E01000002"] * 40,
            "in_catchment": True,
            "appointments_dna": [15] + [1] * 40,
            "appointments_offered": [20] + [5] * 40,
        }
    )
    shown = analysis.area_funnel(data, RULE)
    assert shown["lsoa_code"].tolist() == ["E01000002"]
    assert shown.attrs["hidden"] == 1
    # The raw people columns are there only for the chart guard, which drops them.
    chart = seal_chart(Chart("funnel_plot", shown, people="_people", values=("value",)), RULE)
    assert not [c for c in chart.data.columns if str(c).startswith("_")]


# ----------------------------------------------------------------------------- rule 5: charts


def _month_of_one(service) -> pd.Timestamp:
    sizes = service.data["referral_month"].value_counts()
    assert (sizes == 1).sum() == 1, sizes.sort_index()
    return sizes.index[sizes == 1][0]


def _rows_for(chart, column: str, value) -> pd.DataFrame:
    table = chart.table()
    return table[chart.data[column].eq(value).to_numpy()]


def test_a_month_with_one_referral_is_hidden_in_every_chart(crafted):
    service = crafted("lone-month")
    month = _month_of_one(service)
    monthly = data_completeness.run(service).charts["monthly"]
    point = monthly.data[monthly.data["month"].eq(month)]
    assert len(point) == 1 and point["% recorded"].isna().all()
    assert _rows_for(monthly, "month", month).iloc[0].tolist()[1:] == ["hidden", "hidden"]
    result = evaluation.run(service)
    for key in ("spc_overall", "spc_referrals"):
        chart = result.charts[key]
        point = chart.data[chart.data["date"].eq(month)]
        # The one person's 0% (and the count of 1) are not plotted, nor their variation.
        assert len(point) == 1 and point["value"].isna().all(), (key, point)
        assert point["point_type"].isna().all(), key
        row = _rows_for(chart, "date", month).iloc[0]
        assert row.iloc[1] == "hidden" and row.iloc[-1] == "hidden", (key, row)
        # The chart says that months were left out.
        ax = plots.draw(chart)
        assert "not plotted: too few people" in ax.get_xlabel(), key
        plt.close(ax.figure)


def test_every_month_plotted_is_about_enough_people(crafted):
    """Checked from the extract itself: a month is plotted only with more than 7 people,
    and only when no one person has more than half of its appointments."""
    service = crafted("lone-month")
    data = service.data
    offered = data["appointments_offered"]
    result = evaluation.run(service)
    focus = result.data["focus"]["mask"]
    assert "spc_overall" in result.charts
    for key, mask in (("spc_overall", None), ("spc_focus", focus)):
        if key not in result.charts:  # too few months with enough people: no chart at all
            assert "not enough months" in result.notes[key]
            continue
        chart = result.charts[key]
        # The mean is of the months shown only: with a hidden month in it, the mean beside
        # the months shown would give the hidden month's value away.
        shown = chart.data["value"].dropna()
        assert chart.data["mean"].nunique() == 1
        assert chart.data["mean"].dropna().iloc[0] == pytest.approx(shown.mean()), key
        # A hidden month shows nothing at all, not even the mean or limits beside it.
        gaps = chart.data[chart.data["value"].isna()]
        assert gaps[["mean", "lower_process_limit", "upper_process_limit"]].isna().all(axis=None)
        d = data if mask is None else data[mask.to_numpy(dtype=bool)]
        d = d[d["appointments_offered"].notna() & d["appointments_dna"].notna()]
        for _, point in chart.data.dropna(subset=["value"]).iterrows():
            month = d[d["referral_month"].eq(point["date"])]
            assert len(month) > RULE.threshold, (key, point["date"], len(month))
            top = offered.loc[month.index].max()
            assert 2 * top <= offered.loc[month.index].sum(), (key, point["date"])


def test_a_home_area_of_three_people_is_not_a_funnel_point(crafted):
    service = crafted("small-area")
    result = access_and_outcome_gaps.run(service)
    chart = result.charts["funnel"]
    # The three people's area (60 appointments offered, 75% missed) is nowhere.
    table = chart.table()
    shown = list(zip(table.iloc[:, 0], table.iloc[:, 1], strict=True))
    assert ("60", "75.0") not in shown
    # Every point shown is an area of more than 7 people, checked from the extract.
    d = service.data[service.data["in_catchment"] & service.data["lsoa_code"].notna()]
    d = d[d["appointments_offered"].notna() & d["appointments_dna"].notna()]
    people = d.groupby("lsoa_code").size()
    big = people[people > RULE.threshold]
    assert int(chart.data["value"].notna().sum()) <= len(big)
    assert result.values["funnel_hidden"] >= 1
    # Each point's rate is the rate of its published counts: 1 decimal of a count / offered.
    for _, point in chart.data.dropna(subset=["value"]).iterrows():
        offered = int(point["offered"])
        assert any(
            abs(point["value"] - 100 * x / offered) < 1e-9 for x in range(0, offered + 1, 5)
        ), point


def test_one_person_with_most_appointments_hides_the_group_rate(crafted):
    service = crafted("one-dominates")
    group = service.data.loc[service.data["ethnic_group"].notna(), "ethnic_group"]
    label = [g for g in group.unique() if str(g).startswith("Other")]
    assert len(label) == 1 and (group == label[0]).sum() == 9  # more than the threshold
    result = access_and_outcome_gaps.run(service)
    chart = result.charts["dna_ethnic_group"]
    point = chart.data[chart.data["group"].eq(label[0])]
    assert len(point) == 1
    assert point[["pct", "lower", "upper"]].isna().all(axis=None), point
    row = chart.table()[chart.data["group"].eq(label[0]).to_numpy()].iloc[0]
    # The rate, its interval and the counts behind them.
    assert row.tolist()[:2] == ["Ethnic group", label[0]]
    assert row.tolist()[2:] == ["hidden"] * 5
    table = result.tables["every_measure"].frame
    other = table[table["Group"].eq(label[0])]
    assert other["Missed appointments %"].isna().all()
    assert label[0] not in result.values["dna_eth_sentence"]


def test_overall_rates_come_only_from_the_groups_shown(crafted):
    from equity_helpers import analysis

    service = crafted("one-dominates")
    result = access_and_outcome_gaps.run(service)
    t = analysis.measure(service.data, "dna_rate", "ethnic_group", RULE)
    shown = t[t["pct"].notna()]
    assert len(shown) < len(t)  # a group is hidden...
    expected = published_percentage(int(shown["_x"].sum()), int(shown["_n"].sum()), RULE)
    assert result.values["dna_overall_pct"] == expected  # ...and left out of the overall
    assert result.charts["dna_ethnic_group"].options["reference"] == expected
    # ...and the sentence does not call it the rate across the service.
    assert result.findings[0].startswith("Across the groups shown (hidden groups left out), ")


def test_every_chart_has_a_data_table_from_its_controlled_data(crafted):
    service = crafted("jedi")
    charts = 0
    for name, result in _all_results(service).items():
        for key, chart in result.charts.items():
            table = chart.table()
            charts += 1
            assert len(table) == len(chart.data), (name, key)
            assert not [c for c in table.columns if str(c).startswith("_")], (name, key)
            html = plots.data_behind(chart).data
            assert html.startswith('<details class="chart-data"><summary>Data behind this chart')
            # Every hidden figure is marked, never left blank or shown as 0.
            for column in plots._chart_columns(chart):
                if column in chart.data and chart.data[column].isna().any():
                    assert "hidden" in html, (name, key, column)
    assert charts >= 10


def test_a_chart_that_does_not_say_who_it_is_about_is_refused():
    from types import SimpleNamespace

    from equity_helpers.steps.base import StepResult, cached

    @cached
    def careless(service):
        result = StepResult("careless")
        frame = pd.DataFrame({"month": [1, 2], "pct": [100.0, 40.0]})
        result.charts["trend"] = Chart("line_chart", frame, {"x": "month", "y": "pct"})
        return result

    service = SimpleNamespace(data=pd.DataFrame({"religion": ["A"]}), rule=RULE)
    with pytest.raises(ValueError, match="how many people are behind each point"):
        careless(service)
