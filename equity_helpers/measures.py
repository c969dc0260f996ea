"""The standard pathway measures, defined once.

Each :class:`Measure` says what it counts (numerator and denominator), which way is
worse, what unit its counts are in (people or appointments, which decides how the
small-number rule protects it), which prepared columns it needs, and how it reads in
tables and sentences. The analysis functions, the steps and the notebooks all read
measures from :data:`MEASURES`, so a measure cannot mean one thing on one page and
another thing on the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


def _appointments(data: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    d = data[["appointments_dna", "appointments_offered"]].dropna()
    return d["appointments_dna"].astype("int64"), d["appointments_offered"].astype("int64")


def _finished(data: pd.DataFrame) -> pd.Series:
    """Referrals that have finished: closed, and accepted when the extract says so."""
    closed = data["closed"].fillna(False).astype(bool)
    if "accepted" in data:
        closed &= data["accepted"].eq("Yes").fillna(False).astype(bool)
    return closed


def _share_of_finished(column: str) -> Callable:
    def counts(data: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        # The one column counted, not a copy of every column of the finished rows.
        x = data[column][_finished(data).to_numpy()].fillna(False).astype("int64")
        return x, pd.Series(1, index=x.index, dtype="int64")

    return counts


def _accepted(data: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    accepted = data["accepted"]
    accepted = accepted[accepted.notna().to_numpy()]  # one column, not every column
    return accepted.eq("Yes").astype("int64"), pd.Series(1, index=accepted.index, dtype="int64")


@dataclass(frozen=True)
class Measure:
    """One measure of access or outcome, as a percentage."""

    name: str
    #: Title with its denominator: "Missed appointments (% of appointments offered)".
    title: str
    #: Short name for a chart or column: "Missed appointments".
    short: str
    #: The rate in a sentence: "missed-appointment rate".
    rate_words: str
    #: How the measure reads after "12.5% ...": "of appointments were missed".
    phrase: str
    #: True where a lower value is better (missed appointments, drop-out).
    lower_is_better: bool
    #: Column titles for the denominator and the numerator in tables.
    denominator: str
    numerator: str
    #: What the counts are: "appointments" or "people".
    unit: str
    #: Prepared columns the measure needs.
    columns: tuple[str, ...]
    #: Returns (numerator, denominator) for each row counted.
    counts: Callable[[pd.DataFrame], tuple[pd.Series, pd.Series]]
    #: Columns the counts read when the extract has them, beyond ``columns``.
    also_reads: tuple[str, ...] = ()

    @property
    def reads(self) -> tuple[str, ...]:
        """Every column the counts can read: a step counting it needs no other."""
        return (*self.columns, *self.also_reads)

    @property
    def column(self) -> str:
        """Its column title in a table of percentages: "Missed appointments %"."""
        return f"{self.short} %"

    @property
    def direction(self) -> str:
        """``"decrease"`` where lower is better, else ``"increase"`` (for SPC charts)."""
        return "decrease" if self.lower_is_better else "increase"

    def available(self, data: pd.DataFrame) -> bool:
        return set(self.columns) <= set(data.columns)

    def totals(self, data: pd.DataFrame) -> tuple[int, int]:
        """The numerator and denominator summed over ``data``."""
        x, n = self.counts(data)
        return int(x.sum()), int(n.sum())

    def worse(self, difference: float) -> bool:
        """Whether a group with this difference from everyone else fares worse."""
        return difference > 0 if self.lower_is_better else difference < 0


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            "dna_rate",
            "Missed appointments (% of appointments offered)",
            "Missed appointments",
            "missed-appointment rate",
            "of appointments were missed",
            True,
            "Appointments offered",
            "Missed",
            "appointments",
            ("appointments_dna", "appointments_offered"),
            _appointments,
        ),
        Measure(
            "drop_out_rate",
            "Dropped out (% of finished referrals)",
            "Dropped out",
            "drop-out rate",
            "dropped out",
            True,
            "Finished referrals",
            "Dropped out",
            "people",
            ("dropped_out", "closed"),
            _share_of_finished("dropped_out"),
            ("accepted",),  # a finished referral is one accepted, when the extract says
        ),
        Measure(
            "completion_rate",
            "Completed treatment (% of finished referrals)",
            "Completed",
            "completion rate",
            "completed treatment",
            False,
            "Finished referrals",
            "Completed",
            "people",
            ("completed", "closed"),
            _share_of_finished("completed"),
            ("accepted",),
        ),
        Measure(
            "acceptance_rate",
            "Referrals accepted (%)",
            "Accepted",
            "acceptance rate",
            "had their referral accepted",
            False,
            "Referrals",
            "Accepted",
            "people",
            ("accepted",),
            _accepted,
        ),
    )
}


def get(name: str) -> Measure:
    """The measure called ``name``, with a clear message for a name that is not one."""
    try:
        return MEASURES[name]
    except KeyError:
        known = ", ".join(MEASURES)
        raise KeyError(f"No measure is called {name!r}; the measures are {known}.") from None


def available(data: pd.DataFrame) -> list[str]:
    """The names of the measures this prepared extract has the columns for."""
    return [name for name, m in MEASURES.items() if m.available(data)]
