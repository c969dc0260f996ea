"""Read a service's extract, map it onto the data contract, validate it, and prepare it.

The extract is parsed and validated once per run; the result is written as a Parquet
file that every notebook reads. Nothing is lost silently: every row read is either
used or excluded for a named reason, and every value that could not be used is
counted, with row numbers and an example, in the data-quality report.

A big CSV extract is prepared a batch of rows at a time by the same rules
(:mod:`equity_helpers.batches`), with the same data, row account and issues as one whole read.

Example
-------
>>> from equity_helpers.config import load_config
>>> from equity_helpers.extract import prepare
>>> prepared = prepare(load_config("sample_data/sample_service.yml"))  # doctest: +SKIP
>>> prepared.account.adds_up()  # doctest: +SKIP
True
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from . import codes
from .config import YES_NO_FIELDS, ServiceConfig, file_problem
from .errors import CATALOGUE, ExtractError, PlaybookError, format_rows, render
from .reference import catchment_lsoas, load_imd, load_lsoa_list, load_lsoa_lookup

log = logging.getLogger("equity_helpers")

#: Column names that look like personal identifiers. They are never read.
IDENTIFIER_PATTERN = re.compile(
    r"nhs.?(number|no\b|num)|^name$|patient.?name|full.?name|first.?name|fore.?name|surname|"
    r"last.?name|date.?of.?birth|^dob$|birth.?date|address|post.?code|zip|phone|mobile|"
    r"e.?mail|hospital.?(number|no)|\bmrn\b|ni.?number|national.?insurance",
    re.IGNORECASE,
)
#: Column names that hold free text (notes, comments). They are never read either.
FREE_TEXT_PATTERN = re.compile(
    r"\bnotes?\b|comments?|free.?text|narrative|remarks?|\bdetails\b|description|"
    r"clinical.?summary",
    re.IGNORECASE,
)
#: An NHS number, with or without spaces or dashes: ten digits in three groups.
NHS_NUMBER_VALUE = re.compile(r"^\d{3}[ -]?\d{3}[ -]?\d{4}$")


def holds_nhs_numbers(values: pd.Series) -> bool:
    """Whether most filled values of a column are shaped like NHS numbers ("943 476 5919").

    >>> holds_nhs_numbers(pd.Series(["943 476 5919", "999 123 4567", ""]))
    True
    """
    s = values.astype("string").str.strip()
    s = s[s.notna() & s.ne("")].head(200)
    return bool(len(s)) and bool(s.str.fullmatch(NHS_NUMBER_VALUE.pattern).mean() >= 0.8)


_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d/%m/%y",
)
_DELIMITERS = [",", ";", "\t", "|"]
# The dates a table can hold (pandas' nanosecond range). Systems write "no date" as
# sentinels such as 31/12/9999 or 01/01/0001: outside this range they are not dates.
_EARLIEST, _LATEST = pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")
EXAMPLE_ROWS = 20


@dataclass
class Issue:
    """One kind of problem found in the extract, with where it is."""

    code: str
    column: str | None
    count: int
    rows: list[int]
    example: str | None
    message: str
    kind: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RowAccount:
    """Rows read = rows used + rows excluded (by reason)."""

    rows_read: int
    rows_used: int
    excluded: dict[str, int] = field(default_factory=dict)
    #: Lines of the file that are not rows of the table: titles above the column names,
    #: and totals or notes below the data. They are never read as rows.
    outside_table: dict[str, int] = field(default_factory=dict)

    def adds_up(self) -> bool:
        return self.rows_read == self.rows_used + sum(self.excluded.values())

    def table(self) -> pd.DataFrame:
        """The account as a small table, in the order a reader follows it."""
        return account_table(account_lines(asdict(self)))


@dataclass(frozen=True)
class AccountLine:
    """One line of the row account: what it counts and how many rows."""

    label: str
    rows: int
    #: True for a line of the appointments file's own account.
    appointments: bool = False


#: The heading of the account's count column, wherever the account is shown.
ACCOUNT_COUNT_HEADER = "Rows"
#: The account's labels, written here once: its lines and the runner's progress line use them.
ROWS_READ = "Rows read from the extract"
ROWS_USED = "Rows analysed"
LEFT_OUT = "Left out"


def account_lines(account: dict, appointments: dict | None = None) -> list[AccountLine]:
    """The row account's lines, in the order a reader follows them.

    The one place the account's labels are written: the front page, the data completeness
    step and the command line's reports all show these lines, so they cannot disagree.
    ``account`` and ``appointments`` are as the prepared file's metadata holds them.

    >>> [(x.label, x.rows) for x in account_lines({"rows_read": 3, "rows_used": 3, "excluded": {}})]
    [('Rows read from the extract', 3), ('Rows analysed', 3)]
    """
    outside = account.get("outside_table") or {}
    lines = [AccountLine(f"Not part of the table: {what}", n) for what, n in outside.items() if n]
    lines.append(AccountLine(ROWS_READ, account["rows_read"]))
    for code, n in account["excluded"].items():
        lines.append(AccountLine(f"{LEFT_OUT}: {CATALOGUE[code].title.lower()}", n))
    lines.append(AccountLine(ROWS_USED, account["rows_used"]))
    if appointments:
        lines.append(AccountLine("Appointment rows read", appointments["rows_read"], True))
        for code, n in appointments["excluded"].items():
            lines.append(AccountLine(f"Not counted: {CATALOGUE[code].title.lower()}", n, True))
        lines.append(AccountLine("Appointments counted", appointments["rows_used"], True))
    return lines


def account_summary(account: dict) -> str:
    """The row account in one line, in the words of :func:`account_lines` (for progress).

    >>> account_summary({"rows_read": 6000, "rows_used": 5974, "excluded": {"a": 20, "b": 6}})
    'Rows read from the extract: 6,000; rows analysed: 5,974; left out: 26 (for 2 reasons)'
    """
    left_out = sum(account["excluded"].values())
    reasons = len([n for n in account["excluded"].values() if n])
    why = f" (for {reasons} reason{'s' if reasons != 1 else ''})" if reasons else ""
    return (
        f"{ROWS_READ}: {account['rows_read']:,}; {ROWS_USED.lower()}: "
        f"{account['rows_used']:,}; {LEFT_OUT.lower()}: {left_out:,}{why}"
    )


def account_table(lines: list[AccountLine]) -> pd.DataFrame:
    """The account's lines as a table of two columns: the line and its count of rows."""
    rows = [(line.label, line.rows) for line in lines]
    return pd.DataFrame(rows, columns=["", ACCOUNT_COUNT_HEADER])


def account_text(lines: list[AccountLine], source: str, appointments_source: str = "") -> str:
    """The account's lines as plain text for the command line, one file after the other."""
    width = max([60, *(len(line.label) for line in lines)])
    out = [f"Extract: {source}"]
    out += [f"  {a.label:<{width}}  {a.rows:>9,}" for a in lines if not a.appointments]
    if any(a.appointments for a in lines):
        out.append(f"Appointments: {appointments_source}")
        out += [f"  {a.label:<{width}}  {a.rows:>9,}" for a in lines if a.appointments]
    return "\n".join(out)


@dataclass
class PreparedExtract:
    data: pd.DataFrame
    account: RowAccount
    issues: list[Issue]
    dropped_identifiers: list[str]
    source: str
    encoding: str | None = None
    delimiter: str | None = None
    imd_edition: int | None = None
    free_text: list[str] = field(default_factory=list)
    #: The appointments file's own row account, when the config names one.
    appointments: dict | None = None

    def issue(self, code: str, column: str | None = None) -> Issue | None:
        for i in self.issues:
            if i.code == code and (column is None or i.column == column):
                return i
        return None

    def report(self) -> str:
        """A plain-text report of the row account and every data-quality issue."""
        return report_text(self.metadata())

    def account_text(self) -> str:
        """The row account of the extract (and of the appointments file) as plain text."""
        lines = account_lines(asdict(self.account), self.appointments)
        return account_text(lines, self.source, (self.appointments or {}).get("source", ""))

    def metadata(self) -> dict:
        return {
            "source": self.source,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "imd_edition": self.imd_edition,
            "account": asdict(self.account),
            "issues": [i.to_dict() for i in self.issues],
            "dropped_identifiers": self.dropped_identifiers,
            "free_text": self.free_text,
            "appointments": self.appointments,
        }


def report_text(meta: dict) -> str:
    """The data-quality report, as plain text, from a prepared file's metadata.

    The row account, the columns not read and every issue's message: what the command
    line's ``prepare`` prints, however the extract was prepared (whole or in batches).
    """
    appointments = meta.get("appointments")
    lines = account_lines(meta["account"], appointments)
    out = [account_text(lines, meta["source"], (appointments or {}).get("source", ""))]
    if meta.get("dropped_identifiers"):
        out.append("Identifier columns not read: " + ", ".join(meta["dropped_identifiers"]))
    if meta.get("free_text"):
        out.append("Free-text columns not read: " + ", ".join(meta["free_text"]))
    for issue in meta["issues"]:
        out += ["", issue["message"]]
    return "\n".join(out)


# --------------------------------------------------------------------------- reading


def _sniff_delimiter(sample: str) -> str:
    first = sample.splitlines()[0] if sample else ""
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        return ","
    try:
        return csv.Sniffer().sniff(sample[:20000], delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        return best


def _decode(raw: bytes) -> tuple[str, str]:
    """Text and encoding of a whole file: UTF-16 by its mark, else UTF-8, cp1252, latin-1."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:  # a cut-off file: read it byte by byte below
            pass
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def _records(text: str, delimiter: str, limit: int = 31) -> list[tuple[int, list[str]]]:
    """The opening records of a CSV text, each with the index of the line it starts on.

    A record is what the parser calls a row: a quoted value may hold a line break, so one
    record can span lines. Blank lines are records with no values, as the parser counts
    them when it skips rows above the header.
    """
    # newline="" lets the reader end a line at a lone carriage return, as the parser does.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out: list[tuple[int, list[str]]] = []
    start = 0
    try:
        for row in reader:
            out.append((start, row))
            start = reader.line_num
            if len(out) >= limit:
                break
    except csv.Error:  # a line this reader cannot split: keep the records read so far
        pass
    return out


def _find_header(records: list[tuple[int, list[str]]], expected: list[str]) -> tuple[int, str]:
    """Index of the header record, and why it was taken when no line names a known column.

    The header is the first of the opening records naming 2+ expected columns. When none
    does (a system's own column names, say), it is the first record with as many values
    as most records have: the lines above it, narrower, are titles.
    """
    wanted = {e.strip().lower() for e in expected}
    if wanted:
        for i, (_, fields) in enumerate(records[:30]):
            if len({f.strip().lower() for f in fields} & wanted) >= min(2, len(wanted)):
                return i, ""
    widths = [len(f) for _, f in records[:30] if any(v.strip() for v in f)]
    if not widths:
        return 0, ""
    counts = Counter(widths)
    modal = max(counts, key=lambda w: (counts[w], w))
    first = next(i for i, (_, f) in enumerate(records) if len(f) == modal)
    if modal < 2 or first == 0:
        return 0, ""
    line = records[first][0] + 1
    reason = (
        f"no line at the top names a column the playbook knows, so line {line}, the first "
        f"with as many values as most rows ({modal}), was taken as the column names"
    )
    return first, reason


#: First words of the lines a system writes below a table: totals, run details, notes.
_FOOTER_WORDS = re.compile(
    r"^\W*(grand\s+)?(total|totals|count\b|number of|records?\b|report|run\b|generated|printed|"
    r"produced|extracted|created|page\s*\d|notes?\b|source|end of|please|this (report|extract)|"
    r"data as at|filters?\b|criteria)",
    re.IGNORECASE,
)


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip()


def _split_line(line: str, delimiter: str) -> list[str]:
    """One line's values; a line the reader cannot split counts as one full row.

    So does a line with an odd number of quote marks: it is part of a value that holds a
    line break, inside the table.
    """
    if line.count('"') % 2:
        return [line] * 99
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return [line] * 99


def footer_count(rows: list[list], width: int) -> int:
    """How many of the last rows are not data but lines below the table.

    Counted from the bottom up: blank lines, lines with one value that reads as a phrase
    ("Report run 01/12/2026 by ...", "Total records: 4000"), and lines that start with a
    word such as Total, Report or Notes and fill fewer than half the columns. The first
    line from the bottom that is none of these is the last row of data.

    >>> footer_count([["R1", "01/02/2024", "A"], ["Total records: 1"], [], ["Notes: none"]], 3)
    3
    """
    n = 0
    for fields in reversed(rows):
        filled = [str(f).strip() for f in fields if not _is_blank(f)]
        if not filled:
            n += 1
            continue
        phrase = len(filled) == 1 and width >= 3 and bool(re.search(r"[\s:]", filled[0]))
        worded = bool(_FOOTER_WORDS.match(filled[0])) and len(filled) <= max(2, width / 2)
        if not (phrase or worded):
            break
        n += 1
    return n


def _ragged_rows(lines, delimiter: str, header_idx: int) -> tuple[list[int], int, int]:
    """Line numbers of rows whose number of values differs from the header's (error path).

    ``lines``: the text's lines, as a file opened with ``newline=""`` gives them.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    width, bad, found = None, [], 0
    try:
        for i, row in enumerate(reader):
            if i < header_idx:
                continue
            if width is None:
                width = len(row)
                continue
            if row and len(row) != width:
                bad.append(reader.line_num)
                found = len(row)
    except csv.Error:  # a line this reader cannot split: report the rows found so far
        pass
    return bad, width or 0, found


def _row_numbers(text: str, header_idx: int, n: int) -> np.ndarray:
    """Line numbers of the data rows, as a spreadsheet shows them, skipping blank lines."""
    first = header_idx + 2
    if "\n\n" not in text and "\n\r\n" not in text:
        return np.arange(first, first + n)
    blank = np.array([not line.strip() for line in text.split("\n")], dtype=bool)
    lines = np.flatnonzero(~blank) + 1
    lines = lines[lines >= first]
    if len(lines) < n:  # values with line breaks inside quotes: fall back to counting
        return np.arange(first, first + n)
    return lines[:n]


def _footer_lines(
    tail: str, offset: int, first_data: int, width: int, delimiter: str
) -> tuple[int, list[int]]:
    """How many characters at the end of the text are lines below the table, and their
    line numbers. ``tail`` is the end of the text, from the start of a line; ``offset``
    the number of lines above it; ``first_data`` the index of the first line of data.

    Only the last 500 lines are looked at, so a large file is not split into lines.
    """
    lines = tail.split("\n")
    skip = max(first_data - offset, len(lines) - 500, 0)
    lines, offset = lines[skip:], offset + skip
    cut = footer_count([_split_line(line.rstrip("\r"), delimiter) for line in lines], width)
    if not cut:
        return 0, []
    gone = lines[len(lines) - cut :]
    rows = [offset + len(lines) - cut + i + 1 for i, line in enumerate(gone) if line.strip()]
    if not rows:  # only blank lines at the end
        return 0, []
    return sum(len(line) + 1 for line in gone), rows


def _tail(text: str, chars: int | None = None, newlines: int = 0) -> tuple[str, int]:
    """The end of a text to look for lines below the table in, and the lines above it.

    A text of over 400,000 characters is looked at from its last 200,000 (from the next
    line start). ``text`` may be only the end of a longer one: then ``chars`` is the whole
    text's length and ``newlines`` its number of line breaks.
    """
    if (chars or len(text)) <= 400_000:
        return text, 0
    start = text.index("\n", len(text) - 200_000) + 1
    tail = text[start:]
    if chars is None:
        return tail, text.count("\n", 0, start)
    return tail, newlines - tail.count("\n")


def _cut_footer(
    text: str, records: list, header_idx: int, width: int, delimiter: str
) -> tuple[str, list[int]]:
    """The text without the lines below the table, and the line numbers of those lines."""
    first_data = (records[header_idx][0] + 1) if header_idx < len(records) else 1
    tail, offset = _tail(text)
    removed, rows = _footer_lines(tail, offset, first_data, width, delimiter)
    if not removed:
        return text, []
    return text[: len(text) - removed] + "\n", rows


@dataclass
class _Layout:
    """Where the table is in a CSV text: its delimiter, header and the lines above it."""

    delimiter: str
    records: list
    header_idx: int
    header_reason: str
    header: list[str]
    titles: int

    @property
    def first_data(self) -> int:
        """Index of the line the data starts on (after the header record)."""
        return (self.records[self.header_idx][0] + 1) if self.header_idx < len(self.records) else 1


def _layout(opening_text: str, expected: list[str]) -> _Layout:
    """Find the header and delimiter from the first 200,000 characters of a CSV text."""
    opening = opening_text.split("\n")[:31]
    delimiter = _sniff_delimiter("\n".join(opening))
    records = _records(opening_text, delimiter)
    header_idx, header_reason = _find_header(records, expected)
    if header_idx:  # a title or notes above the table: sniff again from the header down
        delimiter = _sniff_delimiter("\n".join(opening[records[header_idx][0] :]))
        records = _records(opening_text, delimiter)
    header = records[header_idx][1] if header_idx < len(records) else []
    titles = sum(1 for _, f in records[:header_idx] if any(v.strip() for v in f))
    return _Layout(delimiter, records, header_idx, header_reason, header, titles)


def _csv_options(layout: _Layout, on_bad_row, encoding: str | None = None) -> dict:
    """The parser's settings: every column read as text, rows of the wrong width collected."""
    read = pacsv.ReadOptions(block_size=1 << 24, skip_rows=layout.header_idx)
    if encoding:
        read.encoding = encoding
    return dict(
        read_options=read,
        parse_options=pacsv.ParseOptions(
            delimiter=layout.delimiter, newlines_in_values=True, invalid_row_handler=on_bad_row
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in layout.header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _read_csv(path: Path, expected: list[str]) -> tuple[pd.DataFrame, dict]:
    try:
        raw = path.read_bytes()
    except OSError as exc:  # no permission to read it, or a disk error
        raise ExtractError("EXT008", path=str(path), detail=exc.strerror or str(exc)) from None
    if not raw.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise ExtractError("EXT001", path=str(path))
    # Decide the encoding from the whole file: a stray byte far down must not be missed.
    text, encoding = _decode(raw)
    text = text.lstrip("\ufeff")
    layout = _layout(text[:200_000], expected)
    delimiter, header_idx, header_reason = layout.delimiter, layout.header_idx, layout.header_reason
    header, titles = layout.header, layout.titles
    # Totals, run details and notes below the table are cut off before the table is parsed.
    text, footer_rows = _cut_footer(text, layout.records, header_idx, len(header), delimiter)
    bad: list = []

    def on_bad_row(row):
        bad.append(row)
        return "skip"

    try:
        source = io.BytesIO(raw if encoding == "utf-8-sig" else text.encode("utf-8"))
        if encoding == "utf-8-sig" and raw.startswith(b"\xef\xbb\xbf"):
            source = io.BytesIO(raw[3:])
        if footer_rows:
            source = io.BytesIO(text.encode("utf-8"))
        table = pacsv.read_csv(source, **_csv_options(layout, on_bad_row))
    except pa.ArrowInvalid as exc:
        raise ExtractError("EXT008", path=str(path), detail=str(exc).splitlines()[0]) from None
    if bad:
        rows, width, found = _ragged_rows(io.StringIO(text, newline=""), delimiter, header_idx)
        if not rows:  # the parser and the line reader split the file differently
            detail = (
                f"{len(bad)} rows have a different number of values from the header; a "
                "quote mark or line break inside a value may have split or joined rows"
            )
            raise ExtractError("EXT008", path=str(path), detail=detail)
        raise ExtractError(
            "EXT013",
            path=str(path),
            rows=rows[:EXAMPLE_ROWS],
            rows_total=len(rows),
            count=len(bad),
            width=width,
            found=found,
        )
    df = table.to_pandas()
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if encoding != "utf-8-sig":
        log.warning(render("EXT011", path=path, encoding=encoding))
    info = {
        "encoding": encoding,
        "delimiter": delimiter,
        "row_numbers": _row_numbers(text, header_idx, len(df)),
        "titles": titles,
        "footer_rows": footer_rows,
    }
    if header_reason:
        info["header_reason"] = header_reason
    return df, info


def _header_in(grid: pd.DataFrame, wanted: set[str]) -> tuple[int | None, int]:
    """The sheet row (1-based) of the first of 30 rows naming 2+ wanted columns, and how many."""
    for i in range(min(30, len(grid))):
        names = {str(v).strip().lower() for v in grid.iloc[i].dropna()}
        found = len(names & wanted)
        if found >= min(2, len(wanted)):
            return i + 1, found
    return None, 0


def _table_under(grid: pd.DataFrame, header_row: int) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """The rows under a header row: blank rows skipped, and lines below the data cut off.

    Returns the rows, their sheet row numbers, and the sheet rows of the lines cut off.
    """
    body = grid.iloc[header_row:]
    filled = ~body.isna().all(axis=1).to_numpy()
    # Sheet row numbers of the rows kept: blank rows are skipped but still counted.
    rows = np.arange(header_row + 1, header_row + 1 + len(body))[filled]
    body = body[filled]
    tail = body.tail(500)
    cut = footer_count(tail.to_numpy().tolist(), int(grid.iloc[header_row - 1].notna().sum()))
    footer = rows[len(rows) - cut :].tolist() if cut else []
    if cut:
        body, rows = body.iloc[: len(body) - cut], rows[: len(rows) - cut]
    return body, rows, footer


def _read_excel(
    path: Path, sheet, header_row: int | None, expected: list[str]
) -> tuple[pd.DataFrame, dict]:
    """Read one sheet of a workbook; with no sheet named, the sheet that holds the table.

    Every sheet is looked at: the one with the most rows under a header that names the
    expected columns is taken, so a cover sheet or a notes sheet first does not matter.
    A header that names four or more of them is preferred to one that names two or three.
    """
    try:
        sheets = pd.read_excel(
            path,
            sheet_name=sheet if sheet is not None else (0 if header_row else None),
            header=None,
            dtype=str,
            engine="openpyxl",
        )
    except Exception as exc:  # openpyxl raises many types for broken files
        raise ExtractError("EXT008", path=str(path), detail=str(exc)) from None
    if not isinstance(sheets, dict):
        sheets = {sheet if sheet is not None else "the first sheet": sheets}
    if all(g.dropna(how="all").empty for g in sheets.values()):
        raise ExtractError("EXT001", path=str(path))
    wanted = {e.strip().lower() for e in expected}
    found: dict[str, tuple[int, int, int]] = {}  # sheet: (header row, names known, data rows)
    if header_row is None:
        for name, g in sheets.items():
            row, known = _header_in(g, wanted)
            if row is not None:
                found[name] = (row, known, len(_table_under(g, row)[1]))
    names = list(sheets)
    if header_row is not None:
        sheet_name = names[0]
    elif found:
        # A header naming four or more known columns beats one naming two or three (a
        # sheet of appointments, say, shares a column or two with the referrals); then
        # the most rows; then the first sheet.
        sheet_name = max(found, key=lambda n: (min(found[n][1], 4), found[n][2], -names.index(n)))
        header_row = found[sheet_name][0]
    else:
        raise ExtractError(
            "EXT006",
            path=str(path),
            searched=min(30, max(len(g) for g in sheets.values())),
            sheet="', '".join(map(str, names)),
        )
    grid = sheets[sheet_name]
    if header_row > len(grid):
        raise ExtractError("EXT006", path=str(path), searched=len(grid), sheet=sheet_name)
    header = [
        str(v).strip() if not pd.isna(v) else f"Unnamed {j}"
        for j, v in enumerate(grid.iloc[header_row - 1])
    ]
    df, rows, footer = _table_under(grid, header_row)
    df.columns = header
    titles = int(grid.iloc[: header_row - 1].notna().any(axis=1).sum())
    info = {"row_numbers": rows, "header_row": header_row, "titles": titles, "footer_rows": footer}
    if len(sheets) > 1:
        info["sheet"] = sheet_name
        others = [n for n in names if n != sheet_name]
        why = [
            f"'{n}' has {found[n][2]:,} rows" if n in found else f"'{n}' has no table header"
            for n in others
        ]
        info["sheet_reason"] = (
            f"sheet '{sheet_name}' holds the table: {len(rows):,} rows under a header that "
            f"names {found.get(sheet_name, (0, 0))[1]} known columns on row {header_row}"
            + (f" ({'; '.join(why)})" if why else "")
        )
    return df.reset_index(drop=True).fillna("").astype(str), info


def read_extract(
    path: str | Path,
    *,
    sheet=None,
    header_row: int | None = None,
    expected_columns: list[str] | None = None,
    setting: str = "extract.path",
) -> tuple[pd.DataFrame, dict]:
    """Read an extract as text columns, whatever its format.

    Returns the table (all values as strings, blanks as "") and facts about the read:
    ``encoding``, ``delimiter``, and ``row_numbers`` (the spreadsheet row number of each
    data row, so messages name rows as a person sees them, blank rows included) and, for
    a spreadsheet, ``header_row`` (the sheet row that holds the column names).
    """
    path = Path(path)
    expected = expected_columns or []
    problem = file_problem(path, setting, ExtractError)
    if problem is not None:
        raise problem
    suffix = path.suffix.lower()
    info = {"encoding": None, "delimiter": None}
    if suffix in (".csv", ".txt", ".tsv"):
        df, read = _read_csv(path, expected)
    elif suffix in (".xlsx", ".xlsm"):
        df, read = _read_excel(path, sheet, header_row, expected)
    elif suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:
            raise ExtractError("EXT008", path=str(path), detail=str(exc)) from None
        df = df.astype("string").fillna("")
        read = {"row_numbers": np.arange(2, 2 + len(df))}
    else:
        raise ExtractError("EXT003", path=str(path), suffix=suffix or "(none)")
    info.update(read)
    if (
        len(df.columns) == 1
        and (len(expected) > 1 or any(d in df.columns[0] for d in _DELIMITERS))
        and df.columns[0] not in expected
    ):
        raise ExtractError("EXT005", path=str(path), header=str(df.columns[0])[:80])
    if len(df) == 0:
        raise ExtractError("EXT002", path=str(path))
    return df, info


# --------------------------------------------------------------------------- parsing


def parse_dates(values: pd.Series, preferred: str | None = None) -> pd.Series:
    """Parse UK (31/01/2024) and ISO (2024-01-31) dates; anything else becomes NaT.

    >>> parse_dates(pd.Series(["31/01/2024", "2024-02-01", "31/02/2024", ""])).dt.day.tolist()
    [31.0, 1.0, nan, nan]
    """
    return codes.by_unique(values, lambda u: _parse_dates(u, preferred)).astype("datetime64[ns]")


def _parse_dates(values: pd.Series, preferred: str | None = None) -> pd.Series:
    """Parse the distinct values (see :func:`parse_dates`)."""
    s = values.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    formats = ((preferred,) if preferred else ()) + _DATE_FORMATS
    todo = s.notna() & (s != "")
    for fmt in formats:
        if not todo.any():
            break
        try:
            parsed = pd.to_datetime(s[todo], format=fmt, errors="coerce")
        except (ValueError, TypeError):  # a format pandas cannot use (config checks it)
            continue
        ok = parsed.notna()
        # A sentinel such as 31/12/9999 is read, but is no date: it stays to be reported.
        real = ok & (parsed >= _EARLIEST) & (parsed <= _LATEST)
        out.loc[parsed.index[real]] = parsed[real].astype("datetime64[ns]")
        todo.loc[parsed.index[ok]] = False
    # Excel's serial day numbers (45623 is 27/11/2024), as a spreadsheet saved as CSV
    # writes a date cell it has not formatted; a fraction is the time of day.
    serial = todo & s.str.fullmatch(r"[1-6]\d{4}(\.\d+)?").fillna(False)
    if serial.any():
        days = pd.to_numeric(s[serial], errors="coerce")
        out.loc[days.index] = (
            pd.Timestamp("1899-12-30") + pd.to_timedelta(days.to_numpy(dtype=float), unit="D")
        ).astype("datetime64[ns]")
    return out


def _numbers(values: pd.Series) -> pd.Series:
    """Numbers from text, converting each distinct value once; anything else is missing."""
    return codes.by_unique(values, lambda u: pd.to_numeric(u, errors="coerce").astype("Float64"))


def _mask(mask) -> np.ndarray:
    """A plain boolean array, with missing values counted as False."""
    if isinstance(mask, pd.Series):
        return mask.fillna(False).to_numpy(dtype=bool)
    return np.asarray(mask, dtype=bool)


#: Figures in a message that count rows: added up when an extract is read in batches.
_SUMMED = ("split", "changed", "unchanged")


class _Collector:
    """Collects issues with their spreadsheet row numbers, over one or many batches of rows.

    Each kind of issue (code and column) is counted over every batch; its example rows are
    the first rows it was found on, and its example the first filled value. The issues come
    out in the order the checks run, whichever batch first found each one.
    """

    def __init__(self, row_numbers: np.ndarray, columns: dict[str, str]):
        self.row_numbers = row_numbers
        self.columns = columns
        #: Issues made whole elsewhere, given after the ones collected here.
        self.later: list[Issue] = []
        self._found: dict[tuple, dict] = {}
        self._order: list[tuple] = []
        self._batch: list[tuple] = []

    def batch(self, row_numbers: np.ndarray) -> None:
        """Start the next batch of rows, with their spreadsheet row numbers."""
        self.row_numbers = row_numbers
        self._batch = []

    def _place(self, key: tuple) -> None:
        """Keep the checks in the order they run, even when a batch skips one."""
        if key not in self._order:
            after = next((k for k in reversed(self._batch) if k in self._order), None)
            self._order.insert(0 if after is None else self._order.index(after) + 1, key)
        self._batch.append(key)

    def add(self, code: str, mask, canonical: str | None, values: pd.Series | None = None, **extra):
        mask = _mask(mask)
        key = (code, canonical, extra.get("file"))
        self._place(key)
        n = int(mask.sum())
        if n == 0:
            return
        seen = self._found.setdefault(
            key, {"count": 0, "rows": [], "filled": None, "first": None, "extra": {}}
        )
        seen["count"] += n
        if len(seen["rows"]) < EXAMPLE_ROWS:
            seen["rows"] += self.row_numbers[mask][: EXAMPLE_ROWS - len(seen["rows"])].tolist()
        if values is not None and seen["filled"] is None:
            picked = values[mask].fillna("")
            filled = picked[picked.ne("")]
            if len(filled):
                seen["filled"] = str(filled.iloc[0])
            if seen["first"] is None:
                seen["first"] = str(picked.iloc[0])
        for k, v in extra.items():
            seen["extra"][k] = seen["extra"].get(k, 0) + v if k in _SUMMED else v

    def count(self, code: str) -> int:
        """Rows found so far with this code, in any column."""
        return sum(f["count"] for k, f in self._found.items() if k[0] == code)

    def finish(self) -> list[Issue]:
        """Every issue found, each said once (and logged), then the ones made elsewhere."""
        issues = []
        for key in self._order:
            if key not in self._found:
                continue
            code, canonical, _ = key
            seen = self._found[key]
            n, rows = seen["count"], seen["rows"]
            example = seen["filled"] if seen["filled"] is not None else seen["first"]
            column = self.columns.get(canonical, canonical) if canonical else None
            fields = (
                dict(
                    count=n,
                    rows=format_rows(rows, total=n),
                    example=example,
                    column=column,
                    field=canonical,
                )
                | seen["extra"]
            )
            message = render(code, **fields)
            issues.append(Issue(code, column, n, rows, example, message, CATALOGUE[code].kind))
            (log.info if CATALOGUE[code].kind == "exclusion" else log.warning)(message)
        return issues + self.later


def _check_columns(cfg: ServiceConfig, path: Path, found: list[str]) -> None:
    """Stop when a mapped column is named twice or not found (with the closest names)."""
    repeated = sorted({s for s in cfg.columns.values() if found.count(s) > 1})
    if repeated:
        raise ExtractError("EXT012", path=str(path), columns=", ".join(f"'{c}'" for c in repeated))
    missing = {c: s for c, s in cfg.columns.items() if s not in found}
    if missing:
        import difflib

        hints = []
        for canonical, source in missing.items():
            close = difflib.get_close_matches(source, found, n=2, cutoff=0.5)
            if close:
                hints.append(
                    f"'{source}' (for {canonical}) might be " + " or ".join(f"'{c}'" for c in close)
                )
        suggestion = (" Closest names: " + "; ".join(hints) + ".") if hints else ""
        raise ExtractError(
            "EXT004",
            path=str(path),
            missing=", ".join(f"{c} → '{s}'" for c, s in missing.items()),
            found=", ".join(f"'{c}'" for c in found),
            suggestion=suggestion,
        )


def _unread_columns(cfg: ServiceConfig, found: list[str], opening) -> tuple[list, list]:
    """The columns never read: identifiers (by name, or NHS numbers in the first 200
    rows, ``opening``), and free text."""
    mapped_sources = set(cfg.columns.values())
    dropped = [
        c
        for c in found
        if c not in mapped_sources
        and (IDENTIFIER_PATTERN.search(c) or holds_nhs_numbers(opening[c].iloc[:200]))
    ]
    if dropped:
        log.warning(render("EXT009", columns=", ".join(dropped)))
    free_text = [
        c
        for c in found
        if c not in mapped_sources and c not in dropped and FREE_TEXT_PATTERN.search(c)
    ]
    return dropped, free_text


def _source(raw: pd.DataFrame, cfg: ServiceConfig) -> pd.DataFrame:
    """The mapped columns under their canonical names, as text without spaces around."""
    src = pd.DataFrame({canon: raw[source] for canon, source in cfg.columns.items()})
    return src.astype("string").apply(lambda s: s.str.strip())


def _repeated_ids(rid: pd.Series, row_numbers: np.ndarray, cfg: ServiceConfig, path: Path):
    """Stop when a referral ID is given on more than one row (blank IDs aside)."""
    dup = rid.duplicated(keep=False) & rid.ne("")
    if dup.any():
        dup_rows = row_numbers[dup.to_numpy()]
        raise ExtractError(
            "EXT007",
            path=str(path),
            column=cfg.columns["referral_id"],
            rows=dup_rows[:EXAMPLE_ROWS],
            rows_total=len(dup_rows),
            count=int(rid[dup].nunique()),
        )


@dataclass
class _Areas:
    """The reference data the area checks use, read once for all batches of rows."""

    imd: pd.DataFrame
    catchment: pd.Series
    by_code: pd.DataFrame
    lookup: dict | None = None


def _areas(cfg: ServiceConfig) -> _Areas:
    imd = load_imd(cfg.imd_path, cfg.imd_edition)
    areas = _Areas(imd=imd, catchment=pd.Series(dtype="string"), by_code=imd.set_index("lsoa_code"))
    if not cfg.has("lsoa_code"):
        return areas
    if cfg.lsoa_lookup is not None:
        lookup = load_lsoa_lookup(cfg.lsoa_lookup)
        old, new = ("lsoa11", "lsoa21") if cfg.imd_edition == 2025 else ("lsoa21", "lsoa11")
        # The census counts residents of LSOA 2021 areas: it can only choose among those.
        residents = _population_totals(cfg) if new == "lsoa21" else None
        chosen, rule = split_rule(lookup, old, new, residents)
        options = lookup[[old, new]].dropna().drop_duplicates()
        n_options = options.groupby(old)[new].size()
        quintile = options[new].map(areas.by_code["imd_quintile"])
        # A split area whose new areas are in different IMD quintiles: the choice matters.
        differs = quintile.groupby(options[old]).nunique(dropna=False).gt(1)
        areas.lookup = dict(
            old=old, new=new, chosen=chosen, rule=rule, n_options=n_options, differs=differs
        )
    catchment = catchment_lsoas(imd, cfg.catchment_lads)["lsoa_code"]
    if cfg.catchment_lsoa_file is not None:
        listed = load_lsoa_list(cfg.catchment_lsoa_file)
        catchment = catchment[catchment.isin(listed)] if cfg.catchment_lads else listed
    areas.catchment = catchment
    return areas


@dataclass
class _Rules:
    """What every batch of rows is checked against, decided once for the whole extract."""

    cfg: ServiceConfig
    today: dt.date
    fmt: str | None
    areas: _Areas


def _date_format(cfg: ServiceConfig) -> str | None:
    return (cfg.raw.get("extract") or {}).get("date_format")


def _rules(cfg: ServiceConfig, today: dt.date | None) -> _Rules:
    return _Rules(
        cfg=cfg,
        today=today or dt.date.today(),
        fmt=_date_format(cfg),
        areas=_areas(cfg),
    )


def _prepare_rows(
    src: pd.DataFrame, rules: _Rules, col: _Collector, derived: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
    """Check, exclude and derive the analysis columns for some rows of the extract.

    The same for the whole extract at once or for it batch by batch: every rule here
    looks at one row at a time. Returns the columns for every row, which rows are used,
    and the rows excluded, by reason.
    """
    cfg, today, fmt, areas = rules.cfg, rules.today, rules.fmt, rules.areas
    n_read = len(src)
    out = pd.DataFrame(index=src.index)
    keep = np.ones(n_read, dtype=bool)
    excluded: dict[str, int] = {}

    def exclude(code, mask, canonical, values=None, **extra):
        mask = _mask(mask) & keep
        col.add(code, mask, canonical, values, **extra)
        if mask.any():
            excluded[code] = excluded.get(code, 0) + int(mask.sum())
            keep[mask] = False

    # Referral ID: blank rows are excluded (repeats have stopped the run already).
    rid = src["referral_id"].fillna("")
    exclude("EXC001", rid.eq(""), "referral_id")

    # Referral date: must be a date, not in the future, inside the period.
    ref_date = parse_dates(src["referral_date"], fmt)
    exclude("EXC002", ref_date.isna(), "referral_date", src["referral_date"].fillna(""))
    # (Compared as timestamps: when no date could be read, .dt.date holds no dates to compare.)
    future = (ref_date.dt.normalize() > pd.Timestamp(today)).fillna(False)
    exclude("EXC003", future, "referral_date", src["referral_date"])
    start, end = pd.Timestamp(cfg.period_start), pd.Timestamp(cfg.period_end)
    outside = ((ref_date < start) | (ref_date > end)).fillna(False)
    exclude(
        "EXC004",
        outside,
        "referral_date",
        src["referral_date"],
        start=cfg.period_start.strftime("%d/%m/%Y"),
        end=cfg.period_end.strftime("%d/%m/%Y"),
    )
    out["referral_date"] = ref_date
    out["referral_month"] = ref_date.dt.to_period("M").dt.to_timestamp()
    if cfg.change_date:
        out["period"] = np.where(ref_date >= pd.Timestamp(cfg.change_date), "After", "Before")

    # Age.
    if cfg.has("age"):
        age = _numbers(src["age"])
        col.add("VAL010", age.isna() & src["age"].fillna("").ne("") & keep, "age", src["age"])
        bad = (age < 0) | (age > 120)
        col.add("VAL002", bad.fillna(False) & keep, "age", src["age"])
        age = age.mask(bad)
        out["age"] = age
        out["age_band"] = codes.age_to_band(age)
        out["age_group"] = codes.age_to_census_group(age)
    else:
        band = src["age_band"].fillna("").replace("", codes.UNKNOWN_AGE)
        out["age_band"] = band
        out["age_group"] = codes.band_to_census_group(band)

    # Coded fields.
    sex = codes.normalise_sex(src["sex"], cfg.values.get("sex"))
    col.add("VAL001", sex.eq(codes.INVALID) & keep, "sex", src["sex"])
    out["sex"] = sex
    out["sex_label"] = sex.map(codes.SEX_CODES).fillna(codes.INVALID)
    eth = codes.normalise_ethnicity(src["ethnicity"], cfg.values.get("ethnicity"))
    col.add("VAL001", eth.eq(codes.INVALID) & keep, "ethnicity", src["ethnicity"])
    out["ethnicity"] = eth
    out["ethnic_group"] = codes.broad_ethnic_group(eth)

    for fieldname in YES_NO_FIELDS:
        if cfg.has(fieldname):
            v = codes.normalise_yes_no(src[fieldname], cfg.values.get(fieldname))
            col.add("VAL009", v.eq(codes.INVALID) & keep, fieldname, src[fieldname])
            out[fieldname] = v
    for fieldname in ("religion", "sexual_orientation", "marital_status"):
        if cfg.has(fieldname):
            out[fieldname] = codes.normalise_category(src[fieldname], cfg.values.get(fieldname))

    # Dates along the pathway.
    for fieldname in ("first_appointment_date", "discharge_date"):
        if derived is not None and fieldname in derived:
            d = derived[fieldname]
        elif cfg.has(fieldname):
            d = parse_dates(src[fieldname], fmt)
            unreadable = d.isna() & src[fieldname].fillna("").ne("")
            col.add("VAL003", unreadable & keep, fieldname, src[fieldname])
        else:
            continue
        before = (d < ref_date).fillna(False)
        col.add("VAL004", before & keep, fieldname)
        out[fieldname] = d.mask(before)
    if "first_appointment_date" in out:
        out["wait_days"] = (out["first_appointment_date"] - out["referral_date"]).dt.days

    # Appointment counts.
    count_fields = ["appointments_offered", "appointments_attended", "appointments_dna"]
    if derived is not None:
        for f in count_fields:
            out[f] = derived[f]
    elif all(cfg.has(f) for f in count_fields):
        nums = {f: _numbers(src[f]) for f in count_fields}
        for f in count_fields:
            text = src[f].fillna("")
            col.add("VAL010", nums[f].isna() & text.ne("") & keep, f, src[f])
        bad = (
            (
                nums["appointments_attended"] + nums["appointments_dna"]
                > nums["appointments_offered"]
            )
            | (nums["appointments_offered"] < 0)
            | (nums["appointments_attended"] < 0)
            | (nums["appointments_dna"] < 0)
        ).fillna(False)
        col.add("VAL008", bad & keep, "appointments_offered")
        for f in count_fields:
            out[f] = nums[f].mask(bad).astype("Float64").round().astype("Int64")

    if cfg.has("discharge_reason"):
        reason = codes.normalise_discharge_reason(
            src["discharge_reason"], cfg.values.get("discharge_reason")
        )
        col.add(
            "VAL001", reason.eq(codes.INVALID) & keep, "discharge_reason", src["discharge_reason"]
        )
        out["discharge_reason"] = reason
        out["dropped_out"] = reason.isin(["disengaged", "dna_discharge"])
        out["completed"] = reason.eq("completed")
        out["closed"] = reason.notna()

    for fieldname in ("outcome_start", "outcome_end"):
        if cfg.has(fieldname):
            v = _numbers(src[fieldname])
            col.add(
                "VAL010",
                v.isna() & src[fieldname].fillna("").ne("") & keep,
                fieldname,
                src[fieldname],
            )
            out[fieldname] = v
    if cfg.has("outcome_start") and cfg.has("outcome_end"):
        change = out["outcome_end"] - out["outcome_start"]
        out["outcome_improvement"] = change if cfg.outcome_higher_is_better else -change

    # Areas and deprivation.
    if cfg.has("lsoa_code"):
        _add_deprivation(out, src, cfg, areas, col, keep)

    return out, keep, excluded


def prepare(cfg: ServiceConfig, *, today: dt.date | None = None) -> PreparedExtract:
    """Read, map, validate and derive the analysis columns for one service.

    Raises
    ------
    ExtractError
        When the extract cannot serve the analysis at all (unreadable, missing
        required columns, repeated referral IDs, no rows left).
    """
    path = Path(cfg.extract_path)
    raw, info = read_extract(
        path,
        sheet=cfg.extract_sheet,
        header_row=cfg.extract_header_row,
        expected_columns=list(cfg.columns.values()),
    )
    found = list(raw.columns)
    _check_columns(cfg, path, found)
    dropped, free_text = _unread_columns(cfg, found, raw)
    src = _source(raw, cfg)
    del raw
    row_numbers = np.asarray(info["row_numbers"])
    rid = src["referral_id"].fillna("")
    _repeated_ids(rid, row_numbers, cfg, path)
    derived, appointments, appt_issues = None, None, []
    if cfg.appointments_path is not None:
        # Appointments, from a file of one row per appointment.
        derived, appointments, appt_issues = derive_appointments(cfg, rid, _date_format(cfg))
        derived = derived.set_axis(src.index)
    rules = _rules(cfg, today)
    col = _Collector(row_numbers, cfg.columns)
    data, keep, excluded = _prepare_rows(src, rules, col, derived)
    data = data[keep].reset_index(drop=True)
    return _prepared(
        cfg,
        path,
        info,
        col,
        data,
        len(src),
        [excluded],
        (appointments, appt_issues),
        (dropped, free_text),
    )


def _prepared(
    cfg: ServiceConfig,
    path: Path,
    info: dict,
    col: _Collector,
    data: pd.DataFrame | None,
    n_read: int,
    excluded: list[dict[str, int]],
    appointments: tuple,
    unread: tuple,
) -> PreparedExtract:
    """The row account and the issues, once every row has been prepared."""
    totals = Counter()
    for part in excluded:
        totals.update(part)
    # In the order the exclusions are checked, as one pass over the whole extract gives.
    order = [k[0] for k in col._order if k[0] in totals]
    excluded_all = {code: totals[code] for code in dict.fromkeys(order)}
    outside = _outside_table(info, col)
    col.later += appointments[1]
    issues = col.finish()
    rows_used = n_read - sum(excluded_all.values())
    account = RowAccount(
        rows_read=n_read, rows_used=rows_used, excluded=excluded_all, outside_table=outside
    )
    if account.rows_used == 0:
        reason = max(excluded_all, key=excluded_all.get) if excluded_all else "EXC002"
        raise ExtractError(
            "EXT010", path=str(path), count=n_read, reason=CATALOGUE[reason].title.lower()
        )
    assert account.adds_up()
    return PreparedExtract(
        data=data,
        account=account,
        issues=issues,
        dropped_identifiers=unread[0],
        free_text=unread[1],
        appointments=appointments[0],
        source=path.name + (f" (sheet '{info['sheet']}')" if info.get("sheet") else ""),
        encoding=info["encoding"],
        delimiter=info["delimiter"],
        imd_edition=cfg.imd_edition,
    )


def derive_appointments(
    cfg: ServiceConfig, referral_ids: pd.Series, fmt: str | None = None
) -> tuple[pd.DataFrame, dict, list[Issue]]:
    """Appointments offered, attended and missed, and the first contact, for each referral.

    Reads the appointments file the config names (one row per appointment). Every row is
    accounted for: a row whose referral ID is blank or not in the referral file, whose
    attendance is not recognised, or that repeats an earlier row exactly, is counted in
    the account and not used. Offered counts every appointment booked (attended,
    cancelled or missed); the first contact is the earliest attended appointment.

    Returns one row for each of ``referral_ids`` (in order), the account and the issues.
    """
    path = Path(cfg.appointments_path)
    columns = cfg.appointments_columns
    raw, info = read_extract(
        path,
        sheet=cfg.appointments_sheet,
        header_row=cfg.appointments_header_row,
        expected_columns=list(columns.values()),
        setting="appointments.path",
    )
    missing = {c: s for c, s in columns.items() if s not in raw.columns}
    if missing:
        raise ExtractError(
            "EXT004",
            path=str(path),
            missing=", ".join(f"appointments {c} → '{s}'" for c, s in missing.items()),
            found=", ".join(f"'{c}'" for c in raw.columns),
            suggestion="",
        )
    src = pd.DataFrame({c: raw[s] for c, s in columns.items()}).astype("string")
    src = src.apply(lambda s: s.str.strip()).fillna("")
    del raw
    n = len(src)
    col = _Collector(np.asarray(info["row_numbers"]), columns)
    keep = np.ones(n, dtype=bool)
    left: dict[str, int] = {}

    def leave(code, mask, canonical, values=None):
        mask = _mask(mask) & keep
        col.add(code, mask, canonical, values, file=path.name)
        if mask.any():
            left[code] = int(mask.sum())
            keep[mask] = False

    rid = src["referral_id"]
    known = pd.Index(referral_ids[referral_ids.ne("")].unique())
    leave("APP001", ~rid.isin(known), "referral_id", rid)
    status = codes.normalise_attendance(src["attendance"], cfg.appointments_values or None)
    leave("APP002", status.isna() | status.eq(codes.INVALID), "attendance", src["attendance"])
    repeated = src.duplicated(keep="first").to_numpy()
    leave("APP003", repeated, None, rid)
    when = parse_dates(src["appointment_date"], fmt)
    unreadable = when.isna().to_numpy() & keep
    col.add("APP004", unreadable, "appointment_date", src["appointment_date"], file=path.name)
    kept = pd.DataFrame({"rid": rid[keep], "status": status[keep], "when": when[keep]})
    by = kept.groupby("rid", sort=False)
    offered = by.size()
    attended = kept["status"].eq("attended").groupby(kept["rid"], sort=False).sum()
    missed = kept["status"].eq("missed").groupby(kept["rid"], sort=False).sum()
    first = kept[kept["status"].eq("attended")].groupby("rid", sort=False)["when"].min()
    ids = referral_ids.reset_index(drop=True)
    derived = pd.DataFrame(
        {
            "appointments_offered": ids.map(offered).fillna(0).astype("Int64"),
            "appointments_attended": ids.map(attended).fillna(0).astype("Int64"),
            "appointments_dna": ids.map(missed).fillna(0).astype("Int64"),
            # (A dict: mapping by an empty series of dates fails in pandas.)
            "first_appointment_date": pd.to_datetime(ids.map(first.to_dict()))
            .astype("datetime64[ns]")
            .dt.normalize(),  # the date of first contact, as a referral file gives it
        }
    )
    account = {
        "source": path.name,
        "rows_read": n,
        "rows_used": int(keep.sum()),
        "excluded": left,
        "outside_table": _outside_table(info, col),
    }
    assert account["rows_read"] == account["rows_used"] + sum(left.values())
    return derived, account, col.finish()


def _outside_table(info: dict, col: _Collector) -> dict[str, int]:
    """Count the title lines above the table and the lines below it, and say so once."""
    titles, footer = int(info.get("titles") or 0), list(info.get("footer_rows") or [])
    if not (titles or footer):
        return {}
    parts = []
    if titles:
        parts.append(f"{titles:,} title line{'s' * (titles != 1)} above the column names")
    if footer:
        parts.append(
            f"{len(footer):,} line{'s' * (len(footer) != 1)} of totals, run details or notes "
            f"below the data (line{'s' * (len(footer) != 1)} {format_rows(footer)})"
        )
    message = render("EXT014", lines=" and ".join(parts))
    col.later.append(
        Issue("EXT014", None, titles + len(footer), footer[:EXAMPLE_ROWS], None, message, "warning")
    )
    log.info(message)
    return {
        "titles above the column names": titles,
        "totals, run details and notes below the data": len(footer),
    }


def split_rule(
    lookup: pd.DataFrame, old: str, new: str, population: pd.Series | None = None
) -> tuple[pd.Series, str]:
    """The one new code each old code is given, and the rule that chose it, in words.

    An area that was split has several new codes. The one with the most residents in the
    census population file is taken; where no population is known, the first by code.
    The order of the lookup file never matters.

    >>> lk = pd.DataFrame({"lsoa11": ["A", "A", "B"], "lsoa21": ["A2", "A1", "B"]})
    >>> split_rule(lk, "lsoa11", "lsoa21")[0].to_dict()
    {'A': 'A1', 'B': 'B'}
    """
    pairs = lookup[[old, new]].dropna().drop_duplicates()
    year = f"20{new[-2:]}"
    if population is not None and pairs[new].isin(population.index).any():
        pairs = pairs.assign(residents=pairs[new].map(population).fillna(-1.0))
        pairs = pairs.sort_values([old, "residents", new], ascending=[True, False, True])
        rule = (
            f"the LSOA {year} area with the most residents in the census population file "
            "(the first by code where the file does not cover it)"
        )
    else:
        pairs = pairs.sort_values([old, new])
        rule = (
            f"the first LSOA {year} area by code (name a census population file in the "
            "config to give each the area with the most residents)"
        )
    return pairs.drop_duplicates(old).set_index(old)[new], rule


def _population_totals(cfg: ServiceConfig) -> pd.Series | None:
    """Residents of each LSOA 2021, from the first census file the config names."""
    from .reference import load_population_age, load_population_ethnicity, load_population_sex

    for path, loader in (
        (cfg.population_age, load_population_age),
        (cfg.population_ethnicity, load_population_ethnicity),
        (cfg.population_sex, load_population_sex),
    ):
        if path is None:
            continue
        try:
            table = loader(path)
        except PlaybookError:  # check names a broken file; the rule then falls back
            continue
        return table.set_index("lsoa_code").select_dtypes("number").sum(axis=1)
    return None


def _add_deprivation(out, src, cfg: ServiceConfig, areas: _Areas, col: _Collector, keep) -> None:
    imd = areas.imd
    code = src["lsoa_code"].fillna("").str.upper()
    fmt_ok = codes.lsoa_format_ok(code)
    col.add("VAL005", (~fmt_ok & code.ne("")).to_numpy() & keep, "lsoa_code", src["lsoa_code"])
    code = code.where(fmt_ok, pd.NA)
    known = code.isin(imd["lsoa_code"])
    if areas.lookup is not None:
        old, new, chosen = areas.lookup["old"], areas.lookup["new"], areas.lookup["chosen"]
        convertible = code.notna() & ~known & code.isin(chosen.index)
        if convertible.any():
            # Codes the lookup lists that are the same in both years need no change.
            unchanged = known & code.isin(chosen.index)
            n_options, differs = areas.lookup["n_options"], areas.lookup["differs"]
            in_split = (convertible & code.map(n_options).gt(1)).to_numpy() & keep
            matters = (convertible & code.map(differs).eq(True)).to_numpy() & keep
            code = code.mask(convertible, code[convertible].map(chosen))
            col.add(
                "VAL011",
                convertible.to_numpy() & keep,
                "lsoa_code",
                split=int(in_split.sum()),
                changed=int(matters.sum()),
                rule=areas.lookup["rule"],
                unchanged=int((unchanged.to_numpy() & keep).sum()),
                old=f"20{old[-2:]}",
                new=f"20{new[-2:]}",
            )
            known = code.isin(imd["lsoa_code"])
    not_in_imd = code.notna() & ~known
    hint = (
        "They may be LSOA 2011 codes: set reference.lsoa_lookup to the ONS LSOA 2011 to 2021 "
        "lookup so they can be matched."
        if cfg.imd_edition == 2025
        else "They may be LSOA 2021 codes: use IMD 2025, or set reference.lsoa_lookup."
    )
    col.add(
        "VAL007",
        not_in_imd.to_numpy() & keep,
        "lsoa_code",
        src["lsoa_code"],
        edition=cfg.imd_edition,
        hint=hint,
    )
    inside = code.isin(areas.catchment)
    col.add("VAL006", (known & ~inside).to_numpy() & keep, "lsoa_code", src["lsoa_code"])
    by_code = areas.by_code
    out["lsoa_code"] = code
    out["lsoa_status"] = np.select(
        [code.isna() & src["lsoa_code"].fillna("").eq(""), code.isna(), ~known, ~inside],
        ["missing", "invalid", "not in IMD file", "outside catchment"],
        "in catchment",
    )
    out["in_catchment"] = inside
    out["imd_decile"] = code.map(by_code["imd_decile"]).astype("Int64")
    out["imd_quintile"] = code.map(by_code["imd_quintile"]).astype("Int64")
    out["core20"] = out["imd_decile"].le(2).astype("boolean")
    out["lad_code"] = code.map(by_code["lad_code"])


# --------------------------------------------------------------------------- prepared file


def write_prepared(prepared: PreparedExtract, path: str | Path, extra: dict | None = None) -> Path:
    """Write the prepared data as Parquet, with the row account and issues as metadata.

    The file is written under a temporary name and moved into place, so a reader never
    sees half a file, even when several notebooks prepare the same extract at once.
    """
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(prepared.data, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"equity_helpers"] = json.dumps(prepared.metadata() | (extra or {})).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    import pyarrow.parquet as pq

    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(path)
    return path


def read_prepared(path: str | Path, columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Read a prepared file (only the columns asked for) and its metadata."""
    import pyarrow.parquet as pq

    path = Path(path)
    schema = pq.read_schema(path)
    # The file's own key-value metadata: a file written in batches adds it at the end.
    stored = pq.read_metadata(path).metadata or {}
    meta = json.loads(stored[b"equity_helpers"]) if b"equity_helpers" in stored else {}
    if columns is not None:
        columns = [c for c in columns if c in schema.names]
    return pd.read_parquet(path, columns=columns), meta
