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


# ------------------------------------------------------------------------------------------
# over-dispersion (Spiegelhalter 2005)
# ------------------------------------------------------------------------------------------


def r_quantile(values, q):
    """R's default (type 7) quantile, written out: linear between order statistics."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    below = math.floor(h)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (h - below) * (ordered[above] - ordered[below])


def test_overdispersion_small_example_worked_step_by_step():
    x = [12, 30, 18, 45, 9, 60]
    n = [100, 150, 120, 200, 80, 210]
    p0 = sum(x) / sum(n)  # 174 / 860
    s2 = [p0 * (1 - p0) / ni for ni in n]
    z = [(xi / ni - p0) / math.sqrt(v) for xi, ni, v in zip(x, n, s2, strict=True)]
    low, high = r_quantile(z, 0.1), r_quantile(z, 0.9)
    z_w = [min(max(v, low), high) for v in z]
    k = len(x)
    phi = sum(v * v for v in z_w) / k
    w = [1 / v for v in s2]
    tau2 = (k * phi - (k - 1)) / (sum(w) - sum(v * v for v in w) / sum(w))
    assert k * phi > k - 1  # this example is over-dispersed

    result = S.overdispersion(x, n)
    assert result["baseline"] == pytest.approx(p0)
    assert result["k"] == k
    assert result["phi"] == pytest.approx(phi, rel=1e-12)
    assert result["tau2"] == pytest.approx(tau2, rel=1e-12)
    assert result["overdispersed"] is True
    table = result["limits"]
    assert table["z"].tolist() == pytest.approx(z)
    assert table["z_winsorised"].tolist() == pytest.approx(z_w)
    for i, ni in enumerate(n):
        half95 = Z95 * math.sqrt(p0 * (1 - p0) / ni + tau2)
        assert table["lower95_0cl"].iloc[i] == pytest.approx(max(0, p0 - half95))
        assert table["upper95_0cl"].iloc[i] == pytest.approx(p0 + half95)


def test_overdispersion_is_zero_on_binomial_data_without_extra_variation():
    rng = np.random.default_rng(2005)
    n = rng.integers(50, 3000, size=600)
    x = rng.binomial(n, 0.2)
    result = S.overdispersion(x, n)
    assert result["tau2"] == 0
    assert result["overdispersed"] is False
    # with z standard normal, winsorising at the 10th/90th percentiles leaves
    # E[z_w^2] = P(|z| < c) - 2 c pdf(c) + 2 (0.1) c^2 with c = the 90th percentile
    c = st.norm.ppf(0.9)
    expected_phi = 0.8 - 2 * c * st.norm.pdf(c) + 0.2 * c * c  # about 0.68
    assert result["phi"] == pytest.approx(expected_phi, abs=0.08)
    # and the limits are then exactly the ordinary funnel limits
    plain = S.funnel_limits(result["baseline"], n)
    assert result["limits"]["upper99_8cl"].tolist() == plain["upper99_8cl"].tolist()


def test_overdispersion_is_found_in_beta_binomial_data():
    rng = np.random.default_rng(11)
    n = rng.integers(200, 3000, size=300)
    # unit proportions vary: beta(20, 80) has mean 0.2 and variance 0.16/101
    p = rng.beta(20, 80, size=300)
    x = rng.binomial(n, p)
    result = S.overdispersion(x, n)
    assert result["phi"] > 2
    assert result["overdispersed"] is True
    true_tau2 = 0.2 * 0.8 / 101
    # winsorising shrinks the spread, so the estimate is below but of the true order
    assert 0.3 * true_tau2 < result["tau2"] < 1.5 * true_tau2


def test_overdispersion_rejects_too_few_units_and_a_baseline_of_zero():
    with pytest.raises(ValueError, match="at least 2"):
        S.overdispersion([3], [10])
    with pytest.raises(ValueError, match="strictly between"):
        S.overdispersion([0, 0, 0], [10, 20, 30])


def test_overdispersion_leaves_out_incomplete_units():
    full = S.overdispersion([12, 30, 18, 45, 9, 60], [100, 150, 120, 200, 80, 210])
    gappy = S.overdispersion([12, 30, np.nan, 18, 45, 9, 60], [100, 150, 90, 120, 200, 80, 210])
    assert gappy["k"] == 6
    assert gappy["tau2"] == pytest.approx(full["tau2"])
    assert gappy["limits"].iloc[2].isna().all()


def test_funnel_limits_default_is_unchanged_and_tau2_widens_them():
    ns = np.array([20, 100, 1000, 5000])
    plain = S.funnel_limits(0.3, ns)
    zero = S.funnel_limits(0.3, ns, tau2=0.0)
    pd.testing.assert_frame_equal(plain, zero)
    wide = S.funnel_limits(0.3, ns, confidence=0.95, tau2=0.01)
    half = Z95 * np.sqrt(0.21 / ns + 0.01)
    assert wide["lower95_0cl"].tolist() == pytest.approx((0.3 - half).tolist())
    assert wide["upper95_0cl"].tolist() == pytest.approx((0.3 + half).tolist())
    clipped = S.funnel_limits(0.05, [10], confidence=0.998, tau2=0.05)
    assert clipped["lower99_8cl"].iloc[0] == 0
    with pytest.raises(ValueError):
        S.funnel_limits(0.3, ns, tau2=-0.1)


def test_funnel_points_overdispersed_option_uses_the_estimated_tau2():
    rng = np.random.default_rng(3)
    n = rng.integers(200, 3000, size=60)
    x = rng.binomial(n, rng.beta(10, 40, size=60))
    df = pd.DataFrame({"x": x, "n": n})
    plain = S.funnel_points(df, "x", "n")
    adjusted = S.funnel_points(df, "x", "n", overdispersed=True)
    tau2 = S.overdispersion(x, n)["tau2"]
    assert tau2 > 0
    p0 = x.sum() / n.sum()
    half = st.norm.ppf(0.999) * np.sqrt(p0 * (1 - p0) / n + tau2)
    assert adjusted["upper99_8cl"].tolist() == pytest.approx((p0 + half).tolist())
    outside = (adjusted["funnel_position"] != "within").sum()
    assert outside < (plain["funnel_position"] != "within").sum()
    # the default output is the same as before the option existed
    assert list(plain.columns) == list(adjusted.columns)
    reference = S.funnel_limits(p0, n)
    assert plain["upper99_8cl"].tolist() == reference["upper99_8cl"].tolist()


# ------------------------------------------------------------------------------------------
# local fifths
# ------------------------------------------------------------------------------------------


def test_local_quintiles_hold_about_a_fifth_of_the_population_each():
    rng = np.random.default_rng(42)
    areas = [f"E0100{i:04d}" for i in range(400)]
    score = rng.gamma(2.0, 10.0, size=400)
    population = rng.integers(1000, 3000, size=400)
    fifths = S.local_quintiles(areas, score, population, most_deprived="high")
    assert fifths.index.tolist() == areas
    totals = pd.Series(population, index=areas).groupby(fifths).sum()
    assert totals.index.tolist() == [1, 2, 3, 4, 5]
    # areas are not split, so each fifth is within one area's population of a fifth
    assert (abs(totals - population.sum() / 5) <= population.max()).all()
    # ordering: every area in a more deprived fifth has a higher score
    by_fifth = pd.Series(score, index=areas).groupby(fifths)
    assert (by_fifth.min().iloc[:-1].to_numpy() > by_fifth.max().iloc[1:].to_numpy()).all()
    deciles = S.local_quintiles(areas, score, population, most_deprived="high", groups=10)
    tenths = pd.Series(population, index=areas).groupby(deciles).sum()
    assert tenths.index.tolist() == list(range(1, 11))
    assert (abs(tenths - population.sum() / 10) <= population.max()).all()
    # each local fifth is made of two whole local tenths
    assert ((deciles + 1) // 2 == fifths).all()


def test_local_quintiles_from_a_rank_put_rank_one_in_the_first_fifth():
    ranks = [32844, 1, 15000, 200, 28000, 9000, 21000, 5000, 12000, 30000]
    fifths = S.local_quintiles(list("abcdefghij"), ranks, [10] * 10, most_deprived="low")
    # with equal populations, two areas per fifth in order of rank (1 = most deprived)
    order = np.argsort(ranks)
    assert fifths.iloc[order].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    high = S.local_quintiles(list("abcdefghij"), ranks, [10] * 10, most_deprived="high")
    assert (high + fifths == 6).all()


def test_local_quintiles_keep_tied_areas_together_and_skip_missing_values():
    # cumulative population 0-100 | 100-400 (three tied areas, mid-point 250) | 400-500
    fifths = S.local_quintiles(
        ["a", "b", "c", "d", "e", "f"],
        [9.0, 5.0, 5.0, 5.0, 1.0, np.nan],
        [100, 100, 100, 100, 100, 50],
        most_deprived="high",
    )
    # mid-points 50, 250, 450 of 500 -> fifths 1, 3, 5; the missing score has no fifth
    assert fifths.iloc[:5].tolist() == [1, 3, 3, 3, 5]
    assert fifths.isna().tolist() == [False] * 5 + [True]
    shuffled = S.local_quintiles(
        ["d", "f", "b", "e", "a", "c"],
        [5.0, np.nan, 5.0, 1.0, 9.0, 5.0],
        [100, 50, 100, 100, 100, 100],
        most_deprived="high",
    )
    assert shuffled.loc[list("abcde")].tolist() == fifths.loc[list("abcde")].tolist()


def test_local_quintiles_reject_unclear_direction_and_repeated_areas():
    with pytest.raises(ValueError, match="most_deprived"):
        S.local_quintiles(["a", "b"], [1, 2], [1, 1], most_deprived="score")
    with pytest.raises(ValueError, match="'a' repeats"):
        S.local_quintiles(["a", "a"], [1, 2], [1, 1], most_deprived="high")
    with pytest.raises(ValueError, match="population"):
        S.local_quintiles(["a", "b"], [1, 2], [1, np.nan], most_deprived="high")


# ------------------------------------------------------------------------------------------
# SPC: rebasing and the Making Data Count icons
# ------------------------------------------------------------------------------------------


def hand_limits(values):
    """Mean and mean moving range worked out plainly (no screening needed in these series)."""
    mean = sum(values) / len(values)
    ranges = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    mr = sum(ranges) / len(ranges)
    return mean, mean - 2.66 * mr, mean + 2.66 * mr


def test_rebase_recomputes_limits_from_each_segment_as_worked_by_hand():
    before = [20, 22, 21, 23, 20, 22, 21, 23, 22, 21, 20, 22]
    after = [30, 31, 29, 32, 30, 31, 29, 30, 32, 31, 30, 29, 31]
    dates = pd.date_range("2024-01-01", periods=25, freq="W-MON")
    chart = S.spc_xmr(before + after, dates=dates, rebase_at=[dates[12]])
    for segment, values, rows in ((1, before, slice(0, 12)), (2, after, slice(12, 25))):
        mean, lower, upper = hand_limits(values)
        part = chart.iloc[rows]
        assert (part["segment"] == segment).all()
        assert part["mean"].tolist() == pytest.approx([mean] * len(values))
        assert part["lower_process_limit"].tolist() == pytest.approx([lower] * len(values))
        assert part["upper_process_limit"].tolist() == pytest.approx([upper] * len(values))
    # without the rebase, one set of limits spans the step and the later points are flagged
    single = S.spc_xmr(before + after, dates=dates)
    assert single["mean"].nunique() == 1
    assert single["special_cause"].iloc[12:].all()
    assert not chart["special_cause"].any()


def test_icons_for_a_common_cause_series_with_a_hit_and_miss_target():
    values = [20, 22, 21, 23, 20, 22, 21, 23, 22, 21, 20, 22]
    mean, lower, upper = hand_limits(values)
    assert lower < 21 < upper  # the target lies inside the limits
    icons = S.spc_icons(S.spc_xmr(values, target=21))
    assert icons["variation"] == "common_cause"
    assert icons["assurance"] == "inconsistent"
    assert icons["variation_text"].startswith("Common cause")
    assert icons["assurance_text"].startswith("Hit and miss")
    assert icons["trial_limits"] is False


def test_icons_for_a_high_latest_point_depend_on_which_direction_is_better():
    values = [20, 22, 21, 23, 20, 22, 21, 23, 22, 21, 20, 40]
    mean, lower, upper = hand_limits(values[:-1] + [21])  # the 19-point jump is screened
    higher_better = S.spc_icons(S.spc_xmr(values, target=5))
    assert higher_better["variation"] == "special_cause_improvement"
    assert "unusually high, and higher is better" in higher_better["variation_text"]
    assert higher_better["assurance"] == "consistent_pass"  # 5 is below the lower limit
    lower_better = S.spc_icons(S.spc_xmr(values, improvement_direction="decrease", target=5))
    assert lower_better["variation"] == "special_cause_concern"
    assert "unusually high, and lower is better" in lower_better["variation_text"]
    assert lower_better["assurance"] == "consistent_fail"
    assert lower_better["assurance_text"].startswith("Consistently failing")
    neutral = S.spc_icons(S.spc_xmr(values, improvement_direction="neutral", target=5))
    assert neutral["variation"] == "special_cause_neutral"
    assert "unusually high" in neutral["variation_text"]
    assert neutral["assurance"] is None and neutral["assurance_text"] is None


def test_icons_for_a_low_latest_point_and_no_target():
    values = [20, 22, 21, 23, 20, 22, 21, 23, 22, 21, 20, 2]
    icons = S.spc_icons(S.spc_xmr(values))
    assert icons["variation"] == "special_cause_concern"
    assert "unusually low, and higher is better" in icons["variation_text"]
    assert icons["assurance"] is None
    with pytest.raises(ValueError, match="spc_xmr"):
        S.spc_icons(pd.DataFrame({"value": values}))
