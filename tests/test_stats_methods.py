"""Tests of the standardisation, over-dispersion, local-fifths and SPC-icon methods in
equity_helpers.stats.

Every expected value is found a second way: the PHEindicatormethods peer fixture, a hand
calculation written out in the test, the defining property of an interval checked with
scipy's Poisson distribution, or a simulation with a known answer.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from equity_helpers import stats as S

Z95 = st.norm.ppf(0.975)


@pytest.fixture(scope="module")
def peer(reference_dir: Path) -> Path:
    folder = reference_dir / "peer-fixtures" / "pheindicatormethods"
    assert folder.is_dir(), folder
    return folder


# ------------------------------------------------------------------------------------------
# indirectly standardised ratio
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.95, 0.998])
def test_isr_below_ten_uses_exact_poisson_limits_checked_by_their_defining_property(confidence):
    observed = np.arange(0, 10)
    expected = 7.3
    out = S.indirectly_standardised_ratio(observed, expected, confidence)
    alpha = 1 - confidence
    assert out["method"].tolist() == ["Exact"] * 10
    for obs, lower, upper in zip(observed, out["lower"], out["upper"], strict=True):
        # the upper limit mu makes seeing obs or fewer events exactly alpha/2 likely
        assert st.poisson.cdf(obs, upper * expected) == pytest.approx(alpha / 2, rel=1e-7)
        if obs == 0:
            assert lower == 0
        else:
            # the lower limit mu makes seeing obs or more events exactly alpha/2 likely
            assert st.poisson.sf(obs - 1, lower * expected) == pytest.approx(alpha / 2, rel=1e-7)
        # and the chi-squared / gamma relationship, computed here directly
        assert upper == pytest.approx(st.gamma.ppf(1 - alpha / 2, obs + 1) / expected, rel=1e-10)
        if obs > 0:
            assert lower == pytest.approx(st.chi2.ppf(alpha / 2, 2 * obs) / 2 / expected)


def test_isr_from_ten_uses_byars_limits_of_the_peer_fixture(peer):
    bw = pd.read_csv(peer / "test_BW.csv")
    rows = bw[(bw["method"] == "Byars") & (bw["x"] >= 10)]
    assert len(rows) == 5
    expected = 42.5
    for _, row in rows.iterrows():
        level = float(row["confidence"].rstrip("%")) / 100
        out = S.indirectly_standardised_ratio(row["x"], expected, level)
        assert out["method"].tolist() == ["Byars"]
        assert out["ratio"].iloc[0] == pytest.approx(row["x"] / expected)
        assert out["lower"].iloc[0] == pytest.approx(row["lowercl"] / expected, rel=1e-9)
        assert out["upper"].iloc[0] == pytest.approx(row["uppercl"] / expected, rel=1e-9)


def test_isr_byars_limits_worked_by_hand_at_ten():
    # Byar's for O = 10 at 95%: lower 10 (1 - 1/90 - z/(3 sqrt 10))^3,
    # upper 11 (1 - 1/99 + z/(3 sqrt 11))^3; E = 8
    lower = 10 * (1 - 1 / 90 - Z95 / (3 * math.sqrt(10))) ** 3 / 8
    upper = 11 * (1 - 1 / 99 + Z95 / (3 * math.sqrt(11))) ** 3 / 8
    out = S.indirectly_standardised_ratio(10, 8.0)
    assert out[["ratio", "lower", "upper"]].iloc[0].tolist() == pytest.approx([1.25, lower, upper])


def test_isr_two_levels_are_named_as_calculate_isratio_names_them_and_nest():
    observed = pd.Series([0, 3, 9, 10, 57, 400], index=list("abcdef"))
    expected = pd.Series([2.0, 4.5, 9.0, 12.0, 50.0, 380.0], index=list("abcdef"))
    both = S.indirectly_standardised_ratio(observed, expected, (0.95, 99.8))
    assert list(both.columns) == [
        "observed",
        "expected",
        "ratio",
        "lower95_0cl",
        "upper95_0cl",
        "lower99_8cl",
        "upper99_8cl",
        "method",
    ]
    assert list(both.index) == list("abcdef")
    single = S.indirectly_standardised_ratio(observed, expected, 0.95)
    assert single["lower"].tolist() == both["lower95_0cl"].tolist()
    # 99.8% limits are wider than 95% limits, and both contain the ratio
    assert (both["lower99_8cl"] <= both["lower95_0cl"]).all()
    assert (both["upper99_8cl"] > both["upper95_0cl"]).all()
    assert (both["lower99_8cl"].iloc[1:] < both["lower95_0cl"].iloc[1:]).all()
    assert (both["lower95_0cl"] <= both["ratio"]).all()
    assert (both["ratio"] <= both["upper95_0cl"]).all()


def test_isr_limits_contain_the_ratio_across_many_counts():
    rng = np.random.default_rng(7)
    observed = rng.integers(0, 300, size=500)
    expected = rng.uniform(0.5, 300, size=500)
    out = S.indirectly_standardised_ratio(observed, expected, (0.95, 0.998))
    for level in ("95_0", "99_8"):
        assert (out[f"lower{level}cl"] <= out["ratio"]).all()
        assert (out["ratio"] < out[f"upper{level}cl"]).all()
    positive = observed > 0
    assert (out.loc[positive, "lower95_0cl"] < out.loc[positive, "ratio"]).all()


def test_isr_rejects_negative_counts_and_expected_counts_of_zero():
    with pytest.raises(ValueError, match="observed"):
        S.indirectly_standardised_ratio([-1, 4], [2.0, 3.0])
    with pytest.raises(ValueError, match="expected"):
        S.indirectly_standardised_ratio([1, 4], [0.0, 3.0])
    missing = S.indirectly_standardised_ratio([np.nan, 4], [2.0, 3.0])
    assert missing["ratio"].isna().tolist() == [True, False]
    assert missing["method"].isna().tolist() == [True, False]


# ------------------------------------------------------------------------------------------
# expected counts
# ------------------------------------------------------------------------------------------


def test_expected_counts_by_age_and_sex_worked_by_hand():
    population = pd.DataFrame(
        {
            "quintile": [1] * 4 + [5] * 4,
            "age_band": ["0-39", "0-39", "40+", "40+"] * 2,
            "sex": ["F", "M"] * 4,
            "population": [1000, 1000, 500, 500, 400, 400, 1200, 1000],
        }
    )
    observed = pd.DataFrame(
        {
            "quintile": [1, 1, 1, 5, 5, 5, 5],
            "age_band": ["0-39", "0-39", "40+", "0-39", "0-39", "40+", "40+"],
            "sex": ["F", "M", "F", "F", "M", "F", "M"],
            "count": [30, 10, 40, 6, 2, 60, 25],
        }
    )
    # stratum rates from both quintiles together (quintile 1, 40+ male has no row: 0)
    rate = {
        ("0-39", "F"): (30 + 6) / (1000 + 400),
        ("0-39", "M"): (10 + 2) / (1000 + 400),
        ("40+", "F"): (40 + 60) / (500 + 1200),
        ("40+", "M"): (0 + 25) / (500 + 1000),
    }
    expected_q1 = (
        1000 * rate[("0-39", "F")]
        + 1000 * rate[("0-39", "M")]
        + 500 * rate[("40+", "F")]
        + 500 * rate[("40+", "M")]
    )
    expected_q5 = (
        400 * rate[("0-39", "F")]
        + 400 * rate[("0-39", "M")]
        + 1200 * rate[("40+", "F")]
        + 1000 * rate[("40+", "M")]
    )
    out = S.expected_counts(observed, population, group="quintile")
    assert out["quintile"].tolist() == [1, 5]
    assert out["observed"].tolist() == [80, 93]
    assert out["expected"].tolist() == pytest.approx([expected_q1, expected_q5])
    assert out["population"].tolist() == [3000, 3000]
    # the reference is the catchment itself, so expected adds up to observed
    assert out["expected"].sum() == pytest.approx(173)
    # standardising by age alone gives different (hand-worked) expected counts
    by_age = S.expected_counts(observed, population, group="quintile", strata="age_band")
    age_rate = {"0-39": 48 / 2800, "40+": 125 / 3200}
    assert by_age["expected"].tolist() == pytest.approx(
        [
            2000 * age_rate["0-39"] + 1000 * age_rate["40+"],
            800 * age_rate["0-39"] + 2200 * age_rate["40+"],
        ]
    )


def test_ratio_is_one_when_a_group_has_the_reference_rates():
    # both areas have 2% in the young band and 10% in the old band, with different age mixes
    population = pd.DataFrame(
        {
            "group": ["A", "A", "B", "B"],
            "age_band": ["young", "old", "young", "old"],
            "population": [5000, 1000, 2000, 4000],
        }
    )
    observed = population.assign(
        count=lambda d: d["population"] * np.where(d["age_band"] == "young", 0.02, 0.1)
    ).drop(columns="population")
    expected = S.expected_counts(observed, population)
    isr = S.indirectly_standardised_ratio(expected["observed"], expected["expected"])
    assert isr["ratio"].tolist() == pytest.approx([1.0, 1.0])
    # the crude rates differ a lot, which is what standardising takes out
    crude = expected["observed"] / expected["population"]
    assert crude.iloc[1] > 2 * crude.iloc[0]


def test_expected_counts_refuses_counts_with_no_population():
    population = pd.DataFrame({"group": ["A"], "age_band": ["0-15"], "population": [100]})
    observed = pd.DataFrame({"group": ["A", "Z"], "age_band": ["0-15", "0-15"], "count": [1, 2]})
    with pytest.raises(ValueError, match="group='Z'"):
        S.expected_counts(observed, population)
    with pytest.raises(ValueError, match="count"):
        S.expected_counts(observed.drop(columns="count"), population)
    with pytest.raises(ValueError, match="0 or more"):
        S.expected_counts(observed.iloc[:1].assign(count=-1), population)
