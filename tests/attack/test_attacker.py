"""The attacker has teeth: it finds each kind of leak on small hand-made publications, and
finds nothing on a publication controlled correctly.

Each "publication" is a folder of a few files laid out as a workbook publishes them
(``tables/*.csv``, ``html/*.html``, ``notebooks/*.ipynb``, ``manifest.json``), written in a
temporary folder. No workbook is built here, so these tests are fast.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equity_helpers.privacy import OTHER_SMALL_GROUPS, control_table, export_table

from .attacks import _MEDIANS as MEDIANS
from .attacks import attack_folder
from .facts import parse_cell, read_publication
from .truth import Group, Truth

RULE_LINE = (
    "# Counts of 1 to 7 are shown as * and other counts are rounded to the nearest 5; "
    "percentages built on a hidden count are hidden too."
)


def publish(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def notebook(*outputs: dict, markdown: str = "") -> str:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": markdown}] if markdown else []
    cells.append(
        {
            "cell_type": "code",
            "metadata": {},
            "source": "show()",
            "execution_count": 1,
            "outputs": list(outputs),
        }
    )
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def html(body: str) -> str:
    return f"<html><head><script>var x = '3 people';</script></head><body>{body}</body></html>"


def found(report, attack: str, *words: str) -> list:
    return [
        f
        for f in report.findings
        if f.attack.startswith(attack) and all(w in f"{f.where} {f.what}" for w in words)
    ]


# ----------------------------------------------------------------------------- reading


def test_cells_are_read_with_their_kind_and_precision():
    assert (parse_cell("*").kind, parse_cell("0").value, parse_cell("1,235").value) == (
        "hidden",
        0.0,
        1235.0,
    )
    assert parse_cell("hidden").kind == "hidden"  # as in the data behind a chart
    p = parse_cell("94.1%")
    assert (p.kind, p.value, p.decimals, p.percent) == ("number", 94.1, 1, True)
    assert parse_cell("Lone Religion 485 777 3456").kind == "text"


def test_everything_published_is_read(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Referrals by group"])
    book.active.append([])
    book.active.append(["Group", "People"])
    book.active.append(["Asian", "*"])
    (tmp_path / "tables").mkdir()
    book.save(tmp_path / "tables" / "t.xlsx")
    publish(
        tmp_path,
        {
            "html/index.html": html(
                "<p>Front page</p><img alt='Chart: 3 people'><table><thead><tr><th>Group</th>"
                "<th>People</th></tr></thead><tbody><tr><td>White</td><td>320</td></tr>"
                "</tbody></table>"
            ),
            "notebooks/a.ipynb": notebook(
                {"output_type": "stream", "name": "stdout", "text": "printed line\n"}
            ),
            "html/searchindex.js": "Search.setIndex({terms: {jedi: 1}})",
            "manifest.json": json.dumps({"headlines": {"top": "Religion: Jedi"}}),
        },
    )
    pub = read_publication(tmp_path)
    assert {t.source for t in pub.tables} == {"tables/t.xlsx", "html/index.html"}
    texts = {t.text for t in pub.texts}
    assert {"Chart: 3 people", "printed line", "headlines.top: Religion: Jedi"} <= texts
    assert "3 people" not in " ".join(
        t.text
        for t in pub.texts
        if t.source == "html/index.html" and t.where != "alt text of an image"
    )
    assert "jedi" in pub.raw["html/searchindex.js"]


# ----------------------------------------------------------------------------- each leak is found


def test_i_percentage_of_an_exact_total_gives_the_hidden_count_away(tmp_path):
    # 99.8% of a total published as 400: the hidden 'Not known' can only be 1.
    publish(
        tmp_path,
        {
            "tables/data_completeness.csv": "\n".join(
                [
                    "# Completeness of equality fields",
                    RULE_LINE,
                    "Field,Records,Recorded,Not stated,Not known,Invalid,% recorded,"
                    "% not stated or not known",
                    "Age band,400,400,0,*,0,99.8,*",
                    "Ethnicity,400,330,40,30,0,82.5,17.5",
                ]
            )
        },
    )
    report = attack_folder(tmp_path)
    hits = found(report, "iv", "Age band", "Not known", "is exactly 1")
    assert hits, report.findings
    assert "Records" in hits[0].how and "% recorded" in hits[0].how


def test_i_percentages_sharing_a_total_undo_rounding(tmp_path):
    # Asian 10 (2.7%) beside White 320 (94.1%): the total is 338 to 342, so Asian is 9.
    publish(
        tmp_path,
        {
            "html/steps/who.html": html(
                "<p>Referrals by ethnic group: Asian 10 (2.7%), White 320 (94.1%).</p>"
            )
        },
    )
    report = attack_folder(tmp_path)
    assert found(report, "i percentage", "Asian 10", "exactly 9"), report.findings


def test_i_a_count_of_a_published_total_with_its_percentage_is_exact(tmp_path):
    publish(
        tmp_path,
        {"html/index.html": html("<p>Core20 areas sent 55 of 395 referrals (14.5%).</p>")},
    )
    # 55 stands for 53 to 57 and 395 for 393 to 397; only 57 / 393 or 57 / 394 give 14.5%.
    report = attack_folder(tmp_path)
    assert found(report, "i percentage", "55", "exactly 57"), report.findings


def test_i_a_table_column_of_counts_with_percentages_shares_one_total(tmp_path):
    publish(
        tmp_path,
        {
            "html/steps/who.html": html(
                "<table><thead><tr><th>Group</th><th>Referrals</th></tr></thead><tbody>"
                "<tr><td>Asian</td><td>10 (2.7%)</td></tr>"
                "<tr><td>White</td><td>320 (94.1%)</td></tr></tbody></table>"
            )
        },
    )
    report = attack_folder(tmp_path)
    assert found(report, "i percentage", "Asian 10", "exactly 9"), report.findings


def test_ix_a_percentage_with_its_interval_gives_the_number_of_people(tmp_path):
    from equity_helpers.stats import wilson_ci

    low, high = wilson_ci(40, 59)
    publish(
        tmp_path,
        {
            "tables/pathway.csv": "Split,Group,Referred,% completed,Lower limit,Upper limit\n"
            f"Age group,65+,60,{100 * 40 / 59:.1f},{100 * low:.1f},{100 * high:.1f}\n"
        },
    )
    report = attack_folder(tmp_path)
    assert found(report, "ix", "65+", "exactly 40 of 59"), report.findings


def test_ix_a_percentage_built_from_the_counts_beside_it_tells_nothing_more(tmp_path):
    """Built from the published (rounded) counts, the interval pins only those counts."""
    from equity_helpers.stats import wilson_ci

    low, high = wilson_ci(40, 60)
    publish(
        tmp_path,
        {
            "tables/pathway.csv": "Split,Group,Referred,Completed,% completed,Lower limit,"
            f"Upper limit\nAge group,65+,60,40,{100 * 40 / 60:.1f},{100 * low:.1f},"
            f"{100 * high:.1f}\n"
        },
    )
    report = attack_folder(tmp_path)
    assert not found(report, "ix"), report.findings
    assert report.tried["ix percentage explained by the published counts"] == 1


def test_ix_an_interval_from_exact_counts_beside_rounded_ones_is_still_found(tmp_path):
    """The row publishes 60 and 40 (rounded); the interval is of the exact 41 of 59."""
    from equity_helpers.stats import wilson_ci

    low, high = wilson_ci(41, 59)
    publish(
        tmp_path,
        {
            "tables/pathway.csv": "Split,Group,Referred,Completed,% completed,Lower limit,"
            f"Upper limit\nAge group,65+,60,40,{100 * 41 / 59:.1f},{100 * low:.1f},"
            f"{100 * high:.1f}\n"
        },
    )
    report = attack_folder(tmp_path)
    assert found(report, "ix", "65+", "exactly 41 of 59"), report.findings


def test_ix_an_interval_about_a_small_group_is_found_even_beside_its_counts(tmp_path):
    """Shown counts of a group of 5 people are a leak whatever the percentage agrees with."""
    from equity_helpers.stats import wilson_ci

    low, high = wilson_ci(3, 5)
    truth = Truth(groups=[Group("religion", "Religion", "Jedi", 5)])
    publish(
        tmp_path,
        {
            "tables/pathway.csv": "Split,Group,Referred,Completed,% completed,Lower limit,"
            f"Upper limit\nReligion,Jedi,5,3,{100 * 3 / 5:.1f},{100 * low:.1f},"
            f"{100 * high:.1f}\n"
        },
    )
    report = attack_folder(tmp_path, truth)
    assert found(report, "ix", "Jedi", "exactly 3 of 5"), report.findings


def test_ii_a_total_row_minus_the_visible_rows_gives_the_hidden_one(tmp_path):
    # 1, 8, 8 with total 17 published as *, 10, 10 and 15 (test_privacy's example).
    publish(
        tmp_path,
        {"tables/t.csv": "Group,People\nA,*\nB,10\nC,10\nTotal,15\n"},
    )
    report = attack_folder(tmp_path)
    hits = found(report, "ii", "row 'A'", "is exactly 1")
    assert hits and "total row" in hits[0].how, report.findings


def test_ii_a_total_column_minus_the_visible_cells_gives_the_hidden_one(tmp_path):
    # 7, 12, 12, 12 with total 43 published as *, 10, 10, 10 and 45.
    publish(tmp_path, {"tables/t.csv": "Quarter,a,b,c,d,Total\nQ1,*,10,10,10,45\n"})
    report = attack_folder(tmp_path)
    assert found(report, "ii", "column 'a'", "is exactly 7"), report.findings


def test_iv_every_cell_the_program_pins_is_the_true_count(tmp_path):
    """Soundness and reach: on tables controlled without secondary suppression, the integer
    program pins some hidden cells, and every value it pins is the true one."""
    rng = np.random.default_rng(7)
    pinned = checked = 0
    # Rows whose small count the totals give away when no second cell is hidden.
    recoverable = [[1, 8, 8], [1, 8, 13], [7, 12, 12], [1, 13, 8]]
    for k in range(12):
        truth_grid = rng.integers(8, 60, size=(3, 3))
        truth_grid[rng.integers(0, 3)] = rng.permutation(recoverable[k % 4])
        frame = pd.DataFrame(truth_grid, columns=["a", "b", "c"], index=["X", "Y", "Z"])
        table = control_table(
            frame, ["a", "b", "c"], total_row=bool(k % 2), total_column=True, secondary=False
        )
        folder = tmp_path / f"t{k}"
        folder.mkdir()
        export_table(table, folder / "t.csv", folder / "t.xlsx", title="Counts")
        (folder / "t.xlsx").unlink()
        report = attack_folder(folder)
        full = frame.copy()
        full["Total"] = full.sum(axis=1)
        full.loc["Total"] = full.sum(axis=0)
        assert report.tried["iv cell"] > 0
        for f in report.findings:
            if "is exactly" not in f.what:
                continue
            row = f.where.split("row '")[1].split("'")[0]
            column = f.where.split("column '")[1].split("'")[0]
            value = (
                int(f.what.rsplit(" ", 1)[1])
                if "rounding" not in f.what
                else int(f.what.split("is exactly ")[1].split(" ")[0])
            )
            assert full.loc[row, column] == value, (f, full)
            pinned += "hidden" in f.what
            checked += 1
    assert pinned >= 3, "the program should recover some hidden cells of unprotected tables"


def test_iii_a_count_hidden_in_one_table_and_shown_in_another(tmp_path):
    publish(
        tmp_path,
        {
            "tables/a.csv": "Field,Group,People\nReligion,Sikh,*\nReligion,Christian,120\n",
            "html/steps/b.html": html(
                "<table><thead><tr><th>Field</th><th>Group</th><th>People</th></tr></thead>"
                "<tbody><tr><td>Religion</td><td>Sikh</td><td>10</td></tr></tbody></table>"
            ),
        },
    )
    report = attack_folder(tmp_path)
    assert found(report, "iii", "sikh", "hidden in tables/a.csv"), report.findings


def test_v_a_rate_about_a_one_person_group_is_found(tmp_path):
    truth = Truth(groups=[Group("religion", "Religion", "Jedi", 1)])
    publish(
        tmp_path,
        {
            "tables/measures_by_group.csv": "Field,Group,Missed appointments %,Completed %\n"
            "Religion,Jedi,75.0,*\nReligion,Christian,8.1,80.2\n",
            "tables/pathway.csv": "Split,Group,Referred,Completed\nReligion,Jedi,*,0\n",
        },
    )
    report = attack_folder(tmp_path, truth)
    assert found(report, "v", "Jedi", "75.0"), report.findings
    assert found(report, "v", "Jedi", "'Completed' = 0"), report.findings
    assert not found(report, "v", "Christian")


def _chart_data(rows: str) -> str:
    """A chart's folded data table, as a workbook page writes it under the chart."""
    return html(
        "<details class='chart-data'><summary>Data behind this chart</summary><table>"
        "<caption>Data behind the chart: Missed appointments, by religion</caption>"
        "<thead><tr><th>Group</th><th>% of offered appointments missed</th><th>95% lower</th>"
        f"<th>95% upper</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


def test_v_a_rate_in_the_data_behind_a_chart_is_read_and_attacked(tmp_path):
    truth = Truth(groups=[Group("religion", "Religion", "Jedi", 1)])
    row = "<tr><td>Christian</td><td>8.1</td><td>7.0</td><td>9.3</td></tr>"
    publish(
        tmp_path / "leaky",
        {"html/a.html": _chart_data(row + "<tr><td>Jedi</td><td>75.0</td><td>45.0</td>"
                                    "<td>92.0</td></tr>")},
    )  # fmt: skip
    report = attack_folder(tmp_path / "leaky", truth)
    assert found(report, "v", "Jedi", "75.0"), report.findings
    publish(
        tmp_path / "controlled",
        {"html/a.html": _chart_data(row + "<tr><td>Jedi</td><td>hidden</td><td>hidden</td>"
                                    "<td>hidden</td></tr>")},
    )  # fmt: skip
    pub = read_publication(tmp_path / "controlled")
    assert [t.title for t in pub.tables] == [
        "Data behind the chart: Missed appointments, by religion"
    ]
    assert [c.kind for c in pub.tables[0].cells(1)][1:] == ["hidden"] * 3
    assert not found(attack_folder(tmp_path / "controlled", truth), "v", "Jedi")


def test_v_the_merged_line_is_judged_by_the_size_of_everything_merged_into_it(tmp_path):
    """ "Other (small groups)" holds every small label (here 7 + 5 + 6 = 18 people): it is
    not the extract's own answer "Other", which is matched only to a line called "Other"."""
    truth = Truth(
        groups=[
            Group("religion", "Religion", "Other", 7),
            Group("religion", "Religion", "Jedi", 5),
            Group("religion", "Religion", "Pastafarian", 6),
            Group("religion", "Religion", OTHER_SMALL_GROUPS, 18),
        ]
    )
    publish(
        tmp_path,
        {
            "tables/measures_by_group.csv": "Field,Group,Accepted %\n"
            f"Religion,{OTHER_SMALL_GROUPS},94.4\nReligion,Other,85.7\n",
            "tables/missed.csv": "Measure,Group,%\n"
            f"Missed appointments,Religion: {OTHER_SMALL_GROUPS},30.8\n",
        },
    )
    report = attack_folder(tmp_path, truth)
    assert not found(report, "v", "(small groups)"), report.findings
    assert found(report, "v", "row 'Religion / Other'", "'Other' has 7", "85.7"), report.findings


def test_v_a_merged_line_of_seven_or_fewer_people_is_still_a_small_group(tmp_path):
    truth = Truth(
        groups=[
            Group("religion", "Religion", "Jedi", 1),
            Group("religion", "Religion", OTHER_SMALL_GROUPS, 1),
        ]
    )
    publish(
        tmp_path,
        {
            "tables/measures_by_group.csv": "Field,Group,Accepted %\n"
            f"Religion,{OTHER_SMALL_GROUPS},100.0\nReligion,Christian,90.2\n",
        },
    )
    report = attack_folder(tmp_path, truth)
    assert found(report, "v", "(small groups)", "has 1 person", "100.0"), report.findings
    assert not found(report, "v", "Christian")


def test_v_a_mean_beside_a_hidden_group_size_is_found_without_the_truth(tmp_path):
    publish(
        tmp_path,
        {
            "tables/outcome.csv": "Field,Group,People,Mean improvement\nSex,X,*,10.9\nSex,Female,200,11.2\n"
        },
    )
    report = attack_folder(tmp_path)
    assert found(report, "v", "row 'Sex / X'", "10.9"), report.findings


def test_vi_a_small_free_text_label_is_found_in_every_kind_of_file(tmp_path):
    from openpyxl import Workbook

    label = "Lone Religion 485 777 3456"
    truth = Truth(labels={label: 1})
    book = Workbook()
    book.active.append(["Religion", label])
    (tmp_path / "tables").mkdir()
    book.save(tmp_path / "tables" / "r.xlsx")
    publish(
        tmp_path,
        {
            "tables/r.csv": f"Field,Group,People\nReligion,{label},*\n",
            "notebooks/who.ipynb": notebook(
                {"output_type": "stream", "name": "stdout", "text": f"['{label}']\n"}
            ),
            "html/searchindex.js": f'Search.setIndex({{"t": "{label.lower()}"}})',
        },
    )
    report = attack_folder(tmp_path, truth)
    sources = {f.source for f in found(report, "vi")}
    assert sources == {
        "tables/r.xlsx",
        "tables/r.csv",
        "notebooks/who.ipynb",
        "html/searchindex.js",
    }


def test_vii_small_exact_counts_in_prose_alt_text_and_tables_are_found(tmp_path):
    publish(
        tmp_path,
        {
            "html/steps/dq.html": html(
                "<ul><li>Codes not recognised: 6 rows in 'Ethnic Category'</li></ul>"
                "<img alt='Bar chart: two people in the Other group'>"
                "<p>About 5 referrals for every 10 you would expect.</p>"
                "<p>Map your pathway, one row for each step.</p>"
            ),
            "tables/t.csv": "Group,People\nA,3\nB,40\n",
            "html/steps/more.html": html("<p>We read 2,024 referrals and 120 rows.</p>"),
        },
    )
    report = attack_folder(tmp_path)
    assert found(report, "vii unrounded", "2,024 referrals")
    assert not found(report, "vii unrounded", "120 rows")
    assert found(report, "vii", "6 rows")
    assert found(report, "vii", "alt text", "two people")
    assert found(report, "vii", "row 'A'", "count 3")
    assert not found(report, "vii", "5 referrals")  # a ratio, not a count
    assert not found(report, "vii", "one row")  # nor is "one row for each step"


def test_vii_a_group_named_by_a_number_is_a_label_not_a_count(tmp_path):
    """One deprivation quintile, labelled "2", in a column headed "Group" names a group; the
    same small number in a column of people is still a count."""
    publish(
        tmp_path,
        {
            "tables/stages.csv": "Group,Stage,People\n2,Referred,315\n2,Accepted,280\n",
            "tables/small.csv": "Quintile group,Stage,People\nQ2,Referred,2\nQ3,Referred,40\n",
        },
    )
    report = attack_folder(tmp_path)
    assert not found(report, "vii", "column 'Group'")
    assert found(report, "vii", "row 'Q2 / Referred'", "count 2")


def test_vii_the_row_account_of_the_file_is_exact_on_purpose(tmp_path):
    """Rows of the file, left out and why, say nothing about anyone's characteristics;
    the same small count in a table about people is still a finding."""
    account = (
        "<table><thead><tr><th></th><th>Rows</th></tr></thead><tbody>"
        "<tr><td>Rows read from the extract</td><td>400</td></tr>"
        "<tr><td>{prefix} referral id is blank</td><td>2</td></tr>"
        "<tr><td>{prefix} referral date is in the future</td><td>1</td></tr>"
        "<tr><td>Rows {used}</td><td>397</td></tr></tbody></table>"
    )
    appointments = (
        "<table><thead><tr><th></th><th>Rows</th></tr></thead><tbody>"
        "<tr><td>Appointment rows read</td><td>1200</td></tr>"
        "<tr><td>Not counted: appointment rows repeated</td><td>2</td></tr>"
        "<tr><td>Not counted: appointments for referrals not in the referral file</td>"
        "<td>1</td></tr>"
        "<tr><td>Appointments counted</td><td>1197</td></tr></tbody></table>"
    )
    publish(
        tmp_path,
        {
            "html/index.html": html(account.format(prefix="Left out:", used="analysed")),
            "html/steps/dq.html": html(appointments),
            "tables/people.csv": "Group,People\nLeft out: referral id is blank,3\n",
        },
    )
    report = attack_folder(tmp_path)
    assert not [f for f in found(report, "vii") if f.source.startswith("html/")], report.findings
    assert report.tried["vii row account of the file (exact on purpose)"] == 4
    # Only the account's own labels are exempt: a label the playbook does not write is not.
    publish(
        tmp_path, {"html/steps/old.html": html(account.format(prefix="Excluded:", used="used"))}
    )
    report = attack_folder(tmp_path)
    assert found(report, "vii", "row 'Excluded: referral id is blank'"), report.findings
    # A count of people is not a row of the file, whatever its row is called.
    assert found(report, "vii", "row 'Left out: referral id is blank'", "column 'People'")
    # A table about people is not a row account, whatever its count column is called.
    publish(tmp_path, {"tables/religion.csv": "Religion,Rows\nJedi,2\nChristian,40\n"})
    report = attack_folder(tmp_path)
    assert found(report, "vii", "row 'Jedi'", "count 2"), report.findings


def test_viii_a_machine_path_in_a_published_file_is_found(tmp_path):
    wb = tmp_path / "workbooks" / "service"
    publish(
        wb,
        {
            "notebooks/a.ipynb": json.dumps(
                {
                    "cells": [],
                    "metadata": {
                        "papermill": {"input_path": str(wb.parent / ".service.partial-1")}
                    },
                }
            ),
            "tables/t.csv": "Group,People\nA,40\n",
        },
    )
    report = attack_folder(wb)
    assert [f.source for f in found(report, "viii")] == ["notebooks/a.ipynb"]


def _outcome_page(rows: list[tuple[str, str, str, str, str]], sentence: str) -> str:
    """A page with a table of mean improvement by ethnic group and a sentence under it."""
    body = "".join(
        f"<tr><td>Ethnic group</td><td>{g}</td><td>{n}</td><td>{m}</td><td>{lo}</td><td>{hi}</td></tr>"
        for g, n, m, lo, hi in rows
    )
    return html(
        "<table><thead><tr><th>Field</th><th>Group</th><th>People</th><th>Mean improvement</th>"
        f"<th>95% lower</th><th>95% upper</th></tr></thead><tbody>{body}</tbody></table>"
        f"<p>{sentence}</p>"
    )


def test_x_an_overall_mean_beside_the_groups_shown_gives_the_hidden_one_away(tmp_path):
    # 19 White people improved by 5.0 points on average and one Black person by 40: the
    # overall mean (6.75) times 20, minus 5.0 times about 20, is the one person's score.
    truth = Truth(groups=[Group("ethnic_group", "Ethnic group", "Black", 1)])
    rows = [("White", "20", "5.0", "3.0", "7.0"), ("Black", "*", "*", "*", "*")]
    publish(
        tmp_path / "leaky",
        {"html/a.html": _outcome_page(rows, "On average, scores improved by 6.8 points.")},
    )
    (finding,) = found(attack_folder(tmp_path / "leaky", truth), "x", "Black")
    low, high = (float(v) for v in re.findall(r"between (\S+) and (\S+)", finding.what)[0])
    assert low <= 40 <= high and high - low < 15, finding
    # With the overall figure withheld, nothing is found.
    publish(
        tmp_path / "controlled",
        {
            "html/a.html": _outcome_page(
                rows,
                "The average improvement for everyone is not shown, because a group in the "
                "table is hidden.",
            )
        },
    )
    report = attack_folder(tmp_path / "controlled", truth)
    assert not found(report, "x"), report.findings
    assert report.tried["x overall figure beside the groups shown"] == 0


def test_x_an_overall_mean_over_many_people_is_blurred_by_rounding(tmp_path):
    # 400 people: the rounding of one decimal place spreads over 40 points of the total,
    # so the one hidden person's score could be almost anything.
    truth = Truth(groups=[Group("ethnic_group", "Ethnic group", "Black", 1)])
    rows = [("White", "400", "5.0", "4.5", "5.5"), ("Black", "*", "*", "*", "*")]
    publish(
        tmp_path,
        {"html/a.html": _outcome_page(rows, "On average, scores improved by 5.1 points.")},
    )
    report = attack_folder(tmp_path, truth)
    assert report.tried["x overall figure beside the groups shown"] == 1
    assert not found(report, "x"), report.findings


def _two_field_page(rows: list[tuple[str, str, str, str, str, str]]) -> str:
    body = "".join(
        f"<tr><td>{f}</td><td>{g}</td><td>{n}</td><td>{m}</td><td>{lo}</td><td>{hi}</td></tr>"
        for f, g, n, m, lo, hi in rows
    )
    return html(
        "<table><thead><tr><th>Field</th><th>Group</th><th>People</th><th>Mean improvement</th>"
        f"<th>95% lower</th><th>95% upper</th></tr></thead><tbody>{body}</tbody></table>"
    )


def test_xi_a_field_with_every_group_shown_gives_the_hidden_one_of_another_away(tmp_path):
    # 19 White people improved by 5.0 and one Black person by 40; by sex, 10 women by 6.8
    # and 10 men by 6.7 (everyone, every group shown): their total minus the White total
    # is the one person's score.
    truth = Truth(groups=[Group("ethnic_group", "Ethnic group", "Black", 1)])
    rows = [
        ("Ethnic group", "White", "20", "5.0", "3.0", "7.0"),
        ("Ethnic group", "Black", "*", "*", "*", "*"),
        ("Sex", "Female", "10", "6.8", "2.0", "11.6"),
        ("Sex", "Male", "10", "6.7", "2.0", "11.4"),
    ]
    publish(tmp_path / "leaky", {"html/a.html": _two_field_page(rows)})
    (finding,) = found(attack_folder(tmp_path / "leaky", truth), "xi", "Black")
    low, high = (float(v) for v in re.findall(r"between (\S+) and (\S+)", finding.what)[0])
    assert low <= 40 <= high, finding
    # With a group of the second field hidden too, its total is no longer everyone's.
    rows[3] = ("Sex", "Male", "*", "*", "*", "*")
    publish(tmp_path / "controlled", {"html/a.html": _two_field_page(rows)})
    report = attack_folder(tmp_path / "controlled", truth)
    assert not found(report, "xi"), report.findings


def _waits_page(blocks: dict[str, dict[str, list[int] | None]], sentence: str = "") -> str:
    """A table of median waits by field, as the gaps page publishes it: each field's groups
    with their waits (None: the group is hidden), counts rounded to 5, 1 to 7 hidden."""
    body = ""
    for field, groups in blocks.items():
        for group, waits in groups.items():
            if waits is None or len(waits) <= 7:
                cells = ["*"] * 4
            else:
                q1, med, q3 = np.quantile(waits, [0.25, 0.5, 0.75])
                n = 5 * round(len(waits) / 5)
                cells = [str(n), f"{med:.1f}", f"{q1:.1f}", f"{q3:.1f}"]
            body += f"<tr><td>{field}</td><td>{group}</td>" + "".join(
                f"<td>{c}</td>" for c in cells
            )
            body += "</tr>"
    return html(
        "<table><thead><tr><th>Field</th><th>Group</th><th>People seen</th><th>Median days</th>"
        f"<th>Lower quartile</th><th>Upper quartile</th></tr></thead><tbody>{body}</tbody>"
        f"</table><p>{sentence}</p>"
    )


def _bound(finding) -> tuple[str, float]:
    side, value = re.findall(r"value of (at most|at least) (\S+)$", finding.what)[0]
    return side, float(value)


WHITE = [3, 8, 10, 12, 15, 18, 20, 21, 22, 25, 27, 30, 31, 33, 40, 41, 50, 55, 60]


def test_xi_medians_with_and_without_a_hidden_person_tell_which_side_they_lie(tmp_path):
    # 19 White people and one Black person who waited 4 days. Everyone is a woman, so the
    # one group of the field "Sex" is everyone: its median (23.5) is below the White
    # median (25), so the Black person waited at most 23.5 days.
    truth = Truth(groups=[Group("ethnic_group", "Ethnic group", "Black", 1)])
    everyone = [*WHITE, 4]
    blocks = {"Ethnic group": {"White": WHITE, "Black": [4]}, "Sex": {"Female": everyone}}
    publish(tmp_path / "field", {"html/a.html": _waits_page(blocks)})
    report = attack_folder(tmp_path / "field", truth)
    (finding,) = found(report, "xi medians", "Black")
    assert "the one person in 'Ethnic group / Black'" in finding.what, finding
    assert _bound(finding) == ("at most", 23.55)  # 23.5, as rounding to 1 decimal allows
    assert 4 <= _bound(finding)[1] < np.median(WHITE)  # true, and below the White median
    # The same from a sentence giving the median wait for everyone, on the same page.
    del blocks["Sex"]
    page = _waits_page(blocks, "The median wait for everyone is 23.5 days.")
    publish(tmp_path / "sentence", {"html/a.html": page})
    (finding,) = found(attack_folder(tmp_path / "sentence", truth), "xi medians", "Black")
    assert _bound(finding) == ("at most", 23.55)
    # A person who waited longest moves everyone's median up: at least that far.
    blocks = {"Ethnic group": {"White": WHITE, "Black": [90]}, "Sex": {"Female": [*WHITE, 90]}}
    publish(tmp_path / "long", {"html/a.html": _waits_page(blocks)})
    (finding,) = found(attack_folder(tmp_path / "long", truth), "xi medians", "Black")
    assert _bound(finding) == ("at least", 25.95)  # everyone's median is 26


def test_xi_medians_tell_nothing_when_everyone_s_median_is_withheld(tmp_path):
    truth = Truth(groups=[Group("ethnic_group", "Ethnic group", "Black", 1)])
    # The only group of a field is hidden when another field hides one, and the sentence
    # for everyone says it is withheld: no median of everyone is published.
    blocks = {"Ethnic group": {"White": WHITE, "Black": [4]}, "Sex": {"Female": None}}
    sentence = "The median wait for everyone is not shown. A group in the table above is hidden."
    publish(tmp_path / "withheld", {"html/a.html": _waits_page(blocks, sentence)})
    report = attack_folder(tmp_path / "withheld", truth)
    assert not found(report, "xi medians"), report.findings
    assert report.tried[MEDIANS] == 0
    # Two groups shown in the field beside it: medians do not add up to everyone's.
    blocks["Sex"] = {"Female": [*WHITE[:9], 4], "Male": WHITE[9:]}
    publish(tmp_path / "two", {"html/a.html": _waits_page(blocks)})
    report = attack_folder(tmp_path / "two", truth)
    assert not found(report, "xi medians") and report.tried[MEDIANS] == 0
    # Everyone's median the same as the others': nothing is told, though it was tried.
    white = [*WHITE[:9], 25, 25, *WHITE[10:]]  # 20 people; the median 25 either way
    blocks = {"Ethnic group": {"White": white, "Black": [25]}, "Sex": {"Female": [*white, 25]}}
    publish(tmp_path / "same", {"html/a.html": _waits_page(blocks)})
    report = attack_folder(tmp_path / "same", truth)
    assert report.tried[MEDIANS] == 1 and not found(report, "xi medians"), report.findings


@pytest.mark.parametrize("seed", range(20))
def test_xi_what_the_medians_attack_says_of_hidden_people_is_true(tmp_path, seed):
    """Random waits, one to three hidden people: every bound found holds for one of them."""
    rng = np.random.default_rng(seed)
    hidden = [int(v) for v in rng.integers(0, 120, size=rng.integers(1, 4))]
    white = [int(v) for v in rng.integers(0, 120, size=rng.integers(8, 40))]
    truth = Truth(groups=[Group("ethnic_group", "Ethnic group", "Black", len(hidden))])
    blocks = {
        "Ethnic group": {"White": white, "Black": hidden},
        "Sex": {"Female": white + hidden},
    }
    publish(tmp_path, {"html/a.html": _waits_page(blocks)})
    report = attack_folder(tmp_path, truth)
    assert report.tried[MEDIANS] == 1
    everyone, others = np.median(white + hidden), np.median(white)
    findings = found(report, "xi medians", "Black")
    # Found exactly when the two medians, as published, differ.
    assert bool(findings) == (round(everyone, 1) != round(others, 1)), (everyone, others)
    for finding in findings:
        side, bound = _bound(finding)
        assert any(v <= bound if side == "at most" else v >= bound for v in hidden), finding


# ----------------------------------------------------------------------------- and nothing on a clean one


@pytest.mark.parametrize("seed", range(6))
def test_a_correctly_controlled_publication_gives_nothing_away(tmp_path, seed):
    """Counts controlled with secondary suppression, percentages from the published
    (rounded) counts, hidden where the count is hidden; the rule stated in words."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(8, 90, size=(5, 3))
    for _ in range(2):
        grid[rng.integers(0, 5), rng.integers(0, 3)] = rng.integers(1, 8)
    frame = pd.DataFrame(grid, columns=["Referred", "Seen", "Completed"])
    frame.insert(0, "Group", ["Asian", "Black", "Mixed", "White", "Other"])
    table = control_table(
        frame, ["Referred", "Seen", "Completed"], total_row=True, total_column=True
    )
    (tmp_path / "tables").mkdir()
    export_table(
        table, tmp_path / "tables" / "t.csv", tmp_path / "tables" / "t.xlsx", title="Pathway"
    )
    shown = table.values
    pct = [
        "*" if pd.isna(n) or pd.isna(d) or d == 0 else f"{100 * n / d:.1f}"
        for n, d in zip(shown["Completed"], shown["Referred"], strict=True)
    ]
    people = table.display()
    rows = "".join(
        f"<tr><td>{g}</td><td>{r}</td><td>{c}</td><td>{p}</td></tr>"
        for g, r, c, p in zip(
            people["Group"], people["Referred"], people["Completed"], pct, strict=True
        )
    )
    publish(
        tmp_path,
        {
            "html/steps/pathway.html": html(
                f"<p>{RULE_LINE[2:]}</p><img alt='Bar chart of completion by group'>"
                "<table><thead><tr><th>Group</th><th>Referred</th><th>Completed</th>"
                f"<th>% completed</th></tr></thead><tbody>{rows}</tbody></table>"
                "<p>Groups of fewer than 8 people are not shown.</p>"
            )
        },
    )
    truth = Truth(groups=[Group("ethnic_group", "Ethnic group", "Zulu", 2)], labels={"Zulu": 2})
    report = attack_folder(tmp_path, truth)
    assert report.findings == [], "\n".join(map(str, report.findings))
    assert report.tried["iv cell"] > 10 and report.attacks_tried > 100
