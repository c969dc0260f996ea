"""The analyses behind each step, as functions that return tidy, controlled tables.

Notebooks call these and narrate the results. Every count in a returned table is
already under disclosure control (see :mod:`equity_helpers.privacy`); confidence
intervals and rates are shown only where their counts are shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import codes, stats
from . import measures as measure_registry
from .config import CATEGORY_FIELDS, EQUALITY_FIELDS, YES_NO_FIELDS
from .privacy import (
    DEFAULT_RULE,
    DisclosureRule,
    control_counts,
    control_table,
    one_person_dominates,
    people_publishable,
    percent_of_published,
    published_percentage,
)
from .wording import UNKNOWN_GROUPS, first_upper, group_label, group_phrase, label

__all__ = ["group_label", "group_phrase", "label"]  # names kept here for older notebooks

_NOT_STATED_WORDS = {"not stated", "prefer not to say", "declined", "refused"}


# ----------------------------------------------------------------------------- Step 1


#: What :func:`_classify` calls each record.
_CLASSES = ["Recorded", "Not stated", "Not known", "Invalid"]


def _classes(index: pd.Index, conditions: list, names: list[str]) -> pd.Series:
    """The first class whose condition holds, else "Recorded" (numbered: no text per row)."""
    codes = np.select(conditions, [_CLASSES.index(n) for n in names], 0).astype(np.int8)
    return pd.Series(pd.Categorical.from_codes(codes, categories=_CLASSES), index=index)


def _classify(data: pd.DataFrame, field: str) -> pd.Series:
    """Each record of a field as recorded / not stated / not known / invalid."""
    s = data[field]
    if field == "ethnicity":
        return _classes(
            s.index,
            [s.eq("Z"), s.eq("99"), s.eq(codes.INVALID)],
            ["Not stated", "Not known", "Invalid"],
        )
    if field == "sex":
        return _classes(s.index, [s.eq("X"), s.eq(codes.INVALID)], ["Not known", "Invalid"])
    if field == "age_band":
        return _classes(s.index, [s.eq(codes.UNKNOWN_AGE)], ["Not known"])
    if field == "lsoa_code":
        st = data["lsoa_status"]
        return _classes(s.index, [st.eq("missing"), st.eq("invalid")], ["Not known", "Invalid"])
    text = s.astype("string").str.lower()
    return _classes(
        s.index,
        [
            s.isna().to_numpy(),
            text.isin(_NOT_STATED_WORDS).fillna(False).to_numpy(),
            s.eq(codes.INVALID).fillna(False).to_numpy(),
        ],
        ["Not known", "Not stated", "Invalid"],
    )


def monitoring_fields(data: pd.DataFrame) -> list[str]:
    """The equality-monitoring fields this extract has, in the guide's order."""
    order = [*EQUALITY_FIELDS[:3], "lsoa_code", *EQUALITY_FIELDS[3:]]
    return [f for f in order if f in data.columns]


def completeness(data: pd.DataFrame, rule: DisclosureRule) -> pd.DataFrame:
    """How completely each equality field is recorded.

    One row per field with controlled counts of records that are recorded, not stated,
    not known (blank) and invalid, and the percentages recorded and not stated or not
    known, worked out from the published counts (so they cannot give a hidden count away).
    """
    rows = []
    for field in monitoring_fields(data):
        if field == "pregnancy" and "sex" in data:
            sub = data.loc[data["sex"].eq("2"), [field]]  # one column, not a copy of all
        else:
            sub = data
        c = _classify(sub, field).value_counts()
        n = len(sub)
        rows.append(
            {
                "Field": label(field),
                "field": field,
                "Records": n,
                **{k: int(c.get(k, 0)) for k in ("Recorded", "Not stated", "Not known", "Invalid")},
            }
        )
    raw = pd.DataFrame(rows)
    parts = ["Recorded", "Not stated", "Not known", "Invalid"]
    # "Records" is the total of the four parts. Rounding blurs it enough that a hidden part
    # cannot be worked out (the tests check this); a rule that does not round needs
    # secondary suppression instead, which hides a second part beside a lone hidden one.
    table = control_table(
        raw[parts], parts, rule, total_column="Records", secondary=rule.rounding == 1
    ).values
    out = raw[["Field", "field"]].copy()
    for col in ("Records", *parts):
        out[col] = table[col].reset_index(drop=True)
    out["% recorded"] = percent_of_published(out["Recorded"], out["Records"])
    gap = out["Not stated"] + out["Not known"]
    out["% not stated or not known"] = percent_of_published(gap, out["Records"])
    return out


def quality_actions(comp: pd.DataFrame, gap_threshold: float = 10.0) -> list[str]:
    """A short action list: fields with gaps over the threshold, biggest first."""
    t = comp.dropna(subset=["% not stated or not known"]).sort_values(
        "% not stated or not known", ascending=False
    )
    actions = []
    for _, r in t.iterrows():
        gap = r["% not stated or not known"]
        if gap > gap_threshold:
            actions.append(
                f"{r['Field']}: {gap:.1f}% not stated or not known. Agree who records it, "
                "at which contact, and check the form offers every option."
            )
    invalid = (
        comp[comp["Invalid"].fillna(1).astype(float) > 0] if "Invalid" in comp else comp.iloc[0:0]
    )
    for _, r in invalid.iterrows():
        actions.append(
            f"{r['Field']}: some values are not on the NHS list. Map them in the config "
            "or correct them at source."
        )
    return actions


def completeness_by_month(data: pd.DataFrame, field: str, rule: DisclosureRule) -> pd.DataFrame:
    """Percentage of referrals each month with the field recorded."""
    cls = _classify(data, field)
    g = pd.DataFrame({"month": data["referral_month"], "ok": cls.eq("Recorded")}).groupby("month")[
        "ok"
    ]
    raw = pd.DataFrame({"referrals": g.size(), "recorded": g.sum()}).reset_index()
    raw["% recorded"] = published_percentage(raw["recorded"], raw["referrals"], rule)
    raw["Referrals"] = control_counts(raw["referrals"], rule)
    return raw[["month", "Referrals", "% recorded"]]


def recording_trend(data: pd.DataFrame, field: str, months: int = 12) -> tuple[float, float]:
    """Percentage recorded in the first and the last ``months`` months of the period."""
    cls = _classify(data, field).eq("Recorded")
    month = data["referral_month"]
    first = cls[month < month.min() + pd.DateOffset(months=months)].mean() * 100
    last = cls[month > month.max() - pd.DateOffset(months=months)].mean() * 100
    return float(first), float(last)


# ----------------------------------------------------------------------------- groups and rates


def _published(counts, rule: DisclosureRule) -> np.ndarray:
    """Published counts as whole numbers (0 where hidden: such figures are masked later)."""
    series = pd.Series(np.atleast_1d(np.asarray(counts, dtype="int64")))
    return control_counts(series, rule).fillna(0).to_numpy(dtype="int64")


def _mask_small(
    out: pd.DataFrame, x: pd.Series, n: pd.Series, rule: DisclosureRule, cols: list[str]
) -> pd.DataFrame:
    hidden = (
        control_counts(x.astype("int64"), rule).isna()
        | control_counts(n.astype("int64"), rule).isna()
    )
    for c in cols:
        out[c] = out[c].mask(hidden.to_numpy())
    return out


def group_proportion(
    data: pd.DataFrame,
    by: str,
    success: pd.Series,
    base: pd.Series | None = None,
    rule: DisclosureRule = DEFAULT_RULE,
    weights: tuple[str, str] | None = None,
    order=None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """A proportion for each group, with its Wilson interval, under disclosure control.

    Either ``success`` (a boolean Series: the event) with an optional ``base`` (boolean:
    who counts in the denominator), or ``weights`` = (numerator column, denominator
    column) summed within groups, as for missed appointments out of those offered.

    Returns columns ``group, n, x, pct, lower, upper`` (percentages) and the raw
    ``_x, _n`` for further statistics (never displayed).
    """
    df = pd.DataFrame({"group": data[by].astype("string").fillna("Not known")})
    if weights is not None:
        df["_x"] = data[weights[0]].astype("Float64")
        df["_n"] = data[weights[1]].astype("Float64")
        df = df[df["_x"].notna() & df["_n"].notna()]
    else:
        keep = (
            base.fillna(False).to_numpy(dtype=bool) if base is not None else np.ones(len(df), bool)
        )
        df = df[keep]
        df["_x"] = success[keep].fillna(False).astype(int).to_numpy()
        df["_n"] = 1
    g = df.groupby("group", observed=True)[["_x", "_n"]].sum().astype("int64")
    return _proportions(g, rule, order, confidence)


def _proportions(
    g: pd.DataFrame, rule: DisclosureRule, order=None, confidence: float = 0.95
) -> pd.DataFrame:
    """The table of :func:`group_proportion` from the sums ``_x, _n`` of each group (the index)."""
    # A group with nothing in the denominator (say, no appointments offered) has no rate.
    g = g[g["_n"] > 0]
    if order is not None:
        g = g.reindex([o for o in order if o in g.index] + [i for i in g.index if i not in order])
    g = g.reset_index()
    # Intervals from the published counts, like the percentages (rule 3 in privacy).
    px, pn = _published(g["_x"], rule), _published(g["_n"], rule)
    lo, hi = stats.wilson_ci(np.minimum(px, pn), np.maximum(pn, 1), confidence)
    out = pd.DataFrame(
        {
            "group": g["group"],
            "n": control_counts(g["_n"], rule),
            "x": control_counts(g["_x"], rule),
            "pct": published_percentage(g["_x"], g["_n"], rule),
            "lower": np.round(np.asarray(lo) * 100, 1),
            "upper": np.round(np.asarray(hi) * 100, 1),
            "_x": g["_x"],
            "_n": g["_n"],
        }
    )
    return _mask_small(out, g["_x"], g["_n"], rule, ["pct", "lower", "upper"])


def _by_group(data: pd.DataFrame, by: str, values: pd.Series, counted) -> tuple:
    """The rows with a value, grouped by their group's number; and the names of the numbers."""
    counted = counted if counted is not None else Counted(data)
    codes, labels = counted.groups(by)
    kept = values.notna().to_numpy()
    return values[kept].groupby(codes[kept]), labels.rename("group")


def _named(table: pd.DataFrame, labels: pd.Index, order) -> pd.DataFrame:
    """A table of group numbers (its index) named by ``labels``, in ``order`` (groups it does
    not name follow, as they come)."""
    table.index = labels.take(table.index.to_numpy(dtype=np.intp))
    if order is None:
        return table
    first = [o for o in order if o in table.index]
    return table.reindex(first + [i for i in table.index if i not in order])


def group_median(
    data: pd.DataFrame,
    by: str,
    value: str,
    rule: DisclosureRule,
    order=None,
    counted: Counted | None = None,
) -> pd.DataFrame:
    """Median and quartiles of a measure (such as days waited) for each group.

    ``counted`` is a :class:`Counted` of ``data`` whose groups to reuse.
    """
    g, labels = _by_group(data, by, data[value], counted)
    out = pd.DataFrame(
        {"n_raw": g.size(), "median": g.median(), "q1": g.quantile(0.25), "q3": g.quantile(0.75)}
    )
    out = _named(out, labels, order).reset_index().rename(columns={"index": "group"})
    out["n"] = control_counts(out["n_raw"].astype("int64"), rule)
    hidden = out["n"].isna()
    for c in ("median", "q1", "q3"):
        out[c] = out[c].mask(hidden).round(1)
    return out[["group", "n", "median", "q1", "q3"]]


def group_mean(
    data: pd.DataFrame,
    by: str,
    value: str,
    rule: DisclosureRule,
    order=None,
    counted: Counted | None = None,
) -> pd.DataFrame:
    """Mean of a measure for each group with a t-based 95% interval.

    ``counted`` is a :class:`Counted` of ``data`` whose groups to reuse.
    """
    from scipy import stats as st

    grouped, labels = _by_group(data, by, pd.to_numeric(data[value], errors="coerce"), counted)
    g = _named(grouped.agg(["size", "mean", "std"]), labels, order).reset_index()
    half = st.t.ppf(0.975, np.maximum(g["size"] - 1, 1)) * g["std"] / np.sqrt(g["size"])
    out = pd.DataFrame(
        {
            "group": g["group"],
            "n": control_counts(g["size"].astype("int64"), rule),
            "mean": g["mean"].round(1),
            "lower": (g["mean"] - half).round(1),
            "upper": (g["mean"] + half).round(1),
        }
    )
    hidden = out["n"].isna()
    for c in ("mean", "lower", "upper"):
        out[c] = out[c].mask(hidden)
    return out


def hide_complements(parts: list[pd.DataFrame], *, adds_up: bool = True) -> list[pd.DataFrame]:
    """Secondary suppression for tables of means or medians that split the same people
    different ways.

    Each part splits everyone with a value by one field (ethnic group, deprivation), so a
    part whose groups are all shown gives everyone's total; taking a second part's shown
    groups from that total would leave its hidden group's. So when any part hides a group,
    every part with none hidden also hides its smallest group (the first, when sizes tie).

    Medians do not add up (``adds_up=False``): only a part with one group gives everyone's
    median, and that set beside the median of everyone outside a hidden group tells on
    which side of it the hidden people lie. So only a part with one group is hidden.

    >>> a = pd.DataFrame({"group": ["x", "y"], "n": [40, None], "mean": [1.0, None]})
    >>> b = pd.DataFrame({"group": ["p", "q"], "n": [30, 15], "mean": [2.0, 3.0]})
    >>> hide_complements([a, b])[1]["mean"].tolist()
    [2.0, nan]
    >>> d = pd.DataFrame({"group": ["p"], "n": [45], "mean": [2.5]})
    >>> [p["mean"].tolist() for p in hide_complements([a, b, d], adds_up=False)[1:]]
    [[2.0, 3.0], [nan]]
    """
    if not any(p["n"].isna().any() for p in parts if len(p)):
        return parts
    out = []
    for p in parts:
        if len(p) and not p["n"].isna().any() and (adds_up or len(p) == 1):
            smallest = pd.to_numeric(p["n"]).astype(float).idxmin()
            p = p.copy()
            for c in p.columns:
                if c != "group" and pd.api.types.is_numeric_dtype(p[c]):
                    p[c] = p[c].mask(p.index == smallest)
        out.append(p)
    return out


def group_order(field: str) -> list | None:
    if field == "ethnic_group":
        return codes.BROAD_GROUPS + [codes.NOT_STATED, codes.NOT_KNOWN, codes.INVALID]
    if field == "age_group":
        return codes.CENSUS_AGE_GROUPS + [codes.UNKNOWN_AGE]
    if field == "age_band":
        return codes.AGE_BANDS + [codes.UNKNOWN_AGE]
    if field in ("imd_decile", "imd_quintile"):
        return [str(i) for i in range(1, 11)] + ["Not known"]
    if field in YES_NO_FIELDS:
        return ["Yes", "No", "Not known", codes.INVALID]
    return None


def equality_dimensions(data: pd.DataFrame) -> list[str]:
    """The fields the service can be split by, in the order the notebooks show them."""
    dims = ["ethnic_group", "imd_quintile", "age_group", "sex_label"]
    dims += [f for f in (*CATEGORY_FIELDS, *YES_NO_FIELDS) if f in data.columns and f != "accepted"]
    return [d for d in dims if d in data.columns]


# ----------------------------------------------------------------------------- Steps 1, 3, 4: who uses


def population_by(service, dimension: str) -> pd.Series:
    """The catchment's population by one dimension (from the census files in the config)."""
    c = service.catchment
    if dimension == "ethnic_group":
        return c[codes.BROAD_GROUPS].sum()
    if dimension == "age_group":
        return c[codes.CENSUS_AGE_GROUPS].sum()
    if dimension == "sex_label":
        return c[["Female", "Male"]].sum()
    if dimension in ("imd_decile", "imd_quintile"):
        total = c["total"] if "total" in c else c[codes.BROAD_GROUPS].sum(axis=1)
        s = total.groupby(c[dimension]).sum()
        s.index = s.index.astype(str)
        return s
    raise KeyError(dimension)


def representation(service, dimension: str, adults_only: bool = True) -> pd.DataFrame:
    """Share of referrals against share of the catchment population, by group.

    Referrals are those from inside the catchment with the group recorded. The
    representation ratio (share of referrals / share of population) has a Katz log
    interval (:func:`equity_helpers.stats.representation_ratio`); 1 means a group is
    referred in proportion to its population, below 1 that it is under-represented.
    """
    data = service.data
    rule = service.rule
    pop = population_by(service, dimension).astype(float)
    if adults_only and dimension == "age_group" and "age" in data:
        # A service for adults is compared with the adult population.
        served = data.loc[data["age_group"].ne(codes.UNKNOWN_AGE), "age_group"]
        if not served.eq("0-15").any():
            pop = pop.drop("0-15", errors="ignore")
    # The one column counted (filtering the whole table would copy every column).
    sub = data.loc[data["in_catchment"], dimension] if "in_catchment" in data else data[dimension]
    groups = sub.astype("string")
    counts = groups[groups.isin(pop.index)].value_counts().reindex(pop.index, fill_value=0)
    total, total_pop = counts.sum(), pop.sum()
    # Shares and ratios from the published counts, so they cannot undo the rounding.
    pub, pub_total = _published(counts, rule), int(_published([total], rule)[0])
    if total > 0 and pub_total > 0:
        ratio, lo, hi = stats.representation_ratio(pub, pub_total, pop.to_numpy(), total_pop)
    else:  # no referral has a usable value: nothing to compare (the caller says why)
        ratio = lo = hi = np.full(len(counts), np.nan)
    out = pd.DataFrame(
        {
            "group": pop.index.astype(str),
            "referrals": control_counts(counts.astype("int64").reset_index(drop=True), rule),
            "% of referrals": published_percentage(
                counts.to_numpy(), np.full(len(counts), total), rule
            ),
            "% of population": np.round(pop.to_numpy() / total_pop * 100, 1),
            "ratio": np.round(ratio, 2),
            "lower": np.round(lo, 2),
            "upper": np.round(hi, 2),
        }
    )
    hidden = out["referrals"].isna().to_numpy()
    for c in ("ratio", "lower", "upper"):
        out[c] = out[c].mask(hidden)
    out.attrs["referrals_compared"] = int(total)
    return out


#: The comparisons of Steps 1, 3 and 4: field, plain name, and the census file each needs.
REPRESENTATION_VIEWS = {
    "ethnic_group": ("ethnic group", "population_ethnicity", "census ethnic group file"),
    "age_group": ("age group", "population_age", "census age file"),
    "sex_label": ("sex", "population_sex", "census sex file"),
    "imd_quintile": ("deprivation", "population_ethnicity", "census ethnic group file"),
}


def under_represented(table: pd.DataFrame) -> pd.DataFrame:
    """Groups whose whole interval for the representation ratio sits below 1."""
    return table[table["upper"] < 1].sort_values("ratio")


# ----------------------------------------------------------------------------- Step 4: gaps


class Counted:
    """What each measure counts and each field's groups in one table, worked out once.

    A step that splits several measures by several fields (Step 4 makes some sixty such
    tables) would otherwise find the rows each measure counts, and turn each field into
    group names, once per table: on a big extract that is most of its time. Here each
    field's groups are numbered once (the groups in the order a group-by sorts them) and
    each measure's counts are found once; every table is then a sum over those numbers.
    Give one to :func:`measure`, :func:`gap_table`, :func:`credible_gaps`,
    :func:`sii_by_decile` and :func:`two_way` for the same ``data``; without one, each
    makes its own.
    """

    def __init__(self, data: pd.DataFrame):
        self.data = data
        self._counts: dict = {}
        self._groups: dict = {}
        self._people: dict = {}
        self._ones: dict = {}

    def counts(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A measure's numerator and denominator for each row it counts, and those rows' positions."""
        if name not in self._counts:
            # Counted on a view numbered by position (no copy), whatever the table's index.
            rows = self.data.set_axis(pd.RangeIndex(len(self.data)))
            x, n = measure_registry.get(name).counts(rows)
            # Kept in the smallest integer types that hold them: a big extract has many rows.
            self._counts[name] = tuple(_compact(a.to_numpy(dtype="int64")) for a in (x, n, x.index))
        return self._counts[name]

    def each_once(self, name: str) -> bool:
        """Whether every row a measure counts adds exactly 1 to its denominator (people)."""
        if name not in self._ones:
            self._ones[name] = bool((self.counts(name)[1] == 1).all())
        return self._ones[name]

    def groups(self, by) -> tuple[np.ndarray, pd.Index]:
        """Each row's group number in a field, and the group names ("Not known" for a blank)."""
        if by not in self._groups:
            names = self.data[by].astype("string").fillna("Not known")
            codes, labels = pd.factorize(names, sort=True)
            self._groups[by] = (_small_ints(codes, len(labels)), labels)
        return self._groups[by]

    def pair(self, row: str, col: str) -> tuple[str, str]:
        """Groups of two fields together, named "row group | column group"; returns their key."""
        key = (row, col)
        if key not in self._groups:
            rc, rl = self.groups(row)
            cc, cl = self.groups(col)
            both = rc.astype(np.int64) * len(cl) + cc
            seen = np.flatnonzero(np.bincount(both, minlength=len(rl) * len(cl)))
            names = pd.Index(
                pd.array([f"{rl[k // len(cl)]} | {cl[k % len(cl)]}" for k in seen], dtype=rl.dtype)
            )
            # Numbered in the order of their names, as a group-by of the joined names sorts.
            rank, labels = pd.factorize(names, sort=True)
            lookup = np.zeros(len(rl) * len(cl), dtype=np.intp)
            lookup[seen] = rank
            self._groups[key] = (_small_ints(lookup[both], len(labels)), labels)
        return key

    def people(self, name: str, by) -> pd.Series:
        """The rows a measure counts in each group of a field (0 for a group with none)."""
        if (name, by) not in self._people:
            codes, labels = self.groups(by)
            sizes = np.bincount(codes[self.counts(name)[2]], minlength=len(labels))
            self._people[(name, by)] = pd.Series(sizes.astype("int64"), index=labels)
        return self._people[(name, by)]


def _compact(values: np.ndarray) -> np.ndarray:
    """Whole numbers in the smallest integer type that holds every one of them."""
    low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    for kind in (np.int8, np.int16, np.int32):
        if np.iinfo(kind).min <= low and high <= np.iinfo(kind).max:
            return values.astype(kind)
    return values


def _small_ints(codes: np.ndarray, groups: int) -> np.ndarray:
    """Group numbers in the smallest integer type that holds them (a big table holds many)."""
    for kind in (np.int8, np.int16, np.int32):
        if groups < np.iinfo(kind).max:
            return codes.astype(kind)
    return codes.astype(np.int64)


def measure(
    data: pd.DataFrame,
    name: str,
    by,
    rule: DisclosureRule,
    order=None,
    counted: Counted | None = None,
) -> pd.DataFrame:
    """One of the standard measures (see :mod:`equity_helpers.measures`) by group.

    Returns the columns of :func:`group_proportion`, with the raw ``_people`` (people
    counted) and ``_top`` (the most one person adds to the denominator). A measure counted
    in appointments is also hidden for a group of too few people, since the rule protects
    people, and for a group where one person has more than half the appointments (rule 6
    in :mod:`equity_helpers.privacy`). ``counted`` is a :class:`Counted` of ``data`` to
    reuse.
    """
    m = measure_registry.get(name)
    order = order if order is not None else group_order(by)
    counted = counted if counted is not None else Counted(data)
    x, n, rows = counted.counts(name)
    codes, labels = counted.groups(by)
    codes = codes[rows]
    k = len(labels)
    people = np.bincount(codes, minlength=k).astype("int64")
    counted._people.setdefault((name, by), pd.Series(people, index=labels))  # for gap_table
    if counted.each_once(name):  # each row adds 1: the denominator is the people counted
        top, total = np.minimum(people, 1), people
    else:
        top = np.zeros(k, dtype=n.dtype)  # types matched: numpy's fast path, ten times faster
        np.maximum.at(top, codes.astype(np.intp), n)
        top = top.astype("int64")
        total = np.bincount(codes, weights=n, minlength=k).astype("int64")
    # Sums of whole numbers, exact as floats far beyond any extract's size.
    sums = pd.DataFrame(
        {"_x": np.bincount(codes, weights=x, minlength=k).astype("int64"), "_n": total},
        index=labels.rename("group"),
    )
    out = _proportions(sums[people > 0], rule, order)
    where = labels.get_indexer(out["group"])
    out["_people"] = people[where]
    out["_top"] = top[where]
    if m.unit != "people" and len(out):
        few = control_counts(pd.Series(out["_people"].to_numpy()), rule).isna().to_numpy().copy()
        few |= one_person_dominates(out["_top"].to_numpy(), out["_n"].to_numpy(), rule)
        for c in ("n", "x", "pct", "lower", "upper"):
            out[c] = out[c].mask(few)
    return out


def available_measures(data: pd.DataFrame) -> list[str]:
    """The measures this prepared extract has the columns for."""
    return measure_registry.available(data)


def sii_by_decile(
    data: pd.DataFrame,
    name: str,
    repetitions: int = 20_000,
    rule: DisclosureRule | None = None,
    counted: Counted | None = None,
) -> pd.DataFrame | None:
    """Slope and relative index of inequality of a measure across IMD deciles.

    Uses the service's own activity in each decile as the population weights (the
    people the measure is about), as is usual for service-level measures. With a
    ``rule``, only deciles whose rate is published under it are used, so the index says
    nothing about a decile that is hidden.
    """
    t = measure(
        data,
        name,
        "imd_decile",  # grouped by its number as text: "1" to "10"
        rule or DisclosureRule(enabled=False),
        order=[str(i) for i in range(1, 11)],
        counted=counted,
    )
    t = t[t["group"].isin([str(i) for i in range(1, 11)])]
    if rule is not None:
        t = t[t["pct"].notna()]
    return sii_of_counts(
        t["group"].astype(int),
        t["_x"],
        t["_n"],
        value_type=2,
        multiplier=100,
        repetitions=repetitions,
    )


def sii_of_counts(
    quantile: pd.Series,
    x: pd.Series,
    n: pd.Series,
    *,
    value_type: int,
    multiplier: float,
    repetitions: int,
    rii: bool = True,
) -> pd.DataFrame | None:
    """Slope index of inequality across deprivation groups, from ``x`` events among ``n``.

    ``quantile`` numbers the groups from 1, the most deprived. Each group's weight is its
    ``n``. A group with no events, or (for a proportion, ``value_type=2``) with every one
    an event, gives no usable value and is left out; with fewer than five groups left
    there is no slope to fit, and the answer is None. See :func:`stats.sii` for the method.
    """
    keep = (n > 0) & (x > 0)
    if value_type == 2:
        keep &= x < n
    if keep.sum() < 5:
        return None
    df = pd.DataFrame({"quantile": quantile[keep], "x": x[keep], "n": n[keep]})
    return stats.sii(
        df,
        x="x",
        n="n",
        population="n",
        quantile="quantile",
        value_type=value_type,
        multiplier=multiplier,
        repetitions=repetitions,
        rii=rii,
    )


def gap_table(
    data: pd.DataFrame,
    name: str,
    by: str,
    rule: DisclosureRule,
    table=None,
    counted: Counted | None = None,
) -> pd.DataFrame:
    """Each group against everyone else: the difference in a measure with its Newcombe interval.

    ``table`` is the :func:`measure` table of ``name`` by ``by`` when already worked out;
    ``counted`` a :class:`Counted` of ``data`` to reuse.
    """
    counted = counted if counted is not None else Counted(data)
    t = measure(data, name, by, rule, counted=counted) if table is None else table
    t = t[~t["group"].isin(UNKNOWN_GROUPS)]
    total_x, total_n = t["_x"].sum(), t["_n"].sum()
    # With a single group there is no "everyone else" to compare with.
    t = t[(total_n - t["_n"]) > 0]
    rest_x, rest_n = total_x - t["_x"], total_n - t["_n"]
    # Every figure from the published counts, like the percentages (rule 3 in privacy).
    px, pn = _published(t["_x"], rule), _published(t["_n"], rule)
    prx, prn = _published(rest_x, rule), _published(rest_n, rule)
    ok = (pn > 0) & (prn > 0)
    d, lo, hi = stats.difference_of_proportions(
        np.minimum(px, pn), np.maximum(pn, 1), np.minimum(prx, prn), np.maximum(prn, 1)
    )
    out = t[["group", "n", "pct"]].copy()
    out["rest pct"] = published_percentage(rest_x.to_numpy(), rest_n.to_numpy(), rule)
    out["difference"] = np.round(np.asarray(d) * 100, 1)
    out["lower"] = np.round(np.asarray(lo) * 100, 1)
    out["upper"] = np.round(np.asarray(hi) * 100, 1)
    # "Everyone else" can be a small group too (the "No" side of a yes/no field), and its
    # percentage would give its hidden counts away, so hide the comparison with it.
    rest_hidden = (
        control_counts(rest_x.astype("int64"), rule).isna()
        | control_counts(rest_n.astype("int64"), rule).isna()
    ).to_numpy()
    # "Everyone else" is about people too: hidden when too few people are left (rule 1).
    sizes = counted.people(name, by)
    known = int(sizes.drop([g for g in UNKNOWN_GROUPS if g in sizes.index]).sum())
    rest_people = known - sizes.reindex(t["group"]).fillna(0).to_numpy(dtype="int64")
    rest_hidden = rest_hidden | ~people_publishable(rest_people, rule)
    hidden = t["pct"].isna().to_numpy() | rest_hidden | ~ok
    for c in ("rest pct", "difference", "lower", "upper"):
        out[c] = out[c].mask(hidden)
    out["credible"] = (out["lower"] > 0) | (out["upper"] < 0)
    return out


def two_way(
    data: pd.DataFrame,
    name: str,
    row: str,
    col: str,
    rule: DisclosureRule,
    counted: Counted | None = None,
) -> pd.DataFrame:
    """A measure for each combination of two fields (for example ethnic group by deprivation)."""
    counted = counted if counted is not None else Counted(data)
    t = measure(data, name, counted.pair(row, col), rule, order=[], counted=counted)
    parts = t["group"].str.split(" | ", regex=False, expand=True)
    t[label(row)], t[label(col)] = parts[0], parts[1]
    wide = t.pivot(index=label(row), columns=label(col), values="pct")
    people = t.pivot(index=label(row), columns=label(col), values="_people")
    ro, co = group_order(row), group_order(col)
    if ro:
        wide = wide.reindex([r for r in ro if r in wide.index])
    if co:
        wide = wide[[c for c in co if c in wide.columns]]
    # People behind each cell, for the chart guard (raw: never shown).
    wide.attrs["people"] = people.reindex(index=wide.index, columns=wide.columns).fillna(0)
    return wide


def area_funnel(
    data: pd.DataFrame, rule: DisclosureRule, area: str = "lsoa_code", overdispersed: bool = False
) -> pd.DataFrame:
    """Missed-appointment rate by home area, placed against funnel limits.

    Areas whose missed-appointment count is hidden by disclosure control, that hold too
    few people, or where one person has more than half the appointments, are left out
    (their number is reported in ``attrs['hidden']``). Each area's rate, its place against
    the limits and the overall rate come from the published counts of the areas shown
    (rule 3 in :mod:`equity_helpers.privacy`). The raw ``_n`` (appointments offered),
    ``_people`` and ``_top`` are kept for the chart guard, which drops them.

    With ``overdispersed`` the limits are widened for real variation between areas
    (Spiegelhalter 2005), estimated from the same published counts of the areas shown;
    ``attrs['phi']`` and ``attrs['tau2']`` hold the estimate.
    """
    keep = data.get("in_catchment", True) & data[area].notna()
    df = data.loc[keep, [area, "appointments_dna", "appointments_offered"]]  # not every column
    df = df[df["appointments_offered"].notna() & df["appointments_dna"].notna()]
    grouped = df.groupby(area)
    g = grouped[["appointments_dna", "appointments_offered"]].sum().astype("int64")
    g["_people"] = grouped.size()
    g["_top"] = grouped["appointments_offered"].max().astype("int64")
    g = g[g["appointments_offered"] > 0].reset_index()
    hidden = (
        control_counts(g["appointments_dna"], rule).isna().to_numpy()
        | control_counts(g["appointments_offered"], rule).isna().to_numpy()
        | ~people_publishable(g["_people"].to_numpy(), rule)  # rule 1: people
        | one_person_dominates(g["_top"].to_numpy(), g["appointments_offered"].to_numpy(), rule)
    )
    kept = g[~hidden].reset_index(drop=True)
    published = kept.assign(
        appointments_dna=_published(kept["appointments_dna"], rule),
        appointments_offered=_published(kept["appointments_offered"], rule),
    )
    # The adjustment needs two areas or more and some variation to measure.
    adjust = (
        overdispersed
        and len(published) >= 2
        and 0 < published["appointments_dna"].sum() < published["appointments_offered"].sum()
    )
    if len(published):
        shown = stats.funnel_points(
            published,
            "appointments_dna",
            "appointments_offered",
            multiplier=100,
            overdispersed=adjust,
        )
    else:
        shown = published.assign(value=np.nan, baseline=np.nan, funnel_position=pd.NA)
    shown["offered"] = control_counts(kept["appointments_offered"], rule)
    shown["_n"] = kept["appointments_offered"].to_numpy()
    shown.attrs["hidden"] = int(hidden.sum())
    shown.attrs["baseline"] = float(shown["baseline"].iloc[0]) if len(shown) else np.nan
    if adjust:
        estimate = stats.overdispersion(
            published["appointments_dna"], published["appointments_offered"]
        )
        shown.attrs.update(phi=estimate["phi"], tau2=estimate["tau2"])
    return shown.drop(columns=["appointments_dna", "appointments_offered"])


# ----------------------------------------------------------------------------- Step 9: pathway

STAGES = ["Referred", "Accepted", "First seen", "Completed"]


def pathway(
    data: pd.DataFrame, by: str, rule: DisclosureRule, settle_days: int = 183
) -> pd.DataFrame:
    """How many of each group reach each stage, as a share of those referred.

    Only referrals received at least ``settle_days`` before the last referral in the
    data are counted, so that most have had time to finish; a referral still open is
    counted as not (yet) completed.
    """
    cutoff = data["referral_date"].max() - pd.Timedelta(days=settle_days)
    # Only the columns counted: filtering every column of a big extract costs far more.
    counted = [
        by,
        "first_appointment_date",
        "completed",
        *(["accepted"] if "accepted" in data else []),
    ]
    d = data.loc[data["referral_date"] <= cutoff, list(dict.fromkeys(counted))]
    groups = d[by].astype("string").fillna("Not known")
    stage = pd.DataFrame(
        {
            "Referred": np.ones(len(d), dtype=int),
            "Accepted": d["accepted"].eq("Yes").fillna(False).astype(int) if "accepted" in d else 1,
            "First seen": d["first_appointment_date"].notna().astype(int),
            "Completed": d["completed"].fillna(False).astype(int),
        },
        index=d.index,
    )
    raw = stage.groupby(groups).sum()
    order = group_order(by)
    if order:
        raw = raw.reindex(
            [o for o in order if o in raw.index] + [i for i in raw.index if i not in order]
        )
    rows = []
    raw = raw[raw["Referred"] > 0]
    for g, r in raw.iterrows():
        # A group of too few people shows nothing, not even a 0 (rule 1 in privacy).
        few = not people_publishable(int(r["Referred"]), rule)
        for s in STAGES:
            rows.append(
                {
                    "group": g,
                    "stage": s,
                    "people": pd.NA if few else control_counts(int(r[s]), rule),
                    "% of referred": float("nan")
                    if few
                    else float(published_percentage(int(r[s]), int(r["Referred"]), rule)),
                    "_x": int(r[s]),
                    "_n": int(r["Referred"]),
                }
            )
    # No referral old enough to follow through: an empty table with the usual columns.
    return pd.DataFrame(rows, columns=["group", "stage", "people", "% of referred", "_x", "_n"])


def biggest_drop(path: pd.DataFrame) -> pd.DataFrame:
    """For each group, the stage where the largest share of those still in the pathway is lost.

    Groups with any stage's count hidden by disclosure control are left out: a share lost
    between two stages could otherwise give away a hidden count (for example 3 accepted
    and 0 completed).
    """
    rows = []
    for g, sub in path.groupby("group", sort=False):
        sub = sub.set_index("stage")
        if "people" in sub and sub["people"].isna().any():
            continue
        losses = {}
        # From the published counts, like every other share (rule 3 in privacy).
        count = sub["people"] if "people" in sub else sub["_x"]
        for a, b in zip(STAGES[:-1], STAGES[1:], strict=True):
            if count[a] > 0:
                losses[f"{a} → {b}"] = 1 - count[b] / count[a]
        if losses and pd.notna(sub.loc["Completed", "% of referred"]):
            step = max(losses, key=losses.get)
            rows.append(
                {
                    "group": g,
                    "biggest loss": step,
                    "% lost at that step": round(losses[step] * 100, 1),
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- Steps 11-12


def focus_mask(data: pd.DataFrame, field: str, group: str) -> pd.Series:
    """Which referrals are in the focus group (``core20`` is a special field name)."""
    if field == "core20":
        return data["core20"].fillna(False).astype(bool)
    return data[field].astype("string").eq(str(group)).fillna(False)


def _x_n(data: pd.DataFrame, name: str) -> tuple[int, int]:
    return measure_registry.get(name).totals(data)


def _reading(data: pd.DataFrame, name: str, *also: str) -> pd.DataFrame:
    """Only the columns a measure's counts read (and ``also``): filtering it copies no others."""
    wanted = dict.fromkeys((*also, *measure_registry.get(name).reads))
    return data[[c for c in wanted if c in data.columns]]


def before_after(data: pd.DataFrame, name: str, focus: pd.Series, change_date) -> pd.DataFrame:
    """The measure for the focus group and everyone else, before and after the change date."""
    after = data["referral_date"] >= pd.Timestamp(change_date)
    data = _reading(data, name)
    rows = []
    for period, pm in (("Before", ~after), ("After", after)):
        for who, fm in (("Focus group", focus), ("Everyone else", ~focus)):
            sub = data[pm & fm]
            x, n = _x_n(sub, name)
            people = len(measure_registry.get(name).counts(sub)[0]) if len(sub) else 0
            rows.append({"period": period, "who": who, "_x": x, "_n": n, "_people": people})
    return pd.DataFrame(rows)


def published_before_after(table: pd.DataFrame, rule: DisclosureRule) -> pd.DataFrame:
    """The :func:`before_after` table with its counts as published, for the gaps shown."""
    return table.assign(_x=_published(table["_x"], rule), _n=_published(table["_n"], rule))


def gap_change_summary(table: pd.DataFrame) -> dict:
    """The gap (focus minus everyone else) before and after, and its change with 95% interval."""
    get = {(r["period"], r["who"]): (r["_x"], r["_n"]) for r in table.to_dict("records")}
    fb, rb = get[("Before", "Focus group")], get[("Before", "Everyone else")]
    fa, ra = get[("After", "Focus group")], get[("After", "Everyone else")]
    gb = stats.difference_of_proportions(*fb, *rb)
    ga = stats.difference_of_proportions(*fa, *ra)
    ch = stats.gap_change(*fb, *rb, *fa, *ra)
    pct = [[round(float(v) * 100, 1) for v in t] for t in (gb, ga, ch)]
    return {"gap_before": pct[0], "gap_after": pct[1], "change": pct[2]}


def monthly_rate(data: pd.DataFrame, name: str, mask: pd.Series | None = None) -> pd.DataFrame:
    """Monthly value of a measure (percent) with its numerator and denominator.

    Also the raw ``_people`` (people counted that month) and ``_top`` (the most one person
    adds to the denominator), which the chart guard uses to hide months.
    """
    d = _reading(data, name, "referral_month")
    d = d if mask is None else d[mask.to_numpy(dtype=bool)]
    m = measure_registry.get(name)
    rows = []
    for month, sub in d.groupby("referral_month"):
        x, n = m.counts(sub)
        x, n_total = int(x.sum()), int(n.sum())
        rows.append(
            {
                "month": month,
                "_x": x,
                "_n": n_total,
                "value": 100 * x / n_total if n_total else np.nan,
                "_people": len(n),
                "_top": int(n.max()) if len(n) else 0,
            }
        )
    return pd.DataFrame(rows, columns=["month", "_x", "_n", "value", "_people", "_top"])


def monthly_referrals(data: pd.DataFrame) -> pd.DataFrame:
    s = data.groupby("referral_month").size()
    return pd.DataFrame({"month": s.index, "value": s.to_numpy().astype(float)})


# ----------------------------------------------------------------------------- Steps 9-12: reading results

#: The Making Data Count variation icons in words.
VARIATION_WORDS = {
    "common_cause": "common cause",
    "special_cause_improvement": "special cause improvement",
    "special_cause_concern": "special cause concern",
    "special_cause_neutral": "special cause (neutral)",
}


def improvement_direction(name: str) -> str:
    """``"decrease"`` for measures where lower is better, else ``"increase"`` (for SPC)."""
    return measure_registry.get(name).direction


def pathway_summary(path: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per group: people at each stage, and the share who completed with its interval.

    Takes a table from :func:`pathway`. Counts are its controlled ``people``; the share
    completing (``% completed``) and its Wilson interval are hidden where the counts behind
    them are hidden. The raw ``_x, _n`` (completed, referred) are kept for further
    statistics and are never displayed.
    """
    groups = list(dict.fromkeys(path["group"]))
    people = path.pivot(index="group", columns="stage", values="people")
    people = people.reindex(index=groups, columns=STAGES)
    done = path[path["stage"].eq("Completed")].set_index("group").reindex(groups)
    # The interval from the published counts, like the percentage (rule 3 in privacy).
    px = pd.to_numeric(people["Completed"], errors="coerce").fillna(0).to_numpy(dtype="int64")
    pn = pd.to_numeric(people["Referred"], errors="coerce").fillna(0).to_numpy(dtype="int64")
    lo, hi = stats.wilson_ci(np.minimum(px, pn), np.maximum(pn, 1), confidence)
    out = pd.DataFrame({"group": groups})
    for s in STAGES:
        out[s] = pd.array(people[s].tolist(), dtype="Int64")
    out["% completed"] = done["% of referred"].to_numpy(dtype=float)
    hidden = np.isnan(out["% completed"].to_numpy())
    out["lower"] = np.where(hidden, np.nan, np.round(np.asarray(lo) * 100, 1))
    out["upper"] = np.where(hidden, np.nan, np.round(np.asarray(hi) * 100, 1))
    out["_x"] = done["_x"].to_numpy()
    out["_n"] = done["_n"].to_numpy()
    return out


def pathway_extremes(paths: dict[str, pd.DataFrame], min_referred: int = 30) -> pd.DataFrame:
    """Every named group's share completing, across several splits, lowest first.

    ``paths`` maps a field (such as ``"ethnic_group"``) to its :func:`pathway` table.
    Left out: "not known" groups, groups whose share is hidden, and groups with fewer than
    ``min_referred`` people referred, whose shares swing too much by chance to rank.
    Columns: ``field``, ``group``, ``label``, ``% completed``, ``lower``, ``upper`` and the
    group's ``biggest loss`` (the step from :func:`biggest_drop`).
    """
    rows = []
    for field, path in paths.items():
        drops = biggest_drop(path)
        drops = drops.set_index("group")["biggest loss"] if len(drops) else pd.Series(dtype=str)
        for r in pathway_summary(path).to_dict("records"):
            if r["group"] in UNKNOWN_GROUPS or np.isnan(r["% completed"]) or r["_n"] < min_referred:
                continue
            rows.append(
                {
                    "field": field,
                    "group": r["group"],
                    "label": group_label(field, r["group"]),
                    "% completed": r["% completed"],
                    "lower": r["lower"],
                    "upper": r["upper"],
                    "biggest loss": drops.get(r["group"], None),
                }
            )
    cols = ["field", "group", "label", "% completed", "lower", "upper", "biggest loss"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("% completed", kind="stable").reset_index(drop=True)


def before_after_table(table: pd.DataFrame, name: str, rule: DisclosureRule) -> pd.DataFrame:
    """The :func:`before_after` counts under disclosure control, ready to show."""
    m = measure_registry.get(name)
    base, event = m.denominator, m.numerator
    x, n = table["_x"].astype("int64"), table["_n"].astype("int64")
    out = pd.DataFrame(
        {
            "Period": table["period"],
            "Who": table["who"],
            base: control_counts(n, rule),
            event: control_counts(x, rule),
            "%": published_percentage(x.to_numpy(), n.to_numpy(), rule),
        }
    )
    if "_people" in table:  # too few people: nothing shown, whatever the unit (rule 1)
        few = ~people_publishable(table["_people"].to_numpy(), rule)
        for c in (base, event, "%"):
            out[c] = out[c].mask(few)
    return out


def gap_verdict(summary: dict) -> str:
    """ "narrowed", "widened" or "no clear change", from :func:`gap_change_summary`.

    The gap has changed only when the 95% interval of the change excludes 0; it has
    narrowed when it is then closer to 0 after the change than before.
    """
    _, lower, upper = summary["change"]
    if lower <= 0 <= upper:
        return "no clear change"
    return "narrowed" if abs(summary["gap_after"][0]) < abs(summary["gap_before"][0]) else "widened"


def controlled_spc(
    monthly: pd.DataFrame, rule: DisclosureRule, improvement_direction: str = "increase"
) -> pd.DataFrame | None:
    """An XmR chart of a monthly series, with the months whose figures are hidden left unplotted.

    ``monthly`` has ``month`` and either ``_x``, ``_n`` and ``value`` (a percentage, as
    from :func:`monthly_rate`) or just ``value`` (a count, as from :func:`monthly_referrals`).

    * A count is charted as the count rounded under the rule. Months with no referrals
      count as 0.
    * A percentage is charted as computed from the unrounded counts, as for every
      published percentage. Months with nothing in the denominator have no value and are
      left out.

    A month is hidden when its count (or either count of its percentage) is hidden under
    the rule, when it holds too few people (``_people``, if given), or when one person
    gives more than half its denominator (``_top``, if given). A hidden month is left as
    a gap: its ``value``, ``point_type``, mean and limits are NaN, and it is listed in
    ``attrs["hidden_months"]``. The mean, limits and special-cause rules use only the
    months shown: with a hidden month in them, the mean beside the months shown would give
    its value away. ``attrs`` also holds ``variation_icon``, ``variation_words`` and
    ``trial_limits`` (fewer than 12 months shown). Returns None when fewer than 2 months
    can be shown.
    """
    m = monthly.sort_values("month").reset_index(drop=True)
    if {"_x", "_n"} <= set(m.columns):
        m = m[m["_n"] > 0].reset_index(drop=True)
        values = m["value"].to_numpy(dtype=float)
        hidden = (
            control_counts(m["_x"].astype("int64"), rule).isna()
            | control_counts(m["_n"].astype("int64"), rule).isna()
        ).to_numpy()
        if "_people" in m:  # rule 1: people; rule 6: no month mostly one person's
            hidden = hidden | ~people_publishable(m["_people"].to_numpy(), rule)
        if "_top" in m:
            hidden = hidden | one_person_dominates(m["_top"].to_numpy(), m["_n"].to_numpy(), rule)
    else:
        if len(m):
            months = pd.date_range(m["month"].min(), m["month"].max(), freq="MS")
            m = (
                m.set_index("month")
                .reindex(months, fill_value=0)
                .rename_axis("month")
                .reset_index()
            )
        exact = m["value"].round().astype("int64")
        rounded = control_counts(exact, rule)
        hidden = rounded.isna().to_numpy()
        values = np.where(hidden, exact, rounded.fillna(0).astype("int64")).astype(float)
    shown = ~np.asarray(hidden, dtype=bool)
    if shown.sum() < 2:
        return None
    spc = stats.spc_xmr(values[shown], m.loc[shown, "month"], improvement_direction)
    attrs = dict(spc.attrs)
    # Hidden months come back as gaps: every figure of theirs is NaN, the mean and limits too,
    # so that nothing is shown in a row about a month of too few people.
    spc = spc.set_index("date").reindex(pd.DatetimeIndex(m["month"], name="date"))
    spc = spc.reset_index()
    spc.attrs = attrs
    spc.attrs["hidden_months"] = list(m.loc[~shown, "month"])
    spc.attrs["variation_words"] = VARIATION_WORDS.get(
        spc.attrs["variation_icon"], spc.attrs["variation_icon"]
    )
    return spc


def credible_gaps(
    data: pd.DataFrame,
    rule: DisclosureRule,
    measures=None,
    dimensions=None,
    tables=None,
    counted: Counted | None = None,
) -> pd.DataFrame:
    """Every gap bigger than chance, across measures and equality fields, largest first.

    Runs :func:`gap_table` for each measure (default: every available one) and field
    (default: :func:`equality_dimensions`) and keeps the rows whose 95% interval of the
    difference excludes 0 and whose figures are shown under the rule. For a field with
    two groups, which mirror each other, only the group doing worse is kept. Columns:
    ``measure, field, group, n, pct, rest pct, difference, lower, upper``, ``worse off``
    (the group fares worse than everyone else, given the measure's direction),
    ``nearest`` (the end of the interval nearest 0, in points), ``_people`` (people in the
    group counted by the measure; raw, never shown) and ``score`` (``nearest`` times
    ``_people``: strength of evidence times people affected). ``tables`` maps
    (measure, field) to :func:`measure` tables already worked out; ``counted`` is a
    :class:`Counted` of ``data`` to reuse.
    """
    tables = tables or {}
    counted = counted if counted is not None else Counted(data)
    parts = []
    for name in measures or available_measures(data):
        m = measure_registry.get(name)
        for field in dimensions or equality_dimensions(data):
            try:
                t = gap_table(data, name, field, rule, tables.get((name, field)), counted)
            except ValueError:  # a field with one group, or a group with no one to count
                continue
            if len(t) == 2:  # two groups mirror each other: keep the one doing worse
                t = t[[m.worse(d) for d in t["difference"].fillna(0)]]
            t = t[
                t["credible"].fillna(False).astype(bool) & t["n"].notna() & t["difference"].notna()
            ]
            sizes = counted.people(name, field)
            t = t.assign(_people=[int(sizes.get(g, 0)) for g in t["group"]])
            parts.append(t.assign(measure=name, field=field))
    cols = ["measure", "field", "group", "n", "pct", "rest pct", "difference", "lower", "upper"]
    extra = ["worse off", "nearest", "_people", "score"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols + extra})
    out = pd.concat(parts, ignore_index=True)[[*cols, "_people"]]
    diff = out["difference"].to_numpy(dtype=float)
    out["worse off"] = [
        measure_registry.get(m).worse(d) for m, d in zip(out["measure"], diff, strict=True)
    ]
    out["nearest"] = np.minimum(out["lower"].abs(), out["upper"].abs()).astype(float)
    out["score"] = out["nearest"] * out["_people"]
    order = np.argsort(-np.abs(diff), kind="stable")
    return out.iloc[order].reset_index(drop=True)[[*cols, *extra]]


def rank_for_focus(gaps: pd.DataFrame) -> pd.DataFrame:
    """Gaps where a group fares worse, ranked by strength of evidence times people affected.

    Takes :func:`credible_gaps`. A large gap in a small group can have a wide interval
    whose end nearest 0 is close to 0; a smaller gap in a large group can be far clearer
    and touch many more people. The score (the interval's end nearest 0, in points, times
    the people in the group) weighs both.
    """
    worse = gaps[gaps["worse off"].astype(bool)]
    return worse.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def gap_sentence(row) -> str:
    """A row of :func:`credible_gaps` as a plain sentence naming the group and the gap."""
    size, lo, hi = abs(row["difference"]), abs(row["lower"]), abs(row["upper"])
    lo, hi = min(lo, hi), max(lo, hi)
    phrase = measure_registry.get(row["measure"]).phrase
    return (
        f"{first_upper(group_phrase(row['field'], row['group']))}: {row['pct']:.1f}% "
        f"{phrase}, against {row['rest pct']:.1f}% for everyone else "
        f"(a gap of {size:.1f} percentage points, 95% interval {lo:.1f} to {hi:.1f})."
    )
