"""What the attacker knows about the true extract: which groups are small, and their labels.

The attacker is given the service's config and reads its extract the way the playbook does.
A group is small when it holds 1 to ``threshold`` people. The attacker then looks for any
figure about such a group, and for the free-text label of such a group, in the workbook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: Fields whose values are free text typed by staff (not a national code list).
FREE_TEXT_FIELDS = ("religion", "sexual_orientation", "marital_status")


@dataclass(frozen=True)
class Group:
    """A group of people in the extract: a field, its plain name, a value and the size."""

    field: str
    field_label: str
    value: str
    size: int
    #: Other ways the value is written in tables (for example "Jun 2023" for 2023-06).
    aliases: tuple[str, ...] = ()
    #: Whether the value is distinctive enough to be matched without naming the field.
    distinctive: bool = False


@dataclass
class Truth:
    """Small groups and small free-text labels of one extract."""

    threshold: int = 7
    rounding: int = 5
    groups: list[Group] = field(default_factory=list)
    #: Free-text labels held by 1 to ``threshold`` people and seen nowhere in the playbook's
    #: own vocabulary: label -> number of people.
    labels: dict[str, int] = field(default_factory=dict)
    #: Folders on the machine that built the workbook (the config's, say): none may be named
    #: in what is published.
    paths: list[str] = field(default_factory=list)

    @property
    def small_groups(self) -> list[Group]:
        return [g for g in self.groups if 1 <= g.size <= self.threshold]


def _month_aliases(period: pd.Period) -> tuple[str, ...]:
    ts = period.to_timestamp()
    return (
        f"{ts:%Y-%m}",
        f"{ts:%b %Y}",
        f"{ts:%B %Y}",
        f"{ts:%m/%Y}",
    )


def _vocabulary() -> set[str]:
    """Labels the playbook shows whatever the extract: field names and common answers."""
    from equity_helpers.wording import FIELD_LABELS

    from .crafted import SAMPLE_EXTRACT

    words = {v.lower() for v in FIELD_LABELS.values()}
    sample = pd.read_csv(SAMPLE_EXTRACT, dtype=str, keep_default_na=False)
    for column in ("Religion", "Sexual Orientation", "Marital Status"):
        counts = sample[column].str.strip().value_counts()
        words |= {str(v).lower() for v, n in counts.items() if n > 7 and v}
    return words | {"other", "not stated", "not known", "invalid", "unknown", "yes", "no"}


def truth_from_config(config: str | Path) -> Truth:
    """Read a service's extract, as the playbook reads it, and list its small groups."""
    from equity_helpers.config import CATEGORY_FIELDS, load_config
    from equity_helpers.extract import prepare
    from equity_helpers.privacy import OTHER_SMALL_GROUPS, merge_small_groups
    from equity_helpers.wording import FIELD_LABELS

    cfg = load_config(Path(config))
    data = prepare(cfg).data
    truth = Truth(threshold=cfg.disclosure.threshold, rounding=cfg.disclosure.rounding)
    truth.paths.append(str(Path(config).resolve().parent))
    vocabulary = _vocabulary()
    for name, label in FIELD_LABELS.items():
        if name not in data.columns:
            continue
        if name in CATEGORY_FIELDS:
            # The playbook publishes these fields after its own merge (rule 2 of
            # equity_helpers.privacy): "Other (small groups)" is a group of everyone merged
            # into it, whatever their answers were called (an answer "Other" among them).
            merged = merge_small_groups(data[name], cfg.disclosure)
            size = int((merged == OTHER_SMALL_GROUPS).sum())
            if size:
                truth.groups.append(Group(name, label, OTHER_SMALL_GROUPS, size))
        values = data[name].dropna()
        if values.nunique() > 200:
            continue
        for value, size in values.astype(str).value_counts().items():
            truth.groups.append(Group(name, label, value, int(size)))
            small = 1 <= size <= truth.threshold
            if small and name in FREE_TEXT_FIELDS and value.strip().lower() not in vocabulary:
                truth.labels[value.strip()] = int(size)
    if "lsoa_code" in data.columns:
        for code, size in data["lsoa_code"].dropna().astype(str).value_counts().items():
            truth.groups.append(Group("lsoa_code", "Home area", code, int(size), distinctive=True))
    if "referral_date" in data.columns:
        months = pd.to_datetime(data["referral_date"]).dt.to_period("M").dropna()
        for month, size in months.value_counts().items():
            aliases = _month_aliases(month)
            truth.groups.append(
                Group("month", "Month", aliases[0], int(size), aliases[1:], distinctive=True)
            )
    return truth
