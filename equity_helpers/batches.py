"""Prepare a big CSV extract a batch of rows at a time, never whole in memory.

A CSV extract of :data:`STREAM_BYTES` or more is prepared by :func:`prepare_in_batches`,
with the same data, row account and issues as one whole read
(:func:`equity_helpers.extract.prepare`): the rules are those of :mod:`equity_helpers.extract`,
applied to each batch, and what needs the whole file is decided once for all of it.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .config import ServiceConfig, file_problem
from .errors import ExtractError, render
from .extract import (
    _DELIMITERS,
    EXAMPLE_ROWS,
    _check_columns,
    _Collector,
    _csv_options,
    _date_format,
    _footer_lines,
    _Layout,
    _layout,
    _prepare_rows,
    _prepared,
    _ragged_rows,
    _repeated_ids,
    _rules,
    _source,
    _tail,
    _unread_columns,
    derive_appointments,
)

log = logging.getLogger("equity_helpers")


#: A CSV extract at least this big is prepared in batches of rows, never whole in memory.
STREAM_BYTES = 64 * 2**20
#: Rows in each batch when an extract is prepared in batches.
BATCH_ROWS = 100_000
_CHUNK = 1 << 24
#: A line of nothing but spaces, after a line break (the break after it is not taken).
_BLANK_LINE = re.compile(r"\n([^\S\n]*)(?=\n)")


@dataclass
class _Scan:
    """What one pass over a CSV file's text finds, keeping only its ends in memory."""

    encoding: str
    size: int
    head: str
    tail: str
    chars: int
    newlines: int
    #: Lines of nothing but spaces: (line number, whether the line is empty or a lone "\r").
    blanks: list[tuple[int, bool]]


def _scan_as(path: Path, encoding: str) -> _Scan | None:
    """Decode the whole file in pieces; None when it is not in this encoding."""
    decoder = codecs.getincrementaldecoder(encoding)()
    head, tail, chars, newlines, blanks = "", "", 0, 0, []
    carry, line, started = "\n", 1, False
    with open(path, "rb") as fh:
        while True:
            raw = fh.read(_CHUNK)
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError:
                return None
            if not started:
                text = text.lstrip("\ufeff")
                started = bool(text)
            chars += len(text)
            newlines += text.count("\n")
            if len(head) < 200_000:
                head += text[: 200_000 - len(head)]
            tail = (tail + text)[-400_000:]
            buf = carry + text
            cut = buf.rfind("\n")
            for m in _BLANK_LINE.finditer(buf, 0, cut + 1):
                number = line + buf.count("\n", 0, m.start())
                blanks.append((number, number >= 2 and m.group(1) in ("", "\r")))
            line += buf.count("\n", 0, cut)
            carry = buf[cut:]
            if not raw:
                break
    if not carry[1:].strip():  # the text after the last line break: blank too
        blanks.append((line, False))
    return _Scan(encoding, path.stat().st_size, head, tail, chars, newlines, blanks)


def _scan(path: Path) -> _Scan:
    """The encoding (decided from the whole file, as for a small one) and the text's ends."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(4)
            fh.seek(0)
            filled = False
            while not filled and (piece := fh.read(_CHUNK)):
                filled = bool(piece.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"))
        if not filled:
            raise ExtractError("EXT001", path=str(path))
        tries = ["utf-8-sig", "cp1252", "latin-1"]
        if start.startswith((b"\xff\xfe", b"\xfe\xff")):
            tries.insert(0, "utf-16")
        for encoding in tries:
            scan = _scan_as(path, encoding)
            if scan is not None:
                return scan
    except OSError as exc:  # no permission to read it, or a disk error
        raise ExtractError("EXT008", path=str(path), detail=exc.strerror or str(exc)) from None
    raise AssertionError("latin-1 reads any bytes")  # pragma: no cover


class _Range(io.RawIOBase):
    """Part of a file, from one byte to another, read as a file of its own."""

    def __init__(self, path: Path, start: int, stop: int):
        self._fh = open(path, "rb")  # noqa: SIM115 (closed with this object)
        self._fh.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._fh.readinto(memoryview(b)[: max(min(len(b), self._left), 0)])
        self._left -= n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


class _RowNumbers:
    """Spreadsheet row numbers of the data rows, as ``extract._row_numbers`` gives them
    for the whole text, for any rows, from the blank lines a scan of the file found.

    ``last_line``: the number of line breaks in the text the table is read from; ``cut``:
    whether lines below the table were cut off (the text then ends with a line break).
    """

    def __init__(self, first: int, blanks: list, last_line: int, cut: bool):
        self.first = first
        limit = last_line if cut else last_line + 1
        kept = {n for n, _ in blanks if n <= limit} | ({last_line + 1} if cut else set())
        # Blank lines are skipped only when the text has an empty line between two others.
        self.skips = any(flag for n, flag in blanks if n <= last_line)
        lines = np.array(sorted(n for n in kept if n >= first), dtype=np.int64)
        #: How many lines are not blank from the first data line on.
        self.available = (last_line + 1 - first + 1) - len(lines)
        self._c = lines - np.arange(len(lines)) - first

    def at(self, i: np.ndarray) -> np.ndarray:
        if not self.skips:
            return self.first + i
        return self.first + i + np.searchsorted(self._c, i, side="right")

    def __call__(self, start: int, n: int) -> np.ndarray:
        return self.at(np.arange(start, start + n))

    def settle(self, total: int) -> bool:
        """Count rows one line each when the text has fewer lines than rows, as a whole
        read does; True when that changes the numbers given so far."""
        if self.skips and self.available < total:
            self.skips = False
            return True
        return False


class _CsvStream:
    """A CSV extract read in batches of rows, each column as text."""

    def __init__(self, path: Path, scan: _Scan, layout: _Layout, stop: int):
        self.path, self.scan, self.layout, self.stop = path, scan, layout, stop
        self.bad: list = []
        utf8 = scan.encoding == "utf-8-sig"
        start = 0
        if utf8:
            with open(path, "rb") as fh:
                start = 3 if fh.read(3) == b"\xef\xbb\xbf" else 0
        self._source = io.BufferedReader(_Range(path, start, stop), _CHUNK)
        try:
            self._reader = pacsv.open_csv(
                self._source,
                **_csv_options(layout, self._on_bad_row, None if utf8 else scan.encoding),
            )
        except pa.ArrowInvalid as exc:
            raise ExtractError("EXT008", path=str(path), detail=str(exc).splitlines()[0]) from None
        except StopIteration:  # nothing under the header
            self._reader = None
        names = self._reader.schema.names if self._reader is not None else layout.header
        self.names = [str(c).strip().lstrip("\ufeff") for c in names]

    def _on_bad_row(self, row):
        self.bad.append(row)
        return "skip"

    def batches(self, rows: int):
        """Tables of ``rows`` rows, in the file's order."""
        pending, have, want = [], 0, rows
        try:
            while self._reader is not None:
                try:
                    batch = self._reader.read_next_batch()
                except StopIteration:
                    break
                pending.append(batch)
                have += batch.num_rows
                while have >= want:
                    table = pa.Table.from_batches(pending)
                    yield table.slice(0, want)
                    rest = table.slice(want)
                    pending, have, want = rest.to_batches(), rest.num_rows, rows
        except pa.ArrowInvalid as exc:
            raise ExtractError(
                "EXT008", path=str(self.path), detail=str(exc).splitlines()[0]
            ) from None
        finally:
            self._source.close()
        if have:
            yield pa.Table.from_batches(pending)
        self._check_widths()

    def _check_widths(self) -> None:
        """Stop, naming the rows, when rows have a different number of values from the header."""
        if not self.bad:
            return
        enc = self.scan.encoding
        with io.TextIOWrapper(
            io.BufferedReader(_Range(self.path, 0, self.stop)), encoding=enc, newline=""
        ) as text:
            lines = (line.lstrip("\ufeff") if i == 0 else line for i, line in enumerate(text))
            rows, width, found = _ragged_rows(lines, self.layout.delimiter, self.layout.header_idx)
        if not rows:  # the parser and the line reader split the file differently
            detail = (
                f"{len(self.bad)} rows have a different number of values from the header; a "
                "quote mark or line break inside a value may have split or joined rows"
            )
            raise ExtractError("EXT008", path=str(self.path), detail=detail)
        raise ExtractError(
            "EXT013",
            path=str(self.path),
            rows=rows[:EXAMPLE_ROWS],
            rows_total=len(rows),
            count=len(self.bad),
            width=width,
            found=found,
        )


def _open_stream(path: Path, expected: list[str]) -> tuple[_Scan, _Layout, dict, int]:
    """Scan a CSV extract and find its table: the facts a whole read gives, and the byte
    the table ends at (lines below it cut off)."""
    scan = _scan(path)
    layout = _layout(scan.head, expected)
    tail, offset = _tail(scan.tail, scan.chars, scan.newlines)
    removed, footer_rows = _footer_lines(
        tail, offset, layout.first_data, len(layout.header), layout.delimiter
    )
    stop, last_line = scan.size, scan.newlines
    if removed:
        gone = scan.tail[len(scan.tail) - removed + 1 :]  # from the line break kept
        codec = {"utf-8-sig": "utf-8", "utf-16": "utf-16-le"}.get(scan.encoding, scan.encoding)
        if scan.encoding == "utf-16":
            with open(path, "rb") as fh:
                codec = "utf-16-be" if fh.read(2) == b"\xfe\xff" else "utf-16-le"
        stop -= len(gone.encode(codec))
        last_line = scan.newlines - gone.count("\n")
    if scan.encoding != "utf-8-sig":
        log.warning(render("EXT011", path=path, encoding=scan.encoding))
    info = {
        "encoding": scan.encoding,
        "delimiter": layout.delimiter,
        "titles": layout.titles,
        "footer_rows": footer_rows,
    }
    if layout.header_reason:
        info["header_reason"] = layout.header_reason
    info["_row_numbers"] = _RowNumbers(
        layout.header_idx + 2, scan.blanks, last_line, cut=bool(removed)
    )
    return scan, layout, info, stop


def streams(cfg: ServiceConfig, batch_rows: int | None = None) -> bool:
    """Whether the extract is prepared in batches: a big CSV file, or when asked to."""
    path = Path(cfg.extract_path)
    if path.suffix.lower() not in (".csv", ".txt", ".tsv") or not path.is_file():
        return False
    return batch_rows is not None or path.stat().st_size >= STREAM_BYTES


def _pandas(table: pa.Table, names: list[str], wanted) -> pd.DataFrame:
    """Some columns of a batch, by name, as a whole read gives them."""
    return pd.DataFrame({name: table.column(names.index(name)).to_pandas() for name in wanted})


def _repeated_ids_in(ids: list, hashes: list, rows: _RowNumbers, cfg, path: Path) -> None:
    """:func:`_repeated_ids` for an extract read in batches: by hash, then by value."""
    if not hashes:
        return
    h = np.concatenate(hashes)
    order = np.sort(h[h != 0])
    twice = order[1:][order[1:] == order[:-1]]
    if not len(twice):
        return
    where = np.flatnonzero(np.isin(h, twice))
    rid = pd.Series(pa.chunked_array(ids).take(pa.array(where)).to_pandas(), dtype="string")
    _repeated_ids(rid, rows.at(where), cfg, path)


def _id_hashes(rid: pd.Series) -> np.ndarray:
    """A hash of each referral ID; 0 for a blank one, and never for a filled one."""
    h = pd.util.hash_array(rid.to_numpy(dtype=object), categorize=False)
    filled = (rid != "").to_numpy(dtype=bool)
    h[filled & (h == 0)] = 1
    h[~filled] = 0
    return h


def prepare_in_batches(
    cfg: ServiceConfig,
    out: str | Path,
    *,
    today: dt.date | None = None,
    batch_rows: int | None = None,
    extra: dict | None = None,
    _plain_rows: bool = False,
) -> Path:
    """:func:`~equity_helpers.extract.prepare` for a big CSV extract, writing the prepared
    file as it goes.

    The extract is read a batch of rows at a time and each batch prepared by the same
    rules, so memory is bounded by the batch, not the file. Everything that needs the
    whole extract is decided once for all of it: the encoding (from every byte), the
    header and the lines above and below the table, the spreadsheet row numbers, the row
    account, repeated referral IDs, and each issue's count, example rows and example.
    The prepared data, account and issues are those
    :func:`~equity_helpers.extract.prepare` gives.
    """
    import os

    import pyarrow.parquet as pq

    rows_per_batch = batch_rows or BATCH_ROWS
    path = Path(cfg.extract_path)
    problem = file_problem(path, "extract.path", ExtractError)
    if problem is not None:
        raise problem
    expected = list(cfg.columns.values())
    scan, layout, info, stop = _open_stream(path, expected)
    rownums: _RowNumbers = info.pop("_row_numbers")
    if _plain_rows:
        rownums.skips = False
    stream = _CsvStream(path, scan, layout, stop)
    found = stream.names
    if len(found) == 1 and (len(expected) > 1 or any(d in found[0] for d in _DELIMITERS)):
        single = found[0] not in expected
    else:
        single = False
    try:
        _check_columns(cfg, path, found)
        column_problem = None
    except ExtractError as exc:
        column_problem = exc

    def read_only(columns=()) -> tuple[int, list]:
        n, kept = 0, []
        for table in stream.batches(rows_per_batch):
            n += table.num_rows
            if columns:
                kept.append(_pandas(table, found, columns))
        return n, kept

    if single or column_problem is not None:
        n, _ = read_only()  # a broken file is said first, as when it is read whole
        if single:
            raise ExtractError("EXT005", path=str(path), header=str(found[0])[:80])
        if n == 0:
            raise ExtractError("EXT002", path=str(path))
        raise column_problem

    derived, appointments, appt_issues = None, None, []
    rid_source = cfg.columns["referral_id"]
    if cfg.appointments_path is not None:
        # Every referral ID is needed before the first batch: read that column first.
        n, parts = read_only([rid_source])
        if n == 0:
            raise ExtractError("EXT002", path=str(path))
        rid = pd.concat([p[rid_source] for p in parts], ignore_index=True)
        rid = rid.astype("string").str.strip().fillna("")
        rownums.settle(n)
        _repeated_ids(rid, rownums(0, n), cfg, path)
        derived, appointments, appt_issues = derive_appointments(cfg, rid, _date_format(cfg))
        del rid, parts
        stream = _CsvStream(path, scan, layout, stop)

    rules = _rules(cfg, today)
    col = _Collector(np.array([], dtype=np.int64), cfg.columns)
    n_read, excluded, ids, hashes = 0, [], [], []
    others = [c for c in found if c not in set(expected)]
    opening, seen = [], 0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    writer, schema = None, None
    try:
        for table in stream.batches(rows_per_batch):
            n = table.num_rows
            if stream.bad:  # the file is broken: read on only to name every broken row
                n_read += n
                continue
            if seen < 200:  # identifiers are looked for in the first 200 rows
                opening.append(_pandas(table.slice(0, 200 - seen), found, others))
                seen += min(n, 200 - seen)
            src = _source(_pandas(table, found, expected), cfg)
            ids.append(pa.array(src["referral_id"].fillna(""), type=pa.large_string()))
            hashes.append(_id_hashes(src["referral_id"].fillna("")))
            col.batch(rownums(n_read, n))
            part = None
            if derived is not None:
                part = derived.iloc[n_read : n_read + n].set_axis(src.index)
            data, keep, excl = _prepare_rows(src, rules, col, part)
            excluded.append(excl)
            n_read += n
            # The rows used, chosen by the parser's filter (much faster than pandas' on text).
            arrow = pa.Table.from_pandas(data, preserve_index=False).filter(pa.array(keep))
            del data, src
            if writer is None:
                schema = wide = arrow.schema
                writer = pq.ParquetWriter(tmp, schema)
            elif not arrow.schema.equals(schema):
                # A column's type can depend on its values (whole days are whole numbers
                # until a day is missing): the file takes the widest, as a whole read does.
                wide = pa.unify_schemas([wide, arrow.schema], promote_options="permissive")
                arrow = arrow.cast(schema)
            writer.write_table(arrow)
        if n_read == 0:
            raise ExtractError("EXT002", path=str(path))
        if rownums.settle(n_read):
            # Row numbers must be counted as a whole read counts them: read again.
            writer.close()
            writer = None
            return prepare_in_batches(
                cfg, out, today=today, batch_rows=batch_rows, extra=extra, _plain_rows=True
            )
        _repeated_ids_in(ids, hashes, rownums, cfg, path)
        unread = _unread_columns(cfg, found, pd.concat(opening, ignore_index=True))
        prepared = _prepared(
            cfg, path, info, col, None, n_read, excluded, (appointments, appt_issues), unread
        )
        meta = {"equity_helpers": json.dumps(prepared.metadata() | (extra or {}))}
        if wide.equals(schema):
            writer.add_key_value_metadata(meta)
            writer.close()
            writer = None
        else:  # write the batches again with the wider types
            writer.close()
            writer = None
            narrow, tmp = tmp, tmp.with_name(tmp.name + ".wide")
            try:
                source = pq.ParquetFile(narrow)
                with pq.ParquetWriter(tmp, wide) as wider:
                    for i in range(source.num_row_groups):
                        wider.write_table(source.read_row_group(i).cast(wide))
                    wider.add_key_value_metadata(meta)
            finally:
                narrow.unlink(missing_ok=True)
        tmp.replace(out)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return out
