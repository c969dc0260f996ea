"""Read a service's extract, map it onto the data contract, validate it, and prepare it.

The extract is parsed and validated once per run; the result is written as a Parquet
file that every notebook reads. Nothing is lost silently: every row read is either
used or excluded for a named reason, and every value that could not be used is
counted, with row numbers and an example, in the data-quality report.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from . import codes
from .config import YES_NO_FIELDS, ServiceConfig
from .errors import CATALOGUE, ExtractError, format_rows, render
from .reference import catchment_lsoas, load_imd, load_lsoa_lookup

log = logging.getLogger("equity_helpers")

#: Column names that look like personal identifiers. They are never read.
IDENTIFIER_PATTERN = re.compile(
    r"nhs.?(number|no\b|num)|^name$|patient.?name|full.?name|first.?name|fore.?name|surname|"
    r"last.?name|date.?of.?birth|^dob$|birth.?date|address|post.?code|zip|phone|mobile|"
    r"e.?mail|hospital.?(number|no)|\bmrn\b|ni.?number|national.?insurance",
    re.IGNORECASE,
)
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d/%m/%y",
)
_DELIMITERS = [",", ";", "\t", "|"]
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

    def adds_up(self) -> bool:
        return self.rows_read == self.rows_used + sum(self.excluded.values())

    def table(self) -> pd.DataFrame:
        """The account as a small table, in the order a reader follows it."""
        rows = [("Rows read from the extract", self.rows_read)]
        rows += [(f"Excluded: {CATALOGUE[c].title.lower()}", n) for c, n in self.excluded.items()]
        rows += [("Rows used in the analysis", self.rows_used)]
        return pd.DataFrame(rows, columns=["", "Rows"])


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

    def issue(self, code: str, column: str | None = None) -> Issue | None:
        for i in self.issues:
            if i.code == code and (column is None or i.column == column):
                return i
        return None

    def report(self) -> str:
        """A plain-text report of the row account and every data-quality issue."""
        lines = [f"Extract: {self.source}"]
        for _, row in self.account.table().iterrows():
            lines.append(f"  {row.iloc[0]:<60} {row.iloc[1]:>9,}")
        if self.dropped_identifiers:
            lines.append("Identifier columns not read: " + ", ".join(self.dropped_identifiers))
        for i in self.issues:
            lines.append("")
            lines.append(i.message)
        return "\n".join(lines)

    def metadata(self) -> dict:
        return {
            "source": self.source,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "imd_edition": self.imd_edition,
            "account": asdict(self.account),
            "issues": [i.to_dict() for i in self.issues],
            "dropped_identifiers": self.dropped_identifiers,
        }


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


def _decode_sample(raw: bytes) -> tuple[str, str]:
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def _read_csv(path: Path) -> tuple[pd.DataFrame, str, str, int]:
    raw = path.read_bytes()
    if not raw.strip():
        raise ExtractError("EXT001", path=str(path))
    # Decide the encoding from the whole file: a stray byte far down must not be missed.
    text, encoding = _decode_sample(raw)
    delimiter = _sniff_delimiter(text[:50000])
    start = text[:1] == "\ufeff"
    end = text.find("\n")
    header_line = text[int(start) : end if end >= 0 else None].rstrip("\r")
    arrow_enc = {"utf-8-sig": "utf8", "cp1252": "cp1252", "latin-1": "latin1"}[encoding]
    try:
        if arrow_enc == "utf8":
            source = io.BytesIO(raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw)
        else:
            source = io.BytesIO(text.encode("utf-8"))
        header = next(csv.reader([header_line], delimiter=delimiter))
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, StopIteration) as exc:
        raise ExtractError("EXT008", path=str(path), detail=str(exc).splitlines()[0]) from None
    df = table.to_pandas()
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if encoding != "utf-8-sig":
        log.warning(render("EXT011", path=path, encoding=encoding))
    return df, encoding, delimiter, 1


def _read_excel(
    path: Path, sheet, header_row: int | None, expected: list[str]
) -> tuple[pd.DataFrame, int]:
    try:
        grid = pd.read_excel(
            path,
            sheet_name=sheet if sheet is not None else 0,
            header=None,
            dtype=str,
            engine="openpyxl",
        )
    except Exception as exc:  # openpyxl raises many types for broken files
        raise ExtractError("EXT008", path=str(path), detail=str(exc)) from None
    if grid.dropna(how="all").empty:
        raise ExtractError("EXT001", path=str(path))
    if header_row is None:
        wanted = {e.strip().lower() for e in expected}
        header_row = None
        for i in range(min(30, len(grid))):
            names = {str(v).strip().lower() for v in grid.iloc[i].dropna()}
            if len(names & wanted) >= min(2, len(wanted)):
                header_row = i + 1
                break
        if header_row is None:
            raise ExtractError(
                "EXT006",
                path=str(path),
                rows=min(30, len(grid)),
                sheet=sheet if sheet is not None else "the first sheet",
            )
    header = [
        str(v).strip() if not pd.isna(v) else f"Unnamed {j}"
        for j, v in enumerate(grid.iloc[header_row - 1])
    ]
    df = grid.iloc[header_row:].reset_index(drop=True)
    df.columns = header
    df = df.dropna(how="all")
    return df.fillna("").astype(str), header_row


def read_extract(
    path: str | Path,
    *,
    sheet=None,
    header_row: int | None = None,
    expected_columns: list[str] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Read an extract as text columns, whatever its format.

    Returns the table (all values as strings, blanks as "") and facts about the read:
    ``encoding``, ``delimiter``, and ``first_row`` (the spreadsheet row number of the
    first data row, so messages can name rows as a person sees them).
    """
    path = Path(path)
    if not path.is_file():
        raise ExtractError("CFG006", key="extract.path", path=str(path))
    suffix = path.suffix.lower()
    info = {"encoding": None, "delimiter": None}
    if suffix in (".csv", ".txt", ".tsv"):
        df, info["encoding"], info["delimiter"], hdr = _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        df, hdr = _read_excel(path, sheet, header_row, expected_columns or [])
    elif suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:
            raise ExtractError("EXT008", path=str(path), detail=str(exc)) from None
        df = df.astype("string").fillna("")
        hdr = 1
    else:
        raise ExtractError("EXT003", path=str(path), suffix=suffix or "(none)")
    if len(df.columns) == 1 and any(d in df.columns[0] for d in _DELIMITERS[1:] + [","]):
        raise ExtractError("EXT005", path=str(path), header=df.columns[0][:80])
    if len(df) == 0:
        raise ExtractError("EXT002", path=str(path))
    info["first_row"] = hdr + 1
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
        parsed = pd.to_datetime(s[todo], format=fmt, errors="coerce")
        ok = parsed.notna()
        out.loc[parsed.index[ok]] = parsed[ok]
        todo.loc[parsed.index[ok]] = False
    return out


def _numbers(values: pd.Series) -> pd.Series:
    """Numbers from text, converting each distinct value once; anything else is missing."""
    return codes.by_unique(values, lambda u: pd.to_numeric(u, errors="coerce").astype("Float64"))


def _mask(mask) -> np.ndarray:
    """A plain boolean array, with missing values counted as False."""
    if isinstance(mask, pd.Series):
        return mask.fillna(False).to_numpy(dtype=bool)
    return np.asarray(mask, dtype=bool)


class _Collector:
    """Collects issues with their spreadsheet row numbers."""

    def __init__(self, row_numbers: np.ndarray, columns: dict[str, str]):
        self.row_numbers = row_numbers
        self.columns = columns
        self.issues: list[Issue] = []

    def add(self, code: str, mask, canonical: str | None, values: pd.Series | None = None, **extra):
        mask = _mask(mask)
        n = int(mask.sum())
        if n == 0:
            return
        rows = self.row_numbers[mask][:EXAMPLE_ROWS].tolist()
        example = None
        if values is not None:
            picked = values[mask].fillna("")
            filled = picked[picked.ne("")]
            example = str(filled.iloc[0] if len(filled) else picked.iloc[0])
        column = self.columns.get(canonical, canonical) if canonical else None
        fields = (
            dict(count=n, rows=format_rows(rows), example=example, column=column, field=canonical)
            | extra
        )
        message = render(code, **fields)
        self.issues.append(Issue(code, column, n, rows, example, message, CATALOGUE[code].kind))
        (log.info if CATALOGUE[code].kind == "exclusion" else log.warning)(message)


def prepare(cfg: ServiceConfig, *, today: dt.date | None = None) -> PreparedExtract:
    """Read, map, validate and derive the analysis columns for one service.

    Raises
    ------
    ExtractError
        When the extract cannot serve the analysis at all (unreadable, missing
        required columns, repeated referral IDs, no rows left).
    """
    today = today or dt.date.today()
    path = Path(cfg.extract_path)
    raw, info = read_extract(
        path,
        sheet=cfg.extract_sheet,
        header_row=cfg.extract_header_row,
        expected_columns=list(cfg.columns.values()),
    )
    found = list(raw.columns)
    missing = {c: s for c, s in cfg.columns.items() if s not in raw.columns}
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
    mapped_sources = set(cfg.columns.values())
    dropped = [c for c in found if c not in mapped_sources and IDENTIFIER_PATTERN.search(c)]
    if dropped:
        log.warning(render("EXT009", columns=", ".join(dropped)))
    src = pd.DataFrame({canon: raw[source] for canon, source in cfg.columns.items()})
    src = src.astype("string").apply(lambda s: s.str.strip())
    del raw
    n_read = len(src)
    row_numbers = np.arange(info["first_row"], info["first_row"] + n_read)
    col = _Collector(row_numbers, cfg.columns)
    out = pd.DataFrame(index=src.index)
    keep = np.ones(n_read, dtype=bool)
    excluded: dict[str, int] = {}

    def exclude(code, mask, canonical, values=None, **extra):
        mask = _mask(mask) & keep
        col.add(code, mask, canonical, values, **extra)
        if mask.any():
            excluded[code] = excluded.get(code, 0) + int(mask.sum())
            keep[mask] = False

    # Referral ID: blank rows are excluded; repeats stop the run.
    rid = src["referral_id"].fillna("")
    exclude("EXC001", rid.eq(""), "referral_id")
    dup = rid.duplicated(keep=False) & rid.ne("")
    if dup.any():
        dup_rows = row_numbers[dup.to_numpy()]
        raise ExtractError(
            "EXT007",
            path=str(path),
            column=cfg.columns["referral_id"],
            rows=dup_rows[:EXAMPLE_ROWS],
            count=int(rid[dup].nunique()),
        )

    # Referral date: must be a date, not in the future, inside the period.
    fmt = (cfg.raw.get("extract") or {}).get("date_format")
    ref_date = parse_dates(src["referral_date"], fmt)
    exclude("EXC002", ref_date.isna(), "referral_date", src["referral_date"].fillna(""))
    future = ref_date.dt.date.gt(today).fillna(False)
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
        if cfg.has(fieldname):
            d = parse_dates(src[fieldname], fmt)
            unreadable = d.isna() & src[fieldname].fillna("").ne("")
            col.add("VAL003", unreadable & keep, fieldname, src[fieldname])
            before = (d < ref_date).fillna(False)
            col.add("VAL004", before & keep, fieldname)
            out[fieldname] = d.mask(before)
    if "first_appointment_date" in out:
        out["wait_days"] = (out["first_appointment_date"] - out["referral_date"]).dt.days

    # Appointment counts.
    count_fields = ["appointments_offered", "appointments_attended", "appointments_dna"]
    if all(cfg.has(f) for f in count_fields):
        nums = {f: _numbers(src[f]) for f in count_fields}
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
    imd = load_imd(cfg.imd_path, cfg.imd_edition)
    if cfg.has("lsoa_code"):
        _add_deprivation(out, src, cfg, imd, col, keep)

    data = out[keep].reset_index(drop=True)
    account = RowAccount(rows_read=n_read, rows_used=len(data), excluded=excluded)
    if account.rows_used == 0:
        reason = max(excluded, key=excluded.get) if excluded else "EXC002"
        raise ExtractError(
            "EXT010", path=str(path), rows=[], reason=CATALOGUE[reason].title.lower()
        )
    assert account.adds_up()
    return PreparedExtract(
        data=data,
        account=account,
        issues=col.issues,
        dropped_identifiers=dropped,
        source=path.name,
        encoding=info["encoding"],
        delimiter=info["delimiter"],
        imd_edition=cfg.imd_edition,
    )


def _add_deprivation(
    out, src, cfg: ServiceConfig, imd: pd.DataFrame, col: _Collector, keep
) -> None:
    code = src["lsoa_code"].fillna("").str.upper()
    fmt_ok = codes.lsoa_format_ok(code)
    col.add("VAL005", (~fmt_ok & code.ne("")).to_numpy() & keep, "lsoa_code", src["lsoa_code"])
    code = code.where(fmt_ok, pd.NA)
    known = code.isin(imd["lsoa_code"])
    if cfg.lsoa_lookup is not None:
        lookup = load_lsoa_lookup(cfg.lsoa_lookup)
        old, new = ("lsoa11", "lsoa21") if cfg.imd_edition == 2025 else ("lsoa21", "lsoa11")
        first = lookup.drop_duplicates(old).set_index(old)
        convertible = code.notna() & ~known & code.isin(first.index)
        if convertible.any():
            split = code[convertible].map(first["change"]).isin(["S", "X"]).sum()
            code = code.mask(convertible, code[convertible].map(first[new]))
            col.add("VAL011", convertible.to_numpy() & keep, "lsoa_code", split=int(split))
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
    catchment = catchment_lsoas(imd, cfg.catchment_lads)["lsoa_code"]
    if cfg.catchment_lsoa_file is not None:
        listed = pd.read_csv(cfg.catchment_lsoa_file, dtype=str).iloc[:, 0].str.strip()
        catchment = catchment[catchment.isin(listed)] if cfg.catchment_lads else listed
    inside = code.isin(catchment)
    col.add("VAL006", (known & ~inside).to_numpy() & keep, "lsoa_code", src["lsoa_code"])
    by_code = imd.set_index("lsoa_code")
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
    meta = (
        json.loads(schema.metadata[b"equity_helpers"])
        if b"equity_helpers" in schema.metadata
        else {}
    )
    if columns is not None:
        columns = [c for c in columns if c in schema.names]
    return pd.read_parquet(path, columns=columns), meta
