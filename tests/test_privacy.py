"""Disclosure control: the small-number rule, secondary suppression, and safe export.

The secondary-suppression tests check the result two ways: a structural property (every
row and column with a published total has 0 or at least 2 hidden cells) and an attack. For
the attack, integer linear programs (scipy's linprog with integrality) find the smallest
and largest value each hidden cell could take given everything published; a hidden cell is
protected when at least two whole numbers remain possible.
"""

from __future__ import annotations

import csv
import logging
import math
import os

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy.optimize import linprog

from equity_helpers.privacy import (
    ControlledTable,
    DisclosureConfigError,
    DisclosureInputError,
    DisclosureLeakError,
    DisclosureRule,
    control_chart_data,
    control_counts,
    control_table,
    export_table,
    format_count,
    neutralise_formula,
    one_person_dominates,
    published_percentage,
    scan_for_small_counts,
)

NA = pd.NA
BIG = 10**6  # stands in for "no upper limit" on a hidden cell


# --------------------------------------------------------------------------------------------
# The rule on single counts
# --------------------------------------------------------------------------------------------
def test_rule_on_reference_counts():
    out = control_counts([0, 1, 7, 8, 12, 13, 1234])
    assert str(out.dtype) == "Int64"
    assert out.tolist() == [0, NA, NA, 10, 10, 15, 1235]


def test_series_keeps_index_and_name():
    counts = pd.Series([5, 40], index=["Q1", "Q5"], name="referrals")
    out = control_counts(counts)
    assert out.index.tolist() == ["Q1", "Q5"]
    assert out.name == "referrals"
    assert out.isna().tolist() == [True, False]


def test_scalar_counts():
    assert control_counts(3) is NA
    assert control_counts(0) == 0
    assert control_counts(22) == 20


def test_rounding_is_half_up_with_an_even_base():
    rule = DisclosureRule(threshold=7, rounding=10)
    assert control_counts([14, 15, 24, 25], rule).tolist() == [10, 20, 20, 30]


def test_a_non_zero_count_is_never_shown_as_zero():
    # Threshold 0 hides nothing, but 1..4 would round to 0 with a base of 10: hide them.
    rule = DisclosureRule(threshold=0, rounding=10)
    assert rule.hidden_up_to == 4
    assert control_counts([0, 4, 5], rule).tolist() == [0, NA, 10]
    assert "Counts of 1 to 4 are shown as *" in rule.describe()


@pytest.mark.parametrize("rule", [DisclosureRule(), DisclosureRule(7, 10), DisclosureRule(3, 3)])
def test_possible_range_matches_brute_force(rule):
    truth = np.arange(0, 500)
    shown = control_counts(truth, rule)
    for published in sorted({int(v) for v in shown.dropna() if v <= 400}):
        behind = truth[(shown == published).fillna(False).to_numpy()]
        assert rule.possible_range(published) == (behind.min(), behind.max())
    assert rule.possible_range(None) == (1, None)


@pytest.mark.parametrize("bad", [[-1, 3], [1.5, 2], [1, None], ["3", "4"], [True, False]])
def test_bad_counts_are_refused(bad):
    with pytest.raises(DisclosureInputError):
        control_counts(bad)


# --------------------------------------------------------------------------------------------
# Words for every page
# --------------------------------------------------------------------------------------------
def test_default_rule_describes_itself_and_does_not_warn():
    rule = DisclosureRule()
    assert rule.describe() == (
        "Counts of 1 to 7 are shown as * and other counts are rounded to the nearest 5; "
        "percentages built on a hidden count are hidden too. Groups of 7 or fewer people with "
        'free-text labels are merged into "Other (small groups)", and chart points about 7 or '
        "fewer people are hidden."
    )
    assert rule.warning() is None
    assert DisclosureRule(threshold=10, rounding=10).warning() is None  # stricter is fine


def test_disabled_rule_passes_counts_through_but_says_so():
    rule = DisclosureRule(enabled=False)
    assert control_counts([0, 1, 7, 8, 12, 13, 1234], rule).tolist() == [0, 1, 7, 8, 12, 13, 1234]
    assert "OFF" in rule.warning()
    assert "off" in rule.describe()
    table = control_table(
        pd.DataFrame({"a": [1, 2], "b": [3, 40]}), ["a", "b"], rule, total_column=True
    )
    assert not table.suppressed.to_numpy().any()
    assert table.values["Total"].tolist() == [4, 42]


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (DisclosureRule(threshold=3), "only counts up to 3 are hidden"),
        (DisclosureRule(rounding=1), "counts are not rounded"),
        (DisclosureRule(rounding=2), "rounded to the nearest 2"),
    ],
)
def test_relaxed_rule_warns_loudly(rule, words):
    warning = rule.warning()
    assert warning.startswith("WARNING")
    assert words in warning


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
def test_from_config_reads_values_and_defaults():
    assert DisclosureRule.from_config(None) == DisclosureRule()
    assert DisclosureRule.from_config({}) == DisclosureRule()
    assert DisclosureRule.from_config({"threshold": 10, "rounding": 10, "enabled": False}) == (
        DisclosureRule(10, 10, False)
    )


@pytest.mark.parametrize(
    ("mapping", "key", "allowed"),
    [
        ({"threshold": -1}, "disclosure.threshold", "0 to 100"),
        ({"threshold": 101}, "disclosure.threshold", "0 to 100"),
        ({"threshold": "7"}, "disclosure.threshold", "0 to 100"),
        ({"threshold": 7.0}, "disclosure.threshold", "0 to 100"),
        ({"threshold": True}, "disclosure.threshold", "0 to 100"),
        ({"rounding": 0}, "disclosure.rounding", "1 to 100"),
        ({"rounding": 500}, "disclosure.rounding", "1 to 100"),
        ({"enabled": "no"}, "disclosure.enabled", "true or false"),
        ({"enabled": 0}, "disclosure.enabled", "true or false"),
        ({"treshold": 5}, "disclosure.treshold", "threshold, rounding, enabled"),
    ],
)
def test_config_errors_name_the_key_and_allowed_values(mapping, key, allowed):
    with pytest.raises(DisclosureConfigError) as caught:
        DisclosureRule.from_config(mapping)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.key == key
    assert allowed in error.allowed
    assert key in str(error) and allowed in str(error)


def test_direct_construction_is_validated_too():
    with pytest.raises(DisclosureConfigError, match="threshold"):
        DisclosureRule(threshold=-3)


# --------------------------------------------------------------------------------------------
# Percentages and rates
# --------------------------------------------------------------------------------------------
def test_percentages_hidden_when_either_side_is_hidden():
    numerators = pd.Series([0, 5, 40, 40, 8, 8], index=list("abcdef"))
    denominators = pd.Series([50, 50, 6, 120, 0, 8], index=list("abcdef"))
    out = published_percentage(numerators, denominators)
    assert out.index.tolist() == list("abcdef")
    assert out["a"] == 0.0  # 0 is not hidden
    assert math.isnan(out["b"])  # numerator 5 is hidden
    assert math.isnan(out["c"])  # denominator 6 is hidden
    assert out["d"] == 33.3  # 40 / 120, both published as they are
    assert math.isnan(out["e"])  # undefined
    assert out["f"] == 100.0  # 8 and 8 are both published as 10


def test_percentages_come_from_the_published_counts_and_round_half_up():
    # 13 / 27 is published as 15 / 25: the percentage says no more than the counts do.
    assert published_percentage(13, 27) == 60.0
    # 9 / 16 = 56.25% exactly: half up gives 56.3 (round-half-even would give 56.2).
    assert published_percentage(9, 16, DisclosureRule(enabled=False)) == 56.3
    assert published_percentage(9, 16, DisclosureRule(enabled=False), decimals=0) == 56.0


# --------------------------------------------------------------------------------------------
# Showing and exporting
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (NA, "*"),
        (None, "*"),
        (float("nan"), "*"),
        (0, "0"),
        (1234, "1,234"),
        (np.int64(1234567), "1,234,567"),
        (1235.0, "1,235"),
    ],
)
def test_format_count(value, text):
    assert format_count(value) == text


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_neutralise_formula_for_each_prefix(prefix):
    value = prefix + 'HYPERLINK("http://x","y")'
    assert neutralise_formula(value) == "'" + value


@pytest.mark.parametrize("value", [-5, 3.25, np.int64(-3), np.float64(-1.5), 0, None])
def test_neutralise_formula_leaves_numbers_alone(value):
    assert neutralise_formula(value) is value


def test_neutralise_formula_leaves_plain_text_alone():
    assert neutralise_formula("Quintile 1 - most deprived") == "Quintile 1 - most deprived"


def _hostile_table():
    return pd.DataFrame(
        {
            "group": ["=1+2", "-cmd|' /C calc'!A0", "@SUM(A1)", "Plain"],
            "seen": [3, 40, 12, 1234],
            "waiting": [25, 8, 0, 61],
        }
    )


def _read_csv_with_header(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("# ")]
    assert lines[: len(header)] == header, "the rule must come first"
    rows = list(csv.reader(lines[len(header) :]))
    return header, rows


def test_export_round_trip(tmp_path):
    rule = DisclosureRule()
    table = control_table(_hostile_table(), ["seen", "waiting"], rule, total_column=True)
    csv_path, xlsx_path = export_table(
        table, tmp_path / "t.csv", tmp_path / "t.xlsx", title="+Seen by group"
    )

    header, rows = _read_csv_with_header(csv_path)
    assert header[0] == "# +Seen by group"
    assert header[1] == "# " + rule.describe()
    assert len(header) == 2  # no warning under the NHS rule
    assert rows[0] == ["group", "seen", "waiting", "Total"]
    by_group = {row[0]: row[1:] for row in rows[1:]}
    assert set(by_group) == {"'=1+2", "'-cmd|' /C calc'!A0", "'@SUM(A1)", "Plain"}
    assert by_group["'=1+2"] == ["*", "*", "30"]  # 3 is hidden, so its partner 25 is too
    assert by_group["Plain"] == ["1235", "60", "1295"]

    sheet = openpyxl.load_workbook(xlsx_path).active
    grid = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert grid[0][0] == "'+Seen by group"
    assert grid[1][0] == rule.describe()
    assert grid[3] == ["group", "seen", "waiting", "Total"]
    assert [row[0] for row in grid[4:]] == [row[0] for row in rows[1:]]
    assert grid[4][1:] == ["*", "*", 30]
    assert grid[7][1:] == [1235, 60, 1295]  # numbers stay numbers
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", f"{cell.coordinate} became a formula"
    # Nothing a reader can see holds a small count.
    assert scan_for_small_counts(pd.DataFrame(rows[1:])).empty


def test_export_states_a_relaxed_or_disabled_rule(tmp_path):
    for rule in (DisclosureRule(threshold=3), DisclosureRule(enabled=False)):
        table = control_table(_hostile_table(), ["seen", "waiting"], rule)
        export_table(table, tmp_path / "t.csv", tmp_path / "t.xlsx", title="Seen")
        header, _ = _read_csv_with_header(tmp_path / "t.csv")
        assert header[1:] == ["# " + rule.describe(), "# " + rule.warning()]
        sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").active
        assert sheet["A3"].value == rule.warning()


def test_export_checks_a_plain_frame_for_small_counts(tmp_path, caplog):
    raw = pd.DataFrame({"quintile": [1, 2], "n": [3, 40]})
    paths = (tmp_path / "a.csv", tmp_path / "a.xlsx")
    with pytest.raises(DisclosureLeakError, match="control_table"):
        export_table(raw, *paths, DisclosureRule(), "x", small_counts="raise")
    with caplog.at_level(logging.WARNING, logger="equity_helpers"):
        export_table(raw, *paths, DisclosureRule(), "Raw table")  # default: warn, still write
    assert "Raw table still holds 3 whole number(s)" in caplog.text
    with pytest.raises(DisclosureInputError, match="rule"):
        export_table(raw, *paths, None, "x")
    with pytest.raises(DisclosureInputError, match="small_counts"):
        export_table(raw, *paths, DisclosureRule(), "x", small_counts="maybe")

    safe = pd.DataFrame({"quintile": [1, 2], "n": ["*", 40]})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="equity_helpers"):
        export_table(
            safe, *paths, DisclosureRule(), "x", label_columns=["quintile"], small_counts="raise"
        )
    assert caplog.text == ""
    _, rows = _read_csv_with_header(tmp_path / "a.csv")
    assert rows == [["quintile", "n"], ["1", "*"], ["2", "40"]]


def test_scan_for_small_counts():
    frame = pd.DataFrame(
        {
            "ints": pd.array([0, 5, 8, NA], dtype="Int64"),
            "text": ["*", "3", "1,234", "7 days"],
            "pct": [5.0, 1.0, 2.5, 7.0],
        }
    )
    found = scan_for_small_counts(frame)
    assert found[["row", "column"]].values.tolist() == [[1, "ints"], [1, "text"]]
    assert scan_for_small_counts(frame, threshold=10)["value"].tolist() == [5, 8, "3"]


# --------------------------------------------------------------------------------------------
# Secondary suppression
# --------------------------------------------------------------------------------------------
def _true_grid(df: pd.DataFrame, total_row: bool, total_column: bool) -> np.ndarray:
    grid = df.to_numpy(dtype="int64")
    if total_column:
        grid = np.column_stack([grid, grid.sum(axis=1)])
    if total_row:
        grid = np.vstack([grid, grid.sum(axis=0)])
    return grid


def _lines(shape, total_row: bool, total_column: bool):
    """(member cells, total cell) for every row and column that adds up to a total."""
    n_rows, n_cols = shape
    rows = n_rows - total_row
    cols = n_cols - total_column
    lines = []
    if total_column:
        lines += [([(i, j) for j in range(cols)], (i, cols)) for i in range(rows)]
    if total_row:
        lines += [([(i, j) for i in range(rows)], (rows, j)) for j in range(cols)]
    if total_row and total_column:
        lines.append(([(rows, j) for j in range(cols)], (rows, cols)))
        lines.append(([(i, cols) for i in range(rows)], (rows, cols)))
    return lines


def _band(published: int, rule: DisclosureRule) -> tuple[int, int]:
    """Whole numbers that round (halves up) to a published non-zero value and are not hidden."""
    r = rule.rounding
    low = math.ceil(published - r / 2)
    high = math.ceil(published + r / 2) - 1
    return max(low, rule.threshold + 1), high


def _model(table: ControlledTable, total_row: bool, total_column: bool, hidden_max: int = BIG):
    """What a reader knows of the table's true counts, as integer linear constraints.

    A hidden cell is known to be at least 1 (0 is never hidden). Without secondary
    suppression every hidden cell is a small count, so ``hidden_max`` is the threshold; with
    it, a hidden cell may be a larger count hidden to protect another, so there is no upper
    limit beyond what the totals imply. Returns the hidden cells, the equations (each line
    minus its total is 0, one row per line, one column per cell) and each cell's bounds.
    """
    shown = table.values[table.count_columns]
    hidden = table.suppressed[table.count_columns].to_numpy()
    n_rows, n_cols = shown.shape
    index = {(i, j): i * n_cols + j for i in range(n_rows) for j in range(n_cols)}
    equations = []
    for members, total in _lines(shown.shape, total_row, total_column):
        row = np.zeros(n_rows * n_cols)
        row[[index[cell] for cell in members]] = 1
        row[index[total]] = -1
        equations.append(row)
    bounds = []
    for i in range(n_rows):
        for j in range(n_cols):
            if hidden[i, j]:
                bounds.append((1, hidden_max))
            elif shown.iat[i, j] == 0:
                bounds.append((0, 0))
            else:
                bounds.append(_band(int(shown.iat[i, j]), table.rule))
    cells = [tuple(int(k) for k in cell) for cell in zip(*np.nonzero(hidden), strict=True)]
    return cells, np.array(equations), bounds, n_cols


def _end(model, cell: tuple[int, int], sign: int) -> float:
    """The smallest (``sign`` 1) or largest (-1) whole value ``cell`` can take."""
    _, equations, bounds, n_cols = model
    objective = np.zeros(len(bounds))
    objective[cell[0] * n_cols + cell[1]] = 1
    result = linprog(
        sign * objective,
        A_eq=equations,
        b_eq=np.zeros(len(equations)),
        bounds=bounds,
        integrality=np.ones(len(bounds)),
        method="highs",
    )
    assert result.status == 0, result.message
    return sign * result.fun


def _attack(
    table: ControlledTable, total_row: bool, total_column: bool, hidden_max: int = BIG
) -> dict:
    """Smallest and largest whole value of each hidden cell, given only what is published
    (see :func:`_model`)."""
    model = _model(table, total_row, total_column, hidden_max)
    return {cell: (_end(model, cell, 1), _end(model, cell, -1)) for cell in model[0]}


def _pinned(
    table: ControlledTable,
    truth: np.ndarray,
    total_row: bool,
    total_column: bool,
    hidden_max: int = BIG,
) -> dict:
    """Whether a reader can work out each hidden cell exactly, given only what is published.

    The same attack as :func:`_attack`, answered with fewer solves: the true table is first
    checked to meet every constraint (the attack's model is sound), so a cell is pinned only
    if its largest and smallest possible values are both the true one, and a largest value
    above the truth settles it with one solve.
    """
    model = _model(table, total_row, total_column, hidden_max)
    cells, equations, bounds, _ = model
    flat = truth.reshape(-1)
    assert (equations @ flat == 0).all()  # the attack's model is sound: the truth fits it
    assert all(low <= value <= high for value, (low, high) in zip(flat, bounds, strict=True))
    return {
        cell: round(_end(model, cell, -1)) == truth[cell] == round(_end(model, cell, 1))
        for cell in cells
    }


@pytest.mark.parametrize(
    ("row", "shown", "recovered"),
    [
        # Total 17 is published as 15, so it is at most 17; the 8s are published as 10, so
        # each is at least 8. The hidden cell is at most 17 - 8 - 8 = 1, and at least 1.
        ([1, 8, 8], ["*", "10", "10", "15"], 1),
        # Total 43 -> 45, so at least 43; each 12 -> 10, so at most 12: hidden >= 43 - 36 = 7.
        ([7, 12, 12, 12], ["*", "10", "10", "10", "45"], 7),
    ],
)
def test_without_secondary_suppression_a_hidden_cell_can_be_recovered(row, shown, recovered):
    df = pd.DataFrame([row], columns=[f"c{j}" for j in range(len(row))])
    bare = control_table(df, list(df.columns), total_column=True, secondary=False)
    assert bare.display().iloc[0].tolist() == shown
    assert _attack(bare, False, True, hidden_max=7) == {(0, 0): (recovered, recovered)}

    protected = control_table(df, list(df.columns), total_column=True)
    assert protected.suppressed.iloc[0].tolist()[:2] == [True, True]
    assert protected.n_secondary == 1
    (low, high), *_ = _attack(protected, False, True).values()
    assert low < high - 0.999


def test_secondary_hides_the_smallest_other_cell_until_every_line_is_safe():
    df = pd.DataFrame({"a": [2, 30, 40], "b": [25, 12, 50], "c": [60, 70, 15]})
    table = control_table(df, ["a", "b", "c"], total_row=True, total_column=True)
    # Row 0 hides 25 (not 60); column a then hides 30 (not 40); row 1 then hides 12
    # (not 70), which also mends column b: a rectangle of four hidden cells.
    assert table.primary.to_numpy().sum() == 1
    assert table.suppressed[["a", "b", "c", "Total"]].to_numpy().tolist() == [
        [True, True, False, False],
        [True, True, False, False],
        [False, False, False, False],
        [False, False, False, False],
    ]
    assert table.n_secondary == 3
    assert "3 more counts are hidden" in table.describe()


def test_a_lone_hidden_cell_among_zeros_hides_the_total():
    # Row 0 hides 3, then 20; column a then hides 30. Row 1 is now [30 hidden, 0] and
    # column b [20 hidden, 0]: there is no other cell to hide and each total would give its
    # hidden cell away, so the totals are hidden, and then the other margin totals too.
    df = pd.DataFrame({"a": [3, 30], "b": [20, 0]})
    table = control_table(df, ["a", "b"], total_row=True, total_column=True)
    assert table.display().to_numpy().tolist() == [
        ["*", "*", "*"],
        ["*", "0", "*"],
        ["*", "*", "55"],
    ]
    for low, high in _attack(table, True, True).values():
        assert low < high - 0.999


def test_totals_must_not_already_be_in_the_table():
    df = pd.DataFrame({"a": [10, 20], "Total": [10, 20]})
    with pytest.raises(DisclosureInputError, match="Total"):
        control_table(df, ["a"], total_column=True)
    with pytest.raises(DisclosureInputError, match="not in the table"):
        control_table(df, ["missing"])


RECOVERABLE = ([1, 8, 8], [7, 12, 12, 12])  # the two hand-worked lines above


def _random_table(rng: np.random.Generator, plant: str | None = None) -> pd.DataFrame:
    """A small table mixing zeros, small counts, mid counts and large counts.

    Half the mid counts sit at the edges of the rounding bands (8, 12, 13, 17, ...), where
    rounding gives least cover. With ``plant="row"`` or ``"column"``, a third of the tables
    also get one line set to a hand-worked recoverable pattern (shuffled, padded with 0s), so
    the attack has something to find when secondary suppression is off.
    """
    n_rows, n_cols = rng.integers(1, 6), rng.integers(2, 6)
    kind = rng.choice(4, size=(n_rows, n_cols), p=[0.2, 0.4, 0.25, 0.15])
    edges = rng.choice([8, 12, 13, 17, 18, 22, 23, 27], kind.shape)
    mids = np.where(rng.random(kind.shape) < 0.5, edges, rng.integers(8, 31, kind.shape))
    values = np.select(
        [kind == 0, kind == 1, kind == 2],
        [0, rng.integers(1, 8, kind.shape), mids],
        rng.integers(31, 400, kind.shape),
    )
    if plant is not None and rng.random() < 1 / 3:
        lines = values if plant == "row" else values.T  # a view: writes go into values
        patterns = [p for p in RECOVERABLE if len(p) <= lines.shape[1]]
        if patterns:
            pattern = patterns[rng.integers(len(patterns))]
            line = np.zeros(lines.shape[1], dtype=values.dtype)
            line[: len(pattern)] = pattern
            lines[rng.integers(lines.shape[0])] = rng.permutation(line)
    return pd.DataFrame(values, columns=[f"c{j}" for j in range(n_cols)])


TOTALS = [(True, True), (True, False), (False, True)]
#: Random tables attacked for NHS England's rule (a third as many for each other rule): a small,
#: fixed budget by default; EQUITY_FUZZ_EXAMPLES asks for more, as for tests/test_fuzz.py.
TABLES = int(os.environ.get("EQUITY_FUZZ_EXAMPLES", "60"))


def test_property_every_line_with_a_published_total_has_zero_or_two_hidden():
    rng = np.random.default_rng(20240611)
    checked = 0
    for k in range(400):
        total_row, total_column = TOTALS[k % 3]
        df = _random_table(rng, plant="row" if total_column else "column")
        table = control_table(df, list(df.columns), total_row=total_row, total_column=total_column)
        truth = _true_grid(df, total_row, total_column)
        hidden = table.suppressed[table.count_columns].to_numpy()
        shown = table.values[table.count_columns]

        # Every small count is hidden; every shown count is the true one rounded.
        assert (hidden[(truth >= 1) & (truth <= 7)]).all()
        for (i, j), true in np.ndenumerate(truth):
            if not hidden[i, j]:
                assert shown.iat[i, j] == (2 * true + 5) // 10 * 5

        for members, total in _lines(truth.shape, total_row, total_column):
            if hidden[total]:
                continue
            count = sum(hidden[cell] for cell in members)
            assert count != 1, (df, table.display())
            checked += count > 0
    assert checked > 200  # the loop really exercised secondary suppression


@pytest.mark.parametrize(
    ("rule", "tables", "check_bare"),
    [
        (DisclosureRule(), TABLES, True),
        (DisclosureRule(7, 10), TABLES // 3, False),
        (DisclosureRule(10, 5), TABLES // 3, False),
        # No rounding: totals are exact, so two hidden 1s beside a total could be pinned.
        (DisclosureRule(7, 1), TABLES // 2, False),
    ],
)
def test_no_hidden_cell_can_be_recovered_from_the_totals(rule, tables, check_bare):
    rng = np.random.default_rng(7)
    attacked = recovered_without_secondary = 0
    for k in range(tables):
        total_row, total_column = TOTALS[k % 3]
        df = _random_table(rng, plant="row" if total_column else "column")
        table = control_table(
            df, list(df.columns), rule, total_row=total_row, total_column=total_column
        )
        truth = _true_grid(df, total_row, total_column)
        for cell, pinned in _pinned(table, truth, total_row, total_column).items():
            attacked += 1
            assert not pinned, (cell, df, table.display())
        if check_bare:
            bare = control_table(
                df,
                list(df.columns),
                rule,
                total_row=total_row,
                total_column=total_column,
                secondary=False,
            )
            pinned = _pinned(bare, truth, total_row, total_column, hidden_max=rule.threshold)
            recovered_without_secondary += sum(pinned.values())
    assert attacked > tables * 3
    if check_bare:
        # The same attack does find cells on these tables when secondary suppression is off.
        assert recovered_without_secondary >= 10, recovered_without_secondary


# --------------------------------------------------------------------------------------------
# One person's rate, and chart points
# --------------------------------------------------------------------------------------------
def test_a_rate_that_is_mostly_one_person_is_dominated():
    # Nine people: one offered 40 appointments, eight offered 4 each (72 in all).
    appointments = [40] + [4] * 8
    assert one_person_dominates(max(appointments), sum(appointments))
    assert not one_person_dominates(36, 72)  # exactly half: not more than half
    assert not one_person_dominates(40, 72, DisclosureRule(enabled=False))
    assert one_person_dominates([40, 4], [72, 72]).tolist() == [True, False]


def test_chart_guard_hides_points_about_too_few_people_and_rounds_counts():
    months = pd.DataFrame(
        {
            "month": ["Jan", "Feb", "Mar", "Apr"],
            "pct": [100.0, 40.0, 25.0, 0.0],
            "Referrals": [1, 30, 12, 0],
            "_people": [1, 30, 12, 0],
            "_top": [1, 1, 10, 0],
            "_n": [1, 30, 18, 0],
        }
    )
    out = control_chart_data(
        months,
        people="_people",
        values=["pct"],
        counts=["Referrals"],
        top="_top",
        denominator="_n",
    )
    # Jan: one person; Mar: one person has 10 of 18 appointments; Apr: nobody.
    assert out["pct"].isna().tolist() == [True, False, True, True]
    assert out["Referrals"].tolist()[:3] == [pd.NA, 30, pd.NA]
    assert list(out.columns) == ["month", "pct", "Referrals"]  # raw columns dropped
    assert out.attrs["hidden_points"] == 3
    assert months["pct"].tolist() == [100.0, 40.0, 25.0, 0.0]  # the input is left alone


def test_chart_guard_on_a_two_way_grid():
    wide = pd.DataFrame({"Q1": [20.0, 50.0], "Q2": [10.0, 30.0]}, index=["A", "B"])
    people = pd.DataFrame({"Q1": [40, 3], "Q2": [12, 8]}, index=["A", "B"])
    out = control_chart_data(wide, people=people)
    assert out.isna().to_numpy().tolist() == [[False, False], [True, False]]
    assert out.attrs["hidden_points"] == 1
