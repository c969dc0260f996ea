"""The newer statistics as the steps use them: age-standardised ratios, the over-dispersed
home-area funnel, local deprivation fifths and the monthly gap chart rebased at the change.

Each view is checked on the sample through ``run(service)``, and its figures against an
independent computation in plain pandas and numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from equity_helpers.codes import CENSUS_AGE_GROUPS
from equity_helpers.privacy import DisclosureRule
from equity_helpers.steps import (
    access_and_outcome_gaps,
    deprivation_and_core20,
    evaluation,
    who_uses_the_service,
)

ROOT = Path(__file__).resolve().parents[1]
OFF = DisclosureRule(enabled=False)


@pytest.fixture(scope="module")
def sample(sample_service):
    return sample_service


# ----------------------------------------------------------------------------- who uses the service


def test_expected_referrals_of_one_area_recomputed_by_hand(sample):
    areas = who_uses_the_service.expected_by_area(sample).set_index("lsoa_code")
    data, c = sample.data, sample.catchment
    inside = data[data["in_catchment"].fillna(False).astype(bool)]
    inside = inside[inside["age_group"].astype(str).isin(CENSUS_AGE_GROUPS)]
    # The service's own rate in each age group across the whole catchment.
    counts = inside["age_group"].astype(str).value_counts()
    rates = {a: counts.get(a, 0) / c[a].sum() for a in CENSUS_AGE_GROUPS}
    area = inside["lsoa_code"].value_counts().index[0]
    row = c.set_index("lsoa_code").loc[area]
    expected = sum(row[a] * rates[a] for a in CENSUS_AGE_GROUPS)
    assert areas.loc[area, "expected"] == pytest.approx(expected, rel=1e-9)
    assert areas.loc[area, "observed"] == (inside["lsoa_code"] == area).sum()
    # The catchment is its own reference, so the expected referrals add up to the observed.
    assert areas["expected"].sum() == pytest.approx(areas["observed"].sum())


def _areas(counts_by_group, population_by_group):
    """Areas A1, A2... in groups, with the given referrals and people in each age band."""
    from equity_helpers import stats

    pop, obs, groups = [], [], {}
    for g, (ages_pop, ages_obs) in enumerate(
        zip(population_by_group, counts_by_group, strict=True)
    ):
        area = f"A{g}"
        groups[area] = f"G{g}"
        for band, (p, o) in enumerate(zip(ages_pop, ages_obs, strict=True)):
            pop.append({"lsoa_code": area, "age_band": str(band), "population": p})
            obs.append({"lsoa_code": area, "age_band": str(band), "count": o})
    areas = stats.expected_counts(pd.DataFrame(obs), pd.DataFrame(pop), "lsoa_code")
    return areas, pd.Series(groups)


def test_standardised_ratio_is_one_when_each_group_has_the_catchments_age_rates():
    # One area is young and one old; the service sees 1 in 100 young and 1 in 10 old people
    # in both, so each is referred exactly as its age mix predicts.
    areas, groups = _areas([[10, 100], [90, 100]], [[1000, 1000], [9000, 1000]])
    out = who_uses_the_service.standardised_ratios(areas, groups, OFF).set_index("group")
    assert out["standardised"].tolist() == [1.0, 1.0]
    # The crude ratio shares referrals by population alone and so misleads: the older area
    # holds 1/6 of the people but 110 of the 300 referrals.
    assert out.loc["G0", "crude"] == pytest.approx(round((110 / 300) / (2000 / 12000), 2))
    assert out["lower"].lt(1).all() and out["upper"].gt(1).all()


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.integers(1, 20), min_size=3, max_size=3),
    mixes=st.lists(st.lists(st.integers(1, 40), min_size=3, max_size=3), min_size=2, max_size=4),
)
def test_standardised_ratio_is_one_for_any_age_mix_with_shared_rates(rates, mixes):
    population = [[100 * m for m in mix] for mix in mixes]
    counts = [[r * m for r, m in zip(rates, mix, strict=True)] for mix in mixes]
    areas, groups = _areas(counts, population)
    out = who_uses_the_service.standardised_ratios(areas, groups, OFF)
    assert np.allclose(out["standardised"], 1.0)


def test_a_group_with_too_few_referrals_gets_no_ratio():
    areas, groups = _areas([[3, 2], [200, 300]], [[1000, 1000], [9000, 1000]])
    out = who_uses_the_service.standardised_ratios(areas, groups, DisclosureRule()).set_index(
        "group"
    )
    assert pd.isna(out.loc["G0", "referrals"])  # 5 referrals: hidden
    assert out.loc["G0", ["crude", "standardised", "lower", "upper"]].isna().all()
    assert out.loc["G1", "standardised"] > 0


def test_no_ratio_at_all_when_the_whole_total_is_too_small_to_show():
    areas, groups = _areas([[1, 2], [2, 1]], [[1000, 1000], [9000, 1000]])
    out = who_uses_the_service.standardised_ratios(areas, groups, DisclosureRule())
    assert out[["referrals", "crude", "standardised", "lower", "upper"]].isna().all().all()


def test_standardised_view_on_the_sample_is_in_words(sample):
    result = who_uses_the_service.run(sample)
    table = result.tables["standardised"].frame
    assert set(table["Field"]) == {"Deprivation fifth", "Local authority"}
    assert len(table[table["Field"] == "Deprivation fifth"]) == 5
    assert len(table[table["Field"] == "Local authority"]) == len(
        sample.catchment["lad_code"].unique()
    )
    # Crude and standardised side by side, to two decimal places, each standardised ratio
    # inside its interval.
    assert table["Crude ratio"].str.fullmatch(r"\d+\.\d\d|\*").all()
    ratios = ["Age-standardised ratio", "95% lower", "95% upper"]
    shown = table[ratios].apply(pd.to_numeric, errors="coerce").dropna()
    assert len(shown) == len(table)  # every group in the sample is big enough to show
    assert (shown["95% lower"] <= shown["Age-standardised ratio"]).all()
    assert (shown["Age-standardised ratio"] <= shown["95% upper"]).all()
    assert result.values["standardised_sentence"] in result.findings
    assert "Allowing for age" in result.values["standardised_sentence"]
    chart = result.charts["standardised_ratios"]
    # The exact number of people behind each point feeds the guard and is never published.
    assert chart.people == "_people" and not {"people", "_people"} & set(chart.data)
    # Ethnic groups: the census gives no ethnic group by age, so the page says it is crude.
    assert "crude" in result.values["eth_crude_note"]


def test_crude_ratio_matches_the_share_of_referrals_over_the_share_of_people(sample):
    table = who_uses_the_service.run(sample).tables["standardised"].frame
    fifths = table[table["Field"] == "Deprivation fifth"]
    data, c = sample.data, sample.catchment
    inside = data[data["in_catchment"].fillna(False).astype(bool)]
    inside = inside[inside["age_group"].astype(str).isin(CENSUS_AGE_GROUPS)]
    fifth = c.set_index("lsoa_code")["imd_quintile"].astype(int)
    refs = inside["lsoa_code"].map(fifth).value_counts()
    people = c[CENSUS_AGE_GROUPS].sum(axis=1).groupby(c["imd_quintile"].astype(int)).sum()
    # From the published (rounded) counts, as the page shows them.
    pub = (refs / 5).round() * 5
    crude = (pub / pub.sum()) / (people / people.sum())
    shown = fifths["Crude ratio"].astype(float).to_numpy()
    assert shown == pytest.approx(crude.sort_index().to_numpy(), abs=0.011)


# ----------------------------------------------------------------------------- home-area funnel


def test_funnel_dispersion_matches_the_areas_counted_by_hand(sample):
    from equity_helpers import stats

    v = access_and_outcome_gaps.run(sample).values
    d = sample.data
    d = d[d["in_catchment"].fillna(False).astype(bool) & d["lsoa_code"].notna()]
    d = d.dropna(subset=["appointments_offered", "appointments_dna"])
    by_area = d.groupby("lsoa_code")
    g = by_area[["appointments_dna", "appointments_offered"]].sum()
    g["people"] = by_area.size()
    g["top"] = by_area["appointments_offered"].max()
    g = g[g["appointments_offered"] > 0]
    # Only areas that may be shown, at their published counts (rule: more than 7 people,
    # no count from 1 to 7, no one person with over half the appointments; rounded to 5).
    shown = (
        (g["people"] > 7)
        & ~g["appointments_dna"].between(1, 7)
        & ~g["appointments_offered"].between(1, 7)
        & (2 * g["top"] <= g["appointments_offered"])
    )
    g = g[shown]
    x = ((g["appointments_dna"] / 5).round() * 5).to_numpy(float)
    n = ((g["appointments_offered"] / 5).round() * 5).to_numpy(float)
    p0 = x.sum() / n.sum()
    z = (x / n - p0) / np.sqrt(p0 * (1 - p0) / n)
    lo, hi = np.quantile(z, [0.1, 0.9])
    phi = np.mean(np.clip(z, lo, hi) ** 2)
    assert v["funnel_phi"] == pytest.approx(phi)
    assert v["funnel_tau2"] == pytest.approx(stats.overdispersion(x, n)["tau2"])
    assert v["funnel_tau2"] > 0
    assert (
        "Areas vary more than chance alone would explain: limits widened"
        in (v["funnel_dispersion_sentence"])
    )


def test_funnel_shows_widened_and_plain_limits(sample):
    result = access_and_outcome_gaps.run(sample)
    chart = result.charts["funnel"]
    wide, plain = chart.options["limits"], chart.options["plain"]
    assert (wide["upper95_0cl"] >= plain["upper95_0cl"]).all()
    assert (wide["upper95_0cl"] > plain["upper95_0cl"]).any()
    v = result.values
    # Wider limits can only leave fewer areas above them.
    assert v["funnel_above_95"] <= v["funnel_plain_above_95"]
    assert v["funnel_dispersion_sentence"] in result.findings


# ----------------------------------------------------------------------------- local fifths


def test_local_fifths_each_hold_about_a_fifth_of_the_people(sample):
    areas = deprivation_and_core20.fifths_by_area(sample)
    share = areas.groupby("Local fifths")["people"].sum() / areas["people"].sum()
    biggest = areas["people"].max() / areas["people"].sum()
    assert list(share.index) == [1, 2, 3, 4, 5]
    assert (share - 0.2).abs().max() <= biggest
    # Ranked within the catchment: every area of a fifth is at least as deprived (national
    # rank as low or lower) as every area of the next fifth.
    rank = sample.imd.set_index("lsoa_code")["imd_rank"]
    ranks = areas.assign(rank=areas["lsoa_code"].map(rank)).groupby("Local fifths")["rank"]
    assert (ranks.max().to_numpy()[:-1] <= ranks.min().to_numpy()[1:]).all()


def test_local_fifths_view_and_its_sii_on_the_sample(sample):
    result = deprivation_and_core20.run(sample)
    table = result.tables["local_fifths"].frame
    assert set(table["Fifths"]) == {"National fifths", "Local fifths"}
    local = table[table["Fifths"] == "Local fifths"]
    # The rate is published referrals per 1,000 people.
    rate = 1000 * local["Referrals"].astype(float) / local["People living there"]
    assert local["Referrals per 1,000 people"].to_numpy() == pytest.approx(rate, abs=0.06)
    # The SII of local fifths: the phe_sii fit of those rates on each fifth's relative rank.
    share = local["People living there"].to_numpy() / local["People living there"].sum()
    rank = np.cumsum(share) - share / 2
    slope = np.polyfit(rank, rate.to_numpy(), 1, w=np.sqrt(share))[0]
    assert result.values["local_fifths_sii"] == pytest.approx(slope, rel=0.02)
    assert "local fifths" in result.values["local_fifths_sii_sentence"]
    assert "national fifths" in result.values["national_fifths_sii_sentence"]
    assert result.values["local_fifths_sentence"] in result.findings
    chart = result.charts["fifths_rates"]
    assert chart.people == "_referrals" and "_referrals" not in chart.data


# ----------------------------------------------------------------------------- evaluation


def test_monthly_gap_of_one_month_recomputed_by_hand(sample):
    f = evaluation.focus(sample)
    gap = evaluation.monthly_gap(sample.data, f["measure"], f["mask"], sample.rule)
    d = sample.data.dropna(subset=["appointments_dna", "appointments_offered"])
    month = gap["month"].iloc[5]
    d = d[d["referral_month"] == month]
    core20 = d["core20"].fillna(False).astype(bool)
    focus = d.loc[core20, "appointments_dna"].sum() / d.loc[core20, "appointments_offered"].sum()
    rest = d.loc[~core20, "appointments_dna"].sum() / d.loc[~core20, "appointments_offered"].sum()
    assert gap["value"].iloc[5] == pytest.approx(100 * (focus - rest))


def test_gap_chart_limits_are_worked_out_again_at_the_change(sample):
    result = evaluation.run(sample)
    spc = result.charts["spc_gap"].data
    change = pd.Timestamp(sample.cfg.change_date)
    before, after = spc[spc["date"] < change], spc[spc["date"] >= change]
    assert set(before["segment"]) == {1} and set(after["segment"]) == {2}
    # Each segment's centre line is the mean of its own months.
    f = evaluation.focus(sample)
    gap = evaluation.monthly_gap(sample.data, f["measure"], f["mask"], sample.rule)
    gap = gap[~gap["hidden"]]
    assert before["mean"].iloc[0] == pytest.approx(gap.loc[gap["month"] < change, "value"].mean())
    assert after["mean"].iloc[0] == pytest.approx(gap.loc[gap["month"] >= change, "value"].mean())
    assert before["upper_process_limit"].iloc[0] != after["upper_process_limit"].iloc[0]
    v = result.values
    assert v["gap_spc_variation"].startswith(("Common cause", "Special cause"))
    assert "no assurance icon" in v["gap_spc_assurance"]
    assert "worked out again" in v["gap_spc_limits"]
    assert result.charts["spc_gap"].people == "_people" and "_people" not in spc


def test_gap_chart_hides_small_months_and_keeps_one_segment_without_a_change():
    months = pd.date_range("2023-01-01", periods=8, freq="MS")
    gap = pd.DataFrame(
        {
            "month": months,
            "value": [5.0, 6, 4, 5, 7, 6, 5, 4],
            "hidden": [False, True, False, False, False, False, False, False],
            "people": [20, 3, 20, 20, 20, 20, 20, 20],
        }
    )
    spc = evaluation.gap_spc(gap, "decrease", None)
    assert spc["segment"].nunique() == 1
    assert months[1] not in set(spc["date"]) and spc.attrs["hidden_months"] == [months[1]]
    # The hidden month is left out of the mean, the limits and every moving range.
    shown = gap.loc[~gap["hidden"], "value"]
    assert spc["mean"].iloc[0] == pytest.approx(shown.mean())
    assert spc["moving_range"].dropna().tolist() == pytest.approx(
        shown.diff().abs().dropna().tolist()
    )
    # A change with only one month after it leaves the limits in one piece.
    assert evaluation.gap_spc(gap, "decrease", months[-1])["segment"].nunique() == 1
    assert evaluation.gap_spc(gap, "decrease", months[4])["segment"].nunique() == 2
