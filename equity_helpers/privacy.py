"""Disclosure control: hide and round small counts before anything is published.

The playbook follows NHS England's rule for sub-national Hospital Episode Statistics:

* a count of 0 is shown as 0;
* a count from 1 to the threshold (7 by default) is hidden and shown as ``*``;
* every other count is rounded to the nearest multiple of ``rounding`` (5 by default),
  halves rounded up.

Rounding cells one by one is not enough: a reader can put a rate, a label, a percentage
and a total side by side and learn about one person. So every published figure also
follows six rules.

1. **The unit is people.** A rate, percentage, mean, median, interval or chart value
   about a group is published only when the group has more people (referrals) than the
   threshold, whatever the measure counts (appointments, days, scores). The same holds
   for every cell of a two-way table. A hidden group shows ``*`` (or "hidden"), never a
   derived 0 or figure: :func:`people_publishable`, :func:`hide_small_groups`.
2. **Labels are data.** A free-text group label from the extract (religion, sexual
   orientation, marital status: fields with no NHS code list) is published only when its
   group has more people than the threshold. Smaller groups are merged into one line,
   "Other (small groups)", which is itself controlled: :func:`merge_small_groups`.
   Labels the playbook knows (NHS codes, age bands, quintiles) and field names are fine.
3. **Percentages cannot undo rounding.** Every percentage is worked out from the
   *published* (rounded) counts, and is hidden when any count it is built on is hidden:
   :func:`published_percentage`. So a percentage never says more than the counts beside
   it (400 records, 400 recorded and 99.8% recorded would give away a hidden 1; from the
   published counts it reads 100.0%). Ratios and intervals shown beside them are worked
   out from the published counts too. A table whose totals sit beside hidden cells gets
   secondary suppression (:func:`control_table`).
4. **No exact small count in words.** Sentences, data-quality notes, chart labels and
   alt text give counts of people under the same rule (:func:`count_words`). The row
   account of the extract's file rows (rows read, rows used, rows left out and why) stays
   exact: it counts lines of a file, says nothing about anyone's characteristics, and a
   service needs the exact figures to check its extract.
5. **Charts follow the tables.** Every chart point (a month, a home area, a group) is
   about people, so a point about too few people is hidden: it is not drawn, and the
   chart's data table says "hidden". Counts drawn in a chart are rounded as in a table.
   One guard does this for every chart: :func:`control_chart_data`.
6. **No rate is mostly one person.** A rate whose denominator is not people (missed
   appointments out of those offered) is published only when no single person gives more
   than half of that denominator, whatever the size of the group:
   :func:`one_person_dominates`. Otherwise one person with many appointments makes the
   rate of "Other (small groups)", a month or a home area mostly their own.

Examples
--------
>>> rule = DisclosureRule()
>>> control_counts([0, 1, 7, 8, 12, 13, 1234], rule).tolist()
[0, <NA>, <NA>, 10, 10, 15, 1235]
>>> format_count(1235), format_count(pd.NA)
('1,235', '*')
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import PlaybookError

logger = logging.getLogger("equity_helpers")

__all__ = [
    "NHS_THRESHOLD",
    "NHS_ROUNDING",
    "DEFAULT_RULE",
    "DisclosureError",
    "DisclosureConfigError",
    "DisclosureInputError",
    "DisclosureLeakError",
    "DisclosureRule",
    "ControlledTable",
    "control_counts",
    "control_table",
    "format_count",
    "neutralise_formula",
    "export_table",
    "scan_for_small_counts",
    "OTHER_SMALL_GROUPS",
    "people_publishable",
    "hide_small_groups",
    "one_person_dominates",
    "control_chart_data",
    "merge_small_groups",
    "published_percentage",
    "count_words",
    "seal_counts",
    "percent_of_published",
]

#: NHS England's threshold for sub-national HES statistics: counts 1 to 7 are hidden.
NHS_THRESHOLD = 7
#: NHS England's rounding base for sub-national HES statistics: other counts to the nearest 5.
NHS_ROUNDING = 5

_TOTAL_LABEL = "Total"
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
class DisclosureError(PlaybookError):
    """Base class for every disclosure-control error: a catalogue message, with ``detail``."""

    #: The catalogue code of the subclass's message.
    CODE = "DSC001"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(self.CODE, detail=detail)


class DisclosureConfigError(DisclosureError, ValueError):
    """A disclosure setting has a value the playbook cannot use.

    Attributes
    ----------
    key : str
        The setting, written as in the config file (for example ``"disclosure.threshold"``).
    value : object
        The value that was given.
    allowed : str
        Plain-English description of the values that are allowed.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.detail = f"'{key}' is {value!r}, which is not allowed."
        PlaybookError.__init__(self, "CFG005", key=key, value=value, allowed=allowed)


class DisclosureInputError(DisclosureError, ValueError):
    """Counts given to disclosure control are not whole numbers of 0 or more."""


class DisclosureLeakError(DisclosureError):
    """A table about to be exported still holds unprotected small counts."""

    CODE = "DSC002"


# --------------------------------------------------------------------------------------------
# The rule
# --------------------------------------------------------------------------------------------
def _check_setting(section: str, name: str, value: Any) -> None:
    key = f"{section}.{name}" if section else name
    if name == "enabled":
        if not isinstance(value, bool):
            raise DisclosureConfigError(key, value, "true or false")
        return
    low, high = (0, 100) if name == "threshold" else (1, 100)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not (low <= value <= high)
    ):
        raise DisclosureConfigError(key, value, f"a whole number from {low} to {high}")


@dataclass(frozen=True)
class DisclosureRule:
    """The small-number rule applied to every published count.

    Parameters
    ----------
    threshold : int, default 7
        Counts from 1 to ``threshold`` are hidden (shown as ``*``). 0 hides nothing.
    rounding : int, default 5
        Other counts are rounded to the nearest multiple of this (halves up). 1 means no
        rounding. A non-zero count that would round to 0 is hidden instead, so that a
        published 0 always means "none".
    enabled : bool, default True
        ``False`` turns disclosure control off: counts are shown exactly. The rule still
        says so in :meth:`describe` and :meth:`warning`, so every page can state it.

    Raises
    ------
    DisclosureConfigError
        If a value is outside the allowed range.

    Examples
    --------
    >>> DisclosureRule().describe()
    'Counts of 1 to 7 are shown as * and other counts are rounded to the nearest 5; percentages built on a hidden count are hidden too. Groups of 7 or fewer people with free-text labels are merged into "Other (small groups)", and chart points about 7 or fewer people are hidden.'
    >>> DisclosureRule(threshold=3).warning() is not None
    True
    """  # noqa: E501

    threshold: int = NHS_THRESHOLD
    rounding: int = NHS_ROUNDING
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("threshold", "rounding", "enabled"):
            _check_setting("", name, getattr(self, name))
        object.__setattr__(self, "threshold", int(self.threshold))
        object.__setattr__(self, "rounding", int(self.rounding))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, mapping: Mapping[str, Any] | None, *, section: str = "disclosure"
    ) -> DisclosureRule:
        """Build a rule from the ``disclosure`` section of a config file.

        Parameters
        ----------
        mapping : mapping or None
            Keys ``threshold``, ``rounding`` and ``enabled``; any may be left out to keep
            NHS England's default. ``None`` or ``{}`` gives the default rule.
        section : str, default "disclosure"
            Section name used when naming a bad key in the error message.

        Returns
        -------
        DisclosureRule

        Raises
        ------
        DisclosureConfigError
            Naming the key (for example ``disclosure.rounding``) and the values allowed, for
            an unknown key, a value of the wrong type or a value out of range.

        Examples
        --------
        >>> DisclosureRule.from_config({"threshold": 10})
        DisclosureRule(threshold=10, rounding=5, enabled=True)
        >>> DisclosureRule.from_config({"rounding": 0})
        Traceback (most recent call last):
        ...
        equity_helpers.privacy.DisclosureConfigError: A config setting has a value the playbook cannot use [CFG005]
          'disclosure.rounding' is 0, which is not allowed.
          What to do: Use one of: a whole number from 1 to 100.
        """  # noqa: E501
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise DisclosureConfigError(
                section, mapping, "a set of 'key: value' lines (threshold, rounding, enabled)"
            )
        allowed = ("threshold", "rounding", "enabled")
        for key in mapping:
            if key not in allowed:
                raise DisclosureConfigError(
                    f"{section}.{key}", mapping[key], "only the keys " + ", ".join(allowed)
                )
        for key in allowed:
            if key in mapping:
                _check_setting(section, key, mapping[key])
        return cls(**{key: mapping[key] for key in allowed if key in mapping})

    # -- derived facts ------------------------------------------------------------------------
    @property
    def hidden_up_to(self) -> int:
        """Largest count that is hidden: the threshold, or more if rounding would give 0."""
        # A count x rounds to 0 when 2x < rounding; such counts are hidden rather than shown
        # as 0, because a published 0 must mean "none".
        return max(self.threshold, (self.rounding - 1) // 2)

    @property
    def is_relaxed(self) -> bool:
        """True when the rule is off or weaker than NHS England's (threshold 7, rounding 5)."""
        return not self.enabled or self.threshold < NHS_THRESHOLD or self.rounding < NHS_ROUNDING

    def round_count(self, count: int) -> int:
        """Round one non-negative count to the nearest ``rounding``, halves up.

        Examples
        --------
        >>> DisclosureRule().round_count(12), DisclosureRule().round_count(13)
        (10, 15)
        """
        r = self.rounding
        return (2 * int(count) + r) // (2 * r) * r

    def possible_range(self, published: int | None) -> tuple[int, int | None]:
        """The true counts that could lie behind a published value under this rule.

        Parameters
        ----------
        published : int or None
            The published count; ``None`` (or ``pd.NA``) for a hidden one.

        Returns
        -------
        tuple of (int, int or None)
            Smallest and largest true count; the largest is ``None`` (no limit) for a
            hidden cell, because secondary suppression can hide counts of any size.

        Examples
        --------
        >>> DisclosureRule().possible_range(10), DisclosureRule().possible_range(0)
        ((8, 12), (0, 0))
        """
        if published is None or published is pd.NA:
            return (1, None)
        p = int(published)
        if not self.enabled or p == 0:
            return (p, p)
        r = self.rounding
        # x rounds to p exactly when p - r/2 <= x < p + r/2.
        low = math.ceil(Fraction(2 * p - r, 2))
        high = math.ceil(Fraction(2 * p + r, 2)) - 1
        return (max(low, self.hidden_up_to + 1), high)

    # -- words for every page -----------------------------------------------------------------
    def describe(self) -> str:
        """A plain-English sentence stating the rule, to print on every page.

        Examples
        --------
        >>> DisclosureRule(enabled=False).describe()
        'Disclosure control is off: counts are shown exactly as recorded, with nothing hidden or rounded.'
        """  # noqa: E501
        if not self.enabled:
            return (
                "Disclosure control is off: counts are shown exactly as recorded, "
                "with nothing hidden or rounded."
            )
        hidden = self.hidden_up_to
        if hidden == 0:
            first = "No counts are hidden"
        elif hidden == 1:
            first = "Counts of 1 are shown as *"
        else:
            first = f"Counts of 1 to {hidden} are shown as *"
        others = "other counts" if hidden else "counts"
        if self.rounding == 1:
            second = f"{others} are shown unrounded"
        else:
            second = f"{others} are rounded to the nearest {self.rounding}"
        joiner = " and " if hidden else "; "
        tail = "; percentages built on a hidden count are hidden too." if hidden else "."
        return f"{first}{joiner}{second}{tail}" + (f" {self.small_groups()}" if hidden else "")

    def small_groups(self) -> str:
        """The one sentence on labels and charts (rules 2 and 5), for every rule notice.

        Examples
        --------
        >>> DisclosureRule(threshold=10).small_groups()
        'Groups of 10 or fewer people with free-text labels are merged into "Other (small groups)", and chart points about 10 or fewer people are hidden.'
        """  # noqa: E501
        few = f"{self.hidden_up_to} or fewer people"
        return (
            f'Groups of {few} with free-text labels are merged into "{OTHER_SMALL_GROUPS}", '
            f"and chart points about {few} are hidden."
        )

    def warning(self) -> str | None:
        """A loud sentence when the rule is off or weaker than NHS England's, else ``None``.

        Examples
        --------
        >>> DisclosureRule().warning() is None
        True
        >>> DisclosureRule(enabled=False).warning().startswith("WARNING: disclosure control is OFF.")
        True
        """  # noqa: E501
        if not self.enabled:
            return (
                "WARNING: disclosure control is OFF. These figures include small counts that "
                "could identify people. Do not share them outside your organisation."
            )
        if not self.is_relaxed:
            return None
        weaker = []
        if self.threshold < NHS_THRESHOLD:
            weaker.append(f"only counts up to {self.hidden_up_to} are hidden (NHS rule: 1 to 7)")
        if self.rounding < NHS_ROUNDING:
            weaker.append(
                "counts are not rounded (NHS rule: nearest 5)"
                if self.rounding == 1
                else f"counts are rounded to the nearest {self.rounding} (NHS rule: nearest 5)"
            )
        return (
            "WARNING: disclosure control is weaker than NHS England's rule: "
            + " and ".join(weaker)
            + ". Small numbers could identify people. Do not share these figures outside "
            "your organisation."
        )


DEFAULT_RULE = DisclosureRule()


# --------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------
def _to_int_array(values: Any, what: str) -> np.ndarray:
    """Check ``values`` are whole numbers of 0 or more and return them as int64."""
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if series.isna().any():
        where = list(series.index[series.isna().to_numpy()])[:5]
        raise DisclosureInputError(
            f"{what} has missing values (at {where}). Disclosure control needs a count in "
            "every cell: use 0 where nothing was recorded."
        )
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        raise DisclosureInputError(
            f"{what} must hold whole-number counts; it holds {series.dtype} values such as "
            f"{series.iloc[0]!r}."
            if len(series)
            else f"{what} must hold whole-number counts."
        )
    as_float = series.to_numpy(dtype="float64")
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.floor(as_float)):
        bad = series[~(np.isfinite(as_float) & (as_float == np.floor(as_float)))]
        raise DisclosureInputError(
            f"{what} must hold whole-number counts; found {bad.iloc[0]!r}. Control the counts "
            "first and build percentages from them with published_percentage()."
        )
    if (as_float < 0).any():
        raise DisclosureInputError(f"{what} must not be negative; found {as_float.min():g}.")
    return series.to_numpy(dtype="int64")


def _control_array(counts: np.ndarray, rule: DisclosureRule) -> tuple[np.ndarray, np.ndarray]:
    """Return (published values, suppressed mask) for an int64 array."""
    if not rule.enabled:
        return counts.copy(), np.zeros(counts.shape, dtype=bool)
    r = rule.rounding
    suppressed = (counts >= 1) & (counts <= rule.hidden_up_to)
    rounded = (2 * counts + r) // (2 * r) * r
    return np.where(suppressed, 0, rounded), suppressed


def _to_int64(published: np.ndarray, suppressed: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(published.astype("int64"), suppressed.astype(bool))


def control_counts(values: Any, rule: DisclosureRule = DEFAULT_RULE) -> Any:
    """Apply the small-number rule to counts.

    Parameters
    ----------
    values : int, array-like or pandas.Series
        Unrounded counts: whole numbers of 0 or more, none missing.
    rule : DisclosureRule, default NHS England's rule

    Returns
    -------
    pandas.Series, pandas.arrays.IntegerArray or int or pandas.NA
        Nullable ``Int64`` values with ``<NA>`` where a count is hidden. A Series keeps its
        index and name; a single number gives a single value back.

    Raises
    ------
    DisclosureInputError
        For missing, negative, fractional or non-numeric counts.

    Examples
    --------
    >>> control_counts(pd.Series([0, 3, 8], name="referrals")).tolist()
    [0, <NA>, 10]
    >>> control_counts(3, DisclosureRule(enabled=False))
    3
    """
    if np.ndim(values) == 0:
        out = control_counts([values], rule)[0]
        return out if out is pd.NA else int(out)
    counts = _to_int_array(values, "The counts")
    published, suppressed = _control_array(counts, rule)
    array = _to_int64(published, suppressed)
    if isinstance(values, pd.Series):
        return pd.Series(array, index=values.index, name=values.name)
    return array


# --------------------------------------------------------------------------------------------
# Tables with secondary suppression
# --------------------------------------------------------------------------------------------
@dataclass
class ControlledTable:
    """A table after disclosure control.

    Attributes
    ----------
    values : pandas.DataFrame
        Published counts as nullable ``Int64`` with ``<NA>`` for hidden cells; columns that
        were not counts (labels) are passed through unchanged.
    suppressed : pandas.DataFrame
        ``True`` where a cell is hidden (same shape as ``values``).
    primary : pandas.DataFrame
        ``True`` where a cell is hidden because it is a small count itself; the rest of
        ``suppressed`` is secondary suppression.
    rule : DisclosureRule
    count_columns : list
        The controlled columns, including any total column.
    index_is_label : bool
        Whether the index holds row labels (and so is written out by :func:`export_table`).
    """

    values: pd.DataFrame
    suppressed: pd.DataFrame
    primary: pd.DataFrame
    rule: DisclosureRule
    count_columns: list = field(default_factory=list)
    index_is_label: bool = True

    @property
    def n_secondary(self) -> int:
        """How many cells were hidden only to protect other hidden cells."""
        return int((self.suppressed & ~self.primary).to_numpy().sum())

    def display(self) -> pd.DataFrame:
        """The table as text: ``*`` for hidden cells, thousands separators elsewhere.

        Examples
        --------
        >>> t = control_table(pd.DataFrame({"n": [3, 1234]}), ["n"])
        >>> t.display()["n"].tolist()
        ['*', '1,235']
        """
        shown = self.values.copy()
        for column in self.count_columns:
            shown[column] = [format_count(v) for v in self.values[column]]
        return shown

    def describe(self) -> str:
        """The rule's sentence, plus a note when secondary suppression hid extra cells."""
        text = self.rule.describe()
        extra = self.n_secondary
        if extra:
            cells = "count is" if extra == 1 else "counts are"
            text += (
                f" In this table {extra} more {cells} hidden so that hidden counts cannot be "
                "worked out from the totals."
            )
        return text


def _secondary_suppression(
    grid: np.ndarray, hidden: np.ndarray, lines: list, rule: DisclosureRule = DEFAULT_RULE
) -> np.ndarray:
    """Hide further cells until no line with a published total gives a hidden cell away.

    A line gives its hidden cells away when it has exactly one, or when the published total
    and cells leave room for no more than 1 in each hidden cell (two hidden 1s beside an
    exact total, when the rule does not round). ``lines`` is a list of (member cells, total
    cell) with cells as (row, column) tuples.
    """
    hidden = hidden.copy()
    published, _ = _control_array(grid, rule)
    membership: dict[tuple[int, int], list[int]] = {}
    for number, (members, _total) in enumerate(lines):
        for cell in members:
            membership.setdefault(cell, []).append(number)

    def hidden_members(number: int) -> int:
        return sum(hidden[cell] for cell in lines[number][0])

    def needs_help(number: int) -> bool:
        members, total = lines[number]
        count = hidden_members(number)
        if hidden[total] or count == 0:
            return False
        if count == 1:
            return True
        # Each hidden cell is at least 1; if the most the hidden cells can add up to is
        # their number, every one of them is pinned at 1.
        most = rule.possible_range(int(published[total]))[1]
        least_shown = sum(
            rule.possible_range(int(published[c]))[0] for c in members if not hidden[c]
        )
        return most - least_shown <= count

    while True:
        todo = [number for number in range(len(lines)) if needs_help(number)]
        if not todo:
            return hidden
        members, total = lines[todo[0]]
        candidates = [cell for cell in members if not hidden[cell] and grid[cell] > 0]
        if not candidates:
            # Every other cell is 0, so the total would give the hidden cell away: hide the
            # total as well (it belongs to a margin line, which the loop then protects).
            hidden[total] = True
            continue

        def preference(cell: tuple[int, int], this: int = todo[0]) -> tuple:
            # Smallest value first; among equals, prefer a cell that also mends a crossing
            # line with one hidden cell, then one whose crossing lines are already safe.
            crossing = [n for n in membership.get(cell, []) if n != this]
            if any(needs_help(n) for n in crossing):
                rank = 0
            elif all(hidden[lines[n][1]] or hidden_members(n) >= 2 for n in crossing):
                rank = 1
            else:
                rank = 2
            return (int(grid[cell]), rank, cell)

        hidden[min(candidates, key=preference)] = True


def _hide_exact_totals(hidden: np.ndarray, lines: list) -> np.ndarray:
    """Hide the total of every line that holds a hidden cell, when totals are not rounded.

    Without rounding a published total is exact, and totals that cross can pin hidden
    cells together (two hidden 1s in a row and a column whose totals are known). With
    every such total hidden too, each hidden cell could be one more, with its totals one
    more, so no published figure pins it down.
    """
    hidden = hidden.copy()
    changed = True
    while changed:
        changed = False
        for members, total in lines:
            if not hidden[total] and any(hidden[cell] for cell in members):
                hidden[total] = changed = True
    return hidden


def control_table(
    df: pd.DataFrame,
    count_columns: Sequence[Any],
    rule: DisclosureRule = DEFAULT_RULE,
    total_row: bool | str | None = None,
    total_column: bool | str | None = None,
    secondary: bool = True,
) -> ControlledTable:
    """Control a table of counts, adding totals and secondary suppression.

    Totals are added from the *unrounded* counts and then controlled like any other count,
    as NHS publications do (so a rounded total need not equal the sum of rounded cells).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per group; ``count_columns`` hold unrounded counts. Give the table without
        totals: they are computed here so they always match the cells.
    count_columns : sequence
        Columns holding counts. Other columns (labels) are passed through.
    rule : DisclosureRule, default NHS England's rule
    total_row : bool, str or None
        ``True`` adds a row of column totals labelled "Total"; a string gives its label.
    total_column : bool, str or None
        ``True`` adds a column of row totals named "Total"; a string gives its name.
    secondary : bool, default True
        Apply secondary suppression: while a row or column whose total is published has
        exactly one hidden cell, or hidden cells its total pins at 1 each, also hide its
        smallest remaining non-zero cell (if there is none, hide the total). Only rows and
        columns with a published total need it. When the rule does not round
        (``rounding=1``), the total of every row and column holding a hidden cell is
        hidden first, since exact totals that cross can pin hidden cells together.

    Returns
    -------
    ControlledTable

    Raises
    ------
    DisclosureInputError
        For a missing count column, a total label that is already used, or bad counts.

    Notes
    -----
    The tests check the result by attack: for each hidden cell, integer programs find the
    smallest and largest value consistent with every published cell's rounding band and
    every total, and at least two values must remain. Under NHS England's rule this holds
    on every table tried, because rounding blurs the totals. With ``rounding=1`` (no
    rounding) totals are exact, so two hidden 1s whose total is known to be 2 would be
    pinned: so every total of a line holding a hidden cell is hidden as well.

    Examples
    --------
    >>> df = pd.DataFrame({"female": [1, 8], "male": [20, 30]}, index=["Q1", "Q2"])
    >>> t = control_table(df, ["female", "male"], total_column=True)
    >>> t.display().to_dict("list")  # Q1's 20 is hidden too, to protect the 1
    {'female': ['*', '10'], 'male': ['*', '30'], 'Total': ['20', '40']}
    """
    columns = list(count_columns)
    if not columns:
        raise DisclosureInputError("control_table needs at least one count column.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DisclosureInputError(
            f"These count columns are not in the table: {missing}. "
            f"The table has: {list(df.columns)}."
        )
    counts = (
        np.column_stack(
            [_to_int_array(df[c].reset_index(drop=True), f"Column {c!r}") for c in columns]
        )
        if len(df)
        else np.zeros((0, len(columns)), dtype="int64")
    )

    row_label = _TOTAL_LABEL if total_row is True else (total_row or None)
    col_label = _TOTAL_LABEL if total_column is True else (total_column or None)
    if col_label is not None and col_label in df.columns:
        raise DisclosureInputError(
            f"The table already has a column called {col_label!r}. Give the table without "
            "totals (they are added from the unrounded counts), or choose another name."
        )
    if row_label is not None and row_label in df.index:
        raise DisclosureInputError(
            f"The table already has a row labelled {row_label!r}. Give the table without "
            "totals (they are added from the unrounded counts), or choose another label."
        )

    n_rows, n_cols = counts.shape
    grid = counts
    if col_label is not None:
        grid = np.column_stack([grid, grid.sum(axis=1)])
    if row_label is not None:
        grid = np.vstack([grid, grid.sum(axis=0, keepdims=True)])

    published, primary = _control_array(grid, rule)
    hidden = primary
    if secondary and rule.enabled:
        lines = _lines(n_rows, n_cols, row_label, col_label)
        hidden = primary
        if rule.rounding == 1:
            hidden = _hide_exact_totals(hidden, lines)
        hidden = _secondary_suppression(grid, hidden, lines, rule)
        if hidden.sum() > primary.sum():
            logger.info(
                "Secondary suppression hid %d more cell(s) to protect %d small count(s).",
                int(hidden.sum() - primary.sum()),
                int(primary.sum()),
            )

    out_columns = columns + ([col_label] if col_label is not None else [])
    values = df.copy()
    if col_label is not None:
        values[col_label] = 0
    index_is_label = not isinstance(df.index, pd.RangeIndex)
    if row_label is not None:
        labels = [c for c in df.columns if c not in out_columns]
        text_label = bool(labels) and not pd.api.types.is_numeric_dtype(df[labels[0]])
        if text_label and not index_is_label:
            # Label the total row in the first text column and keep a plain row number.
            values = values.reset_index(drop=True).reindex(range(len(df) + 1))
            values.loc[len(df), labels[0]] = row_label
        else:
            values = values.reindex(pd.Index([*values.index, row_label], tupleize_cols=False))
            index_is_label = True
    suppressed = pd.DataFrame(False, index=values.index, columns=values.columns)
    primary_frame = suppressed.copy()
    for j, column in enumerate(out_columns):
        values[column] = _to_int64(published[:, j], hidden[:, j])
        suppressed[column] = hidden[:, j]
        primary_frame[column] = primary[:, j]
    return ControlledTable(values, suppressed, primary_frame, rule, out_columns, index_is_label)


def _lines(n_rows: int, n_cols: int, row_label: Any, col_label: Any) -> list:
    """The (members, total) lines of a table whose totals sit in its last row/column."""
    lines = []
    if col_label is not None:  # each row adds up to its row total
        for i in range(n_rows):
            lines.append(([(i, j) for j in range(n_cols)], (i, n_cols)))
    if row_label is not None:  # each column adds up to its column total
        for j in range(n_cols):
            lines.append(([(i, j) for i in range(n_rows)], (n_rows, j)))
    if col_label is not None and row_label is not None:
        grand = (n_rows, n_cols)
        lines.append(([(n_rows, j) for j in range(n_cols)], grand))
        lines.append(([(i, n_cols) for i in range(n_rows)], grand))
    return lines


# --------------------------------------------------------------------------------------------
# Percentages and rates
# --------------------------------------------------------------------------------------------
def _round_half_up(value: Fraction, decimals: int) -> float:
    scale = 10**decimals
    return math.floor(value * scale + Fraction(1, 2)) / scale


# --------------------------------------------------------------------------------------------
# People, labels and published percentages
# --------------------------------------------------------------------------------------------
#: The line that free-text groups too small to name are merged into.
OTHER_SMALL_GROUPS = "Other (small groups)"


def _hide_up_to(rule: DisclosureRule) -> int:
    return rule.hidden_up_to if rule.enabled else 0


def people_publishable(people: Any, rule: DisclosureRule = DEFAULT_RULE) -> Any:
    """True where a group has enough people for figures about it to be published.

    A group of 0 people has no figures at all; a group of 1 to the threshold is hidden.

    Examples
    --------
    >>> people_publishable([0, 1, 7, 8]).tolist()
    [False, False, False, True]
    >>> bool(people_publishable(3, DisclosureRule(enabled=False)))
    True
    """
    array = np.asarray(pd.Series(np.atleast_1d(people)).fillna(0), dtype="int64")
    out = array > _hide_up_to(rule)
    return out if np.ndim(people) else bool(out[0])


def hide_small_groups(
    frame: pd.DataFrame, people: Any, columns: Iterable[Any], rule: DisclosureRule = DEFAULT_RULE
) -> pd.DataFrame:
    """Blank (NA) the given columns in every row whose group has too few people.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["A", "B"], "pct": [75.0, 20.0]})
    >>> hide_small_groups(t, [1, 40], ["pct"])["pct"].tolist()
    [nan, 20.0]
    """
    ok = people_publishable(np.asarray(people), rule)
    out = frame.copy()
    for column in columns:
        if column in out:
            out[column] = out[column].mask(~ok)
    return out


def one_person_dominates(top: Any, denominator: Any, rule: DisclosureRule = DEFAULT_RULE) -> Any:
    """True where one person gives more than half of a rate's denominator (rule 6).

    ``top`` is the largest amount any single person adds to the denominator (say, the most
    appointments offered to one person in the group); ``denominator`` is the group's total.
    Such a rate is mostly one person's, so it is not published, however many people the
    group holds. With the rule off nothing is hidden.

    Examples
    --------
    >>> one_person_dominates([40, 5, 0], [72, 72, 0]).tolist()
    [True, False, False]
    """
    top_a = np.asarray(pd.Series(np.atleast_1d(top)).fillna(0), dtype="float64")
    den_a = np.asarray(pd.Series(np.atleast_1d(denominator)).fillna(0), dtype="float64")
    out = (2 * top_a > den_a) & (den_a > 0) & rule.enabled
    return out if np.ndim(top) else bool(out[0])


def control_chart_data(
    frame: pd.DataFrame,
    rule: DisclosureRule = DEFAULT_RULE,
    *,
    people: Any = None,
    values: Iterable[Any] = (),
    counts: Iterable[Any] = (),
    top: Any = None,
    denominator: Any = None,
) -> pd.DataFrame:
    """Put a chart's data under the rule: the one guard for every chart point (rule 5).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per point (a month, an area, a group), or a two-way grid of values.
    rule : DisclosureRule
    people : column name, array-like or DataFrame, optional
        The number of people behind each point (a grid of the same shape for a two-way
        grid). A point about too few people has its ``values`` and ``counts`` hidden.
    values : columns
        Figures about the people of each point (rates, means, intervals): hidden (NaN)
        for a point about too few people, or whose rate is mostly one person's.
    counts : columns
        Counts of people drawn in the chart: put under the rule (:func:`seal_counts`).
        A point whose count is hidden has its ``values`` hidden too, and a hidden point
        has its counts hidden.
    top, denominator : column names, optional
        For a rate whose denominator is not people: the most one person adds to the
        denominator, and the denominator. A point where one person gives more than half
        is hidden (:func:`one_person_dominates`).

    Returns
    -------
    pandas.DataFrame
        A copy with hidden cells as NaN (``<NA>`` for counts), every raw column (name
        starting with ``_``) dropped, and ``attrs["hidden_points"]``: how many points
        were hidden.

    Examples
    --------
    >>> months = pd.DataFrame({"month": [1, 2], "pct": [100.0, 40.0], "_people": [1, 30]})
    >>> out = control_chart_data(months, people="_people", values=["pct"])
    >>> out["pct"].tolist(), out.attrs["hidden_points"], list(out.columns)
    ([nan, 40.0], 1, ['month', 'pct'])
    """
    out = frame.copy()
    out.attrs = dict(frame.attrs)
    if isinstance(people, pd.DataFrame):  # a two-way grid: one count of people per cell
        grid = people.reindex(index=frame.index, columns=frame.columns).fillna(0)
        few = grid.to_numpy(dtype="int64") <= _hide_up_to(rule)
        out = out.mask(few)
        out.attrs["hidden_points"] = int((few & frame.notna().to_numpy()).sum())
        return out
    hide = np.zeros(len(frame), dtype=bool)
    floats = [c for c in counts if c in out and pd.api.types.is_float_dtype(out[c])]
    for column in counts:
        if column in out:
            sealed = seal_counts(out[column], rule)
            if column in floats:  # a count drawn as a float keeps NaN for hidden
                sealed = sealed.astype(object).where(sealed.notna(), np.nan).astype(float)
            out[column] = sealed
            hide |= out[column].isna().to_numpy()  # a point whose count is hidden
    if people is not None:
        number = frame[people] if isinstance(people, str) else pd.Series(people)
        hide |= ~people_publishable(pd.to_numeric(number, errors="coerce").to_numpy(), rule)
    if top is not None and denominator is not None:
        hide |= one_person_dominates(frame[top].to_numpy(), frame[denominator].to_numpy(), rule)
    for column in values:
        if column in out:
            out[column] = out[column].mask(hide)
    for column in counts:
        if column in out and hide.any():
            out[column] = (
                out[column].mask(hide)
                if column in floats
                else out[column].astype(object).mask(hide, pd.NA)
            )
    attrs = dict(out.attrs)
    out = out[[c for c in out.columns if not str(c).startswith("_")]].copy()
    out.attrs = {**attrs, "hidden_points": int(hide.sum())}
    return out


def merge_small_groups(values: pd.Series, rule: DisclosureRule = DEFAULT_RULE) -> pd.Series:
    """Merge free-text labels held by too few people into "Other (small groups)".

    Blanks stay blank. The merged line is a group like any other, so its own figures are
    controlled in turn.

    Examples
    --------
    >>> s = pd.Series(["Jedi"] + ["Christian"] * 8 + [None])
    >>> merge_small_groups(s).value_counts().to_dict()
    {'Christian': 8, 'Other (small groups)': 1}
    """
    text = values.astype("string")
    sizes = text.value_counts()
    small = sizes.index[~people_publishable(sizes.to_numpy(), rule)]
    return text.mask(text.isin(list(small)).fillna(False), OTHER_SMALL_GROUPS)


def seal_counts(values: pd.Series, rule: DisclosureRule = DEFAULT_RULE) -> pd.Series:
    """Put a column of counts about to be published under the rule, whatever it holds.

    Controlled counts pass unchanged (the rule leaves 0, hidden cells and rounded counts
    as they are), so this is a last guard: a count that slipped through uncontrolled is
    hidden or rounded here. Cells that are not whole numbers (text, ``*``) are left alone.

    Examples
    --------
    >>> seal_counts(pd.Series([0, 3, 10, 12, None, "*"], dtype=object)).tolist()
    [0, <NA>, 10, 10, None, '*']
    """
    out = values.astype(object).copy()
    changed = False
    for key, value in values.items():
        if isinstance(value, bool | np.bool_) or value is None or value is pd.NA:
            continue
        if isinstance(value, int | np.integer) or (
            isinstance(value, float | np.floating) and float(value).is_integer()
        ):
            if value < 0:
                continue
            sealed = control_counts(int(value), rule)
            if sealed is pd.NA or sealed != value:
                out[key], changed = sealed, True
    if not changed:
        return values
    if pd.api.types.is_integer_dtype(values.dtype):
        return pd.Series(out.tolist(), index=values.index, name=values.name, dtype="Int64")
    return out


def percent_of_published(numerator: Any, denominator: Any, decimals: int = 1) -> np.ndarray:
    """Percentage of counts that are already published (``<NA>`` where hidden).

    Use it for a table that went through :func:`control_table`, whose secondary
    suppression hides more cells than the rule alone would. NaN where either count is
    hidden or the denominator is 0.

    Examples
    --------
    >>> percent_of_published(pd.array([400, pd.NA, 0], dtype="Int64"), [400, 400, 400]).tolist()
    [100.0, nan, 0.0]
    """
    nums, dens = list(numerator), list(denominator)
    out = np.full(len(nums), np.nan)
    for k, (n, d) in enumerate(zip(nums, dens, strict=True)):
        if n is pd.NA or d is pd.NA or pd.isna(n) or pd.isna(d) or d == 0:
            continue
        out[k] = _round_half_up(Fraction(int(n)) * 100 / Fraction(int(d)), decimals)
    return out


def published_percentage(
    numerator: Any, denominator: Any, rule: DisclosureRule = DEFAULT_RULE, decimals: int = 1
) -> Any:
    """Percentage of the *published* counts: it can never say more than the counts do.

    Both counts are put under the rule first; the percentage is hidden (NaN) when either
    is hidden, and undefined (NaN) when the published denominator is 0.

    Examples
    --------
    >>> published_percentage([399, 0, 5], [400, 400, 400]).tolist()
    [100.0, 0.0, nan]
    """
    scalar = np.ndim(numerator) == 0 and np.ndim(denominator) == 0
    num = control_counts(pd.Series(np.atleast_1d(numerator)).astype("int64"), rule)
    den = control_counts(pd.Series(np.atleast_1d(denominator)).astype("int64"), rule)
    out = percent_of_published(num, den, decimals)
    if scalar:
        return float(out[0])
    if isinstance(numerator, pd.Series):
        return pd.Series(out, index=numerator.index, name=numerator.name)
    return out


def count_words(count: int, rule: DisclosureRule = DEFAULT_RULE) -> str:
    """A count of people for a sentence, under the rule: never an exact small number.

    Examples
    --------
    >>> count_words(0), count_words(3), count_words(1234)
    ('0', 'a few (fewer than 8)', 'about 1,235')
    >>> count_words(3, DisclosureRule(enabled=False))
    '3'
    """
    published = control_counts(int(count), rule)
    if published is pd.NA:
        return f"a few (fewer than {_hide_up_to(rule) + 1})"
    if published == 0 or not rule.enabled or rule.rounding == 1:
        return f"{published:,}"
    return f"about {published:,}"


# --------------------------------------------------------------------------------------------
# Showing and exporting
# --------------------------------------------------------------------------------------------
def format_count(value: Any) -> str:
    """Show one published count: ``*`` if hidden, otherwise with thousands separators.

    Examples
    --------
    >>> format_count(pd.NA), format_count(0), format_count(1234)
    ('*', '0', '1,234')
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "*"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return str(value)


def neutralise_formula(value: Any) -> Any:
    """Stop a text cell being run as a formula when the file is opened in a spreadsheet.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
    apostrophe. Numbers and anything that is not text are returned unchanged.

    Examples
    --------
    >>> neutralise_formula("=HYPERLINK(1)"), neutralise_formula(-5), neutralise_formula("Q1")
    ("'=HYPERLINK(1)", -5, 'Q1')
    """
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _export_frame(table: pd.DataFrame | ControlledTable) -> pd.DataFrame:
    """Cells ready to write: '*' for hidden counts, numbers as numbers, text neutralised."""
    if isinstance(table, ControlledTable):
        frame, keep_index = table.values, table.index_is_label
    else:
        frame, keep_index = table, not isinstance(table.index, pd.RangeIndex)
    if keep_index:
        frame = frame.reset_index(names=[name or "" for name in frame.index.names])
    out = pd.DataFrame(index=range(len(frame)))
    for position, column in enumerate(frame.columns):
        cells = []
        for value in frame.iloc[:, position].tolist():
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                cells.append("*")
            elif isinstance(value, np.generic):
                cells.append(value.item())
            else:
                cells.append(neutralise_formula(value))
        out[neutralise_formula(str(column))] = cells
    return out


def export_table(
    table: pd.DataFrame | ControlledTable,
    path_csv: str | Path,
    path_xlsx: str | Path,
    rule: DisclosureRule | None = None,
    title: str = "",
    *,
    label_columns: Iterable[Any] = (),
    small_counts: str = "warn",
) -> tuple[Path, Path]:
    """Write a published table to CSV and Excel, stating the disclosure rule above it.

    The CSV starts with lines beginning ``# ``: the title, the rule's sentence and, when
    control is relaxed or off, the warning. The XLSX has the same lines in its first rows,
    then a blank row, then the table. Hidden counts are written as ``*``; every text cell
    (headers and title too) is passed through :func:`neutralise_formula`.

    Parameters
    ----------
    table : pandas.DataFrame or ControlledTable
        A controlled table, or a frame that is already safe to publish.
    path_csv, path_xlsx : str or Path
    rule : DisclosureRule, optional
        Defaults to the rule of a ControlledTable; required for a plain DataFrame.
    title : str
    label_columns : iterable, optional
        Columns of a plain DataFrame that hold labels (such as quintile 1 to 5) rather than
        counts, skipped by the small-count check.
    small_counts : {"warn", "raise", "ignore"}, default "warn"
        What to do when the rule is on and a plain DataFrame still holds whole numbers from
        1 to the threshold: log a warning naming the first cell, raise
        :class:`DisclosureLeakError`, or skip the check. The check cannot tell a count from
        another small whole number (a decile, a number of days), so it warns by default.

    Returns
    -------
    tuple of Path
        The CSV and XLSX paths.

    Raises
    ------
    DisclosureLeakError
        With ``small_counts="raise"``, if the rule is on and a plain DataFrame still holds
        whole numbers from 1 to the threshold (use :func:`control_table` first).
    DisclosureInputError
        If no rule is given for a plain DataFrame, it differs from the table's rule, or
        ``small_counts`` is not one of the three choices.

    Examples
    --------
    >>> t = control_table(pd.DataFrame({"n": [3, 40]}, index=["A", "B"]), ["n"])
    >>> export_table(t, "/tmp/t.csv", "/tmp/t.xlsx", title="Referrals")  # doctest: +SKIP
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    if small_counts not in ("warn", "raise", "ignore"):
        raise DisclosureInputError(
            f"small_counts is {small_counts!r}; use 'warn', 'raise' or 'ignore'."
        )
    if isinstance(table, ControlledTable):
        if rule is not None and rule != table.rule:
            raise DisclosureInputError(
                f"The table was controlled with {table.rule} but export_table was given {rule}."
            )
        rule = table.rule
    else:
        if rule is None:
            raise DisclosureInputError(
                "export_table needs the disclosure rule for a plain DataFrame, so the file can "
                "state it."
            )
        if rule.enabled and small_counts != "ignore":
            skip = set(label_columns)
            check = table[[c for c in table.columns if c not in skip]]
            leaks = scan_for_small_counts(check, threshold=rule.hidden_up_to)
            if len(leaks):
                first = leaks.iloc[0]
                message = (
                    f"{title or 'The table'} still holds {len(leaks)} whole number(s) from 1 "
                    f"to {rule.hidden_up_to}, for example {first['value']!r} in column "
                    f"{first['column']!r}, row {first['row']!r}. If they are counts, pass the "
                    "table through control_table first; if they are labels, list the columns "
                    "in label_columns=."
                )
                if small_counts == "raise":
                    raise DisclosureLeakError(message)
                logger.warning(message)
    header = [line for line in (title, rule.describe(), rule.warning()) if line]
    if rule.warning():
        logger.warning("Exporting %s with relaxed disclosure control.", title or "a table")
    frame = _export_frame(table)

    path_csv, path_xlsx = Path(path_csv), Path(path_xlsx)
    with path_csv.open("w", newline="", encoding="utf-8") as handle:
        for line in header:
            handle.write("# " + " ".join(line.splitlines()) + "\n")
        writer = csv.writer(handle)
        writer.writerow(list(frame.columns))
        writer.writerows(frame.itertuples(index=False, name=None))

    book = Workbook()
    sheet = book.active
    sheet.title = "Table"
    for number, line in enumerate(header, start=1):
        cell = sheet.cell(row=number, column=1, value=neutralise_formula(line))
        cell.font = Font(bold=True, color="C00000" if line.startswith("WARNING") else None)
    start = len(header) + 2
    for j, name in enumerate(frame.columns, start=1):
        sheet.cell(row=start, column=j, value=name).font = Font(bold=True)
    for i, row in enumerate(frame.itertuples(index=False, name=None), start=start + 1):
        for j, value in enumerate(row, start=1):
            cell = sheet.cell(row=i, column=j, value=value)
            if isinstance(value, float):
                cell.number_format = "0.0"  # 7.0% stays 7.0, never a bare 7 that looks like a count
    book.save(path_xlsx)
    logger.info("Wrote %s and %s.", path_csv, path_xlsx)
    return path_csv, path_xlsx


# --------------------------------------------------------------------------------------------
# Leak checks
# --------------------------------------------------------------------------------------------
_DIGITS = re.compile(r"\d{1,3}(,\d{3})*")


def scan_for_small_counts(df: pd.DataFrame, threshold: int = NHS_THRESHOLD) -> pd.DataFrame:
    """Find cells holding a whole number from 1 to ``threshold``: possible leaked counts.

    Integers (including nullable ``Int64``) and text that is just a whole number (such as
    ``"5"`` in a displayed table) are checked; floats are not, since they are usually
    percentages or rates.

    Parameters
    ----------
    df : pandas.DataFrame
    threshold : int, default 7

    Returns
    -------
    pandas.DataFrame
        Columns ``row``, ``column`` and ``value``; empty when nothing is found.

    Examples
    --------
    >>> scan_for_small_counts(pd.DataFrame({"n": [0, 5, 10], "s": ["*", "3", "1,234"]}))
       row column value
    0    1      n     5
    1    1      s     3
    """
    found = []
    for column in df.columns:
        for row, value in zip(df.index, df[column].tolist(), strict=True):
            number = None
            if isinstance(value, bool | np.bool_) or value is None or value is pd.NA:
                continue
            if isinstance(value, int | np.integer):
                number = int(value)
            elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
                number = int(value.strip().replace(",", ""))
            if number is not None and 1 <= number <= threshold:
                found.append({"row": row, "column": column, "value": value})
    return pd.DataFrame(found, columns=["row", "column", "value"])
