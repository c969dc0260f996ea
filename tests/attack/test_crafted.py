"""The crafted extracts plant what they say, and the command line reports what it finds.

No workbook is built here: the extracts are read the way the playbook reads them.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from equity_helpers.privacy import OTHER_SMALL_GROUPS

from .__main__ import main
from .crafted import CASES, JEDI, LONE_LABEL, LONE_SCORE, LONE_WAIT, build_lone_wait
from .truth import truth_from_config


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    return {
        name: builder(folder / name) for name, (builder, _) in CASES.items() if name != "sample"
    }


def _groups(config):
    truth = truth_from_config(config)
    return truth, {(g.field, g.value): g.size for g in truth.groups}


def test_each_crafted_extract_is_a_400_row_service(written):
    for config in written.values():
        data = pd.read_csv(config.parent / f"{config.stem}.csv", dtype=str)
        assert len(data) == 400


def test_the_lone_category_is_one_person_with_a_free_text_label(written):
    truth, groups = _groups(written["lone-category"])
    assert groups[("religion", LONE_LABEL)] == 1
    assert truth.labels[LONE_LABEL] == 1


def test_the_merged_line_holds_every_free_text_answer_of_seven_or_fewer_people(written):
    """ "Other (small groups)" is as big as every answer the playbook merges into it."""
    truth, groups = _groups(written["lone-category"])
    for name in ("religion", "sexual_orientation", "marital_status"):
        sizes = {v: n for (f, v), n in groups.items() if f == name and v != OTHER_SMALL_GROUPS}
        merged = sum(n for n in sizes.values() if n <= truth.threshold)
        assert groups.get((name, OTHER_SMALL_GROUPS), 0) == merged, name
    assert groups[("religion", OTHER_SMALL_GROUPS)] > groups[("religion", LONE_LABEL)] == 1


def test_the_jedi_is_one_person_offered_20_appointments_missing_15(written):
    config = written["many-appointments"]
    truth, groups = _groups(config)
    assert groups[("religion", JEDI)] == 1 and truth.labels[JEDI] == 1
    data = pd.read_csv(config.parent / "many-appointments.csv", dtype=str)
    jedi = data[data["Religion"] == JEDI].iloc[0]
    assert (jedi["Appts Offered"], jedi["Appts DNA"]) == ("20", "15")


def test_one_field_has_exactly_one_hidden_group(written):
    _, groups = _groups(written["one-hidden-group"])
    sizes = {
        v: n
        for (f, v), n in groups.items()
        if f == "sexual_orientation" and v != OTHER_SMALL_GROUPS
    }
    # Rows the playbook leaves out (an unreadable referral date, say) are not counted.
    assert set(sizes) == {"Heterosexual or straight", "Bisexual"}
    assert sizes["Bisexual"] == 1 and sizes["Heterosexual or straight"] > 390
    assert groups[("sexual_orientation", OTHER_SMALL_GROUPS)] == 1  # the merged Bisexual


def test_one_month_has_one_referral(written):
    _, groups = _groups(written["lone-month"])
    assert groups[("month", "2023-06")] == 1


def test_every_small_group_lives_in_one_area(written):
    config = written["one-area"]
    data = pd.read_csv(config.parent / "one-area.csv", dtype=str, keep_default_na=False)
    small = pd.Series(False, index=data.index)
    for column in ("Religion", "Sexual Orientation", "Marital Status", "Ethnic Category"):
        counts = data[column].map(data[column].value_counts())
        small |= counts.between(1, 7) & data[column].ne("")
    assert small.sum() >= 5
    assert data.loc[small, "LSOA"].nunique() == 1


def test_the_lone_score_and_wait_are_one_black_person_s(written):
    from equity_helpers.config import load_config
    from equity_helpers.extract import prepare

    truth, groups = _groups(written["lone-score"])
    assert groups[("ethnic_group", "Black")] == 1
    data = prepare(load_config(written["lone-score"])).data
    scored = data[data["outcome_improvement"].notna()]
    assert len(scored) == 30
    assert scored["ethnic_group"].astype(str).value_counts().to_dict() == {"White": 29, "Black": 1}
    black = scored[scored["ethnic_group"] == "Black"]["outcome_improvement"]
    assert black.tolist() == [LONE_SCORE]
    # The same person's lone wait is planted too, so the whole workbook is attacked for it.
    assert data.loc[data["ethnic_group"].eq("Black"), "wait_days"].tolist() == [LONE_WAIT]
    assert data["imd_quintile"].nunique() == 1
    assert set(data["ethnic_group"].astype(str)) == {"White", "Black"}


def test_the_lone_wait_tempts_the_medians_attack_and_the_step_withholds_it(tmp_path):
    """Per-field medians as computed would tell on which side the one Black person's wait
    lies; the gaps step's published table of waits tells nothing."""
    from equity_helpers import analysis, open_service
    from equity_helpers.steps import access_and_outcome_gaps

    from .attacks import _MEDIANS, attack_folder

    config = build_lone_wait(tmp_path / "input")
    truth, groups = _groups(config)
    assert groups[("ethnic_group", "Black")] == 1
    service = open_service(config, output_dir=tmp_path / "step" / "tables")
    data = service.data
    black = data.loc[data["ethnic_group"].eq("Black"), "wait_days"]
    assert black.tolist() == [LONE_WAIT]
    assert data["imd_quintile"].nunique() == 1  # one home area: one deprivation group
    # The medians by field, with only the small groups hidden: a reader learns the wait.
    raw = []
    for dim in ("ethnic_group", "imd_quintile"):
        part = analysis.group_median(data, dim, "wait_days", service.rule)
        raw.append(part.assign(Field=dim).fillna({"median": -1}))
    frame = pd.concat(raw)[["Field", "group", "n", "median"]]
    frame = frame.rename(columns={"n": "People seen", "median": "Median days"})
    (tmp_path / "raw" / "tables").mkdir(parents=True)
    frame.astype(str).replace({"<NA>": "*", "-1.0": "*"}).to_csv(
        tmp_path / "raw" / "tables" / "waits.csv", index=False
    )
    leaky = attack_folder(tmp_path / "raw", truth)
    (finding,) = [f for f in leaky.findings if f.attack == _MEDIANS]
    assert "at most" in finding.what and "Black" in finding.what, finding
    # The step's own table, as the workbook writes it: nothing is told.
    result = access_and_outcome_gaps.run(service)
    result.export(service)
    assert (tmp_path / "step" / "tables" / "waits_by_group.csv").is_file()
    report = attack_folder(tmp_path / "step", truth)
    assert not [f for f in report.findings if f.attack == _MEDIANS], report.text()
    waits = result.tables["waits"].frame
    assert waits.loc[waits["Field"].ne("Ethnic group"), "Median days"].isna().all()
    assert waits.loc[waits["Group"].eq("White"), "Median days"].notna().all()


def test_the_command_line_prints_findings_and_fails(tmp_path, capsys):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "t.csv").write_text("Group,People\nA,*\nB,10\nC,10\nTotal,15\n")
    (tmp_path / "manifest.json").write_text(json.dumps({"service": "x"}))
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "hidden count * is exactly 1" in out and "attacks tried" in out

    (tmp_path / "tables" / "t.csv").write_text("Group,People\nA,40\nB,10\n")
    assert main([str(tmp_path)]) == 0
    assert "0 distinct finding(s)" in capsys.readouterr().out


def test_the_command_line_wants_a_built_workbook(tmp_path):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path)])
    assert stop.value.code == 2
