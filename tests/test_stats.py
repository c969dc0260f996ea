"""Tests of equity_helpers.stats.

Reference values come from three kinds of source, never from this module's own output:
the PHEindicatormethods peer fixtures read in place from ../shared/reference, values
worked by hand in the test, and a second, independent computation (scipy, numpy.polyfit,
root-finding, a bootstrap, or a published worked example).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats as st
from scipy.stats.contingency import relative_risk

from equity_helpers import stats as S

Z95 = st.norm.ppf(0.975)
Z998 = st.norm.ppf(0.999)
LIMIT_COLUMNS = ["value", "lower95_0cl", "upper95_0cl", "lower99_8cl", "upper99_8cl"]


@pytest.fixture(scope="module")
def peer(reference_dir: Path) -> Path:
    folder = reference_dir / "peer-fixtures" / "pheindicatormethods"
    assert folder.is_dir(), folder
    return folder


def assert_same(actual, expected, rel=1e-6, abs_tol=1e-9):
    """Equal within tolerance, with missing values required in the same places."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rel, atol=abs_tol, equal_nan=True)


def same_labels(actual, expected) -> bool:
    return all((pd.isna(a) and pd.isna(e)) or a == e for a, e in zip(actual, expected, strict=True))


def percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


# ------------------------------------------------------------------------------------------
# Wilson and Byar's, against the peer fixture test_BW.csv
# ------------------------------------------------------------------------------------------


def test_wilson_reproduces_every_wilson_row_of_test_bw(peer):
    bw = pd.read_csv(peer / "test_BW.csv")
    rows = bw[bw["method"] == "Wilson"]
    assert len(rows) == 6
    for _, row in rows.iterrows():
        lower, upper = S.wilson_ci(row["x"], row["n"], percent(row["confidence"]))
        assert_same([lower, upper], [row["lowercl"], row["uppercl"]])


def test_byars_method_reproduces_every_byars_row_of_test_bw(peer):
    bw = pd.read_csv(peer / "test_BW.csv")
    rows = bw[bw["method"] == "Byars"]
    assert len(rows) == 7
    # the row with x = 1 at 99.8% has no lower limit upstream: Byar's formula goes negative
    no_lower = rows[rows["lowercl"].isna()]
    assert list(no_lower["x"]) == [1.0] and list(no_lower["confidence"]) == ["99.8%"]
    for _, row in rows.iterrows():
        lower, upper = S.byars_ci(row["x"], percent(row["confidence"]), method="byars")
        assert_same([lower, upper], [row["lowercl"], row["uppercl"]])


def test_byars_auto_uses_the_exact_interval_below_ten_and_byars_from_ten():
    # x = 1: exact limits differ from Byar's formula
    exact = S.byars_ci(1, 0.95, method="exact")
    assert S.byars_ci(1, 0.95) == exact
    assert S.byars_ci(1, 0.95) != S.byars_ci(1, 0.95, method="byars")
    # x = 10 is the first count to use Byar's
    assert S.byars_ci(10, 0.95) == S.byars_ci(10, 0.95, method="byars")
    assert S.byars_ci(9, 0.95) == S.byars_ci(9, 0.95, method="exact")
    # x = 1 at 99.8%: the exact method does give a (positive) lower limit
    lower, _ = S.byars_ci(1, 0.998)
    assert 0 < lower < 0.01


def test_exact_interval_for_zero_events_is_worked_by_hand():
    # P(X = 0 | mu) = exp(-mu) = alpha / 2  =>  upper = ln(2 / alpha); no lower limit below 0
    assert S.byars_ci(0, 0.95) == (0.0, pytest.approx(math.log(40), rel=1e-12))
    assert S.byars_ci(0, 0.998) == (0.0, pytest.approx(math.log(1000), rel=1e-12))
    # Byar's formula alone has no lower limit at zero events
    assert math.isnan(S.byars_ci(0, method="byars")[0])


@pytest.mark.parametrize("confidence", [0.95, 0.998])
def test_exact_poisson_limits_match_a_root_find_on_the_poisson_cdf(confidence):
    alpha = 1 - confidence
    counts = np.arange(1, 10)
    lower, upper = S.byars_ci(counts, confidence)
    for x, lo, hi in zip(counts, lower, upper, strict=True):
        # lower: P(X >= x | mu) = alpha/2 ; upper: P(X <= x | mu) = alpha/2
        want_lo = optimize.brentq(lambda mu, x=x: st.poisson.sf(x - 1, mu) - alpha / 2, 1e-9, 50)
        want_hi = optimize.brentq(lambda mu, x=x: st.poisson.cdf(x, mu) - alpha / 2, 1e-9, 50)
        assert lo == pytest.approx(want_lo, rel=1e-8)
        assert hi == pytest.approx(want_hi, rel=1e-8)


def test_byars_ci_keeps_missing_counts_missing_and_rejects_negative_counts():
    lower, upper = S.byars_ci([np.nan, 20.0])
    assert math.isnan(lower[0]) and math.isnan(upper[0]) and lower[1] > 0
    with pytest.raises(ValueError):
        S.byars_ci([-1, 5])
    with pytest.raises(ValueError):
        S.byars_ci(5, method="normal")


def test_wilson_limits_solve_the_score_equation():
    # Wilson's limits are the proportions pi with n (p - pi)^2 = z^2 pi (1 - pi)
    for x, n in [(3, 17), (65, 100), (999, 3456)]:
        lower, upper = S.wilson_ci(x, n)
        p = x / n

        def score(pi, p=p, n=n):
            return n * (p - pi) ** 2 - Z95**2 * pi * (1 - pi)

        assert lower == pytest.approx(optimize.brentq(score, 1e-12, p), rel=1e-9)
        assert upper == pytest.approx(optimize.brentq(score, p, 1 - 1e-12), rel=1e-9)


def test_wilson_edges_missing_values_and_invalid_input():
    assert S.wilson_ci(0, 20)[0] == 0.0
    assert S.wilson_ci(20, 20)[1] == 1.0
    assert 0 < S.wilson_ci(0, 20)[1] < 1 and 0 < S.wilson_ci(20, 20)[0] < 1
    lower, upper = S.wilson_ci([np.nan, 5, 5], [10, np.nan, 10])
    assert np.isnan(lower[:2]).all() and np.isnan(upper[:2]).all() and lower[2] > 0
    # a Series with pandas' missing value works too
    lower, _ = S.wilson_ci(pd.Series([1, None], dtype="Int64"), pd.Series([10, 10]))
    assert math.isnan(lower[1])
    for x, n in [(-1, 10), (11, 10), (1, 0)]:
        with pytest.raises(ValueError):
            S.wilson_ci(x, n)
    # confidence as a percentage means the same as a fraction
    assert S.wilson_ci(65, 100, 99.8) == S.wilson_ci(65, 100, 0.998)


# ------------------------------------------------------------------------------------------
# phe_proportion and phe_rate, against test_Prop / test_Rate and their grouped results
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multiplier", [1, 100])
def test_proportion_reproduces_every_row_of_test_prop(peer, multiplier):
    expected = pd.read_csv(peer / "test_Prop.csv")
    expected = expected[expected["multiplier"] == multiplier].reset_index(drop=True)
    assert len(expected) == (11 if multiplier == 1 else 8)
    got = S.proportion(
        expected[["Area", "Numerator", "Denominator"]],
        "Numerator",
        "Denominator",
        multiplier=multiplier,
    )
    assert list(got["Area"]) == list(expected["Area"])
    for column in LIMIT_COLUMNS:
        assert_same(got[column], expected[column])
    assert list(got["statistic"]) == list(expected["statistic"])
    assert list(got["method"]) == list(expected["method"])
    # rows with a missing numerator or denominator give missing results
    missing = expected["Numerator"].isna() | expected["Denominator"].isna()
    assert got.loc[missing, LIMIT_COLUMNS].isna().all().all()


def test_proportion_by_group_reproduces_test_prop_g_results(peer):
    data = pd.read_csv(peer / "test_Prop.csv")[["Area", "Numerator", "Denominator"]]
    expected = pd.read_csv(peer / "test_Prop_g_results.csv")
    got = S.proportion(data, "Numerator", "Denominator", confidence=0.95, by="Area")
    merged = got.merge(expected, on="Area", suffixes=("", "_expected"), validate="1:1")
    assert len(merged) == len(expected) == 11
    assert_same(merged["Numerator"], merged["Numerator_expected"])
    assert_same(merged["Denominator"], merged["Denominator_expected"])
    assert_same(merged["value"], merged["value_expected"])
    assert_same(merged["lower95_0cl"], merged["lowercl"])
    assert_same(merged["upper95_0cl"], merged["uppercl"])
    assert (merged["confidence"] == merged["confidence_expected"]).all()
    assert (merged["method"] == merged["method_expected"]).all()


@pytest.mark.parametrize("multiplier", [100, 100_000])
def test_rate_reproduces_every_row_of_test_rate(peer, multiplier):
    expected = pd.read_csv(peer / "test_Rate.csv")
    expected = expected[expected["multiplier"] == multiplier].reset_index(drop=True)
    assert len(expected) == (8 if multiplier == 100 else 12)
    got = S.rate(
        expected[["Area", "Numerator", "Denominator"]],
        "Numerator",
        "Denominator",
        multiplier=multiplier,
    )
    for column in LIMIT_COLUMNS:
        assert_same(got[column], expected[column])
    assert list(got["statistic"]) == list(expected["statistic"])
    assert same_labels(got["method"], expected["method"])


def test_rate_by_group_reproduces_test_rate_g_results(peer):
    data = pd.read_csv(peer / "test_Rate.csv")[["Area", "Numerator", "Denominator"]]
    expected = pd.read_csv(peer / "test_Rate_g_results.csv")
    got = S.rate(data, "Numerator", "Denominator", confidence=95, by="Area")
    merged = got.merge(expected, on="Area", suffixes=("", "_expected"), validate="1:1")
    assert len(merged) == len(expected) == 12
    assert_same(merged["value"], merged["value_expected"])
    assert_same(merged["lower95_0cl"], merged["lowercl"])
    assert_same(merged["upper95_0cl"], merged["uppercl"])
    assert same_labels(merged["method"], merged["method_expected"])
    assert (merged["statistic"] == merged["statistic_expected"]).all()


def test_rate_allows_numerator_above_denominator_but_proportion_does_not():
    df = pd.DataFrame({"x": [250], "n": [220]})
    assert S.rate(df, "x", "n")["value"].iloc[0] == pytest.approx(250 / 220 * 100_000)
    with pytest.raises(ValueError):
        S.proportion(df, "x", "n")
    with pytest.raises(ValueError):
        S.rate(pd.DataFrame({"x": [1], "n": [0]}), "x", "n")


def test_proportion_reproduces_wilson_limits_in_real_ncmp_data(peer):
    ncmp = pd.read_csv(peer / "NCMP_testdata.csv")
    got = S.proportion(ncmp, "Count", "Measured", confidence=0.95, multiplier=100)
    assert len(got) == 240
    assert_same(got["value"], ncmp["Rate"], rel=1e-9)
    assert_same(got["lower95_0cl"], ncmp["LCL"], rel=1e-9)
    assert_same(got["upper95_0cl"], ncmp["UCL"], rel=1e-9)


# ------------------------------------------------------------------------------------------
# SII and RII
# ------------------------------------------------------------------------------------------


def deciles(values, population=1000, se=0.5):
    return pd.DataFrame(
        {"decile": np.arange(1, len(values) + 1), "pop": population, "value": values, "se": se}
    )


def run_sii(df, **kwargs):
    options = dict(population="pop", quantile="decile", se="se", repetitions=4000)
    options.update(kwargs)
    return S.sii(df, "value", **options).iloc[0]


def wls_by_hand(values, population):
    """Weighted least squares of values on relative rank, weights = population share."""
    a = np.asarray(population, float) / np.sum(population)
    b = np.cumsum(a) - a / 2
    b_bar, y_bar = np.sum(a * b), np.sum(a * values)
    slope = np.sum(a * (b - b_bar) * (values - y_bar)) / np.sum(a * (b - b_bar) ** 2)
    return y_bar - slope * b_bar, slope, a, b


UNEQUAL_POP = [7291, 7997, 6105, 7666, 5790, 6934, 5918, 5974, 7147, 7534]
CURVED = [75.9, 78.3, 83.8, 83.6, 80.5, 81.1, 81.7, 84.2, 80.6, 86.3]


def test_sii_of_a_straight_line_with_equal_populations_is_worked_by_hand():
    # value = 10 + 2 * decile; ranks are 0.05, 0.15, ..., 0.95 (decile = 10 * rank + 0.5),
    # so value = 11 + 20 * rank: SII = (30 - 12) / (0.95 - 0.05) = 20, intercept 11,
    # RII = (11 + 20) / 11.
    out = run_sii(deciles([10.0 + 2 * d for d in range(1, 11)]))
    assert out["sii"] == pytest.approx(20.0, rel=1e-12)
    assert out["intercept"] == pytest.approx(11.0, rel=1e-12)
    assert out["rii"] == pytest.approx(31 / 11, rel=1e-12)
    assert out["method"] == "simulation 4000 reps"


def test_sii_point_estimate_matches_weighted_least_squares_and_polyfit():
    df = deciles(CURVED, population=UNEQUAL_POP)
    out = run_sii(df)
    intercept, slope, a, b = wls_by_hand(np.array(CURVED), UNEQUAL_POP)
    poly_slope, poly_intercept = np.polyfit(b, CURVED, 1, w=np.sqrt(a))
    assert out["sii"] == pytest.approx(slope, rel=1e-10)
    assert out["sii"] == pytest.approx(poly_slope, rel=1e-10)
    assert out["intercept"] == pytest.approx(poly_intercept, rel=1e-10)
    assert out["rii"] == pytest.approx((intercept + slope) / intercept, rel=1e-10)


def test_sii_of_a_flat_gradient_is_zero_and_rii_one():
    out = run_sii(deciles([42.0] * 10, population=UNEQUAL_POP))
    assert out["sii"] == pytest.approx(0.0, abs=1e-10)
    assert out["rii"] == pytest.approx(1.0, abs=1e-12)
    assert out["sii_lower95_0cl"] < 0 < out["sii_upper95_0cl"]


def test_reversing_the_order_of_quantiles_flips_the_sign_and_inverts_the_rii():
    df = deciles(CURVED, population=UNEQUAL_POP)
    forward = run_sii(df)
    backward = run_sii(df.assign(decile=11 - df["decile"]))
    assert backward["sii"] == pytest.approx(-forward["sii"], rel=1e-10)
    assert backward["rii"] == pytest.approx(1 / forward["rii"], rel=1e-10)


def test_sii_rows_are_sorted_by_quantile_whatever_their_order():
    df = deciles(CURVED, population=UNEQUAL_POP)
    shuffled = df.sample(frac=1, random_state=3)
    pd.testing.assert_series_equal(run_sii(df), run_sii(shuffled))


def test_scaling_values_scales_the_sii_and_leaves_the_rii():
    df = deciles(CURVED, population=UNEQUAL_POP, se=1.5)
    base = run_sii(df)
    scaled = run_sii(df.assign(value=df["value"] * 3, se=df["se"] * 3))
    for column in ["sii", "sii_lower95_0cl", "sii_upper95_0cl", "intercept"]:
        assert scaled[column] == pytest.approx(3 * base[column], rel=1e-9)
    for column in ["rii", "rii_lower95_0cl", "rii_upper95_0cl"]:
        assert scaled[column] == pytest.approx(base[column], rel=1e-9)


def test_multiplier_scales_the_sii_and_a_negative_one_inverts_the_rii():
    df = deciles(CURVED, population=UNEQUAL_POP)
    base = run_sii(df)
    flipped = run_sii(df, multiplier=-100)
    assert flipped["sii"] == pytest.approx(-100 * base["sii"], rel=1e-10)
    # phe_sii reads the limits at sorted positions round(R * 0.025) and round(R * 0.975), which
    # are not mirror images (100 and 3900 of 4000), so flipped limits agree to one order step
    assert flipped["sii_lower95_0cl"] == pytest.approx(-100 * base["sii_upper95_0cl"], rel=2e-3)
    assert flipped["sii_lower95_0cl"] < flipped["sii"] < flipped["sii_upper95_0cl"]
    assert flipped["rii"] == pytest.approx(1 / base["rii"], rel=1e-10)


def test_simulated_sii_limits_match_the_normal_theory_limits():
    # For value_type 0 the SII is linear in the values, so its simulated distribution is
    # normal with sd = sqrt(sum(c_i^2 se_i^2)), c_i the WLS slope weights, worked here.
    se = np.linspace(0.8, 2.4, 10)
    df = deciles(CURVED, population=UNEQUAL_POP, se=se)
    _, slope, a, b = wls_by_hand(np.array(CURVED), UNEQUAL_POP)
    b_bar = np.sum(a * b)
    weights = a * (b - b_bar) / np.sum(a * (b - b_bar) ** 2)
    sd = np.sqrt(np.sum(weights**2 * se**2))
    out = run_sii(df, repetitions=20_000, confidence=(0.95, 0.998))
    for level, z in [("95_0", Z95), ("99_8", Z998)]:
        assert out[f"sii_lower{level}cl"] == pytest.approx(slope - z * sd, abs=0.06 * z * sd)
        assert out[f"sii_upper{level}cl"] == pytest.approx(slope + z * sd, abs=0.06 * z * sd)
    assert out["confidence"] == "95%, 99.8%"


def test_sii_interval_contains_the_estimate_and_narrows_with_smaller_errors():
    wide = run_sii(deciles(CURVED, population=UNEQUAL_POP, se=2.0))
    narrow = run_sii(deciles(CURVED, population=UNEQUAL_POP, se=0.5))
    for out in (wide, narrow):
        assert out["sii_lower95_0cl"] < out["sii"] < out["sii_upper95_0cl"]
        assert out["rii_lower95_0cl"] < out["rii"] < out["rii_upper95_0cl"]
    wide_width = wide["sii_upper95_0cl"] - wide["sii_lower95_0cl"]
    narrow_width = narrow["sii_upper95_0cl"] - narrow["sii_lower95_0cl"]
    assert narrow_width == pytest.approx(wide_width / 4, rel=1e-9)  # same seed: exact scaling


def test_sii_simulation_is_reproducible_with_a_seed():
    df = deciles(CURVED, population=UNEQUAL_POP)
    one, again, other = run_sii(df, seed=5), run_sii(df, seed=5), run_sii(df, seed=6)
    pd.testing.assert_series_equal(one, again)
    assert one["sii_lower95_0cl"] != other["sii_lower95_0cl"]
    assert one["sii"] == other["sii"]


def test_sii_standard_error_from_95_percent_limits_equals_a_given_standard_error():
    se = np.linspace(0.8, 2.4, 10)
    df = deciles(CURVED, population=UNEQUAL_POP, se=se)
    df["lo"], df["hi"] = df["value"] - Z95 * se, df["value"] + Z95 * se
    from_se = run_sii(df)
    from_limits = S.sii(
        df, "value", "lo", "hi", population="pop", quantile="decile", repetitions=4000
    ).iloc[0]
    for column in ["sii", "sii_lower95_0cl", "sii_upper95_0cl", "rii_upper95_0cl"]:
        assert from_limits[column] == pytest.approx(from_se[column], rel=1e-9)


def test_sii_on_real_ncmp_obesity_data(peer):
    """Child obesity is higher in deprived deciles: SII < 0 and RII < 1 in every year.

    Counts with Wilson limits worked out inside sii give the same answer as the published
    limits passed in, and the point estimate matches a weighted polyfit of the proportions.
    """
    ncmp = pd.read_csv(peer / "NCMP_testdata.csv")
    groups = list(ncmp.groupby(["Period", "SchoolYear"]))
    assert len(groups) == 24
    for _, area in groups[::4]:
        area = area.assign(p=area["Rate"] / 100, lo=area["LCL"] / 100, hi=area["UCL"] / 100)
        common = dict(population="Measured", quantile="Decile", value_type=2, multiplier=100)
        from_counts = S.sii(area, x="Count", n="Measured", repetitions=2000, **common).iloc[0]
        from_limits = S.sii(area, "p", "lo", "hi", repetitions=2000, **common).iloc[0]
        for column in ["sii", "sii_lower95_0cl", "sii_upper95_0cl", "rii", "rii_lower95_0cl"]:
            assert from_counts[column] == pytest.approx(from_limits[column], rel=1e-7)
        a = area["Measured"] / area["Measured"].sum()
        b = np.cumsum(a) - a / 2
        slope, _ = np.polyfit(b, area["p"], 1, w=np.sqrt(a))
        assert from_counts["sii"] == pytest.approx(100 * slope, rel=1e-9)
        assert from_counts["sii_upper95_0cl"] < 0 and from_counts["rii_upper95_0cl"] < 1
        assert from_counts["sii_lower95_0cl"] < from_counts["sii"]


def test_sii_for_rates_from_counts_equals_passing_the_rate_limits():
    counts = np.array([120, 95, 80, 70, 52, 40, 33, 20, 12, 6])  # last decile < 10: exact
    df = pd.DataFrame({"decile": range(1, 11), "pop": UNEQUAL_POP, "x": counts})
    limits = S.rate(df, "x", "pop", confidence=0.95, multiplier=1)
    common = dict(population="pop", quantile="decile", value_type=1, repetitions=3000)
    from_counts = S.sii(df, x="x", **common).iloc[0]
    from_limits = S.sii(limits, "value", "lower95_0cl", "upper95_0cl", **common).iloc[0]
    for column in ["sii", "sii_lower95_0cl", "sii_upper95_0cl", "rii", "rii_upper95_0cl"]:
        assert from_counts[column] == pytest.approx(from_limits[column], rel=1e-9)
    assert from_counts["indicator_type"] == "rate" and from_counts["sii"] < 0


def test_sii_rejects_unusable_input():
    df = deciles(CURVED)
    with pytest.raises(ValueError, match="between 5 and 100"):
        run_sii(df.head(4))
    with pytest.raises(ValueError, match="once"):
        run_sii(pd.concat([df, df.head(1)]))
    with pytest.raises(ValueError, match="positive population"):
        run_sii(df.assign(pop=[0] + [1000] * 9))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        run_sii(df, value_type=2)  # values of 75.9 etc. are not proportions
    with pytest.raises(ValueError, match="limits"):
        S.sii(df, "value", population="pop", quantile="decile")
    with pytest.raises(ValueError, match="too few"):
        run_sii(df, repetitions=100, confidence=0.998)


# ------------------------------------------------------------------------------------------
# funnel plots
# ------------------------------------------------------------------------------------------


def sigma_adjustment(p, population, average, side):
    """The expanded quadratic of PHEindicatormethods' sigma_adjustment, as published there."""
    q = st.norm.ppf(p) ** 2
    first = average * (population / q + 1)
    adj = np.sqrt(
        (-8 * average * (population / q + 1)) ** 2
        - 64
        * (1 / q + 1 / population)
        * average
        * (population * (average * (population / q + 2) - 1) + q * (average - 1))
    )
    last = 1 / q + 1 / population
    return ((first - adj / 8) if side == "low" else (first + adj / 8)) / last / population


@pytest.mark.parametrize("baseline", [0.05, 0.3, 0.72])
def test_funnel_limits_are_where_the_wilson_interval_reaches_the_baseline(baseline):
    ns = np.array([200, 1000, 25_000])
    limits = S.funnel_limits(baseline, ns)
    for level, conf in [("95_0", 0.95), ("99_8", 0.998)]:
        for n, lower, upper in zip(
            ns, limits[f"lower{level}cl"], limits[f"upper{level}cl"], strict=True
        ):

            def upper_minus_baseline(p, n=n, conf=conf):
                return S.wilson_ci(p * n, n, conf)[1] - baseline

            def lower_minus_baseline(p, n=n, conf=conf):
                return S.wilson_ci(p * n, n, conf)[0] - baseline

            assert lower == pytest.approx(
                optimize.brentq(upper_minus_baseline, 0, baseline), rel=1e-8
            )
            assert upper == pytest.approx(
                optimize.brentq(lower_minus_baseline, baseline, 1), rel=1e-8
            )


def test_funnel_limits_agree_with_the_upstream_quadratic_and_clip_at_zero():
    ns = np.array([5, 20, 100, 1000, 50_000])
    for baseline in (0.1, 0.5):
        limits = S.funnel_limits(baseline, ns, multiplier=100)
        for level, p in [("95_0", 0.975), ("99_8", 0.999)]:
            low = np.maximum(0, sigma_adjustment(p, ns, baseline, "low")) * 100
            high = np.minimum(1, sigma_adjustment(p, ns, baseline, "high")) * 100
            assert_same(limits[f"lower{level}cl"], low, rel=1e-10)
            assert_same(limits[f"upper{level}cl"], high, rel=1e-10)
        assert (limits["baseline"] == baseline * 100).all()
    # B = 0.1 at n = 5 would go below zero: clipped to 0
    assert S.funnel_limits(0.1, 5)["lower95_0cl"].iloc[0] == 0.0


def test_funnel_points_place_units_against_limits_worked_by_hand():
    # baseline 0.2, n = 1000: 95% limits 0.2 -/+ 1.96 * 0.012649, 99.8% 0.2 -/+ 3.090 * 0.012649
    se = math.sqrt(0.2 * 0.8 / 1000)
    x = [200, 230, 245, 170, 150, np.nan]
    p = np.array(x[:5]) / 1000
    assert 0.2 + Z95 * se < p[1] < 0.2 + Z998 * se < p[2]
    assert 0.2 - Z998 * se < p[3] < 0.2 - Z95 * se and p[4] < 0.2 - Z998 * se
    df = pd.DataFrame({"unit": list("ABCDEF"), "x": x, "n": 1000})
    out = S.funnel_points(df, "x", "n", baseline=0.2)
    assert out["funnel_position"].tolist()[:5] == [
        "within",
        "above 95%",
        "above 99.8%",
        "below 95%",
        "below 99.8%",
    ]
    assert pd.isna(out["funnel_position"].iloc[5])
    assert out["upper95_0cl"].iloc[0] == pytest.approx(0.2 + Z95 * se, rel=1e-12)


def test_funnel_points_default_baseline_is_pooled_proportion():
    df = pd.DataFrame({"x": [10, 30, 45], "n": [100, 150, 250]})
    out = S.funnel_points(df, "x", "n")
    assert out["baseline"].iloc[0] == pytest.approx(85 / 500)
    with pytest.raises(ValueError):
        S.funnel_points(pd.DataFrame({"x": [5], "n": [4]}), "x", "n")


# ------------------------------------------------------------------------------------------
# SPC: Making Data Count XmR
# ------------------------------------------------------------------------------------------


def alternating(n=20, low=10.0, high=12.0, start_low=True):
    first, second = (low, high) if start_low else (high, low)
    return [first if i % 2 == 0 else second for i in range(n)]


def flagged(chart, column="special_cause"):
    return list(np.flatnonzero(chart[column].to_numpy()))


def test_xmr_limits_for_a_small_series_are_worked_by_hand():
    chart = S.spc_xmr([10, 12, 11, 13, 12])
    # mean 58 / 5 = 11.6; moving ranges 2, 1, 2, 1 -> 1.5; none >= 3.267 * 1.5
    assert chart["mean"].iloc[0] == pytest.approx(11.6)
    assert chart["moving_range"].tolist()[1:] == [2, 1, 2, 1]
    assert math.isnan(chart["moving_range"].iloc[0])
    assert chart["mean_moving_range"].iloc[0] == pytest.approx(1.5)
    assert chart["upper_process_limit"].iloc[0] == pytest.approx(11.6 + 2.66 * 1.5)
    assert chart["lower_process_limit"].iloc[0] == pytest.approx(11.6 - 2.66 * 1.5)
    assert chart["upper_near_limit"].iloc[0] == pytest.approx(11.6 + 2 / 3 * 2.66 * 1.5)
    assert chart["lower_near_limit"].iloc[0] == pytest.approx(11.6 - 2 / 3 * 2.66 * 1.5)
    assert not chart["special_cause"].any()
    assert chart["trial_limits"].all() and chart.attrs["trial_limits"] is True
    assert chart.attrs["variation_icon"] == "common_cause"


def test_outlier_screening_changes_the_limits_as_worked_by_hand():
    values = [10, 11, 10, 11, 10, 30, 10, 11, 10, 11, 10, 11]
    mean = 145 / 12
    # moving ranges: nine of 1 and two of 20 -> mean 49 / 11; 3.267 * 49 / 11 = 14.55,
    # so both 20s are screened out and the mean moving range becomes 1
    screened = S.spc_xmr(values)
    assert flagged(screened, "moving_range_excluded") == [5, 6]
    assert screened["mean_moving_range"].iloc[0] == pytest.approx(1.0)
    assert screened["upper_process_limit"].iloc[0] == pytest.approx(mean + 2.66)
    unscreened = S.spc_xmr(values, screen_outliers=False)
    assert unscreened["mean_moving_range"].iloc[0] == pytest.approx(49 / 11)
    assert unscreened["upper_process_limit"].iloc[0] == pytest.approx(mean + 2.66 * 49 / 11)
    assert not unscreened["moving_range_excluded"].any()
    assert screened["trial_limits"].sum() == 0 and screened.attrs["trial_limits"] is False


def test_one_point_beyond_the_limit_is_flagged_only_there():
    values = alternating()
    values[9] = 30.0  # mean 11.9, screened mean moving range 2: upper limit 17.22
    chart = S.spc_xmr(values)
    assert flagged(chart) == [9]
    assert flagged(chart, "outside_limits") == [9]
    assert chart.loc[9, "special_cause_rule"] == "outside_limits"
    assert chart.loc[9, "point_type"] == "special_cause_improvement"
    assert chart.attrs["variation_icon"] == "common_cause"  # the last point is common cause
    assert S.spc_xmr(values, improvement_direction="decrease").loc[9, "point_type"] == (
        "special_cause_concern"
    )
    neutral = S.spc_xmr(values, improvement_direction="neutral")
    assert neutral.loc[9, "point_type"] == "special_cause_neutral_high"
    # when the outlier is the latest point it sets the variation icon
    latest = S.spc_xmr(values[:10])
    assert latest.attrs["variation_icon"] == "special_cause_improvement"
    assert S.spc_xmr(values[:10], improvement_direction="neutral").attrs["variation_icon"] == (
        "special_cause_neutral"
    )


RISING_7 = [9.0, 9.5, 10.0, 10.5, 11.0, 11.4, 11.8]


def test_seven_rising_points_are_a_trend_and_six_are_not():
    # the points either side of each run are lower than its end and higher than its start
    seven = alternating(6, start_low=False) + RISING_7 + alternating(7)
    chart = S.spc_xmr(seven)
    assert flagged(chart, "trend") == list(range(6, 13))
    assert flagged(chart) == list(range(6, 13))
    assert (chart.loc[6:12, "point_type"] == "special_cause_improvement").all()
    six = alternating(6, start_low=False) + RISING_7[:6] + alternating(8)
    assert not S.spc_xmr(six)["special_cause"].any()


def test_a_falling_trend_is_a_concern_when_higher_is_better():
    falling = alternating(7) + RISING_7[::-1] + alternating(6)
    chart = S.spc_xmr(falling, improvement_direction="increase")
    assert flagged(chart) == list(range(7, 14))
    assert (chart.loc[7:13, "point_type"] == "special_cause_concern").all()
    improving = S.spc_xmr(falling, improvement_direction="decrease")
    assert (improving.loc[7:13, "point_type"] == "special_cause_improvement").all()


def test_two_of_three_beyond_the_near_limit_on_one_side_only():
    same_side = alternating()
    same_side[8], same_side[9], same_side[10] = 17.5, 12.0, 17.5
    chart = S.spc_xmr(same_side)
    row = chart.iloc[0]
    assert row["upper_near_limit"] < 17.5 < row["upper_process_limit"]  # precondition
    assert row["mean"] < 12.0
    assert flagged(chart, "two_in_three") == [8, 10]
    assert flagged(chart) == [8, 10]

    opposite = alternating()
    opposite[8], opposite[9], opposite[10] = 17.0, 5.5, 17.0
    chart = S.spc_xmr(opposite)
    row = chart.iloc[0]
    assert row["upper_near_limit"] < 17.0 < row["upper_process_limit"]  # preconditions
    assert row["lower_process_limit"] < 5.5 < row["lower_near_limit"]
    assert not chart["two_in_three"].any()
    assert not chart["special_cause"].any()


def test_seven_points_on_one_side_of_the_mean_are_a_shift_and_six_are_not():
    seven = alternating(7) + [11.5] * 7 + alternating(6)
    chart = S.spc_xmr(seven)
    assert chart["mean"].iloc[0] < 11.5  # 222.5 / 20
    assert flagged(chart, "shift") == list(range(7, 14))
    assert flagged(chart) == list(range(7, 14))
    assert (chart.loc[7:13, "special_cause_rule"] == "shift").all()
    six = alternating(7) + [11.5] * 6 + alternating(7)
    assert not S.spc_xmr(six)["special_cause"].any()


def test_assurance_compares_the_target_with_the_process_limits():
    values = alternating(12)  # mean 11, limits 11 -/+ 5.32
    assert S.spc_xmr(values, target=20).attrs["assurance"] == "consistent_fail"
    assert S.spc_xmr(values, target=3).attrs["assurance"] == "consistent_pass"
    assert S.spc_xmr(values, target=11).attrs["assurance"] == "inconsistent"
    down = S.spc_xmr(values, improvement_direction="decrease", target=20)
    assert down.attrs["assurance"] == "consistent_pass"
    assert S.spc_xmr(values, improvement_direction="neutral", target=20).attrs["assurance"] is None
    assert S.spc_xmr(values).attrs["assurance"] is None


def test_trial_limits_below_twelve_points():
    assert S.spc_xmr(alternating(11)).attrs["trial_limits"] is True
    assert S.spc_xmr(alternating(12)).attrs["trial_limits"] is False


def test_rebasing_computes_each_segment_on_its_own_and_dates_sort_the_series():
    first = alternating(12)
    second = [v + 5 for v in alternating(14, start_low=False)]
    dates = pd.date_range("2023-01-01", periods=26, freq="MS")
    chart = S.spc_xmr(first + second, dates=dates, rebase_at=[dates[12]])
    assert chart["segment"].tolist() == [1] * 12 + [2] * 14
    alone = S.spc_xmr(second)
    for column in ["mean", "upper_process_limit", "lower_near_limit", "special_cause"]:
        assert chart[column].iloc[12:].tolist() == pytest.approx(alone[column].tolist())
    assert math.isnan(chart["moving_range"].iloc[12])
    by_position = S.spc_xmr(first + second, rebase_at=[12])
    assert by_position["upper_process_limit"].tolist() == chart["upper_process_limit"].tolist()
    order = np.random.default_rng(0).permutation(26)
    shuffled = S.spc_xmr(np.array(first + second)[order], dates=dates[order], rebase_at=[dates[12]])
    assert shuffled["value"].tolist() == chart["value"].tolist()
    assert shuffled["date"].tolist() == list(dates)


def test_spc_rejects_gaps_and_unknown_directions():
    with pytest.raises(ValueError):
        S.spc_xmr([1.0, np.nan, 2.0])
    with pytest.raises(ValueError):
        S.spc_xmr([1.0, 2.0], improvement_direction="up")


# ------------------------------------------------------------------------------------------
# comparing proportions
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_katz_ratio_matches_scipy_relative_risk(confidence):
    cases = [(20, 100, 10, 100), (7, 50, 30, 60), (412, 5000, 1900, 31000), (3, 9, 1, 12)]
    ratio, lower, upper = S.ratio_of_proportions(*np.array(cases).T, confidence=confidence)
    for i, case in enumerate(cases):
        reference = relative_risk(*case)
        interval = reference.confidence_interval(confidence_level=confidence)
        assert ratio[i] == pytest.approx(reference.relative_risk, rel=1e-12)
        assert lower[i] == pytest.approx(interval.low, rel=1e-10)
        assert upper[i] == pytest.approx(interval.high, rel=1e-10)
    assert all(math.isnan(v) for v in S.ratio_of_proportions(0, 50, 5, 60)[1:])


def test_representation_ratio_is_share_of_activity_over_share_of_population():
    ratio, lower, upper = S.representation_ratio(120, 1000, 9000, 50_000)
    assert ratio == pytest.approx((120 / 1000) / (9000 / 50_000))
    scipy_ci = relative_risk(120, 1000, 9000, 50_000).confidence_interval()
    assert (lower, upper) == pytest.approx((scipy_ci.low, scipy_ci.high), rel=1e-10)


# Newcombe RG (1998) Stat Med 17:873-890, Table II, method 10 (score, no continuity
# correction): published worked examples, to 4 decimal places.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), 0.2000, 0.0524, 0.3339),
    ((9, 10, 3, 10), 0.6000, 0.1705, 0.8090),
    ((6, 7, 2, 7), 0.5714, 0.0582, 0.8062),
    ((5, 56, 0, 29), 0.0893, -0.0381, 0.1926),
    ((0, 10, 0, 20), 0.0000, -0.1611, 0.2775),
    ((10, 10, 0, 20), 1.0000, 0.6791, 1.0000),
]


@pytest.mark.parametrize(("counts", "difference", "lower", "upper"), NEWCOMBE_TABLE_II)
def test_newcombe_reproduces_the_published_table(counts, difference, lower, upper):
    got = S.difference_of_proportions(*counts)
    assert got == pytest.approx((difference, lower, upper), abs=5e-5)


def test_newcombe_tends_to_the_wald_interval_at_large_n():
    n1, n2 = 2_000_000, 3_000_000
    x1, x2 = 0.31 * n1, 0.27 * n2
    d, lower, upper = S.difference_of_proportions(x1, n1, x2, n2, confidence=0.99)
    se = math.sqrt(0.31 * 0.69 / n1 + 0.27 * 0.73 / n2)
    z = st.norm.ppf(0.995)
    assert d - lower == pytest.approx(z * se, rel=1e-3)
    assert upper - d == pytest.approx(z * se, rel=1e-3)


GAP_P = (0.40, 0.25, 0.35, 0.30)  # group 1 before, group 2 before, group 1 after, group 2 after


def test_gap_change_tends_to_the_wald_interval_at_large_n():
    n = 1_000_000
    counts = [p * n for p in GAP_P]
    change, lower, upper = S.gap_change(counts[0], n, counts[1], n, counts[2], n, counts[3], n)
    assert change == pytest.approx((0.35 - 0.30) - (0.40 - 0.25))
    se = math.sqrt(sum(p * (1 - p) / n for p in GAP_P))
    assert change - lower == pytest.approx(Z95 * se, rel=1e-3)
    assert upper - change == pytest.approx(Z95 * se, rel=1e-3)


def test_gap_change_agrees_with_a_parametric_bootstrap_at_moderate_n():
    n = 300
    counts = [round(p * n) for p in GAP_P]
    change, lower, upper = S.gap_change(counts[0], n, counts[1], n, counts[2], n, counts[3], n)
    rng = np.random.default_rng(2024)
    draws = [rng.binomial(n, x / n, size=40_000) / n for x in counts]
    simulated = (draws[2] - draws[3]) - (draws[0] - draws[1])
    boot_lower, boot_upper = np.quantile(simulated, [0.025, 0.975])
    assert lower == pytest.approx(boot_lower, abs=0.01)
    assert upper == pytest.approx(boot_upper, abs=0.01)
    # and it is wider than either period's own Newcombe interval
    _, before_lower, before_upper = S.difference_of_proportions(counts[0], n, counts[1], n)
    assert upper - lower > before_upper - before_lower


def test_gap_change_reduces_to_the_other_period_interval_when_one_period_is_near_exact():
    # Baseline 2/40 vs 12/40 has a clearly asymmetric Newcombe interval (L_b, U_b). If the
    # after period is measured almost without error (huge n), the MOVER interval for
    # g_a - g_b must tend to (g_a - U_b, g_a - L_b): the baseline interval reflected.
    big = 10**9
    g_b, low_b, up_b = S.difference_of_proportions(2, 40, 12, 40)
    assert abs((up_b - g_b) - (g_b - low_b)) > 0.005  # asymmetric, so reflection matters
    change, lower, upper = S.gap_change(2, 40, 12, 40, 0.3 * big, big, 0.2 * big, big)
    assert change == pytest.approx(0.1 - g_b)
    assert lower == pytest.approx(0.1 - up_b, abs=1e-4)
    assert upper == pytest.approx(0.1 - low_b, abs=1e-4)
    # and the other way round: a near-exact baseline leaves the after interval, shifted
    g_a, low_a, up_a = S.difference_of_proportions(2, 40, 12, 40)
    change, lower, upper = S.gap_change(0.3 * big, big, 0.2 * big, big, 2, 40, 12, 40)
    assert (lower, upper) == pytest.approx((low_a - 0.1, up_a - 0.1), abs=1e-4)


def test_comparisons_broadcast_over_arrays():
    d, lower, upper = S.difference_of_proportions([56, 9], [70, 10], [48, 3], [80, 10])
    assert d.shape == lower.shape == upper.shape == (2,)
    assert (lower < d).all() and (d < upper).all()
