"""No input crashes a command: every problem is a catalogue message naming the file.

Each test here reproduces an input that once stopped `equity-workbook check`, `prepare`
or `init` with a Python traceback, or with the wrong words: sentinel dates, broken
reference files, a folder or a pipe where a file should be, and column names holding
line breaks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from equity_helpers.cli import main
from equity_helpers.config import load_config
from equity_helpers.errors import CATALOGUE, PlaybookError
from equity_helpers.extract import prepare
from equity_helpers.reference import load_imd
from equity_helpers.starter import check, write_starter_config

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "bad_inputs"
SAMPLE_REF = ROOT / "sample_data" / "reference"
OK_EXTRACT = CORPUS / "ok.csv"


def write_config(tmp_path: Path, extract: Path = OK_EXTRACT, **settings) -> Path:
    """The corpus's base config for ``extract``, with "section.key" settings changed."""
    raw = yaml.safe_load((CORPUS / "base_config.yml").read_text(encoding="utf-8"))
    raw["extract"]["path"] = str(extract)
    raw["reference"]["imd_path"] = str(SAMPLE_REF / "imd2025_file7_synthetic.csv")
    for dotted, value in settings.items():
        section, key = dotted.split(".")
        raw.setdefault(section, {})[key] = value
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """A command as a user runs it: its exit status and everything it printed."""
    capsys.readouterr()
    status = main(list(argv))
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "Traceback" not in shown, shown
    return status, shown


def codes_of(problems) -> list[str]:
    out = []
    for p in problems:
        out += [e.code for e in getattr(p, "errors", [p])]
    return out


# ----------------------------------------------------------------------------- sentinel dates


@pytest.mark.parametrize(
    "column", ["Date Referral Received", "First Contact Date", "Discharge Date"]
)
@pytest.mark.parametrize(
    "value", ["31/12/9999", "9999-12-31", "01/01/0001", "0001-01-01 00:00:00", "31.12.9999"]
)
def test_a_sentinel_date_in_any_date_column_is_not_a_date(tmp_path, capsys, column, value):
    table = pd.read_csv(OK_EXTRACT, dtype=str, keep_default_na=False)
    table.loc[1, column] = value
    extract = tmp_path / "extract.csv"
    table.to_csv(extract, index=False)
    config = write_config(tmp_path, extract)

    prepared = prepare(load_config(config))
    assert prepared.account.adds_up()
    code = "EXC002" if column == "Date Referral Received" else "VAL003"
    issue = prepared.issue(code, column)
    assert issue is not None, [i.message for i in prepared.issues]
    assert issue.rows == [3] and issue.example == value
    assert prepared.account.rows_used == (2 if code == "EXC002" else 3)

    status, shown = run_cli(capsys, "check", str(config))
    assert status == 0, shown
    status, shown = run_cli(capsys, "prepare", "--config", str(config))
    assert status == 0 and f"for example {value!r}" in shown, shown


def test_init_reads_an_extract_with_sentinel_dates(tmp_path):
    table = pd.read_csv(OK_EXTRACT, dtype=str, keep_default_na=False)
    table = pd.concat([table] * 4, ignore_index=True)
    table["Referral Ref"] = [f"R{i}" for i in range(len(table))]
    table.loc[0, "Date Referral Received"] = "31/12/9999"
    table.loc[1, "Discharge Date"] = "01/01/0001"
    extract = tmp_path / "extract.csv"
    table.to_csv(extract, index=False)
    path, _ = write_starter_config(extract)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written["columns"]["referral_date"] == "Date Referral Received"
    assert "dated 2022-04-01 to 2022-04-02" in path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- reference files

#: Every reference-file setting, with a working file for it where the sample has one.
REFERENCE_SETTINGS = [
    "reference.imd_path",
    "reference.population_ethnicity",
    "reference.population_age",
    "reference.population_sex",
    "reference.lsoa_lookup",
    "catchment.lsoa_file",
]


def _broken(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.csv"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 16)
    elif kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "folder":
        path.mkdir()
    elif kind == "header-only":
        path.write_text("lsoa21cd,imd_rank,imd_decile,asian,female,lsoa11cd\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["empty", "binary", "random", "folder", "header-only"])
@pytest.mark.parametrize("setting", REFERENCE_SETTINGS)
def test_check_names_a_broken_reference_file(tmp_path, capsys, setting, kind):
    broken = _broken(tmp_path, kind)
    config = write_config(tmp_path, **{setting: str(broken)})

    problems, report = check(config)
    assert problems, report
    for code in codes_of(problems):
        assert code in CATALOGUE, report
    assert str(broken) in report, report
    if kind == "folder":
        assert "is a folder, not a file" in report
    elif kind in ("empty", "binary", "header-only"):
        assert "A reference file cannot be read [REF005]" in report, report

    status, shown = run_cli(capsys, "check", str(config))
    assert status == 2 and str(broken) in shown, shown
    status, shown = run_cli(capsys, "prepare", "--config", str(config))
    assert status in (0, 2), shown
    if setting in ("reference.imd_path", "reference.lsoa_lookup", "catchment.lsoa_file"):
        assert status == 2 and str(broken) in shown, shown  # prepare reads these files


def test_a_latin1_deprivation_file_is_read(tmp_path):
    """A file re-saved by Excel as Latin-1 is read, accents and all (not a decode error)."""
    imd = pd.read_csv(SAMPLE_REF / "imd2025_file7_synthetic.csv", dtype=str)
    name_column = next(c for c in imd.columns if "name" in c.lower() and "LSOA" in c.upper())
    imd.loc[0, name_column] = "Ynys Môn 001A"
    path = tmp_path / "imd_latin1.csv"
    path.write_bytes(imd.to_csv(index=False).encode("latin-1"))
    loaded = load_imd(path, 2025)
    assert loaded.loc[0, "lsoa_name"] == "Ynys Môn 001A"
    assert len(loaded) == len(imd)


def test_a_deprivation_file_with_a_fractional_decile_is_not_a_crash(tmp_path):
    imd = pd.read_csv(SAMPLE_REF / "imd2025_file7_synthetic.csv", dtype=str)
    decile = next(c for c in imd.columns if "decile" in c.lower() and "IMD" in c.upper())
    imd.loc[0, decile] = "2.5"
    imd.loc[1, decile] = "inf"
    path = tmp_path / "imd.csv"
    imd.to_csv(path, index=False)
    loaded = load_imd(path, 2025)
    assert loaded["imd_decile"].isna().tolist()[:3] == [True, True, False]


# ----------------------------------------------------------------------------- not a file


def _special(tmp_path: Path, kind: str) -> tuple[Path, str]:
    if kind == "folder":
        path = tmp_path / "extract.csv"
        path.mkdir()
        return path, "is a folder, not a file"
    if kind == "fifo":
        path = tmp_path / "extract_fifo.csv"
        os.mkfifo(path)
        return path, "is not a regular file"
    return Path("/dev/zero"), "is not a regular file"


@pytest.mark.parametrize("kind", ["folder", "fifo", "devzero"])
def test_an_extract_that_is_not_a_file_is_named_for_what_it_is(tmp_path, capsys, kind):
    if kind == "devzero" and not Path("/dev/zero").exists():
        pytest.fail("this machine has no /dev/zero")
    path, words = _special(tmp_path, kind)
    config = write_config(tmp_path, path)
    for argv in (["check", str(config)], ["prepare", "--config", str(config)], ["init", str(path)]):
        status, shown = run_cli(capsys, *argv)
        assert status == 2, shown
        assert words in shown and str(path) in shown, shown
        assert "there is no file there" not in shown, shown
    with pytest.raises(PlaybookError) as err:
        load_config(config)
    assert err.value.code == "CFG009"


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_reference_setting_that_is_not_a_file_is_named(tmp_path, capsys, kind):
    path, words = _special(tmp_path, kind)
    config = write_config(tmp_path, **{"reference.population_sex": str(path)})
    status, shown = run_cli(capsys, "check", str(config))
    assert status == 2 and words in shown and "reference.population_sex" in shown, shown


# ----------------------------------------------------------------------------- init headers


def test_init_writes_headers_with_line_breaks_so_they_load_as_written(tmp_path):
    """A header "Ethnic\\nCategory" once ended a comment line, so the next line became a key."""
    table = pd.read_csv(OK_EXTRACT, dtype=str, keep_default_na=False)
    renamed = {
        "Ethnic Category": "Ethnic\nCategory",
        "Gender": "Gender # code: 1 or 2",
        "Age at Referral": "Age 'years'",
    }
    table = table.rename(columns=renamed)
    # An unused column whose name would become a real key if written into a comment as is.
    table["Notes\nservice: {name: Injected}\nperiod"] = "x"
    table['Reason "why"\r\nclosed'] = "y"
    extract = tmp_path / "extract.csv"
    table.to_csv(extract, index=False)

    path, todos = write_starter_config(extract)
    text = path.read_text(encoding="utf-8")
    written = yaml.safe_load(text)
    assert set(written) == {
        "service", "extract", "columns", "values", "catchment", "reference", "period",
        "evaluation", "outcome", "disclosure",
    }  # fmt: skip
    assert written["service"]["name"] == "TODO"
    assert written["columns"]["ethnicity"] == "Ethnic\nCategory"
    assert written["columns"]["sex"] == "Gender # code: 1 or 2"
    assert written["columns"]["age"] == "Age 'years'"
    assert '"Notes\\nservice: {name: Injected}\\nperiod"' in text  # escaped in its comment

    # Filled in, the written config maps every column to the extract and runs.
    written["service"]["name"] = "Header test"
    written["catchment"]["name"] = "Derby"
    written["reference"]["imd_path"] = str(SAMPLE_REF / "imd2025_file7_synthetic.csv")
    written["period"] = {"start": "2022-04-01", "end": "2025-03-31"}
    path.write_text(yaml.safe_dump(written, sort_keys=False), encoding="utf-8")
    prepared = prepare(load_config(path))
    assert prepared.account.rows_used == 3
    assert prepared.data["ethnicity"].tolist() == ["A", "A", "99"]
    assert prepared.data["sex"].tolist() == ["1", "2", "2"]


def test_init_reads_an_extract_with_a_repeated_column_name(tmp_path):
    extract = tmp_path / "extract.csv"
    lines = OK_EXTRACT.read_text(encoding="utf-8").splitlines()
    extract.write_text(
        "\n".join([lines[0] + ",Gender"] + [line + ",1" for line in lines[1:]]) + "\n",
        encoding="utf-8",
    )
    path, _ = write_starter_config(extract)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["columns"]["sex"] == "Gender"


# ----------------------------------------------------------------------------- who uses the service


@pytest.fixture(scope="module")
def no_valid_ethnicity(tmp_path_factory) -> Path:
    """The sample service, with every ethnic category replaced by a code not on the NHS list."""
    folder = tmp_path_factory.mktemp("no_valid_ethnicity")
    sample = ROOT / "sample_data"
    table = pd.read_csv(sample / "long_covid_service_extract.csv", dtype=str, keep_default_na=False)
    table["Ethnic Category"] = "QQ"
    table.to_csv(folder / "extract.csv", index=False)
    raw = yaml.safe_load((sample / "sample_service.yml").read_text(encoding="utf-8"))
    raw["extract"]["path"] = str(folder / "extract.csv")
    for key, value in raw["reference"].items():
        if isinstance(value, str):
            raw["reference"][key] = str(sample / value)
    raw.pop("readability", None)
    path = folder / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_who_uses_notebook_runs_when_no_ethnicity_is_valid(run_notebook, no_valid_ethnicity):
    nb, glued = run_notebook("who-uses-the-service", config_path=str(no_valid_ethnicity))
    shown = "\n".join(
        str(out.get("data", {}).get("text/markdown", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "No referral has an ethnic category on the NHS list" in shown
    assert glued["eth_sentence"] == "No comparison by ethnic group was possible."
    for name in ("age_sentence", "sex_sentence", "imd_sentence"):
        assert "No comparison" not in glued[name], glued[name]


# ----------------------------------------------------------------------------- found by fuzzing


def test_an_extract_with_no_readable_referral_date_says_no_rows_are_left(tmp_path):
    """Once a TypeError: with no date read, the future-date check had nothing to compare."""
    table = pd.read_csv(OK_EXTRACT, dtype=str, keep_default_na=False)
    table["Date Referral Received"] = ["soon", "", "31/12/9999"]
    extract = tmp_path / "extract.csv"
    table.to_csv(extract, index=False)
    with pytest.raises(PlaybookError) as err:
        prepare(load_config(write_config(tmp_path, extract)))
    assert err.value.code == "EXT010"
    assert "All 3 rows of" in str(err.value) and "not a date" in str(err.value)


@pytest.mark.parametrize("where", ["header", "value"])
def test_a_carriage_return_inside_an_unquoted_value_is_not_a_crash(tmp_path, where):
    """Once a csv.Error: a lone carriage return inside an unquoted header or value."""
    lines = OK_EXTRACT.read_text(encoding="utf-8").splitlines()
    if where == "header":
        lines[0] = lines[0].replace("Ethnic Category", "Ethnic\rCategory")
    else:
        lines[2] = lines[2].replace("Completed", "Comp\rleted")
    extract = tmp_path / "extract.csv"
    extract.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    with pytest.raises(PlaybookError) as err:
        prepare(load_config(write_config(tmp_path, extract)))
    assert err.value.code in ("EXT004", "EXT013"), str(err.value)
    assert "extract.csv" in str(err.value)


@pytest.mark.parametrize(
    "text, code",
    [
        ("?\n", "CFG003"),  # a key with no name
        ("catchment:\n  local_authorities: 2025\n", "CFG005"),  # a number, not a list
        ("extract:\n  date_format: '%Q'\n", "CFG005"),  # a format pandas cannot use
    ],
)
def test_odd_config_values_get_a_catalogue_message(tmp_path, text, code):
    path = tmp_path / "service.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlaybookError) as err:
        load_config(path)
    assert code in codes_of([err.value]), str(err.value)


# ----------------------------------------------------------------------------- init never overwrites


def test_init_never_overwrites_an_existing_config(tmp_path, capsys):
    extract = tmp_path / "extract.csv"
    extract.write_bytes(OK_EXTRACT.read_bytes())
    mine = tmp_path / "extract_service.yml"
    mine.write_text("# my own config, filled in by hand\n", encoding="utf-8")

    status, shown = run_cli(capsys, "init", str(extract))
    assert status == 0, shown
    assert mine.read_text(encoding="utf-8") == "# my own config, filled in by hand\n"
    second = tmp_path / "extract_service-2.yml"
    assert f"A config already exists at {mine}; it was left as it is." in shown
    assert f"Wrote a starter config to {second}" in shown
    assert yaml.safe_load(second.read_text(encoding="utf-8"))["columns"]["sex"] == "Gender"

    status, shown = run_cli(capsys, "init", str(extract))
    assert f"Wrote a starter config to {tmp_path / 'extract_service-3.yml'}" in shown
    assert mine.read_text(encoding="utf-8") == "# my own config, filled in by hand\n"

    status, shown = run_cli(capsys, "init", str(extract), "--force")
    assert status == 0 and f"Wrote a starter config to {mine}" in shown, shown
    assert "already exists" not in shown
    assert yaml.safe_load(mine.read_text(encoding="utf-8"))["columns"]["sex"] == "Gender"


def test_init_writes_into_a_folder_given_as_out(tmp_path, capsys):
    # The extract alone in its folder: init looks for appointments in every file beside
    # it, and the corpus folder holds dozens.
    extract = tmp_path / "ok.csv"
    extract.write_bytes(OK_EXTRACT.read_bytes())
    folder = tmp_path / "configs"
    folder.mkdir()
    status, shown = run_cli(capsys, "init", str(extract), "--out", str(folder))
    assert status == 0, shown
    assert (folder / "ok_service.yml").is_file()
    status, shown = run_cli(capsys, "init", str(extract), "--out", str(tmp_path / "no" / "x.yml"))
    assert status == 2 and "The output folder cannot be written [RUN002]" in shown, shown


# ----------------------------------------------------------------------------- counts in messages


def _many_rows(tmp_path: Path, n: int, change: dict) -> Path:
    """An extract of ``n`` + 1 good rows, every row after the first changed by ``change``."""
    table = pd.read_csv(OK_EXTRACT, dtype=str, keep_default_na=False).iloc[[0] * (n + 1)]
    table = table.reset_index(drop=True)
    table["Referral Ref"] = [f"R{i:05d}" for i in range(n + 1)]
    for column, value in change.items():
        table.loc[1:, column] = value
    extract = tmp_path / "extract.csv"
    table.to_csv(extract, index=False)
    return extract


def test_a_message_counts_every_row_not_only_the_rows_it_lists(tmp_path):
    """1,009 rows once read '(rows 3, 4, 5, 6, 7 and 15 more)': the 20 rows kept, not 1,009."""
    extract = _many_rows(tmp_path, 1009, {"Gender": "Q"})
    prepared = prepare(load_config(write_config(tmp_path, extract)))
    issue = prepared.issue("VAL001", "Gender")
    assert issue.count == 1009
    assert "1009 rows of 'Gender'" in issue.message
    assert "(rows 3, 4, 5, 6, 7 and 1,004 more;" in issue.message, issue.message


def test_repeated_ids_count_every_repeated_row(tmp_path):
    extract = _many_rows(tmp_path, 30, {"Referral Ref": "R-SAME"})
    with pytest.raises(PlaybookError) as err:
        prepare(load_config(write_config(tmp_path, extract)))
    assert err.value.code == "EXT007"
    assert "(rows 3, 4, 5, 6, 7 and 25 more)" in str(err.value), str(err.value)


# ----------------------------------------------------------------------------- init finds LSOA codes

#: The real ONS LSOA 2011 to 2021 lookup for Derby and Derbyshire, read in place.
REAL_LOOKUP = (
    ROOT.parent
    / "shared"
    / "reference"
    / "lookups"
    / "lsoa11_lsoa21_lad22_lookup_derby_derbyshire.csv"
)


def _lsoa_extract(tmp_path: Path, header: str, year: int) -> Path:
    """The corpus's good rows, twelve times, with LSOA codes of one year under ``header``."""
    if not REAL_LOOKUP.is_file():
        pytest.fail(f"The real ONS lookup is missing: expected it at {REAL_LOOKUP}.")
    lookup = pd.read_csv(REAL_LOOKUP, dtype=str)
    changed = lookup[lookup["chgind"].ne("U")]
    codes = changed["lsoa11cd" if year == 2011 else "lsoa21cd"].drop_duplicates()
    table = pd.read_csv(OK_EXTRACT, dtype=str, keep_default_na=False)
    table = pd.concat([table] * 12, ignore_index=True)
    table["Referral Ref"] = [f"R{i}" for i in range(len(table))]
    cycled = (codes.tolist() * len(table))[: len(table)]
    table = table.drop(columns=["LSOA"]).assign(**{header: cycled})
    extract = tmp_path / "extract.csv"
    table.to_csv(extract, index=False)
    return extract


def test_init_finds_an_lsoa_column_by_its_values_and_fills_in_the_lookup(tmp_path):
    extract = _lsoa_extract(tmp_path, "Patient LSOA (2011)", 2011)
    (tmp_path / "reference").mkdir()
    lookup = tmp_path / "reference" / REAL_LOOKUP.name
    lookup.write_bytes(REAL_LOOKUP.read_bytes())
    path, _ = write_starter_config(extract)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written["columns"]["lsoa_code"] == "Patient LSOA (2011)"
    assert written["reference"]["lsoa_lookup"] == f"reference/{REAL_LOOKUP.name}"
    assert "are 2011 codes: this ONS lookup matches them to IMD 2025" in path.read_text()


def test_init_decides_the_lsoa_year_by_the_codes_not_the_name(tmp_path):
    """A column named 'Home area' holding 2021 codes needs no lookup for IMD 2025."""
    from equity_helpers.reference import load_lsoa_lookup
    from equity_helpers.starter import lsoa_year

    lookup = load_lsoa_lookup(REAL_LOOKUP)
    extract = _lsoa_extract(tmp_path, "Home area 2011", 2021)
    values = pd.read_csv(extract, dtype=str)["Home area 2011"]
    assert lsoa_year(values, lookup, "Home area 2011") == 2021  # the codes win over the name
    assert lsoa_year(values, None, "Home area 2011") == 2011  # no lookup: the name decides
    assert lsoa_year(values, None, "Home area") is None


def test_init_says_a_lookup_is_needed_when_none_is_saved(tmp_path):
    extract = _lsoa_extract(tmp_path, "LSOA 2011 code", 2011)
    path, _ = write_starter_config(extract)
    text = path.read_text(encoding="utf-8")
    written = yaml.safe_load(text)
    assert written["columns"]["lsoa_code"] == "LSOA 2011 code"
    assert "lsoa_lookup" not in written["reference"]
    assert "look like 2011 codes, and IMD 2025 uses 2021 codes" in text


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_config_that_is_not_a_file_is_named_and_never_read(tmp_path, capsys, kind):
    """A pipe given as the config once made `check` wait for ever, reading it for TODOs."""
    path, words = _special(tmp_path, kind)
    for argv in (["check", str(path)], ["prepare", "--config", str(path)]):
        status, shown = run_cli(capsys, *argv)
        assert status == 2, shown
        assert words in shown and str(path) in shown, shown
