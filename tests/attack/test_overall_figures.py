"""A figure for everyone is never set beside a table with a hidden group (attack x).

The mean improvement and the median wait for everyone are shown only when every group in
the table beside them is shown; otherwise a sentence says why they are not. No workbook is
built here: the step runs on a crafted extract.
"""

from __future__ import annotations

import pytest
import yaml

from equity_helpers import open_service
from equity_helpers.steps import access_and_outcome_gaps

from .crafted import build_lone_score


@pytest.fixture(scope="module")
def lone_score(tmp_path_factory):
    return build_lone_score(tmp_path_factory.mktemp("lone-score"))


def _run(config):
    service = open_service(config)
    return service, access_and_outcome_gaps.run(service)


def test_no_mean_for_everyone_beside_a_hidden_group(lone_score):
    service, result = _run(lone_score)
    outcome = result.tables["outcome"].frame
    assert outcome["People"].isna().any()  # the Black group of one is hidden...
    assert result.values["outcome_overall"] is None  # ...so no mean for everyone
    sentence = result.values["outcome_sentence"]
    assert sentence.startswith("The average improvement for everyone is not shown.")
    assert not any(ch.isdigit() for ch in sentence)
    waits = result.tables["waits"].frame
    assert waits["People seen"].isna().any()
    assert result.values["wait_overall"] is None
    assert result.values["wait_overall_sentence"].startswith(
        "The median wait for everyone is not shown."
    )
    assert result.values["wait_overall_sentence"] in result.findings


def test_the_figures_for_everyone_are_shown_when_no_group_is_hidden(lone_score, tmp_path):
    # The same extract with disclosure control off: nothing is hidden, so nothing is withheld.
    cfg = yaml.safe_load(lone_score.read_text())
    cfg["extract"]["path"] = str(lone_score.parent / cfg["extract"]["path"])
    cfg["disclosure"] = {"enabled": False}
    open_config = tmp_path / "open.yml"
    open_config.write_text(yaml.safe_dump(cfg))
    service, result = _run(open_config)
    assert not result.tables["outcome"].frame["People"].isna().any()
    mean = service.data["outcome_improvement"].mean()
    assert result.values["outcome_overall"] == pytest.approx(mean)
    assert result.values["outcome_sentence"] == f"On average, scores improved by {mean:.1f} points."
    median = service.data["wait_days"].median()
    assert result.values["wait_overall"] == pytest.approx(median)
    assert result.values["wait_overall_sentence"] == (
        f"The median wait for everyone is {median:.0f} days."
    )


def test_every_field_of_the_mean_table_hides_a_group_when_one_does(sample_service):
    """Attack xi: a field with every group shown gives everyone's total, so when one field
    hides a group each other field hides its smallest group too."""
    from equity_helpers import analysis
    from equity_helpers.wording import label

    service = sample_service
    outcome = access_and_outcome_gaps.run(service).tables["outcome"].frame
    blocks = {field: t for field, t in outcome.groupby("Field", sort=False)}
    assert any(t["People"].isna().any() for t in blocks.values())  # the sample hides one
    assert all(t["People"].isna().any() for t in blocks.values())
    # The group hidden in addition is the smallest of a field that hid none by the rule.
    for dim in ("ethnic_group", "imd_quintile"):
        order = analysis.group_order(dim)
        own = analysis.group_mean(service.data, dim, "outcome_improvement", service.rule, order)
        if own["n"].isna().any():
            continue
        block = blocks[label(dim)].reset_index(drop=True)
        hidden = block.index[block["People"].isna()].tolist()
        assert hidden == [int(own["n"].astype(float).idxmin())]
