"""Statistics for finding and acting on health inequalities.

Every function here follows a named, published method, and where English public-health
indicators have a reference implementation the function reproduces it:

- ``wilson_ci``: Wilson score interval (Wilson 1927), as PHEindicatormethods
  ``wilson_lower`` / ``wilson_upper``.
- ``byars_ci``: Byar's approximation to the Poisson interval (Breslow & Day 1987) for
  counts of 10 or more and the exact Poisson interval from the chi-square distribution
  (Armitage & Berry 2002) below 10, as PHEindicatormethods ``phe_rate``; with
  ``method="byars"``, Byar's for every count, as ``byars_lower`` / ``byars_upper``.
- ``proportion``: PHEindicatormethods ``phe_proportion`` (Wilson limits).
- ``rate``: PHEindicatormethods ``phe_rate`` (exact below 10, Byar's from 10).
- ``sii``: slope and relative index of inequality by population-weighted regression on
  relative rank (Low & Low 2004) with simulated confidence limits, as PHEindicatormethods
  ``phe_sii``.
- ``funnel_limits``: funnel-plot control limits for proportions, as PHEindicatormethods
  ``calculate_funnel_limits`` (Fingertips technical guidance).
- ``funnel_points``: where each unit sits against those limits, as
  ``calculate_funnel_points`` / ``assign_funnel_significance``.
- ``spc_xmr``: XmR chart with the NHS England "Making Data Count" rules, as the R package
  NHSRplotthedots (``ptd_spc``).
- ``ratio_of_proportions``: ratio of two independent proportions with the Katz log
  interval (Katz et al. 1978).
- ``representation_ratio``: a group's share of activity over its share of the population,
  with the Katz interval.
- ``difference_of_proportions``: Newcombe's hybrid score interval, method 10 of Newcombe
  (1998), built from two Wilson intervals.
- ``gap_change``: change in a difference of proportions between two periods, with the
  MOVER interval (Zou & Donner 2008) built from the two Newcombe intervals.
- ``indirectly_standardised_ratio``: observed over expected with exact Poisson limits below
  10 and Byar's from 10, as PHEindicatormethods ``calculate_ISRatio``.
- ``expected_counts``: expected counts by indirect standardisation on the service's own
  age(-sex)-specific rates (Breslow & Day 1987).
- ``overdispersion``: Spiegelhalter's (2005) additive random-effects adjustment of proportion
  funnel limits (winsorised z-scores, dispersion ratio and between-unit variance).
- ``spc_icons``: the Making Data Count variation and assurance icons, in words.
- ``local_quintiles``: population-weighted local deprivation fifths within a catchment.

Confidence levels may be given as fractions (0.95) or percentages (95), as in
PHEindicatormethods. Columns of confidence limits are named as PHEindicatormethods names
them when two levels are asked for: ``lower95_0cl``, ``upper99_8cl`` and so on. Functions
never print; they log to the ``equity_helpers`` logger.

References:
Wilson EB (1927). Probable inference, the law of succession, and statistical inference.
JASA 22:209-212. Breslow NE, Day NE (1987). Statistical methods in cancer research, vol II.
IARC. Armitage P, Berry G (2002). Statistical methods in medical research, 4th edn.
Low A, Low A (2004). Measuring the gap: quantifying and comparing local health
inequalities. J Public Health 26:388-395. Katz D et al. (1978). Obtaining confidence
intervals for the risk ratio in cohort studies. Biometrics 34:469-474. Newcombe RG (1998).
Interval estimation for the difference between independent proportions: comparison of
eleven methods. Stat Med 17:873-890. Zou GY, Donner A (2008). Construction of confidence
limits about effect measures: a general approach. Stat Med 27:1693-1702. NHS England,
Making Data Count (2019, 2021). OHID/UKHSA, PHEindicatormethods (R, CRAN).
NHS-R Community, NHSRplotthedots (R, CRAN). Spiegelhalter DJ (2005). Handling
over-dispersion of performance indicators. Qual Saf Health Care 14:347-351. Spiegelhalter DJ
(2005). Funnel plots for comparing institutional performance. Stat Med 24:1185-1202.
NHS-R Community, FunnelPlotR (R, CRAN).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from .lazy import lazy_module

_st = lazy_module("scipy.stats")  # about a second to import: loaded on first use

logger = logging.getLogger("equity_helpers")

__all__ = [
    "wilson_ci",
    "byars_ci",
    "proportion",
    "rate",
    "sii",
    "funnel_limits",
    "funnel_points",
    "spc_xmr",
    "ratio_of_proportions",
    "representation_ratio",
    "difference_of_proportions",
    "gap_change",
    "indirectly_standardised_ratio",
    "expected_counts",
    "overdispersion",
    "spc_icons",
    "local_quintiles",
]

#: Below this count, rates use the exact Poisson interval rather than Byar's (phe_rate).
BYARS_MIN_COUNT = 10
#: XmR constants used by NHSRplotthedots: limits at mean +/- 2.66 x mean moving range, and
#: moving ranges at or above 3.267 x their mean screened out before the mean is recomputed.
XMR_LIMIT = 2.66
XMR_SCREEN = 3.267
#: Fewer points than this give trial limits (NHSRplotthedots warns below 12).
SPC_MIN_POINTS = 12
#: Length of a run for the trend and shift rules.
SPC_RUN = 7
#: phe_sii derives standard errors from 95% limits whatever the SII confidence level.
_Z95 = 1.959963984540054  # float(scipy.stats.norm.ppf(0.975)), without importing SciPy

_VALUE_TYPES = {0: "normal", 1: "rate", 2: "proportion"}
_DIRECTIONS = {"increase": 1, "decrease": -1, "neutral": 0}


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _fraction(confidence: float) -> float:
    """A confidence level as a fraction: 0.95 and 95 both give 0.95."""
    c = float(confidence)
    if c >= 1:
        c /= 100
    if not 0 < c < 1:
        raise ValueError(f"confidence must be between 0 and 1 (or 0 and 100), got {confidence!r}")
    return c


def _levels(confidence: float | Sequence[float]) -> list[float]:
    """One or more confidence levels as fractions."""
    values = [confidence] if np.ndim(confidence) == 0 else list(confidence)
    if not values:
        raise ValueError("at least one confidence level is needed")
    return [_fraction(c) for c in values]


def _z(confidence: float) -> float:
    """Two-sided standard normal quantile for a confidence level given as a fraction."""
    return float(_st.norm.ppf(0.5 + confidence / 2))


def _label(confidence: float) -> str:
    """'95_0' for 0.95 and '99_8' for 0.998, as in PHEindicatormethods column names."""
    return f"{confidence * 100:.1f}".replace(".", "_")


def _number(value: float) -> str:
    value = round(float(value), 6)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _percent_text(levels: Sequence[float]) -> str:
    return ", ".join(f"{_number(c * 100)}%" for c in levels)


def _as_float(values) -> np.ndarray:
    """A float array from a scalar, list, array or Series; missing values become NaN."""
    if isinstance(values, pd.Series | pd.Index):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)


def _out(array: np.ndarray):
    """Return a plain float for scalar input, the array otherwise."""
    return float(array) if np.ndim(array) == 0 else array


def _check_counts(x: np.ndarray, n: np.ndarray, *, proportion: bool) -> None:
    if np.any(x < 0):
        raise ValueError("numerators must be greater than or equal to zero")
    if np.any(n <= 0):
        raise ValueError("denominators must be greater than zero")
    if proportion and np.any(x > n):
        raise ValueError("numerators must not exceed denominators for a proportion")


def _aggregate(df: pd.DataFrame, x: str, n: str, by) -> pd.DataFrame:
    """Sum numerators and denominators within groups (a missing value makes the sum missing),
    as PHEindicatormethods does for a grouped data frame."""
    if by is None:
        return df.copy()
    return df.groupby(by, sort=False, dropna=False)[[x, n]].sum(skipna=False).reset_index()


# --------------------------------------------------------------------------------------------
# single proportions and counts
# --------------------------------------------------------------------------------------------


def wilson_ci(x, n, confidence: float = 0.95):
    """Wilson score confidence interval for a proportion ``x / n``.

    Exactly as PHEindicatormethods ``wilson_lower`` and ``wilson_upper``::

        (2x + z^2 -/+ z * sqrt(z^2 + 4x(1 - x/n))) / (2(n + z^2))

    with ``z`` the two-sided normal quantile. The lower limit is set to exactly 0 when
    ``x == 0`` and the upper to exactly 1 when ``x == n`` (the formula gives these values
    up to rounding).

    Parameters
    ----------
    x, n : float or array-like
        Numerators and denominators (broadcast together). ``x`` need not be a whole number.
        A missing ``x`` or ``n`` gives NaN limits.
    confidence : float, default 0.95
        Confidence level, as a fraction or a percentage (95).

    Returns
    -------
    lower, upper : float or numpy.ndarray
        The limits as proportions (between 0 and 1). Floats for scalar input.

    Raises
    ------
    ValueError
        If a numerator is negative or above its denominator, or a denominator is not positive.

    Examples
    --------
    >>> lower, upper = wilson_ci(30, 120)
    >>> round(lower, 4), round(upper, 4)
    (0.1811, 0.3344)
    >>> wilson_ci(0, 20)[0]
    0.0
    """
    x, n = np.broadcast_arrays(_as_float(x), _as_float(n))
    _check_counts(x, n, proportion=True)
    z = _z(_fraction(confidence))
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = 2 * x + z * z
        spread = z * np.sqrt(z * z + 4 * x * (1 - x / n))
        denominator = 2 * (n + z * z)
        lower = (centre - spread) / denominator
        upper = (centre + spread) / denominator
    lower = np.where(x == 0, 0.0, lower)
    upper = np.where(x == n, 1.0, upper)
    return _out(lower), _out(upper)


def byars_ci(x, confidence: float = 0.95, method: str = "auto"):
    """Confidence interval for a count of events (a Poisson count).

    ``method="auto"`` (the default) is the rule of PHEindicatormethods ``phe_rate``: the exact
    Poisson interval for counts under 10 and Byar's approximation for 10 or more.

    * Exact: lower = ``chi2.ppf(alpha/2, 2x) / 2`` (0 when ``x == 0``),
      upper = ``chi2.ppf(1 - alpha/2, 2x + 2) / 2``.
    * Byar's: lower = ``x (1 - 1/(9x) - z/(3 sqrt(x)))^3``,
      upper = ``(x+1) (1 - 1/(9(x+1)) + z/(3 sqrt(x+1)))^3``.

    ``method="byars"`` applies Byar's formula to every count, as the PHEindicatormethods
    helpers ``byars_lower``/``byars_upper`` do: where the formula gives a negative lower limit
    (a count of 1 at 99.8%) there is no lower limit and NaN is returned, and a count of 0 has
    no Byar's lower limit either. ``method="exact"`` uses the exact interval for every count.

    Parameters
    ----------
    x : float or array-like
        Observed counts (missing gives NaN).
    confidence : float, default 0.95
        Confidence level, as a fraction or a percentage.
    method : {"auto", "byars", "exact"}

    Returns
    -------
    lower, upper : float or numpy.ndarray
        Limits for the expected count. Divide by the denominator for a rate.

    Examples
    --------
    >>> lower, upper = byars_ci(0)            # exact: upper limit is ln(40)
    >>> lower, round(upper, 4)
    (0.0, 3.6889)
    >>> [round(v, 2) for v in byars_ci(100)]  # Byar's
    [81.36, 121.63]
    """
    if method not in ("auto", "byars", "exact"):
        raise ValueError("method must be 'auto', 'byars' or 'exact'")
    x = _as_float(x)
    if np.any(x < 0):
        raise ValueError("observed events must all be greater than or equal to zero")
    conf = _fraction(confidence)
    z = _z(conf)
    alpha = 1 - conf
    with np.errstate(invalid="ignore", divide="ignore"):
        b_lower = x * (1 - 1 / (9 * x) - z / (3 * np.sqrt(x))) ** 3
        b_upper = (x + 1) * (1 - 1 / (9 * (x + 1)) + z / (3 * np.sqrt(x + 1))) ** 3
        b_lower = np.where(b_lower < 0, np.nan, b_lower)
        e_lower = np.where(x == 0, 0.0, _st.chi2.ppf(alpha / 2, 2 * x) / 2)
        e_upper = _st.chi2.ppf(1 - alpha / 2, 2 * x + 2) / 2
    if method == "byars":
        lower, upper = b_lower, b_upper
    elif method == "exact":
        lower, upper = e_lower, e_upper
    else:
        small = x < BYARS_MIN_COUNT
        lower = np.where(small, e_lower, b_lower)
        upper = np.where(small, e_upper, b_upper)
    return _out(np.asarray(lower, dtype=float)), _out(np.asarray(upper, dtype=float))


def proportion(
    df: pd.DataFrame,
    x: str,
    n: str,
    confidence: float | Sequence[float] = (0.95, 0.998),
    multiplier: float = 1,
    by: str | list[str] | None = None,
) -> pd.DataFrame:
    """Proportions with Wilson confidence limits, as PHEindicatormethods ``phe_proportion``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit.
    x, n : str
        Columns holding numerators and denominators. A missing value gives missing results.
    confidence : float or sequence of float, default (0.95, 0.998)
        One or more confidence levels.
    multiplier : float, default 1
        1 for a proportion, 100 for a percentage.
    by : str or list of str, optional
        Group columns. When given, numerators and denominators are first summed within each
        group (as ``phe_proportion`` does for a grouped data frame); a missing value in a
        group makes its sum missing.

    Returns
    -------
    pandas.DataFrame
        The input (or the group sums) with ``value``, ``lower<level>cl`` and
        ``upper<level>cl`` for each level (e.g. ``lower95_0cl``), ``confidence``,
        ``statistic`` ("proportion of 1" or "percentage") and ``method`` ("Wilson").

    Examples
    --------
    >>> df = pd.DataFrame({"area": ["A", "B"], "x": [30, 5], "n": [120, 50]})
    >>> out = proportion(df, "x", "n", confidence=0.95, multiplier=100)
    >>> out["value"].tolist()
    [25.0, 10.0]
    >>> out[["lower95_0cl", "upper95_0cl"]].round(2).iloc[0].tolist()
    [18.11, 33.44]
    """
    levels = _levels(confidence)
    data = _aggregate(df, x, n, by)
    xs, ns = _as_float(data[x]), _as_float(data[n])
    _check_counts(xs, ns, proportion=True)
    data["value"] = xs / ns * multiplier
    for level in levels:
        lower, upper = wilson_ci(xs, ns, level)
        data[f"lower{_label(level)}cl"] = np.asarray(lower) * multiplier
        data[f"upper{_label(level)}cl"] = np.asarray(upper) * multiplier
    data["confidence"] = _percent_text(levels)
    data["statistic"] = (
        "percentage" if multiplier == 100 else f"proportion of {_number(multiplier)}"
    )
    data["method"] = "Wilson"
    return data


def rate(
    df: pd.DataFrame,
    x: str,
    n: str,
    confidence: float | Sequence[float] = (0.95, 0.998),
    multiplier: float = 100_000,
    by: str | list[str] | None = None,
) -> pd.DataFrame:
    """Crude rates with confidence limits, as PHEindicatormethods ``phe_rate``.

    The limits are exact Poisson limits when the count is under 10 (``method`` "Exact") and
    Byar's limits otherwise ("Byars"); see :func:`byars_ci`. A numerator above its
    denominator is allowed (for example, several admissions per person).

    Parameters
    ----------
    df : pandas.DataFrame
    x, n : str
        Columns holding counts and denominators (person-years or populations).
    confidence : float or sequence of float, default (0.95, 0.998)
    multiplier : float, default 100000
        Rate per this many.
    by : str or list of str, optional
        Group columns; counts and denominators are summed within groups first (see
        :func:`proportion`).

    Returns
    -------
    pandas.DataFrame
        The input (or group sums) with ``value``, limit columns per confidence level,
        ``confidence``, ``statistic`` ("rate per 100000") and ``method`` ("Exact" or
        "Byars"; missing where the count is missing, as in ``phe_rate``).

    Examples
    --------
    >>> df = pd.DataFrame({"x": [0, 250], "n": [5000, 220]})
    >>> out = rate(df, "x", "n", confidence=0.95, multiplier=1000)
    >>> out["method"].tolist()
    ['Exact', 'Byars']
    >>> round(float(out.loc[0, "upper95_0cl"]), 4)  # ln(40) / 5000 * 1000
    0.7378
    """
    levels = _levels(confidence)
    data = _aggregate(df, x, n, by)
    xs, ns = _as_float(data[x]), _as_float(data[n])
    _check_counts(xs, ns, proportion=False)
    data["value"] = xs / ns * multiplier
    for level in levels:
        lower, upper = byars_ci(xs, level, method="auto")
        data[f"lower{_label(level)}cl"] = np.asarray(lower) / ns * multiplier
        data[f"upper{_label(level)}cl"] = np.asarray(upper) / ns * multiplier
    data["confidence"] = _percent_text(levels)
    data["statistic"] = f"rate per {_number(multiplier)}"
    method = np.where(xs < BYARS_MIN_COUNT, "Exact", "Byars").astype(object)
    method[np.isnan(xs)] = None
    data["method"] = method
    return data


# --------------------------------------------------------------------------------------------
# indirect standardisation
# --------------------------------------------------------------------------------------------


def indirectly_standardised_ratio(
    observed, expected, confidence: float | Sequence[float] = 0.95
) -> pd.DataFrame:
    """Indirectly standardised ratio (observed / expected) with limits, as ``calculate_ISRatio``.

    **Method** (PHEindicatormethods ``calculate_ISRatio``; Breslow & Day 1987; Armitage &
    Berry 2002). The ratio is ``O / E``. The observed count ``O`` is taken as Poisson and the
    expected count ``E`` as fixed, so the limits are limits for the count divided by ``E``:

    * ``O`` under 10: exact Poisson limits from the chi-squared distribution,
      lower = ``chi2.ppf(alpha/2, 2 O) / 2 / E`` (0 when ``O`` is 0),
      upper = ``chi2.ppf(1 - alpha/2, 2 O + 2) / 2 / E``;
    * ``O`` of 10 or more: Byar's approximation (see :func:`byars_ci`) divided by ``E``.

    A ratio of 1 means the group had as many events as the reference rates predict for its
    age (and sex) mix; 1.2 means 20% more. Use :func:`expected_counts` to get ``E`` from the
    service's own age-specific rates.

    Parameters
    ----------
    observed : float or array-like
        Observed counts (whole numbers, 0 or more). A pandas Series keeps its index.
    expected : float or array-like
        Expected counts (greater than 0), broadcast against ``observed``.
    confidence : float or sequence of float, default 0.95
        One level (0.95, 0.998, or a percentage) or several, e.g. ``(0.95, 0.998)``.

    Returns
    -------
    pandas.DataFrame
        ``observed``, ``expected``, ``ratio``, then ``lower`` and ``upper`` for one level, or
        ``lower95_0cl``, ``upper95_0cl``, ``lower99_8cl``... for several (as
        ``calculate_ISRatio`` names them), and ``method`` ("Exact" or "Byars"). A missing
        count gives missing results.

    Raises
    ------
    ValueError
        If a count is negative or an expected count is not greater than 0.

    Examples
    --------
    >>> out = indirectly_standardised_ratio([5, 120], [10.0, 100.0])
    >>> out["ratio"].tolist(), out["method"].tolist()
    ([0.5, 1.2], ['Exact', 'Byars'])
    >>> out[["lower", "upper"]].round(4).iloc[0].tolist()  # chi2 limits of 5, over 10
    [0.1623, 1.1668]
    >>> list(indirectly_standardised_ratio(5, 10.0, (0.95, 0.998)).columns[3:7])
    ['lower95_0cl', 'upper95_0cl', 'lower99_8cl', 'upper99_8cl']
    """
    index = observed.index if isinstance(observed, pd.Series) else None
    obs, exp = np.broadcast_arrays(_as_float(observed), _as_float(expected))
    obs, exp = np.atleast_1d(obs), np.atleast_1d(exp)
    if np.any(obs < 0):
        raise ValueError("observed counts must be greater than or equal to zero")
    if np.any(exp <= 0):
        raise ValueError("expected counts must be greater than zero")
    levels = _levels(confidence)
    out = pd.DataFrame({"observed": obs, "expected": exp, "ratio": obs / exp}, index=index)
    for level in levels:
        lower, upper = byars_ci(obs, level, method="auto")
        suffix = ("", "") if len(levels) == 1 else (f"{_label(level)}cl",) * 2
        out[f"lower{suffix[0]}"] = np.asarray(lower) / exp
        out[f"upper{suffix[1]}"] = np.asarray(upper) / exp
    method = np.where(obs < BYARS_MIN_COUNT, "Exact", "Byars").astype(object)
    method[np.isnan(obs)] = None
    out["method"] = method
    return out


def expected_counts(
    observed: pd.DataFrame,
    population: pd.DataFrame,
    group: str = "group",
    strata: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each group's expected count from the service's own age(-sex)-specific rates.

    **Method** (indirect standardisation; Breslow & Day 1987, as used for PHE indirectly
    standardised ratios). For each stratum ``s`` (age band, or age band and sex) the
    reference rate is the service's count in that stratum over the catchment population in
    it, summed across all groups: ``r_s = sum_g O_gs / sum_g P_gs``. A group's expected
    count is what those rates give for its own population mix, ``E_g = sum_s P_gs r_s``,
    and its observed count is ``O_g = sum_s O_gs``. Because the reference is the catchment
    itself, the expected counts add up to the observed total, and ``O_g / E_g`` (see
    :func:`indirectly_standardised_ratio`) says whether a group (an IMD quintile, an ethnic
    group, an area) uses the service more or less than its age mix predicts.

    Parameters
    ----------
    observed : pandas.DataFrame
        The service's counts, one row per group and stratum, with columns ``group``, the
        strata columns and ``count``. Rows for the same group and stratum are added up; a
        group and stratum with no row counts as 0.
    population : pandas.DataFrame
        The catchment population with columns ``group``, the strata columns and
        ``population``, for every group and stratum.
    group : str, default "group"
        The column naming the group in both frames.
    strata : str or sequence of str, optional
        Columns to standardise over. By default ``age_band``, plus ``sex`` when both frames
        have a ``sex`` column.

    Returns
    -------
    pandas.DataFrame
        One row per group (in the order of ``population``) with ``group``, ``observed``,
        ``expected`` and ``population``.

    Raises
    ------
    ValueError
        If a column is missing, a count or population is negative or missing, or
        ``observed`` has a group and stratum that ``population`` lacks (or whose population
        is 0). Rows of unknown group must be dropped (or given a group) before the call, so
        that counts and population cover the same people.

    Examples
    --------
    Two areas; the service sees 1 in 100 young and 1 in 10 old people overall, so the
    older area A is expected to have more contacts.

    >>> pop = pd.DataFrame({"group": ["A", "A", "B", "B"], "age_band": ["young", "old"] * 2,
    ...                     "population": [100, 100, 300, 100]})
    >>> obs = pd.DataFrame({"group": ["A", "A", "B", "B"], "age_band": ["young", "old"] * 2,
    ...                     "count": [1, 14, 3, 6]})
    >>> expected_counts(obs, pop)[["group", "observed", "expected"]].values.tolist()
    [['A', 15, 11.0], ['B', 9, 13.0]]
    """
    if strata is None:
        both_have_sex = "sex" in observed.columns and "sex" in population.columns
        strata = ["age_band", "sex"] if both_have_sex else ["age_band"]
    strata = [strata] if isinstance(strata, str) else list(strata)
    keys = [group, *strata]
    for frame, value, name in (
        (observed, "count", "observed"),
        (population, "population", "population"),
    ):
        missing = [c for c in [*keys, value] if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} needs the column(s) {', '.join(missing)}")
        if np.any(~(_as_float(frame[value]) >= 0)):
            raise ValueError(f"every {value} in {name} must be a number of 0 or more")
        if frame[keys].isna().any().any():
            raise ValueError(f"{name} has rows with a missing {' or '.join(keys)}")

    def total(frame, value):
        return frame.groupby(keys, sort=False, observed=True, as_index=False)[value].sum()

    pop, obs = total(population, "population"), total(observed, "count")
    check = obs.merge(pop[pop["population"] > 0], on=keys, how="left", indicator=True)
    unknown = check.loc[check["_merge"] == "left_only", keys]
    if len(unknown):
        example = ", ".join(f"{k}={v!r}" for k, v in unknown.iloc[0].items())
        raise ValueError(
            f"observed has counts in {len(unknown)} group and stratum combination(s) with no "
            f"population, for example {example}"
        )
    rows = pop.merge(obs, on=keys, how="left").fillna({"count": 0})
    stratum = rows.groupby(strata, observed=True)[["count", "population"]].transform("sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (stratum["count"] / stratum["population"]).fillna(0.0)
    rows["expected"] = rows["population"] * rate
    out = rows.groupby(group, sort=False, observed=True)[["count", "expected", "population"]].sum()
    return out.rename(columns={"count": "observed"}).reset_index()


# --------------------------------------------------------------------------------------------
# slope and relative index of inequality
# --------------------------------------------------------------------------------------------


def _transform(values: np.ndarray, value_type: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if value_type == 1:
            return np.log(values)
        if value_type == 2:
            return np.log(values / (1 - values))
    return values


def _back_transform(values: np.ndarray, value_type: int) -> np.ndarray:
    if value_type == 1:
        return np.exp(values)
    if value_type == 2:
        return 1 / (1 + np.exp(-values))
    return values


def _relative_rank(population: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Population shares ``a`` and the mid-point of each quantile's cumulative share ``b``."""
    share = population / population.sum()
    return share, np.cumsum(share) - share / 2


def sii(
    df: pd.DataFrame,
    value: str | None = None,
    lower: str | None = None,
    upper: str | None = None,
    *,
    population: str,
    quantile: str,
    se: str | None = None,
    x: str | None = None,
    n: str | None = None,
    value_type: int = 0,
    multiplier: float = 1,
    repetitions: int = 100_000,
    confidence: float | Sequence[float] = 0.95,
    rii: bool = True,
    seed: int | None = 1,
) -> pd.DataFrame:
    """Slope index of inequality (SII) and relative index of inequality (RII), as ``phe_sii``.

    **Method** (Low & Low 2004; PHEindicatormethods ``phe_sii``). The rows are sorted by
    ``quantile`` ascending, so quantile 1 must be the *most deprived* (IMD decile 1). Each
    quantile gets a population share ``a`` and a relative rank ``b``, the mid-point of its
    range in the cumulative population (so ``b`` runs from near 0, most deprived, to near 1,
    least deprived). The quantile values ``y`` are regressed on ``b`` by least squares with
    weights ``a`` (``phe_sii`` fits ``y sqrt(a) ~ sqrt(a) + b sqrt(a)`` without an intercept,
    which is the same fit). The SII is the slope times ``multiplier``; the intercept is the
    fitted value at ``b = 0``; ``RII = (intercept + slope) / intercept``.

    **Sign convention.** With quantile 1 = most deprived, the SII is the fitted value at the
    *least* deprived end minus the fitted value at the *most* deprived end, and the RII is
    their ratio (least / most deprived). So an indicator that is higher in deprived areas
    (emergency admissions, obesity) has a negative SII and an RII below 1; life expectancy
    has a positive SII. A negative ``multiplier`` flips the SII and inverts the RII, as in
    ``phe_sii``, to express a gap as a positive number.

    **Confidence limits** by simulation, as ``phe_sii`` (with ``transform = FALSE``): for
    each repetition a value is drawn for every quantile from a normal distribution with the
    quantile's (transformed) value as mean and its standard error as sd, transformed back
    (``exp`` for rates, inverse logit for proportions), and the regression refitted. The
    limits are the simulated SIIs (RIIs) at sorted positions ``round(R (1 - c))`` and
    ``round(R c)`` with ``c = confidence + (1 - confidence) / 2``, 1-based, as in ``phe_sii``.
    Draws come from ``numpy.random.default_rng(seed)``, so results are reproducible but are
    not the same random numbers as R's.

    **Standard errors.** Taken from ``se`` when given, used as is (for ``value_type`` 1 and 2
    ``phe_sii`` also uses a supplied SE as the SE of the log or logit value). Otherwise from
    the 95% limits ``lower`` and ``upper``, which are first log- (rates, ``value_type=1``) or
    logit-transformed (proportions, ``value_type=2``): ``se = (t(upper) - t(lower)) / (2 *
    1.959964)``; the limits are always read as 95% limits, as ``phe_sii`` does. When neither
    is given but counts ``x`` are (an extension of ``phe_sii``, which needs limits or an SE),
    the value is ``x / n`` and 95% limits are computed first, Wilson for proportions and
    exact/Byar's (:func:`byars_ci`) for rates, then used exactly as supplied limits would be.
    A rate from counts is per person: set ``multiplier`` (e.g. 100000) to scale the SII.

    Not implemented from ``phe_sii``: grouped data (call once per area), the ``transform``
    option (regression on the log or logit scale) and ``reliability_stat``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per quantile (5 to 100 quantiles) for one area.
    value : str, optional
        Column with the indicator value (proportions between 0 and 1 for ``value_type=2``).
        May be omitted when ``x`` is given.
    lower, upper : str, optional
        Columns with the 95% confidence limits of ``value``.
    population : str
        Column with each quantile's population (all positive).
    quantile : str
        Column with the quantile number, 1 = most deprived.
    se : str, optional
        Column with standard errors.
    x, n : str, optional
        Columns with numerators and denominators (``n`` defaults to ``population``).
    value_type : {0, 1, 2}
        0 other indicator (no transformation), 1 rate (log), 2 proportion (logit).
    multiplier : float, default 1
        Multiplies the SII and its limits (e.g. 100 for percentage points).
    repetitions : int, default 100000
    confidence : float or sequence of float, default 0.95
    rii : bool, default True
        Also return the RII and its limits.
    seed : int or None, default 1

    Returns
    -------
    pandas.DataFrame
        One row: ``sii``, ``sii_lower<level>cl``, ``sii_upper<level>cl``, then (if ``rii``)
        ``rii`` and its limits, ``intercept`` (fitted value at the most deprived end, in the
        units of ``value`` times ``abs(multiplier)``), ``indicator_type``, ``multiplier``,
        ``confidence`` and ``method``.

    Examples
    --------
    A straight-line gradient, 1 point per decile, equal populations: ranks run 0.05 to 0.95,
    so the slope over the whole rank range is (30 - 12) / 0.9 = 20.

    >>> deciles = pd.DataFrame({"decile": range(1, 11), "pop": 1000,
    ...                         "value": [10.0 + 2 * d for d in range(1, 11)], "se": 0.5})
    >>> out = sii(deciles, "value", population="pop", quantile="decile", se="se",
    ...           repetitions=2000)
    >>> out[["sii", "rii", "intercept"]].round(6).iloc[0].tolist()  # RII = 31 / 11
    [20.0, 2.818182, 11.0]
    """
    if value_type not in _VALUE_TYPES:
        raise ValueError("value_type must be 0 (other), 1 (rate) or 2 (proportion)")
    levels = _levels(confidence)
    if value is None and x is None:
        raise ValueError("sii needs a value column, or x (and n) for a proportion or rate")
    if se is None and (lower is None or upper is None) and x is None:
        raise ValueError("sii needs lower and upper confidence limits, a se column, or x and n")

    data = df.sort_values(quantile, kind="stable").reset_index(drop=True)
    if data[quantile].duplicated().any():
        raise ValueError("each quantile must appear once: pass one area at a time")
    k = len(data)
    if not 5 <= k <= 100:
        raise ValueError(f"the number of quantiles must be between 5 and 100, got {k}")
    if k > 10:
        logger.warning("SII from %d quantiles: small counts can make the SII unstable", k)

    pop = _as_float(data[population])
    if np.any(~(pop > 0)):
        raise ValueError("every quantile needs a positive population")

    counts = denominators = None
    if x is not None:
        counts = _as_float(data[x])
        denominators = _as_float(data[n]) if n is not None else pop
    if value is not None:
        y = _as_float(data[value])
    elif value_type == 0:
        raise ValueError("x and n can give the value only for rates (1) or proportions (2)")
    else:
        y = counts / denominators

    if se is not None:
        se_t = _as_float(data[se])
    else:
        if lower is not None and upper is not None:
            lo, hi = _as_float(data[lower]), _as_float(data[upper])
        elif value_type == 2:
            lo, hi = (np.asarray(v) for v in wilson_ci(counts, denominators, 0.95))
        elif value_type == 1:
            lo, hi = (np.asarray(v) / denominators for v in byars_ci(counts, 0.95))
        else:
            raise ValueError("for value_type 0 give lower and upper limits or a se column")
        se_t = (_transform(hi, value_type) - _transform(lo, value_type)) / (2 * _Z95)
    y_t = _transform(y, value_type)
    if not (np.all(np.isfinite(y_t)) and np.all(np.isfinite(se_t)) and np.all(se_t >= 0)):
        raise ValueError(
            "every quantile needs a value and a non-negative standard error; rates must be "
            "positive and proportions (and their limits) strictly between 0 and 1"
        )

    share, rank = _relative_rank(pop)
    root = np.sqrt(share)
    design = np.column_stack([root, rank * root])  # phe_sii: y sqrt(a) ~ sqrt(a) + b sqrt(a)
    solver = np.linalg.solve(design.T @ design, design.T)  # 2 x k
    intercept, slope = solver @ (root * y)

    def _rii(b0, b1):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (b0 + b1) / b0
        return 1 / ratio if multiplier < 0 else ratio

    rng = np.random.default_rng(seed)
    draws = rng.normal(y_t[:, None], se_t[:, None], size=(k, repetitions))
    params = solver @ (_back_transform(draws, value_type) * root[:, None])
    sim_sii = np.sort(multiplier * params[1])
    sim_rii = np.sort(_rii(params[0], params[1])) if rii else None

    row: dict[str, object] = {"sii": multiplier * slope}
    positions = []
    for level in levels:
        critical = level + (1 - level) / 2
        pos_lower = int(np.rint(repetitions * (1 - critical)))
        pos_upper = int(np.rint(repetitions * critical))
        if pos_lower < 1:
            raise ValueError(f"{repetitions} repetitions are too few for {level:.1%} limits")
        positions.append((level, pos_lower - 1, pos_upper - 1))
        row[f"sii_lower{_label(level)}cl"] = sim_sii[pos_lower - 1]
        row[f"sii_upper{_label(level)}cl"] = sim_sii[pos_upper - 1]
    if rii:
        row["rii"] = _rii(intercept, slope)
        for level, i_lower, i_upper in positions:
            row[f"rii_lower{_label(level)}cl"] = sim_rii[i_lower]
            row[f"rii_upper{_label(level)}cl"] = sim_rii[i_upper]
    row["intercept"] = intercept * abs(multiplier)
    row["indicator_type"] = _VALUE_TYPES[value_type]
    row["multiplier"] = multiplier
    row["confidence"] = _percent_text(levels)
    row["method"] = f"simulation {repetitions} reps"
    return pd.DataFrame([row])


# --------------------------------------------------------------------------------------------
# funnel plots
# --------------------------------------------------------------------------------------------


def funnel_limits(
    baseline_p: float,
    n,
    confidence: float | Sequence[float] = (0.95, 0.998),
    multiplier: float = 1,
    tau2: float = 0.0,
) -> pd.DataFrame:
    """Funnel-plot control limits for a proportion, as ``calculate_funnel_limits``.

    At each denominator ``n`` the lower limit is the observed proportion whose Wilson
    upper limit at ``n`` is exactly the baseline ``B``, and the upper limit the proportion
    whose Wilson lower limit is ``B``. The Wilson limits are the two roots in ``pi`` of
    ``n (p - pi)^2 = z^2 pi (1 - pi)``; putting ``pi = B`` and solving for ``p`` gives the
    closed form used here::

        B -/+ z * sqrt(B (1 - B) / n)

    which is what the longer quadratic expression in PHEindicatormethods
    (``sigma_adjustment``, Fingertips technical guidance) simplifies to. Limits are clipped
    to [0, 1] (then multiplied), as upstream clips them at 0 and 100%.

    With a between-unit variance ``tau2`` (from :func:`overdispersion`) the limits are
    Spiegelhalter's (2005) additive random-effects limits on the proportion scale,
    ``B -/+ z * sqrt(B (1 - B) / n + tau2)``, also clipped to [0, 1]. The default
    ``tau2 = 0`` gives the ordinary limits above.

    Parameters
    ----------
    baseline_p : float
        Baseline proportion (between 0 and 1), usually ``sum(x) / sum(n)``.
    n : float or array-like
        Denominators at which to draw the limits.
    confidence : float or sequence of float, default (0.95, 0.998)
    multiplier : float, default 1
        100 to draw the funnel in percentages.
    tau2 : float, default 0
        Between-unit variance to add (on the proportion scale, 0 or more).

    Returns
    -------
    pandas.DataFrame
        Columns ``n``, ``baseline`` and ``lower<level>cl`` / ``upper<level>cl`` per level.

    Examples
    --------
    >>> limits = funnel_limits(0.5, [100], confidence=0.95)
    >>> limits[["lower95_0cl", "upper95_0cl"]].round(4).iloc[0].tolist()
    [0.402, 0.598]
    """
    b = float(baseline_p)
    if not 0 <= b <= 1:
        raise ValueError("baseline_p must be a proportion between 0 and 1")
    ns = np.atleast_1d(_as_float(n))
    if np.any(ns <= 0):
        raise ValueError("denominators must be greater than zero")
    if not tau2 >= 0:
        raise ValueError("tau2 must be 0 or more")
    out = pd.DataFrame({"n": ns, "baseline": b * multiplier})
    for level in _levels(confidence):
        half = _z(level) * np.sqrt(b * (1 - b) / ns + tau2)
        out[f"lower{_label(level)}cl"] = np.clip(b - half, 0, 1) * multiplier
        out[f"upper{_label(level)}cl"] = np.clip(b + half, 0, 1) * multiplier
    return out


def funnel_points(
    df: pd.DataFrame,
    x: str,
    n: str,
    baseline: float | None = None,
    confidence: float | Sequence[float] = (0.95, 0.998),
    multiplier: float = 1,
    overdispersed: bool = False,
) -> pd.DataFrame:
    """Place each unit on a proportion funnel plot, as ``calculate_funnel_points``.

    A unit is *below* (*above*) a limit when its proportion is strictly below (above) the
    lower (upper) limit at its own denominator (see :func:`funnel_limits`); the widest
    limit it crosses is reported, as ``assign_funnel_significance`` does.

    With ``overdispersed=True`` the limits are widened for real between-unit variation:
    ``tau2`` is estimated from these units by :func:`overdispersion` (Spiegelhalter 2005,
    proportion scale) and passed to :func:`funnel_limits`; the estimate is logged.

    Parameters
    ----------
    df : pandas.DataFrame
    x, n : str
        Numerator and denominator columns.
    baseline : float, optional
        Baseline proportion; by default ``sum(x) / sum(n)`` over the rows with both present.
    confidence : float or sequence of float, default (0.95, 0.998)
    multiplier : float, default 1
    overdispersed : bool, default False
        Use over-dispersion-adjusted limits (see above).

    Returns
    -------
    pandas.DataFrame
        The input with ``value``, ``baseline``, the limit columns and ``funnel_position``:
        "within", "above 95%", "above 99.8%", "below 95%" or "below 99.8%" (missing when a
        count is missing).

    Examples
    --------
    >>> df = pd.DataFrame({"x": [50, 80, 20], "n": [100, 100, 100]})
    >>> funnel_points(df, "x", "n")["funnel_position"].tolist()
    ['within', 'above 99.8%', 'below 99.8%']
    """
    xs, ns = _as_float(df[x]), _as_float(df[n])
    _check_counts(xs, ns, proportion=True)
    both = ~(np.isnan(xs) | np.isnan(ns))
    if baseline is None:
        baseline = xs[both].sum() / ns[both].sum()
    levels = sorted(_levels(confidence), reverse=True)  # widest first
    tau2 = 0.0
    if overdispersed:
        estimate = overdispersion(xs, ns, baseline, confidence=levels)
        tau2 = estimate["tau2"]
        logger.info("Funnel over-dispersion: phi %.3f, tau2 %.3g", estimate["phi"], tau2)
    limits = funnel_limits(baseline, np.where(both, ns, 1.0), levels, tau2=tau2)
    out = df.copy()
    p = xs / ns
    out["value"] = p * multiplier
    out["baseline"] = baseline * multiplier
    conditions, labels = [], []
    for side in ("below", "above"):
        for level in levels:
            column = f"{'lower' if side == 'below' else 'upper'}{_label(level)}cl"
            limit = limits[column].to_numpy()
            conditions.append(p < limit if side == "below" else p > limit)
            labels.append(f"{side} {_number(level * 100)}%")
    for level in levels:
        for side in ("lower", "upper"):
            column = f"{side}{_label(level)}cl"
            out[column] = np.where(both, limits[column].to_numpy() * multiplier, np.nan)
    position = np.select(conditions, labels, default="within").astype(object)
    position[~both] = None
    out["funnel_position"] = position
    return out


#: Spiegelhalter (2005) winsorises z-scores at the 10th and 90th percentiles.
OVERDISPERSION_TRIM = 0.1


def overdispersion(
    x,
    n,
    baseline: float | None = None,
    confidence: float | Sequence[float] = (0.95, 0.998),
    trim: float = OVERDISPERSION_TRIM,
) -> dict:
    """Over-dispersion of proportions: Spiegelhalter's additive random-effects method.

    A funnel plot expects units to differ only by chance. When real differences between
    units (case mix, coding, catchment) are common, many units fall outside the limits and
    the plot loses its use. Spiegelhalter (2005) widens the limits by a between-unit
    variance ``tau^2`` estimated robustly from the data. Steps, for ``k`` units with
    proportions ``p_i = x_i / n_i`` and baseline ``p0`` (by default ``sum(x) / sum(n)``):

    1. within-unit variance at the baseline, ``s_i^2 = p0 (1 - p0) / n_i``, and z-score
       ``z_i = (p_i - p0) / s_i``;
    2. winsorise: z-scores below the 10th percentile of the ``z_i`` are set to it, and above
       the 90th to it (percentiles interpolated linearly, as R's default ``quantile``);
    3. dispersion ratio ``phi = sum(z_w^2) / k`` (well above 1 when units vary for real);
    4. with weights ``w_i = 1 / s_i^2``::

           tau^2 = (k phi - (k - 1)) / (sum(w) - sum(w^2) / sum(w))

       set to 0 when ``k phi <= k - 1`` (``phi <= (k - 1) / k``: not over-dispersed).
       Winsorising shrinks the largest z-scores, so with no extra variation ``phi`` is
       about 0.68 rather than 1 and ``tau^2`` is then 0; FunnelPlotR does the same;
    5. limits ``p0 -/+ z sqrt(s^2 + tau^2)`` at each ``n``, clipped to [0, 1] (see
       :func:`funnel_limits` with ``tau2``).

    **Scale.** Everything here is on the proportion scale. With ``tau^2 = 0`` the limits
    are then exactly this module's ordinary funnel limits, the closed form of the
    PHEindicatormethods (Fingertips) Wilson-based limits, so switching the adjustment on
    changes only the over-dispersion part. FunnelPlotR (NHS-R, ``data_type = "PR"``)
    instead works on the arcsine square-root scale, ``y = asin(sqrt(p))`` with
    ``s = 1 / (2 sqrt(n))``, a variance-stabilising scale that behaves better when
    proportions are near 0 or 1 or counts are small; its ``phi`` and limits differ a
    little from these.

    Parameters
    ----------
    x, n : array-like
        Numerators and denominators of each unit. Units with either missing are left out of
        the estimate and get missing z-scores and limits.
    baseline : float, optional
        Baseline proportion; by default ``sum(x) / sum(n)`` over the complete units.
    confidence : float or sequence of float, default (0.95, 0.998)
        Levels for the table of limits.
    trim : float, default 0.1
        Share winsorised at each end.

    Returns
    -------
    dict
        ``baseline``, ``phi``, ``tau2``, ``k`` (units used), ``overdispersed`` (True when
        ``tau2 > 0``) and ``limits``: a DataFrame with one row per unit, in input order,
        holding ``n``, ``value`` (the proportion), ``z``, ``z_winsorised`` and the adjusted
        ``lower<level>cl`` / ``upper<level>cl``. For a smooth funnel call
        ``funnel_limits(result["baseline"], grid, tau2=result["tau2"])``.

    Raises
    ------
    ValueError
        For fewer than 2 complete units, counts that are not proportions, or a baseline of
        0 or 1 (no variation to measure).

    References
    ----------
    Spiegelhalter DJ (2005). Handling over-dispersion of performance indicators. Qual Saf
    Health Care 14:347-351. Spiegelhalter DJ (2005). Funnel plots for comparing
    institutional performance. Stat Med 24:1185-1202.

    Examples
    --------
    Four units of 100 with 10%, 20%, 30% and 40% are far more spread than chance allows:

    >>> result = overdispersion([10, 20, 30, 40], [100] * 4)
    >>> round(result["phi"], 3), round(result["tau2"], 5)
    (4.507, 0.00939)
    >>> round(float(result["limits"].loc[0, "upper95_0cl"]), 3)  # 0.25 + 1.96 * 0.1061
    0.458
    """
    xs, ns = np.broadcast_arrays(_as_float(x), _as_float(n))
    xs, ns = np.atleast_1d(xs), np.atleast_1d(ns)
    _check_counts(xs, ns, proportion=True)
    used = ~(np.isnan(xs) | np.isnan(ns))
    k = int(used.sum())
    if k < 2:
        raise ValueError("over-dispersion needs at least 2 units with a numerator and denominator")
    p0 = xs[used].sum() / ns[used].sum() if baseline is None else float(baseline)
    if not 0 < p0 < 1:
        raise ValueError("the baseline proportion must be strictly between 0 and 1")
    s2 = p0 * (1 - p0) / ns
    z = (xs / ns - p0) / np.sqrt(s2)
    low, high = np.quantile(z[used], [trim, 1 - trim])
    z_w = np.clip(z, low, high)
    phi = float(np.sum(z_w[used] ** 2) / k)
    w = 1 / s2[used]
    tau2 = 0.0
    if k * phi > k - 1:
        tau2 = float((k * phi - (k - 1)) / (w.sum() - (w**2).sum() / w.sum()))
    limits = funnel_limits(p0, np.where(used, ns, 1.0), confidence, tau2=tau2)
    limits.insert(1, "value", xs / ns)
    limits.insert(2, "z", z)
    limits.insert(3, "z_winsorised", z_w)
    limits = limits.drop(columns="baseline")
    limits.loc[~used, :] = np.nan
    return {
        "baseline": float(p0),
        "phi": phi,
        "tau2": tau2,
        "k": k,
        "overdispersed": tau2 > 0,
        "limits": limits,
    }


# --------------------------------------------------------------------------------------------
# statistical process control (Making Data Count XmR)
# --------------------------------------------------------------------------------------------


def _run_ends(flags: np.ndarray, length: int) -> np.ndarray:
    """True at i when ``flags[i - length + 1 .. i]`` are all True."""
    out = np.zeros(len(flags), dtype=bool)
    if len(flags) >= length:
        out[length - 1 :] = sliding_window_view(flags, length).all(axis=1)
    return out


def _part_of_run(ends: np.ndarray, length: int) -> np.ndarray:
    """True at j when a run of ``length`` ending at one of j .. j + length - 1 covers j."""
    padded = np.concatenate([ends, np.zeros(length - 1, dtype=bool)])
    return sliding_window_view(padded, length).any(axis=1)


def _xmr_segment(y: np.ndarray, screen_outliers: bool) -> dict[str, np.ndarray]:
    """Centre line, moving ranges and limits of one segment (NHSRplotthedots)."""
    m = len(y)
    mean = y.mean()
    mr = np.concatenate([[np.nan], np.abs(np.diff(y))])
    amr = np.nanmean(mr) if m > 1 else np.nan
    excluded = np.zeros(m, dtype=bool)
    if screen_outliers and amr > 0:
        excluded = mr >= XMR_SCREEN * amr  # NaN compares False
        amr = np.nanmean(np.where(excluded, np.nan, mr))
    near = 2 * XMR_LIMIT / 3
    full = np.full(m, 1.0)
    return {
        "mean": mean * full,
        "moving_range": mr,
        "moving_range_excluded": excluded,
        "mean_moving_range": amr * full,
        "lower_process_limit": (mean - XMR_LIMIT * amr) * full,
        "upper_process_limit": (mean + XMR_LIMIT * amr) * full,
        "lower_near_limit": (mean - near * amr) * full,
        "upper_near_limit": (mean + near * amr) * full,
    }


def _xmr_rules(y: np.ndarray, seg: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The four Making Data Count rules for one segment, as NHSRplotthedots applies them."""
    m = len(y)
    outside = (y > seg["upper_process_limit"]) | (y < seg["lower_process_limit"])
    side = np.sign(y - seg["mean"])
    close = ~outside & ((y < seg["lower_near_limit"]) | (y > seg["upper_near_limit"]))

    step = np.sign(np.diff(y))
    # a run of 7 points is 6 steps in the same direction, ending at the 7th point
    up = np.concatenate([[False], step > 0])
    down = np.concatenate([[False], step < 0])
    trend_ends = _run_ends(up, SPC_RUN - 1) | _run_ends(down, SPC_RUN - 1)
    trend = _part_of_run(trend_ends, SPC_RUN)

    above = _run_ends(side > 0, SPC_RUN)
    below = _run_ends(side < 0, SPC_RUN)
    shift = _part_of_run(above | below, SPC_RUN)

    two_of_three = np.zeros(m, dtype=bool)
    if m >= 3:
        windows_close = sliding_window_view(close, 3).sum(axis=1) >= 2
        windows_side = np.abs(sliding_window_view(side, 3).sum(axis=1)) == 3
        qualifying = np.concatenate([[False, False], windows_close & windows_side, [False] * 2])
        two_of_three = sliding_window_view(qualifying, 3).any(axis=1) & close

    # direction of a trend point: the step to its right if the next point is in the trend too
    left = np.concatenate([[0.0], step])
    right = np.concatenate([step, step[-1:] if len(step) else [0.0]])
    next_in_trend = np.concatenate([trend[1:], [False]])
    trend_direction = np.where(trend & next_in_trend, right, left)
    return {
        "outside_limits": outside,
        "trend": trend,
        "two_in_three": two_of_three,
        "shift": shift,
        "side": side,
        "trend_direction": trend_direction,
    }


def spc_xmr(
    values,
    dates=None,
    improvement_direction: str = "increase",
    screen_outliers: bool = True,
    rebase_at=None,
    target: float | None = None,
) -> pd.DataFrame:
    """XmR (individuals) chart with the Making Data Count rules, as NHSRplotthedots.

    **Limits** (per segment, see ``rebase_at``): centre line = mean of the values; moving
    ranges = absolute differences of consecutive values; when ``screen_outliers`` is True,
    moving ranges at or above 3.267 times their mean are dropped and the mean moving range
    (MR-bar) recomputed; process limits = mean +/- 2.66 MR-bar; near limits two-thirds of
    the way out, mean +/- (2/3)(2.66) MR-bar (about 2 sigma, sigma = MR-bar / 1.128).

    **Special-cause rules**, applied as NHSRplotthedots applies them:

    * ``outside_limits`` - a point strictly above the upper or below the lower process limit;
    * ``trend`` - 7 points in a row each strictly higher (or each lower) than the one
      before; all 7 points are flagged;
    * ``two_in_three`` - 2 of 3 consecutive points beyond a near limit (but inside the
      process limits) with all 3 on the same side of the mean; the points beyond the near
      limit are flagged;
    * ``shift`` - 7 points in a row on the same side of the mean (a point on the mean breaks
      the run); all 7 are flagged.

    Each special-cause point is classed by the first rule it meets in that order and by its
    side (above/below the mean, or the direction of the trend): ``point_type`` is
    "special_cause_improvement" or "special_cause_concern" given ``improvement_direction``,
    "special_cause_neutral_high"/"_low" when the direction is neutral, otherwise
    "common_cause". The variation icon is the type of the last point, with neutral high/low
    merged into "special_cause_neutral". The assurance icon, when a ``target`` is given and
    the direction is not neutral, compares the target with the latest process limits:
    "consistent_pass", "consistent_fail" or "inconsistent".

    A segment of fewer than 12 points has *trial* limits (``trial_limits`` True), which will
    move as points are added. A segment whose moving ranges are all 0 is not screened
    (NHSRplotthedots would screen every moving range out and give no limits).

    Parameters
    ----------
    values : array-like
        The measure, one value per period, with no gaps or missing values.
    dates : array-like, optional
        Period of each value; the chart is sorted by it.
    improvement_direction : {"increase", "decrease", "neutral"}
    screen_outliers : bool, default True
    rebase_at : sequence, optional
        Where new limits start: dates (if ``dates`` is given) or 0-based positions.
    target : float, optional

    Returns
    -------
    pandas.DataFrame
        One row per point with ``date`` (if given), ``value``, ``segment``, ``mean``,
        ``moving_range``, ``moving_range_excluded``, ``mean_moving_range``,
        ``lower_process_limit``, ``upper_process_limit``, ``lower_near_limit``,
        ``upper_near_limit``, the four rule flags, ``special_cause``, ``special_cause_rule``,
        ``point_type`` and ``trial_limits``. ``DataFrame.attrs`` holds ``variation_icon``,
        ``assurance`` (None without a target), ``trial_limits`` (any segment trial) and
        ``improvement_direction``.

    Examples
    --------
    >>> chart = spc_xmr([10, 12, 11, 13, 12])
    >>> round(float(chart.loc[0, "upper_process_limit"]), 2)  # 11.6 + 2.66 * 1.5
    15.59
    >>> chart.attrs["variation_icon"], chart.attrs["trial_limits"]
    ('common_cause', True)
    """
    if improvement_direction not in _DIRECTIONS:
        raise ValueError("improvement_direction must be 'increase', 'decrease' or 'neutral'")
    direction = _DIRECTIONS[improvement_direction]
    y = _as_float(values).ravel()
    if len(y) < 2:
        raise ValueError("an XmR chart needs at least 2 values")
    if np.isnan(y).any():
        raise ValueError("an XmR chart needs a value for every period (no missing values)")

    frame = pd.DataFrame({"value": y})
    if dates is not None:
        dates = pd.Series(dates).to_numpy()
        if len(dates) != len(y):
            raise ValueError("dates and values must have the same length")
        frame.insert(0, "date", dates)
        frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
        y = frame["value"].to_numpy()

    starts = np.zeros(len(y), dtype=int)
    starts[0] = 1
    for point in [] if rebase_at is None else list(rebase_at):
        if dates is not None:
            column = frame["date"]
            key = pd.Timestamp(point) if pd.api.types.is_datetime64_any_dtype(column) else point
            hits = np.flatnonzero(column.eq(key).to_numpy())
            if len(hits) == 0:
                raise ValueError(f"rebase date {point!r} is not one of the dates")
            position = int(hits[0])
        else:
            position = int(point)
            if not 0 <= position < len(y):
                raise ValueError(f"rebase position {point!r} is outside the series")
        starts[position] = 1
    segment = np.cumsum(starts)
    frame["segment"] = segment

    pieces = []
    for label in np.unique(segment):
        mask = segment == label
        part = _xmr_segment(y[mask], screen_outliers)
        part.update(_xmr_rules(y[mask], part))
        part["trial_limits"] = np.full(mask.sum(), mask.sum() < SPC_MIN_POINTS)
        pieces.append(pd.DataFrame(part, index=np.flatnonzero(mask)))
    result = pd.concat([frame, pd.concat(pieces)], axis=1)

    rules = ["outside_limits", "trend", "two_in_three", "shift"]
    flags = result[rules].to_numpy(dtype=bool)
    special = flags.any(axis=1)
    first_rule = np.array(rules, dtype=object)[flags.argmax(axis=1)]
    result["special_cause"] = special
    result["special_cause_rule"] = np.where(special, first_rule, None)
    sign = np.where(
        result["special_cause_rule"].to_numpy() == "trend",
        result.pop("trend_direction").to_numpy(),
        result.pop("side").to_numpy(),
    )
    if direction == 0:
        kinds = np.where(sign > 0, "special_cause_neutral_high", "special_cause_neutral_low")
    else:
        kinds = np.where(sign * direction > 0, "special_cause_improvement", "special_cause_concern")
    result["point_type"] = np.where(special, kinds, "common_cause")
    result["trial_limits"] = result.pop("trial_limits")  # last column

    last = result.iloc[-1]
    icon = str(last["point_type"])
    if icon.startswith("special_cause_neutral"):
        icon = "special_cause_neutral"
    assurance = None
    if target is not None and direction != 0:
        if target > last["upper_process_limit"]:
            assurance = "consistent_fail" if direction > 0 else "consistent_pass"
        elif target < last["lower_process_limit"]:
            assurance = "consistent_pass" if direction > 0 else "consistent_fail"
        else:
            assurance = "inconsistent"
    trial = bool(result["trial_limits"].any())
    if trial:
        logger.info("XmR chart has a segment of fewer than %d points: trial limits", SPC_MIN_POINTS)
    result.attrs.update(
        variation_icon=icon,
        assurance=assurance,
        trial_limits=trial,
        improvement_direction=improvement_direction,
    )
    return result


_VARIATION_TEXT = {
    "common_cause": "Common cause variation: no significant change.",
    "special_cause_improvement": "Special cause variation, improving: the latest value is "
    "unusually {side}, and {better} is better.",
    "special_cause_concern": "Special cause variation, concerning: the latest value is "
    "unusually {side}, and {better} is better.",
    "special_cause_neutral": "Special cause variation: the latest value is unusually {side} "
    "(neither higher nor lower is better).",
}
_ASSURANCE_TEXT = {
    "consistent_pass": "Consistently passing: the target is outside the process limits on the "
    "good side, so it will be met every time unless the process changes.",
    "consistent_fail": "Consistently failing: the target is outside the process limits on the "
    "bad side, so it will be missed every time unless the process changes.",
    "inconsistent": "Hit and miss: the target is within the process limits, so it will be met "
    "in some periods and missed in others.",
}


def spc_icons(chart: pd.DataFrame) -> dict:
    """The Making Data Count variation and assurance icons for the latest point, in words.

    Reads a chart made by :func:`spc_xmr`. The **variation** icon is the type of the
    latest point: "common_cause", "special_cause_improvement", "special_cause_concern"
    (which of these two follows the chart's ``improvement_direction``) or
    "special_cause_neutral" when neither direction is better. The **assurance** icon, only
    when the chart was given a target and a direction, compares the target with the latest
    process limits: "consistent_pass", "consistent_fail" or "inconsistent" (hit and miss).
    Each icon comes with a plain-text sentence for readers who cannot see the icon (NHS
    England, Making Data Count, 2019).

    Parameters
    ----------
    chart : pandas.DataFrame
        The result of :func:`spc_xmr` (with its ``attrs``).

    Returns
    -------
    dict
        ``variation``, ``variation_text``, ``assurance`` and ``assurance_text`` (both None
        without a target) and ``trial_limits``.

    Examples
    --------
    >>> chart = spc_xmr([10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 30], target=12)
    >>> icons = spc_icons(chart)
    >>> icons["variation"], icons["assurance"]
    ('special_cause_improvement', 'inconsistent')
    >>> icons["variation_text"]
    'Special cause variation, improving: the latest value is unusually high, and higher is better.'
    """
    if "point_type" not in chart.columns or "variation_icon" not in chart.attrs:
        raise ValueError("spc_icons needs a chart made by spc_xmr")
    direction = chart.attrs["improvement_direction"]
    latest = str(chart["point_type"].iloc[-1])
    variation = chart.attrs["variation_icon"]
    if direction == "neutral":
        high = latest.endswith("_high")
    else:
        high = (variation == "special_cause_improvement") == (direction == "increase")
    text = _VARIATION_TEXT[variation].format(
        side="high" if high else "low", better="higher" if direction == "increase" else "lower"
    )
    assurance = chart.attrs["assurance"]
    return {
        "variation": variation,
        "variation_text": text,
        "assurance": assurance,
        "assurance_text": None if assurance is None else _ASSURANCE_TEXT[assurance],
        "trial_limits": chart.attrs["trial_limits"],
    }


# --------------------------------------------------------------------------------------------
# local deprivation fifths
# --------------------------------------------------------------------------------------------


def local_quintiles(areas, value, population, *, most_deprived: str, groups: int = 5) -> pd.Series:
    """Re-rank a catchment's areas into population-weighted local fifths (1 = most deprived).

    National IMD quintiles can put almost all of a catchment in one or two fifths. Local
    fifths split the catchment's own population into equal parts by deprivation, so a
    service can compare its most and least deprived fifths of the people it serves.

    **Method.** Areas are sorted from most to least deprived and laid end to end by
    population. An area's place is the mid-point of its stretch of the cumulative
    population, and its fifth is ``floor(5 * mid-point / total) + 1`` (a mid-point exactly
    on a boundary goes to the less deprived fifth). Each fifth then
    holds a fifth of the population give or take part of one area (areas are not split).
    The mid-points are those of the relative rank in :func:`sii`.

    **Ties.** Areas with the same value are one block: they share the mid-point of the
    block's combined stretch, so tied areas always fall in the same fifth and the result
    does not depend on the order of the input.

    Parameters
    ----------
    areas : array-like
        Area codes (for example LSOA codes), each once.
    value : array-like
        Deprivation score (e.g. IMD score) or national rank. A missing value gives a
        missing fifth, and that area's population is left out.
    population : array-like
        Population of each area (0 or more, none missing).
    most_deprived : {"high", "low"}
        Which end of ``value`` is most deprived: "high" for an IMD score, "low" for an IMD
        rank or decile (rank 1 is the most deprived). No default, as a wrong guess would
        reverse every result.
    groups : int, default 5
        Number of groups (10 gives local deciles).

    Returns
    -------
    pandas.Series
        Nullable integers ``1 .. groups`` named ``local_quintile``, indexed by ``areas`` in
        input order.

    Examples
    --------
    >>> local_quintiles(["a", "b", "c", "d", "e"], [50, 40, 30, 20, 10], [100] * 5,
    ...                 most_deprived="high").tolist()
    [1, 2, 3, 4, 5]
    >>> local_quintiles(["a", "b", "c", "d"], [1, 2, 2, 3], [100, 300, 300, 300],
    ...                 most_deprived="low").tolist()  # the tied ranks share a fifth
    [1, 3, 3, 5]
    """
    if most_deprived not in ("high", "low"):
        raise ValueError("most_deprived must be 'high' (a score) or 'low' (a rank)")
    if int(groups) != groups or groups < 2:
        raise ValueError("groups must be a whole number of 2 or more")
    frame = pd.DataFrame(
        {"value": _as_float(value), "population": _as_float(population)},
        index=pd.Index(areas, name="area"),
    )
    if frame.index.duplicated().any():
        raise ValueError(
            f"each area must appear once; {frame.index[frame.index.duplicated()][0]!r} repeats"
        )
    if np.any(~(frame["population"] >= 0)):
        raise ValueError("every area needs a population of 0 or more")
    ranked = frame.dropna(subset=["value"])
    total = ranked["population"].sum()
    if not total > 0:
        raise ValueError("the areas with a value have no population")
    key = -ranked["value"] if most_deprived == "high" else ranked["value"]
    # population of each tie block, in order from most deprived
    block = ranked["population"].groupby(key).sum().sort_index()
    end = block.cumsum()
    middle = (end - block / 2).reindex(key).to_numpy()
    fifth = np.minimum(np.floor(groups * middle / total) + 1, groups)
    out = pd.Series(pd.NA, index=frame.index, dtype="Int64", name="local_quintile")
    out[ranked.index] = fifth.astype(int)
    return out


# --------------------------------------------------------------------------------------------
# comparing two proportions
# --------------------------------------------------------------------------------------------


def ratio_of_proportions(a, n1, b, n2, confidence: float = 0.95):
    """Ratio of two independent proportions ``(a / n1) / (b / n2)``, Katz log interval.

    Method (Katz et al. 1978): ``log`` of the ratio is taken as normal with standard error
    ``sqrt(1/a - 1/n1 + 1/b - 1/n2)``; the limits are ``ratio * exp(-/+ z se)``. This is the
    interval of ``scipy.stats.contingency.relative_risk``. It is undefined when ``a`` or
    ``b`` is 0: the limits are then NaN.

    Parameters
    ----------
    a, n1 : float or array-like
        Numerator and denominator of the first proportion.
    b, n2 : float or array-like
        Numerator and denominator of the second proportion.
    confidence : float, default 0.95

    Returns
    -------
    ratio, lower, upper : float or numpy.ndarray

    Examples
    --------
    >>> [round(v, 4) for v in ratio_of_proportions(20, 100, 10, 100)]
    [2.0, 0.9866, 4.0545]
    """
    a, n1, b, n2 = np.broadcast_arrays(*(_as_float(v) for v in (a, n1, b, n2)))
    _check_counts(a, n1, proportion=True)
    _check_counts(b, n2, proportion=True)
    z = _z(_fraction(confidence))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (a / n1) / (b / n2)
        se = np.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n2)
        lower = ratio * np.exp(-z * se)
        upper = ratio * np.exp(z * se)
    undefined = (a == 0) | (b == 0)
    lower = np.where(undefined, np.nan, lower)
    upper = np.where(undefined, np.nan, upper)
    return _out(ratio), _out(lower), _out(upper)


def representation_ratio(group_count, total_count, group_pop, total_pop, confidence=0.95):
    """Representation ratio: a group's share of activity over its share of the population.

    ``(group_count / total_count) / (group_pop / total_pop)``: 1 means the group uses the
    service in proportion to its size, below 1 under-representation. The interval is the
    Katz log interval of :func:`ratio_of_proportions`, treating the activity and population
    shares as independent proportions.

    Parameters
    ----------
    group_count, total_count : float or array-like
        The group's referrals (or other activity) and all referrals.
    group_pop, total_pop : float or array-like
        The group's population and the whole population.
    confidence : float, default 0.95

    Returns
    -------
    ratio, lower, upper : float or numpy.ndarray

    Examples
    --------
    >>> round(representation_ratio(50, 1000, 10_000, 100_000)[0], 3)
    0.5
    """
    return ratio_of_proportions(group_count, total_count, group_pop, total_pop, confidence)


def difference_of_proportions(x1, n1, x2, n2, confidence: float = 0.95):
    """Difference ``x1/n1 - x2/n2`` with Newcombe's hybrid score interval (method 10).

    Method 10 of Newcombe (1998): with ``(l1, u1)`` and ``(l2, u2)`` the Wilson intervals of
    the two proportions and ``d = p1 - p2``::

        lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)
        upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)

    Parameters
    ----------
    x1, n1, x2, n2 : float or array-like
    confidence : float, default 0.95

    Returns
    -------
    difference, lower, upper : float or numpy.ndarray

    Examples
    --------
    >>> [round(v, 4) for v in difference_of_proportions(9, 10, 3, 10)]
    [0.6, 0.1705, 0.809]
    """
    x1, n1, x2, n2 = np.broadcast_arrays(*(_as_float(v) for v in (x1, n1, x2, n2)))
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = (np.asarray(v) for v in wilson_ci(x1, n1, confidence))
    l2, u2 = (np.asarray(v) for v in wilson_ci(x2, n2, confidence))
    return _mover(p1, l1, u1, p2, l2, u2)


def _mover(t1, l1, u1, t2, l2, u2):
    """MOVER interval for ``t1 - t2`` from intervals of each (Zou & Donner 2008)."""
    d = t1 - t2
    lower = d - np.sqrt((t1 - l1) ** 2 + (u2 - t2) ** 2)
    upper = d + np.sqrt((u1 - t1) ** 2 + (t2 - l2) ** 2)
    return _out(d), _out(lower), _out(upper)


def gap_change(
    x1_before,
    n1_before,
    x2_before,
    n2_before,
    x1_after,
    n1_after,
    x2_after,
    n2_after,
    confidence: float = 0.95,
):
    """Change in a gap between two groups from a baseline period to an after period.

    The gap in each period is ``x1/n1 - x2/n2`` with its Newcombe interval
    (:func:`difference_of_proportions`). The change is ``gap_after - gap_before``, and its
    interval is the MOVER combination (Zou & Donner 2008) of the two Newcombe intervals::

        lower = c - sqrt((g_a - L_a)^2 + (U_b - g_b)^2)
        upper = c + sqrt((U_a - g_a)^2 + (g_b - L_b)^2)

    The two periods are taken as independent samples (different patients, or the same
    population counted afresh).

    Parameters
    ----------
    x1_before, n1_before, x2_before, n2_before : float or array-like
        Group 1 and group 2 counts in the baseline period.
    x1_after, n1_after, x2_after, n2_after : float or array-like
        The same in the after period.
    confidence : float, default 0.95

    Returns
    -------
    change, lower, upper : float or numpy.ndarray
        A negative change means the gap (group 1 minus group 2) has narrowed if it was
        positive at baseline.

    Examples
    --------
    >>> change, lower, upper = gap_change(60, 200, 40, 200, 50, 200, 45, 200)
    >>> round(change, 3)
    -0.075
    """
    before = difference_of_proportions(x1_before, n1_before, x2_before, n2_before, confidence)
    after = difference_of_proportions(x1_after, n1_after, x2_after, n2_after, confidence)
    gap_b, lower_b, upper_b = (np.asarray(v) for v in before)
    gap_a, lower_a, upper_a = (np.asarray(v) for v in after)
    return _mover(gap_a, lower_a, upper_a, gap_b, lower_b, upper_b)
