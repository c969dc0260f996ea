"""Nothing that identifies a person reaches the workbook, and no small count is published.

The sample extract already carries planted identifiers (NHS Number 999 xxx xxxx, Patient
Name, Date of Birth, Postcode ZZ99 ...); this test adds three more columns (Address, Phone,
and NHS No with valid-looking ten-digit numbers), builds the whole workbook once on it, and
scans every file the run writes for any of those values and for any referral ID.

It also checks the published tables for small counts. Which columns are counts is decided
by the column's header (see :func:`is_count_column`): a column is a count unless its header
is blank (row labels), names a label (group, field, split, period, ...), or names a
measure that is not a count of people (%, rate, ratio, limits, quartiles, median, mean,
days, difference, score, rank, decile, quintile, a number of areas, or the readability
measures of letters: reading age, years, syllables, words). A header that is a bare number
is a category (an IMD quintile of a wide table): its column holds counts unless the table's
title says it is a table of percentages or rates. Whole numbers from 1 to the rule's
threshold in a count column are reported, as ``scan_for_small_counts`` finds them (floats
are percentages or rates and are not checked). The row account is left out on purpose.
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from equity_helpers.config import load_config
from equity_helpers.privacy import DisclosureRule, scan_for_small_counts
from equity_helpers.workbook import WorkbookResult, run_workbook

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
#: Binary files that cannot carry text (images, fonts).
BINARY = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".woff", ".woff2", ".ttf", ".eot", ".pdf"}
_LABEL = re.compile(
    r"group|field|split|period|who|finding|authority|step|loss|extract|name|label", re.IGNORECASE
)
_NOT_COUNT = re.compile(
    r"%|percent|\brate\b|ratio|lower|upper|interval|quartile|median|mean|average|days|"
    r"difference|points|score|rank|decile|quintile|areas|lsoas|"
    r"\bage\b|years|reading|syllable|word|letter|sentence",
    re.IGNORECASE,
)
#: A table whose title says its cells are percentages, rates or averages.
_NOT_COUNT_TITLE = re.compile(r"%|percent|\brates?\b|ratio|mean|median|average", re.IGNORECASE)
#: The row account is exact on purpose: it describes the file, not people (the data
#: completeness step says so), so it is the one table left out of the small-count check.
ROW_ACCOUNT_FIRST_LABEL = "Rows read from the extract"


def is_count_column(name, title: str = "") -> bool:
    """Whether a table column holds counts of people, decided by its header (and title)."""
    text = " ".join(str(part) for part in name) if isinstance(name, tuple) else str(name)
    text = text.strip()
    if not text or text.startswith("Unnamed"):
        return False  # row labels (a blank header)
    if text.isdigit():  # a category such as an IMD quintile, in a wide table
        return not _NOT_COUNT_TITLE.search(title)
    return not (_LABEL.search(text) or _NOT_COUNT.search(text))


# ----------------------------------------------------------------------------- the planted run


def _nhs_check_digit(nine: str) -> int | None:
    total = sum(int(d) * (10 - i) for i, d in enumerate(nine))
    check = 11 - total % 11
    return None if check == 10 else (0 if check == 11 else check)


def _valid_nhs_number(seed: int) -> str:
    """A ten-digit number in the 999 test range with a valid modulus-11 check digit."""
    while True:
        nine = f"999{seed % 10**6:06d}"
        check = _nhs_check_digit(nine)
        if check is not None:
            return nine + str(check)
        seed += 1


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """The sample extract plus Address, Phone and NHS No columns, and a config for it."""
    folder = tmp_path_factory.mktemp("planted")
    with (SAMPLE / "long_covid_service_extract.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows):
        row["Address"] = f"{i + 1} Planted Lane, Leakton"
        row["Phone"] = f"07700 9{i:05d}"
        row["NHS No"] = _valid_nhs_number(7 * i + 3)
    extract = folder / "planted_extract.csv"
    with extract.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    raw = yaml.safe_load((SAMPLE / "sample_service.yml").read_text(encoding="utf-8"))
    raw["extract"]["path"] = str(extract)
    for section in ("reference", "readability", "catchment"):
        for key, value in (raw.get(section) or {}).items():
            if isinstance(value, str) and ("/" in value or value.endswith(".csv")):
                raw[section][key] = str((SAMPLE / value).resolve())
    config = folder / "planted_service.yml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")

    ids = {r["Referral Ref"].strip() for r in rows if r["Referral Ref"].strip()}
    nhs = {re.sub(r"\D", "", r["NHS Number"]) for r in rows if r["NHS Number"].strip()}
    nhs |= {r["NHS No"] for r in rows}
    return {
        "folder": folder,
        "config": config,
        "extract": extract,
        "rule": load_config(config).disclosure,
        "ids": ids,
        "nhs": nhs,
        "names": {r["Patient Name"] for r in rows if r["Patient Name"].strip()},
        "dobs": {r["Date of Birth"] for r in rows if r["Date of Birth"].strip()},
        "postcodes": {r["Postcode"] for r in rows if r["Postcode"].strip()},
        "addresses": {r["Address"] for r in rows},
        "phones": {r["Phone"] for r in rows},
    }


@pytest.fixture(scope="module")
def workbook(planted, tmp_path_factory) -> WorkbookResult:
    """The whole workbook, built once on the planted extract (about a minute)."""
    out = tmp_path_factory.mktemp("workbooks")
    result = run_workbook(planted["config"], out, jobs=2)
    if result.failures:
        warnings.warn(
            "Steps that failed (their pages are problem pages, their tables are missing, so "
            "the scan covers less): "
            + "; ".join(s.message.replace("\n", " ") for s in result.failures),
            stacklevel=1,
        )
    return result


# ----------------------------------------------------------------------------- reading outputs


def _notebook_text(path: Path) -> str:
    """A notebook as text, without its embedded images (base64 noise)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for kind in [k for k in data if k.startswith("image/") and k != "image/svg+xml"]:
                del data[kind]
    return json.dumps(nb, ensure_ascii=False)


def _xlsx_rows(path: Path) -> list[list]:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return [list(r) for sheet in book.worksheets for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _file_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        return _notebook_text(path)
    if path.suffix == ".xlsx":
        return "\n".join(
            "\t".join("" if v is None else str(v) for v in row) for row in _xlsx_rows(path)
        )
    return path.read_bytes().decode("utf-8", errors="replace")


def output_files(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.rglob("*") if p.is_file() and p.suffix.lower() not in BINARY)


# ----------------------------------------------------------------------------- identifiers

_ID = re.compile(r"LC\d{6}")
_NHS = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
_DATE_UK = re.compile(r"(?<!\d)\d{2}/\d{2}/\d{4}(?!\d)")
_DATE_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_POSTCODE = re.compile(r"ZZ99 ?\d[A-Z]{2}")
_PHONE = re.compile(r"07700 ?9\d{5}")


def find_identifiers(text: str, planted: dict) -> list[tuple[str, str]]:
    """Every planted identifier in a text, as (kind, value as found)."""
    hits = [("referral ID", m) for m in _ID.findall(text) if m in planted["ids"]]
    hits += [
        ("NHS number", m) for m in _NHS.findall(text) if re.sub(r"\D", "", m) in planted["nhs"]
    ]
    if "Synthetic Patient" in text or "Planted Person" in text:
        hits += [("name", n) for n in planted["names"] if n in text] or [("name", "prefix")]
    hits += [("date of birth", m) for m in _DATE_UK.findall(text) if m in planted["dobs"]]
    hits += [
        ("date of birth", "-".join(m))
        for m in _DATE_ISO.findall(text)
        if f"{m[2]}/{m[1]}/{m[0]}" in planted["dobs"]
    ]
    hits += [("postcode", m) for m in _POSTCODE.findall(text)]
    if "Planted Lane" in text or "Leakton" in text:
        hits.append(("address", "Planted Lane, Leakton"))
    hits += [("phone", m) for m in _PHONE.findall(text) if m in planted["phones"]]
    return hits


def test_the_scan_finds_every_kind_of_planted_value(planted) -> None:
    """The scanner itself: one planted value of each kind, written as an output might."""
    nhs_spaced = next(n for n in planted["nhs"] if n.startswith("999"))
    nhs_spaced = f"{nhs_spaced[:3]} {nhs_spaced[3:6]} {nhs_spaced[6:]}"
    dob = sorted(planted["dobs"])[0]
    d, m, y = dob.split("/")
    text = " | ".join(
        [
            sorted(planted["ids"])[0],
            nhs_spaced,
            sorted(planted["nhs"])[-1],
            sorted(planted["names"])[0],
            dob,
            f"{y}-{m}-{d}",
            sorted(planted["postcodes"])[0],
            sorted(planted["addresses"])[0],
            sorted(planted["phones"])[0],
        ]
    )
    kinds = {kind for kind, _ in find_identifiers(text, planted)}
    assert kinds == {
        "referral ID",
        "NHS number",
        "name",
        "date of birth",
        "postcode",
        "address",
        "phone",
    }
    assert find_identifiers("Referrals analysed: 5,974; E01900109; 2022-04-01", planted) == []


@pytest.mark.slow
def test_the_workbook_was_built(workbook) -> None:
    out = workbook.out_dir
    assert workbook.error is None
    assert workbook.html_index.is_file()
    assert (out / "manifest.json").is_file()
    assert list((out / "tables").glob("*.csv")), "no summary tables were exported"
    assert list((out / "notebooks").glob("*.ipynb"))
    account = json.loads((out / "manifest.json").read_text())["account"]
    assert account["rows_read"] == account["rows_used"] + sum(account["excluded"].values())


@pytest.mark.slow
def test_no_identifier_in_any_output(workbook, planted) -> None:
    """No referral ID, NHS number, name, date of birth, postcode, address or phone anywhere."""
    files = output_files(workbook.out_dir)
    kinds = {p.suffix for p in files}
    assert {".html", ".ipynb", ".csv", ".xlsx", ".json"} <= kinds, kinds
    found = {}
    for path in files:
        hits = find_identifiers(_file_text(path), planted)
        if hits:
            found[str(path.relative_to(workbook.out_dir))] = sorted(set(hits))[:5]
    assert not found, "identifiers in the outputs:\n" + "\n".join(
        f"{name}: {hits}" for name, hits in found.items()
    )


@pytest.mark.slow
def test_published_pages_do_not_name_the_extract_folder(workbook, planted) -> None:
    """The HTML pages, tables and manifest do not show where the extract sits on the machine."""
    out = workbook.out_dir
    files = [*(out / "html").rglob("*.html"), *(out / "tables").glob("*"), out / "manifest.json"]
    folder = str(planted["folder"])
    leaks = [str(p.relative_to(out)) for p in files if folder in _file_text(p)]
    assert not leaks, f"the machine path {folder} is in: {leaks}"


# ----------------------------------------------------------------------------- small counts


def _csv_table(path: Path) -> tuple[list[str], pd.DataFrame]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("# ")]
    body = lines[len(header) :]
    rows = list(csv.reader(body))
    return header, pd.DataFrame(rows[1:], columns=rows[0]) if rows else pd.DataFrame()


def _xlsx_table(path: Path) -> tuple[list[str], pd.DataFrame]:
    rows = _xlsx_rows(path)
    blank = next(i for i, r in enumerate(rows) if all(v is None for v in r))
    header = [str(r[0]) for r in rows[:blank]]
    columns = ["" if v is None else str(v) for v in rows[blank + 1]]
    return header, pd.DataFrame(rows[blank + 2 :], columns=columns)


def _small_counts(table: pd.DataFrame, rule: DisclosureRule, title: str = "") -> list[dict]:
    if not len(table) or not len(table.columns):
        return []
    first = table.iloc[:, 0].astype(str).tolist()
    if first and first[0] == ROW_ACCOUNT_FIRST_LABEL:
        return []
    positions = [j for j, c in enumerate(table.columns) if is_count_column(c, title)]
    counts = table.iloc[:, positions]
    return scan_for_small_counts(counts, threshold=rule.hidden_up_to).to_dict("records")


def test_is_count_column() -> None:
    for name in ["Records", "Invalid", "Referrals", "People seen", "Missed", "Core20", "Total"]:
        assert is_count_column(name), name
    for name in ["", "Unnamed: 0", "Group", "Field", "% Core20", "ratio", "95% lower", "Median days",
                 "Difference (points)", "IMD quintile", "Areas (LSOAs)", "Mean improvement",
                 "Reading age before", "Syllables", "Words"]:  # fmt: skip
        assert not is_count_column(name), name
    assert is_count_column("3", "Referrals by IMD quintile")
    assert not is_count_column("3", "Missed appointments (%) by ethnic group and IMD quintile")


@pytest.mark.slow
def test_every_csv_starts_with_the_rule(workbook, planted) -> None:
    rule = planted["rule"]
    csvs = sorted((workbook.out_dir / "tables").glob("*.csv"))
    assert csvs
    for path in csvs:
        header, _ = _csv_table(path)
        assert header and path.read_text(encoding="utf-8").startswith("# "), path.name
        assert f"# {rule.describe()}" in header, f"{path.name} does not state the rule: {header}"


@pytest.mark.slow
def test_every_xlsx_states_the_rule(workbook, planted) -> None:
    rule = planted["rule"]
    books = sorted((workbook.out_dir / "tables").glob("*.xlsx"))
    assert books
    for path in books:
        header, _ = _xlsx_table(path)
        assert rule.describe() in header, f"{path.name} does not state the rule: {header}"


@pytest.mark.slow
def test_exported_tables_have_no_small_counts(workbook, planted) -> None:
    rule = planted["rule"]
    found = {}
    for path in sorted((workbook.out_dir / "tables").glob("*")):
        if path.suffix not in (".csv", ".xlsx"):
            continue
        header, table = _csv_table(path) if path.suffix == ".csv" else _xlsx_table(path)
        title = header[0].removeprefix("# ") if header else ""
        leaks = _small_counts(table, rule, title)
        if leaks:
            found[path.name] = leaks[:5]
    assert not found, f"counts from 1 to {rule.hidden_up_to} in published tables: {found}"


def _html_tables(html: str) -> list[pd.DataFrame]:
    if "<table" not in html:
        return []
    try:
        return pd.read_html(io.StringIO(html), thousands=None, keep_default_na=False)
    except ValueError:  # no parsable table
        return []


@pytest.mark.slow
def test_notebook_and_page_tables_have_no_small_counts(workbook, planted) -> None:
    """HTML tables in the executed notebooks' outputs and in the workbook's pages."""
    rule = planted["rule"]
    out = workbook.out_dir
    found = {}
    seen = 0
    for path in sorted((out / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for number, cell in enumerate(nb["cells"]):
            for output in cell.get("outputs", []):
                html = output.get("data", {}).get("text/html", "")
                for table in _html_tables("".join(html) if isinstance(html, list) else html):
                    seen += 1
                    leaks = _small_counts(table, rule)
                    if leaks:
                        found[f"{path.name} cell {number}"] = leaks[:5]
    for path in sorted((out / "html").rglob("*.html")):
        for table in _html_tables(path.read_text(encoding="utf-8")):
            seen += 1
            leaks = _small_counts(table, rule)
            if leaks:
                found[str(path.relative_to(out))] = leaks[:5]
    assert seen, "no HTML tables were found to check"
    assert not found, f"counts from 1 to {rule.hidden_up_to} in HTML tables: {found}"


@pytest.mark.slow
def test_tables_have_no_unnamed_index_column(workbook) -> None:
    found = []
    for path in sorted((workbook.out_dir / "tables").glob("*.csv")):
        _, table = _csv_table(path)
        if len(table.columns) and table.columns[0] == "":
            if table.iloc[:, 0].str.fullmatch(r"\d+").all():
                found.append(f"{path.name}: {table.iloc[:, 0].tolist()[:6]}")
    assert not found, "tables whose first column is a bare row index: " + "; ".join(found)


def test_the_config_shown_shortens_file_settings_and_nothing_else():
    """A column or service name with a slash is shown as written; a file as its name."""
    import copy
    import dataclasses

    from equity_helpers.workbook.pages import _public_config

    cfg = load_config(SAMPLE / "sample_service.yml")
    raw = copy.deepcopy(cfg.raw)
    raw["service"]["name"] = "Derby/Derbyshire MSK"
    raw["columns"]["referral_date"] = "Date Recvd/Ref"
    raw["extract"]["path"] = "/home/analyst/private/extract.csv"
    raw["reference"]["imd_path"] = "C:\\Users\\analyst\\imd.csv"
    shown = yaml.safe_load(_public_config(dataclasses.replace(cfg, raw=raw)))
    assert shown["service"]["name"] == "Derby/Derbyshire MSK"
    assert shown["columns"]["referral_date"] == "Date Recvd/Ref"
    assert shown["extract"]["path"] == "extract.csv"
    assert shown["reference"]["imd_path"] == "imd.csv"
    assert "analyst" not in _public_config(dataclasses.replace(cfg, raw=raw))


def test_the_config_shown_counts_the_services_own_labels_and_never_shows_them():
    """init writes a values line for every label in the extract: one held by one person
    (a religion only they wrote, say) must not reach the workbook's config page."""
    import copy
    import dataclasses

    from equity_helpers.workbook.pages import _public_config

    cfg = load_config(SAMPLE / "sample_service.yml")
    raw = copy.deepcopy(cfg.raw)
    raw["values"] = {"religion": {"Lone Religion": "9", "Church of England": "2"}}
    text = _public_config(dataclasses.replace(cfg, raw=raw))
    assert "Lone Religion" not in text and "Church of England" not in text
    assert yaml.safe_load(text)["values"]["religion"].startswith("2 of the service's own labels")
