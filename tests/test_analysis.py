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
