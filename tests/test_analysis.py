"""Analysis helpers on edge cases that real extracts produce."""

import pandas as pd

from equity_helpers import analysis as A
from equity_helpers.privacy import DisclosureRule


def test_a_group_with_no_denominator_has_no_rate():
    # Referrals never accepted are offered no appointments: their group has no DNA rate.
    data = pd.DataFrame(
        {
            "g": ["a"] * 20 + ["b"] * 5,
            "appointments_dna": [1] * 20 + [0] * 5,
            "appointments_offered": [4] * 20 + [0] * 5,
        }
    )
    t = A.group_proportion(data, "g", None, weights=("appointments_dna", "appointments_offered"))
    assert t["group"].tolist() == ["a"]
    assert t["pct"].tolist() == [25.0]


def test_gap_table_needs_someone_else_to_compare_with():
    data = pd.DataFrame(
        {
            "g": ["a"] * 30,
            "appointments_dna": [1] * 30,
            "appointments_offered": [5] * 30,
        }
    )
    assert A.gap_table(data, "dna_rate", "g", DisclosureRule()).empty


def test_gap_table_compares_each_group_with_the_rest():
    data = pd.DataFrame(
        {
            "g": ["a"] * 100 + ["b"] * 100,
            "appointments_dna": [1] * 100 + [0] * 100,
            "appointments_offered": [5] * 200,
        }
    )
    t = A.gap_table(data, "dna_rate", "g", DisclosureRule()).set_index("group")
    # a: 100/500 = 20%, b: 0%; the difference is worked out by hand.
    assert t.loc["a", "difference"] == 20.0 and t.loc["b", "difference"] == -20.0
    assert bool(t.loc["a", "credible"]) and t.loc["a", "lower"] > 0


def _finished_referrals(n: int, accepted: bool) -> pd.DataFrame:
    data = pd.DataFrame(
        {
            "referral_month": pd.to_datetime(["2024-01-01"] * n),
            "closed": [True] * n,
            "dropped_out": [True] * 3 + [False] * (n - 3),
            "completed": [False] * 3 + [True] * (n - 3),
        }
    )
    if accepted:
        data["accepted"] = ["Yes"] * (n - 2) + ["No"] * 2
    return data


def test_monthly_rate_and_measure_agree_without_the_accepted_column():
    # Without `accepted`, every closed referral counts as finished, in both functions.
    data = _finished_referrals(20, accepted=False)
    monthly = A.monthly_rate(data, "drop_out_rate")
    assert (monthly["_x"].iloc[0], monthly["_n"].iloc[0]) == (3, 20)
    t = A.measure(data.assign(g="a"), "drop_out_rate", "g", DisclosureRule(enabled=False))
    assert (t["_x"].iloc[0], t["_n"].iloc[0]) == (3, 20)
    # With it, referrals never accepted are left out of both.
    data = _finished_referrals(20, accepted=True)
    assert A.monthly_rate(data, "drop_out_rate")["_n"].iloc[0] == 18


def test_missed_appointments_are_hidden_for_a_group_of_few_people():
    # 5 people with 40 appointments each: the appointment counts are large, the people few.
    data = pd.DataFrame(
        {
            "g": ["few"] * 5 + ["many"] * 50,
            "appointments_dna": [10] * 5 + [1] * 50,
            "appointments_offered": [40] * 55,
        }
    )
    t = A.measure(data, "dna_rate", "g", DisclosureRule()).set_index("group")
    assert pd.isna(t.loc["few", "pct"]) and pd.isna(t.loc["few", "n"])
    assert t.loc["many", "pct"] == 2.5


def test_pathway_with_no_referral_old_enough_is_empty_not_an_error():
    data = pd.DataFrame(
        {
            "referral_date": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "g": ["a", "b"],
            "first_appointment_date": pd.to_datetime(["2024-01-10", None]),
            "completed": [True, False],
        }
    )
    path = A.pathway(data, "g", DisclosureRule())
    assert path.empty and "group" in path.columns
    assert A.pathway_extremes({"g": path}).empty


def _appointments_by_group(n: int = 400) -> pd.DataFrame:
    rows = range(n)
    return pd.DataFrame(
        {
            "g": pd.array([["b", "a", None, "c"][i % 4] for i in rows], dtype="string"),
            "h": pd.array([[1, 2, None][i % 3] for i in rows], dtype="Int64"),
            "appointments_dna": pd.array([i % 5 if i % 7 else None for i in rows], dtype="Int64"),
            "appointments_offered": pd.array([5 + i % 3 for i in rows], dtype="Int64"),
        }
    )


def test_measure_sums_each_group_as_plain_pandas_does():
    data = _appointments_by_group()
    t = A.measure(data, "dna_rate", "g", DisclosureRule(enabled=False)).set_index("group")
    counted = data.dropna(subset=["appointments_dna", "appointments_offered"])
    groups = counted["g"].fillna("Not known")
    by = counted.groupby(groups)
    assert t["_x"].to_dict() == by["appointments_dna"].sum().to_dict()
    assert t["_n"].to_dict() == by["appointments_offered"].sum().to_dict()
    assert t["_people"].to_dict() == by.size().to_dict()
    assert t["_top"].to_dict() == by["appointments_offered"].max().to_dict()
    # Groups in the order a group-by sorts them, "Not known" for a blank.
    assert list(t.index) == ["Not known", "a", "b", "c"]


def test_measure_and_two_way_do_not_depend_on_the_tables_index():
    data = _appointments_by_group()
    shuffled = data.sample(frac=1.0, random_state=1)  # the same rows, the index out of order
    off = DisclosureRule(enabled=False)
    for frame in (shuffled, shuffled.set_axis([f"r{i}" for i in range(len(shuffled))])):
        for name in ("dna_rate",):
            a = A.measure(data, name, "g", off).set_index("group").sort_index()
            b = A.measure(frame, name, "g", off).set_index("group").sort_index()
            pd.testing.assert_frame_equal(a, b)
        wide = A.two_way(data, "dna_rate", "g", "h", off)
        pd.testing.assert_frame_equal(wide, A.two_way(frame, "dna_rate", "g", "h", off))


def test_two_way_cells_match_each_pair_of_groups():
    data = _appointments_by_group()
    wide = A.two_way(data, "dna_rate", "g", "h", DisclosureRule(enabled=False))
    counted = data.dropna(subset=["appointments_dna"])
    mask = counted["g"].eq("a").fillna(False) & counted["h"].eq(2).fillna(False)
    cell = counted[mask.to_numpy(dtype=bool)]
    expected = round(100 * cell["appointments_dna"].sum() / cell["appointments_offered"].sum(), 1)
    assert wide.loc["a", "2"] == expected
    assert wide.attrs["people"].loc["a", "2"] == len(cell)
