"""Help an analyst start: write a starter config for an extract, and check a config.

``write_starter_config`` inspects an extract and guesses which of its columns holds
each canonical field, proposes NHS codes for the values it finds in coded fields, and
marks with ``TODO`` whatever it could not guess. ``check`` then lists every problem
that still stops a run, all at once, with every TODO mark named.

Example
-------
>>> from equity_helpers.starter import guess_columns
>>> guess_columns(["Referral Number", "Date Referred", "Stated Gender", "NHS Number"])["sex"]
'Stated Gender'
"""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

import pandas as pd
import yaml

from . import codes
from .config import (
    APPOINTMENT_COLUMNS,
    CANONICAL_COLUMNS,
    DERIVED_FROM_APPOINTMENTS,
    REQUIRED_COLUMNS,
    TODO,
    YES_NO_FIELDS,
    load_config,
    resolve_path,
)
from .errors import ConfigError, ConfigErrors, ExtractError, PlaybookError, WorkbookError
from .extract import (
    FREE_TEXT_PATTERN,
    IDENTIFIER_PATTERN,
    holds_nhs_numbers,
    parse_dates,
    prepare,
    read_extract,
)
from .reference import OFFICIAL_SOURCES, check_files, load_lsoa_lookup

#: Words that often name each canonical column in clinical-system exports.
SYNONYMS = {
    "referral_id": [
        "referral id",
        "referral ref",
        "referral number",
        "referral no",
        "ref no",
        "referral key",
        "referral reference",
        "episode id",
        "pathway id",
        "unique id",
        "record id",
    ],
    "referral_date": [
        "referral date",
        "date referred",
        "date referral received",
        "referral received date",
        "received date",
        "date received",
        "referral received",
        "ref date",
    ],
    "age": ["age", "age at referral", "age years", "age on referral", "age in years"],
    "age_band": ["age band", "age group", "age range"],
    "sex": [
        "sex",
        "gender",
        "stated gender",
        "person stated gender",
        "person stated gender code",
        "gender code",
        "sex code",
    ],
    "ethnicity": [
        "ethnicity",
        "ethnic category",
        "ethnic group",
        "ethnic origin",
        "ethnic code",
        "ethnic category code",
        "ethnic background",
    ],
    "lsoa_code": [
        "lsoa",
        "lsoa code",
        "lsoa 2021",
        "lsoa 2011",
        "lsoa21",
        "lsoa11",
        "lsoa21cd",
        "lsoa11cd",
        "lower super output area",
        "lower layer super output area",
    ],
    "accepted": [
        "accepted",
        "referral accepted",
        "opted in",
        "opt in",
        "opted in to service",
        "referral outcome",
        "accepted referral",
    ],
    "first_appointment_date": [
        "first appointment date",
        "first contact date",
        "first seen date",
        "date first seen",
        "first attended",
        "first appt",
        "first appt date",
        "date of first appointment",
        "date of first contact",
    ],
    "appointments_offered": [
        "appointments offered",
        "appts offered",
        "contacts offered",
        "appointments booked",
        "appts booked",
        "booked appointments",
        "booked",
        "number of appointments",
    ],
    "appointments_attended": [
        "appointments attended",
        "appts attended",
        "contacts attended",
        "attended appointments",
        "attended",
        "attendances",
    ],
    "appointments_dna": [
        "dna",
        "dnas",
        "appointments dna",
        "appts dna",
        "dna appointments",
        "did not attend",
        "number of dnas",
        "dna count",
        "missed appointments",
    ],
    "discharge_date": [
        "discharge date",
        "date discharged",
        "date of discharge",
        "end date",
        "closed date",
        "closure date",
        "date closed",
    ],
    "discharge_reason": [
        "discharge reason",
        "reason for discharge",
        "discharge outcome",
        "closure reason",
        "reason closed",
    ],
    "outcome_start": [
        "outcome start",
        "score start",
        "start score",
        "baseline score",
        "initial score",
        "first score",
        "pre score",
        "outcome baseline",
    ],
    "outcome_end": [
        "outcome end",
        "score end",
        "end score",
        "final score",
        "discharge score",
        "last score",
        "post score",
        "outcome final",
    ],
    "religion": ["religion", "religion or belief", "faith", "religious belief"],
    "sexual_orientation": ["sexual orientation", "sexuality"],
    "marital_status": ["marital status", "civil status", "marital or civil partnership status"],
    "carer": ["carer", "is carer", "carer status", "is a carer", "unpaid carer"],
    "pregnancy": ["pregnant", "pregnancy", "pregnancy status", "pregnant or recently pregnant"],
    "armed_forces": ["armed forces", "veteran", "military", "ex forces", "armed forces status"],
    "disability": ["disability", "disabled", "has disability", "disability status"],
    "interpreter_needed": [
        "interpreter",
        "interpreter required",
        "interpreter needed",
        "needs interpreter",
    ],
    "learning_disability": ["learning disability", "ld", "has learning disability"],
    "smi": ["smi", "severe mental illness"],
}
_CODED = {
    "sex": codes.normalise_sex,
    "ethnicity": codes.normalise_ethnicity,
    "discharge_reason": codes.normalise_discharge_reason,
    **dict.fromkeys(YES_NO_FIELDS, codes.normalise_yes_no),
}
_DATE_FIELDS = ("referral_date", "first_appointment_date", "discharge_date")
_NUMBER_FIELDS = (
    "age",
    "appointments_offered",
    "appointments_attended",
    "appointments_dna",
    "outcome_start",
    "outcome_end",
)
# Words at the end of a column name that mark the first or last score of an outcome
# measure, as in "C19-YRS Start" or "PHQ9 Final".
_START_WORDS = {"start", "baseline", "initial", "first", "pre", "before", "admission"}
_END_WORDS = {"end", "final", "last", "post", "after", "discharge"}
_MATCH = 0.75  # how alike a column name must be to a known name to be guessed
_MAX_VALUES = 40  # distinct values shown for each coded field
# Keywords for discharge reasons a system words its own way ("DNA - discharged").
_DISCHARGE_KEYWORDS = [
    (("dna", "did not attend", "non attend", "no show"), "dna_discharge"),
    (("disengag", "self", "drop", "declined further", "withdr", "did not engage"), "disengaged"),
    (("complet", "goals", "recovered", "treatment finished"), "completed"),
    (("transfer", "referred on", "onward"), "transferred"),
    (("died", "deceased", "moved", "other"), "other"),
]
#: What to put in place of each TODO, by setting.
TODO_HINTS = {
    "service.name": "the name of your service, as it should appear on the workbook",
    "catchment.name": "the area your service covers, such as Derby and Derbyshire",
    "reference.imd_path": (
        "the path to the deprivation file (IMD File 7 CSV); "
        "'equity-workbook reference download' fetches one"
    ),
    "period.start": "the first referral date to include, such as 2022-04-01",
    "period.end": "the last referral date to include, such as 2025-03-31",
}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(text).lower()).strip()


#: Short forms systems use in column names, read as the words they stand for.
_SHORT_FORMS = {
    "dt": "date",
    "dte": "date",
    "disch": "discharge",
    "dischg": "discharge",
    "recvd": "received",
    "rcvd": "received",
    "recd": "received",
    "appt": "appointment",
    "appts": "appointments",
    "ref": "referral",
    "refl": "referral",
    "no": "number",
    "num": "number",
    "yrs": "years",
    "eth": "ethnic",
    "ethn": "ethnic",
    "cat": "category",
}
#: First words that say whose the column is, not what it holds ("Pt Age").
_OWNER_WORDS = {"pt", "patient", "client", "su", "person", "individual"}


@functools.lru_cache(maxsize=4096)
def _column_words(text: str) -> str:
    """A column name as plain words, for matching: "Pt Disch Dt" reads "discharge date"."""
    tokens = _norm(text).split()
    while len(tokens) > 1 and tokens[0] in _OWNER_WORDS:
        tokens = tokens[1:]
    return " ".join(_SHORT_FORMS.get(t, t) for t in tokens)


def _looks_like(canonical: str, values: pd.Series | None) -> bool:
    """Whether a column's values could hold the field (True when there is nothing to check)."""
    if values is None:
        return True
    s = values.astype("string").str.strip()
    s = s[s.notna() & s.ne("")].head(500)
    if s.empty:
        return True
    if canonical in _DATE_FIELDS:
        return bool(parse_dates(s).notna().mean() >= 0.5)
    if canonical in _NUMBER_FIELDS:
        return bool(pd.to_numeric(s, errors="coerce").notna().mean() >= 0.5)
    if canonical == "referral_id":
        return bool(s.nunique() >= 0.9 * len(s))
    if canonical == "lsoa_code":
        return bool(s.str.match(r"^[EW]0[12]\d{6}$").mean() >= 0.5)
    return True


def _score(canonical: str, name: str) -> float:
    """How likely a normalised column name is to hold a canonical field, 0 to 1."""
    words = [_column_words(w) for w in SYNONYMS.get(canonical, []) + [canonical]]
    if name in words:
        return 1.0
    score = max(difflib.SequenceMatcher(None, name, w).ratio() for w in words)
    if canonical in ("outcome_start", "outcome_end") and "date" not in name.split():
        tokens = name.split()
        marks = _START_WORDS if canonical == "outcome_start" else _END_WORDS
        if len(tokens) >= 2 and tokens[-1] in marks:
            score = max(score, 0.8)
    return score


def guess_columns(columns: list[str], sample: pd.DataFrame | None = None) -> dict[str, str | None]:
    """For each canonical field, the extract column that most likely holds it (or None).

    Every pair of field and column is scored by how alike the column's name is to the
    names services use for that field; the best pairs are taken first, so one column
    never serves two fields. Identifier columns are never considered. With ``sample``
    (the extract's rows), a column is only guessed for a date, number or LSOA field if
    its values look right.
    """
    normed = {c: _column_words(c) for c in columns if not _never_read(c, sample)}
    pairs = []
    for canonical in SYNONYMS:
        for original, n in normed.items():
            s = _score(canonical, n)
            if s >= _MATCH:
                pairs.append((s, canonical, original))
    # Best first; ties go to the field listed first, then the column listed first.
    order = {c: i for i, c in enumerate(SYNONYMS)}
    position = {c: i for i, c in enumerate(columns)}
    pairs.sort(key=lambda p: (-p[0], order[p[1]], position[p[2]]))
    out: dict[str, str | None] = dict.fromkeys(SYNONYMS)
    taken: set[str] = set()
    for _, canonical, original in pairs:
        if out[canonical] is not None or original in taken:
            continue
        values = sample[original] if sample is not None and original in sample else None
        if not _looks_like(canonical, values):
            continue
        out[canonical] = original
        taken.add(original)
    if out["lsoa_code"] is None and sample is not None:
        # An LSOA column is known by its values (E01 and six digits), whatever its name.
        for original in normed:
            if original not in taken and original in sample and _holds_lsoa_codes(sample[original]):
                out["lsoa_code"] = original
                break
    return out


def _never_read(column, sample: pd.DataFrame | None = None) -> str | None:
    """Why a column is never read ("identifier" or "free text"), or None.

    An identifier is known by its name (NHS Number, Date of Birth) or by its values (ten
    digits such as 943 476 5919); free text by its name (Notes, Comments).
    """
    if IDENTIFIER_PATTERN.search(str(column)):
        return "identifier"
    if sample is not None and column in sample and holds_nhs_numbers(sample[column]):
        return "identifier"
    if FREE_TEXT_PATTERN.search(str(column)):
        return "free text"
    return None


#: Words that often name each column of an appointments file.
APPOINTMENT_SYNONYMS = {
    "referral_id": SYNONYMS["referral_id"],
    "appointment_date": [
        "appointment date",
        "appt date",
        "appointment date time",
        "appointment datetime",
        "appt date time",
        "appointment start",
        "appointment start date",
        "date of appointment",
        "contact date",
        "slot date",
        "activity date",
        "start date time",
    ],
    "attendance": [
        "attendance",
        "attendance status",
        "attendance code",
        "attended",
        "attend status",
        "attended or did not attend",
        "attended dna",
        "appointment outcome",
        "appointment status",
        "contact outcome",
        "outcome",
        "status",
    ],
}


def guess_appointment_columns(
    columns: list[str], sample: pd.DataFrame | None = None
) -> dict[str, str | None]:
    """For a file of appointments: the column that holds each of its three fields (or None).

    >>> guess_appointment_columns(["Referral Ref", "Appt Date/Time", "Attendance Status"])["attendance"]
    'Attendance Status'
    """
    normed = {c: _column_words(c) for c in columns if not _never_read(c, sample)}
    pairs = []
    for key, names in APPOINTMENT_SYNONYMS.items():
        words = [_column_words(w) for w in names]
        for original, n in normed.items():
            if n in words:
                score = 1.0
            else:
                score = max(difflib.SequenceMatcher(None, n, w).ratio() for w in words)
            if score >= _MATCH:
                pairs.append((score, list(APPOINTMENT_SYNONYMS).index(key), key, original))
    pairs.sort(key=lambda p: (-p[0], p[1], columns.index(p[3])))
    out: dict[str, str | None] = dict.fromkeys(APPOINTMENT_SYNONYMS)
    for _, _, key, original in pairs:
        if out[key] is not None or original in out.values():
            continue
        if sample is not None and original in sample:
            values = sample[original].astype("string").str.strip()
            values = values[values.notna() & values.ne("")].head(500)
            if len(values) and key == "appointment_date":
                if parse_dates(values).notna().mean() < 0.5:
                    continue
            if len(values) and key == "attendance":
                known = codes.normalise_attendance(values)
                if known.isin(["attended", "cancelled", "missed"]).mean() < 0.5:
                    continue
        out[key] = original
    return out


def _holds_lsoa_codes(values: pd.Series) -> bool:
    """Whether most filled values of a column are LSOA codes (E01 and six digits)."""
    s = values.astype("string").str.strip()
    s = s[s.notna() & s.ne("")].head(500)
    return bool(len(s)) and bool(s.str.fullmatch(r"[EW]01\d{6}").mean() >= 0.8)


#: Names the ONS gives its LSOA 2011 to 2021 lookup (and the tidy names used here).
_LOOKUP_NAME = re.compile(r"lsoa[\W_]*(20)?11.*lsoa[\W_]*(20)?21", re.IGNORECASE)


def _find_lookup(folders: list[Path]) -> Path | None:
    """An LSOA 2011 to 2021 lookup CSV saved in one of the folders, if there is one."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.csv")):
            if _LOOKUP_NAME.search(p.name) and p.is_file():
                return p
    return None


def lsoa_year(values: pd.Series, lookup: pd.DataFrame | None, column: str = "") -> int | None:
    """Whether a column holds LSOA 2011 or 2021 codes (None: cannot tell).

    With the ONS lookup, codes found only among the 2011 codes (or only among the 2021
    codes) decide; codes that are the same in both years say nothing. Without it, the
    column's name decides if it names a year.
    """
    if lookup is not None:
        s = set(values.astype("string").str.strip().str.upper().dropna())
        old, new = set(lookup["lsoa11"].dropna()), set(lookup["lsoa21"].dropna())
        only_2011, only_2021 = len(s & (old - new)), len(s & (new - old))
        if only_2011 or only_2021:
            return 2011 if only_2011 > only_2021 else 2021
    name = _norm(column)
    if re.search(r"\b(2011|11|lsoa11|lsoa11cd)\b", name):
        return 2011
    if re.search(r"\b(2021|21|lsoa21|lsoa21cd)\b", name):
        return 2021
    return None


def _discharge_keyword(value: str) -> str | None:
    text = _norm(value)
    for keys, code in _DISCHARGE_KEYWORDS:
        if any(k in text for k in keys):
            return code
    return None


def _proposals(field: str, values: pd.Series) -> tuple[list[tuple[str, str, str]], int]:
    """Each distinct value of a coded field, most common first, as (value, code, how).

    ``how`` is ``"same"`` (already an NHS code), ``"known"`` (a label the playbook knows),
    ``"guess"`` (matched on a keyword: check it) or ``"todo"`` (not recognised). Also
    returns how many distinct values were left out beyond the first 40.
    """
    s = values.astype("string").str.strip()
    counts = s[s.notna() & s.ne("")].value_counts()
    distinct = pd.Series(list(counts.index[:_MAX_VALUES]), dtype="string")
    mapped = _CODED[field](distinct)
    out = []
    for raw, code in zip(distinct, mapped, strict=True):
        raw = str(raw)
        if code is pd.NA or code == codes.INVALID:
            guess = _discharge_keyword(raw) if field == "discharge_reason" else None
            out.append((raw, guess, "guess") if guess else (raw, TODO, "todo"))
        elif raw == str(code):
            out.append((raw, str(code), "same"))
        else:
            out.append((raw, str(code), "known"))
    return out, max(0, len(counts) - _MAX_VALUES)


def _read(extract: Path, sheet=None, synonyms: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Read the extract; for a spreadsheet, ``info`` also holds the sheet and header row."""
    expected = [w for ws in (synonyms or SYNONYMS).values() for w in ws]
    spreadsheet = extract.suffix.lower() in (".xlsx", ".xlsm")
    try:
        df, info = read_extract(extract, sheet=sheet, expected_columns=expected)
    except ExtractError as exc:
        if exc.code != "EXT006" or not spreadsheet:
            raise
        # No row has two names the playbook knows: take the first row that is mostly filled.
        grid = pd.read_excel(
            extract, sheet_name=sheet or 0, header=None, dtype=str, engine="openpyxl", nrows=30
        )
        filled = grid.notna().sum(axis=1)
        header_row = int((filled >= max(2, filled.max() * 0.8)).to_numpy().argmax()) + 1
        df, info = read_extract(extract, sheet=sheet, header_row=header_row)
    if not spreadsheet:
        info.pop("header_row", None)
    return df, info


def _appointment_sheet(extract: Path, taken: str | None) -> str | None:
    """Another sheet of the same workbook that holds appointments, known by its columns."""
    if extract.suffix.lower() not in (".xlsx", ".xlsm") or taken is None:
        return None
    try:
        names = pd.ExcelFile(extract, engine="openpyxl").sheet_names
    except Exception:  # openpyxl raises many types; the workbook was read once already
        return None
    for name in names:
        if name == taken:
            continue
        try:
            df, _ = _read(extract, sheet=name, synonyms=APPOINTMENT_SYNONYMS)
        except PlaybookError:
            continue
        df = df.loc[:, ~pd.Index(df.columns).duplicated()].head(500)
        if all(guess_appointment_columns(list(df.columns), df).values()):
            return name
    return None


#: The kinds of file a file of appointments can be (the ones the extract reader reads).
_TABLE_FILES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")
#: How much of a text file is read to find its column names.
_PEEK_BYTES = 64 * 1024


def _peek_headers(path: Path) -> list[list[str]]:
    """The column names a file could have, from a cheap look at its opening only: the
    header the extract reader would take (:func:`equity_helpers.extract._find_header`),
    from a text file's first 64 KiB, or from each sheet's first 30 rows of a workbook.
    """
    from .extract import _decode, _find_header, _layout

    expected = [w for ws in APPOINTMENT_SYNONYMS.values() for w in ws]
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        with path.open("rb") as fh:
            opening = fh.read(_PEEK_BYTES)
        text = _decode(opening)[0].lstrip("\ufeff")
        return [[c.strip() for c in _layout(text, expected).header]]
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = [list(ws.iter_rows(max_row=30, values_only=True)) for ws in book.worksheets]
    finally:
        book.close()
    headers = []
    for rows in sheets:
        # As a text file's lines: a row's cells up to its last filled one.
        cells = [["" if v is None else str(v).strip() for v in row] for row in rows]
        records = [
            (i, c[: max((j + 1 for j, v in enumerate(c) if v), default=0)])
            for i, c in enumerate(cells)
        ]
        if any(fields for _, fields in records):
            header = records[_find_header(records, expected)[0]][1]
            headers.append([c for c in header if c])
    return headers


def _names_appointments(headers: list[list[str]]) -> bool:
    """Whether any of these rows of column names names the three columns of appointments."""
    return any(h and _header_names_appointments(tuple(h)) for h in headers)


@functools.lru_cache(maxsize=256)
def _header_names_appointments(header: tuple[str, ...]) -> bool:
    """One row of column names (a folder of exports often repeats one): worked out once."""
    return all(guess_appointment_columns(list(header)).values())


def _skipped_note(skipped: dict[str, list[str]]) -> str | None:
    """One line naming the files beside the extract that were not read, and why."""
    if not skipped:
        return None
    parts = []
    for why, names in skipped.items():
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        parts.append(f"{shown} ({why})")
    total = sum(len(n) for n in skipped.values())
    files = "file" if total == 1 else "files"
    return (
        f"Not read as a file of appointments: {total} {files} beside the extract: "
        + "; ".join(parts)
        + ". Name a file with --appointments to use it."
    )


def find_appointments(extract: Path, notes: list[str] | None = None) -> Path | None:
    """A file of appointments saved beside the extract, known by its columns, if there is one.

    Only table files are looked at, and each only at its opening (its column names) until
    one names the columns of appointments: that one is read and its values checked. A
    folder of many exports is looked through in moments. The files passed over, and why,
    are added to ``notes`` as one line (reference files the playbook knows are not named).
    """
    known = {src["filename"] for src in OFFICIAL_SOURCES.values()}
    skipped: dict[str, list[str]] = {}
    found = None
    for p in sorted(extract.parent.iterdir()):
        if p == extract or p.name.startswith(".") or p.name in known:
            continue
        if _LOOKUP_NAME.search(p.name) or p.suffix.lower() in (".yml", ".yaml"):
            continue  # the LSOA lookup and configs are used for what they are
        try:  # only regular files of a size worth reading (a pipe would wait for ever)
            if not p.is_file() or p.is_symlink():
                continue
            if p.suffix.lower() not in _TABLE_FILES:
                why = "not a CSV, text or Excel file"
            elif found is not None:
                why = "a file of appointments was found first"
            elif p.stat().st_size > 200_000_000:
                why = "larger than 200 MB"
            elif not _names_appointments(_peek_headers(p)):
                why = "their column names are not those of appointments"
            else:
                df, _ = _read(p, synonyms=APPOINTMENT_SYNONYMS)
                df = df.loc[:, ~pd.Index(df.columns).duplicated()].head(500)
                if all(guess_appointment_columns(list(df.columns), df).values()):
                    found = p
                    continue
                why = "their values are not those of appointments"
        except Exception:  # noqa: BLE001 - a broken workbook raises many types; the file is named
            why = "could not be read"
        skipped.setdefault(why, []).append(p.name)
    note = _skipped_note(skipped)
    if note and notes is not None:
        notes.append(note)
    return found


def _appointment_lines(path: Path, out: Path, sheet=None) -> tuple[list[str], list[str]]:
    """The ``appointments:`` section for a file of appointments, and its TODO settings."""
    df, info = _read(path, sheet=sheet, synonyms=APPOINTMENT_SYNONYMS)
    df = df.loc[:, ~pd.Index(df.columns).duplicated()]
    guesses = guess_appointment_columns(list(df.columns), df)
    todos: list[str] = []
    lines = [
        "",
        "# One row per appointment. The playbook counts, for each referral, the appointments",
        "# offered (every one booked), attended and missed, and the first attended date.",
        "appointments:",
        f"  path: {_q(_rel(path, out))}",
    ]
    if sheet is not None or info.get("sheet"):
        why = info.get("sheet_reason") or "the sheet of appointments in the workbook"
        lines.append(f"  sheet: {_q(sheet or info['sheet'])}  # {_c(why)}")
    if info.get("header_row") and info["header_row"] > 1:
        lines.append(f"  header_row: {info['header_row']}  # the row that holds the column names")
    lines.append("  columns:")
    for key, desc in APPOINTMENT_COLUMNS.items():
        if guesses[key]:
            lines.append(f"    {key}: {_q(guesses[key])}  # {desc}")
        else:
            lines.append(f"    {key}: TODO  # {desc} (required)")
            todos.append(f"appointments.columns.{key}")
    source = guesses["attendance"]
    if source:
        s = df[source].astype("string").str.strip()
        counts = s[s.notna() & s.ne("")].value_counts()
        distinct = pd.Series(list(counts.index[:_MAX_VALUES]), dtype="string")
        mapped = codes.normalise_attendance(distinct)
        pairs = list(zip(distinct, mapped, strict=True))
        unknown = [str(v) for v, m in pairs if m == codes.INVALID]
        known = [f"{v} ({m})" for v, m in pairs if m != codes.INVALID]
        if known:
            lines.append("  # Attendance values read as they are: " + ", ".join(map(_c, known)))
        if unknown:
            lines += ["  values:", "    attendance:  # attended, cancelled or missed"]
            for v in unknown:
                lines.append(f"      {_q(v)}: TODO")
                todos.append(f"appointments.values.attendance.{v}")
    return lines, todos


# Characters a YAML file may not hold as they are, or reads as the end of a line (line
# feeds, carriage returns, U+0085, U+2028, U+2029), or as a byte-order mark (U+FEFF).
_NOT_AS_IS = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _q(text) -> str:
    """A YAML string on one line that reads back exactly as written.

    Single quotes keep values like No, 01 or 99 as written. A value holding a line break
    or another character a YAML file cannot hold as it is (a header such as
    "Ethnic\\nCategory") is written in double quotes, with escapes like \\n.
    """
    text = str(text)
    if not _NOT_AS_IS.search(text):
        return "'" + text.replace("'", "''") + "'"
    dumped = yaml.safe_dump(text, default_style='"', allow_unicode=False, width=float("inf"))
    return dumped.strip().removesuffix("...").strip()


def _c(text) -> str:
    """Text for a comment: as it is, unless it holds a line break (then escaped, quoted)."""
    text = str(text)
    return _q(text) if _NOT_AS_IS.search(text) else text


def _rel(path: Path, config: Path) -> str:
    try:
        return str(path.relative_to(config.resolve().parent))
    except ValueError:
        return str(path)


def _reference_files(folders: list[Path]) -> dict[str, Path]:
    """Official reference files already downloaded into a ``reference`` folder nearby."""
    found = {}
    for folder in folders:
        for key, src in OFFICIAL_SOURCES.items():
            p = folder / src["filename"]
            if key not in found and p.is_file():
                found[key] = p
    return found


def starter_config_path(extract: str | Path, out: str | Path | None = None) -> Path:
    """Where ``init`` is asked to write: ``out``, or ``<extract>_service.yml`` beside the
    extract (inside ``out`` when ``out`` is a folder)."""
    extract = Path(extract).resolve()
    name = extract.stem + "_service.yml"
    if out is None:
        return extract.with_name(name)
    out = Path(out)
    return out / name if out.is_dir() else out


def free_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``name-2.yml``, ``name-3.yml``..."""
    n = 2
    candidate = path
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def write_starter_config(
    extract: str | Path,
    out: str | Path | None = None,
    *,
    force: bool = False,
    sheet: str | None = None,
    appointments: str | Path | None = None,
    notes: list[str] | None = None,
) -> tuple[Path, list[str]]:
    """Inspect an extract and write a starter service config beside it (or at ``out``).

    A config already at that path is never overwritten unless ``force`` is set: the new
    one is written beside it as ``name-2.yml`` (compare the path returned with
    :func:`starter_config_path`). Returns the config's path and the settings still
    marked TODO.

    In a workbook of several sheets, the sheet that holds the referral table is taken
    (or ``sheet``). A file of appointments (``appointments``, or one beside the extract
    found by its columns) is written into the config. What was chosen, and why, is added
    to ``notes``.
    """
    extract = Path(extract).resolve()
    notes = notes if notes is not None else []
    df, info = _read(extract, sheet=sheet)
    header_row = info.get("header_row")
    appointment_sheet = None
    if appointments is None:
        appointment_sheet = _appointment_sheet(extract, info.get("sheet") or sheet)
        if appointment_sheet is not None:
            appointments = extract
            notes.append(f"Found appointments in sheet '{appointment_sheet}' of the workbook.")
    if appointments is None:
        appointments = find_appointments(extract, notes)
        if appointments is not None:
            notes.append(f"Found a file of appointments beside the extract: {appointments.name}")
    if info.get("sheet"):
        notes.append(f"Read {info['sheet_reason']}.")
    if info.get("header_reason"):
        notes.append(f"Column names: {info['header_reason']}.")
    # A repeated column name is reported by check (EXT012); inspect its first column here.
    df = df.loc[:, ~pd.Index(df.columns).duplicated()]
    guesses = guess_columns(list(df.columns), df)
    out = starter_config_path(extract, out)
    if not force:
        out = free_path(out)
    todos: list[str] = ["service.name"]
    lines = [
        "# Starter config written by 'equity-workbook init'. Check every line.",
        "# Lines marked TODO need you. Fill them in, then run:",
        f"#   equity-workbook check {_c(out.name)}",
        "# Relative paths are read from the folder that holds this file.",
        "",
        "service:",
        "  name: TODO  # the name of your service, as it should appear on the workbook",
        "  organisation: ''",
        "",
        "extract:",
        f"  path: {_q(_rel(extract, out))}",
    ]
    if info.get("sheet") or sheet:
        why = info.get("sheet_reason") or "the sheet named when the config was written"
        lines.append(f"  sheet: {_q(info.get('sheet') or sheet)}  # {_c(why)}")
    if header_row and header_row > 1:
        lines.append(f"  header_row: {header_row}  # the row that holds the column names")
    lines += [
        "",
        "# The playbook's name for each field: the column in your extract that holds it.",
        "# Identifier columns (NHS number, name, date of birth, postcode) are never read.",
        "columns:",
    ]
    for canonical, desc in CANONICAL_COLUMNS.items():
        source = guesses.get(canonical)
        if appointments is not None and canonical in DERIVED_FROM_APPOINTMENTS:
            lines.append(f"  # {canonical}: counted from the appointments file (below)")
            continue
        if canonical == "age_band" and guesses.get("age"):
            continue
        if canonical == "age" and not source and guesses.get("age_band"):
            continue
        if source:
            lines.append(f"  {canonical}: {_q(source)}  # {desc}")
        elif canonical in REQUIRED_COLUMNS or canonical == "age":
            lines.append(f"  {canonical}: TODO  # {desc} (required)")
            todos.append(f"columns.{canonical}")
        else:
            lines.append(f"  # {canonical}:  # {desc} (not found; optional)")
    used = {v for k, v in guesses.items() if v} - (
        {guesses.get(k) for k in DERIVED_FROM_APPOINTMENTS} if appointments is not None else set()
    )
    never = {c: _never_read(c, df) for c in df.columns if c not in used}
    unused = [c for c in df.columns if c not in used and not never[c]]
    if unused:
        lines.append("  # Columns not used: " + ", ".join(map(_c, unused)))
    for why, words in (("identifier", "Identifier"), ("free text", "Free-text")):
        named = [c for c, w in never.items() if w == why]
        if named:
            lines.append(f"  # {words} columns, never read: " + ", ".join(map(_c, named)))

    lines += [
        "",
        "# Your value: the NHS code it stands for. The playbook already reads NHS codes and",
        "# common labels; check each line. A TODO value is not on the NHS list: give its",
        "# code, or delete the line to count it as invalid.",
        "values:",
    ]
    n_blocks = 0
    for field in _CODED:
        source = guesses.get(field)
        if not source:
            continue
        proposal, more = _proposals(field, df[source])
        to_write = [p for p in proposal if p[2] != "same"]
        same = [raw for raw, _, how in proposal if how == "same"]
        if not to_write:
            if same:
                kind = "read as yes and no" if field in YES_NO_FIELDS else "already NHS codes"
                lines.append(f"  # {field}: {kind} ({', '.join(map(_c, same))})")
            continue
        if field in YES_NO_FIELDS and all(how == "known" for _, _, how in to_write) and not same:
            lines.append(
                f"  # {field}: read as yes and no ({', '.join(_c(r) for r, _, _ in to_write)})"
            )
            continue
        n_blocks += 1
        lines.append(f"  {field}:  # from {_q(source)}")
        for raw, code, how in to_write:
            note = {
                "guess": "  # a guess: check it",
                "todo": "  # not on the NHS list",
            }.get(how, "")
            lines.append(f"    {_q(raw)}: {_q(code) if code != TODO else TODO}{note}")
            if how == "todo":
                todos.append(f"values.{field}.{raw}")
        if same:
            lines.append(f"    # already NHS codes: {', '.join(map(_c, same))}")
        if more:
            lines.append(f"    # and {more} more values, not shown")
    if not n_blocks:
        lines.append("  {}")

    folders = list(
        dict.fromkeys([out.resolve().parent / "reference", extract.parent / "reference"])
    )
    ref = _reference_files(folders)
    imd_key = "imd2025" if "imd2025" in ref else "imd2019" if "imd2019" in ref else None
    lines += [
        "",
        "catchment:",
        "  name: TODO  # the area your service covers, such as Derby and Derbyshire",
        "  local_authorities: []  # local authority codes, such as [E06000015] for Derby",
        "",
        "# Deprivation and census files: 'equity-workbook reference download --dest reference/'",
        "reference:",
    ]
    todos.append("catchment.name")
    if imd_key:
        lines += [
            f"  imd_edition: {imd_key[-4:]}",
            f"  imd_path: {_q(_rel(ref[imd_key], out))}",
        ]
    else:
        lines += [
            "  imd_edition: 2025",
            "  imd_path: TODO  # the IMD File 7 CSV of that edition",
        ]
        todos.append("reference.imd_path")
    for key, setting in (
        ("ts021", "population_ethnicity"),
        ("ts007a", "population_age"),
        ("ts008", "population_sex"),
    ):
        if key in ref:
            lines.append(f"  {setting}: {_q(_rel(ref[key], out))}")
        else:
            lines.append(f"  # {setting}: {OFFICIAL_SOURCES[key]['filename']}")
    lines += _lookup_lines(df, guesses.get("lsoa_code"), folders, out, imd_key)
    if appointments is not None:
        more, appt_todos = _appointment_lines(Path(appointments).resolve(), out, appointment_sheet)
        lines += more
        todos += appt_todos

    span = []
    if guesses.get("referral_date"):
        dates = parse_dates(df[guesses["referral_date"]]).dropna()
        if len(dates) >= 10:
            first, last = dates.quantile(0.01), dates.quantile(0.99)
            span = [
                f"  # Most referrals in the extract are dated {first:%Y-%m-%d} to {last:%Y-%m-%d}."
            ]
    lines += [
        "",
        "period:",
        *span,
        "  start: TODO  # the first referral date to include, such as 2022-04-01",
        "  end: TODO  # the last referral date to include, such as 2025-03-31",
        "",
        "evaluation:",
        "  measure: dna_rate  # dna_rate, drop_out_rate or completion_rate",
        "  focus_field: core20  # the group whose gap your change aims to close",
        "  focus_group: Core20",
        "  # change_date: 2024-04-01  # the date your change began",
        "",
        "outcome:",
        "  name: outcome score  # the name of your outcome measure",
        "  higher_is_better: true  # false if a lower score is better",
        "",
        "disclosure:",
        "  threshold: 7  # counts 1 to 7 are shown as *",
        "  rounding: 5  # other counts are rounded to the nearest 5",
    ]
    todos += ["period.start", "period.end"]
    try:
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:  # no such folder, no permission, a full disk
        raise WorkbookError("RUN002", path=str(out), detail=exc.strerror or str(exc)) from None
    return out, todos


def _lookup_lines(df, column, folders: list[Path], out: Path, imd_key) -> list[str]:
    """The lsoa_lookup line: filled in when the LSOA codes are 2011 codes and a lookup is
    saved nearby; otherwise a comment saying whether one is needed and where to get it."""
    if not column:
        return []
    path = _find_lookup(folders)
    lookup = None
    if path is not None:
        try:
            lookup = load_lsoa_lookup(path)
        except PlaybookError:
            path = None
    year = lsoa_year(df[column], lookup, column)
    edition = int(imd_key[-4:]) if imd_key else 2025
    needed = (year == 2011 and edition == 2025) or (year == 2021 and edition == 2019)
    if needed and path is not None:
        return [
            f"  # The LSOA codes in '{_c(column)}' are {year} codes: this ONS lookup "
            f"matches them to IMD {edition}.",
            f"  lsoa_lookup: {_q(_rel(path, out))}",
        ]
    if needed:
        return [
            f"  # The LSOA codes in '{_c(column)}' look like {year} codes, and IMD {edition} "
            f"uses {2021 if year == 2011 else 2011} codes.",
            "  # Save the ONS 'LSOA (2011) to LSOA (2021)' lookup CSV in the reference folder",
            "  # and name it here, or use the IMD edition of the same year:",
            "  # lsoa_lookup: reference/lsoa11_lsoa21_lookup.csv",
        ]
    if path is not None:
        return [f"  lsoa_lookup: {_q(_rel(path, out))}  # LSOA 2011 to 2021 lookup"]
    return ["  # lsoa_lookup: the ONS LSOA 2011 to 2021 lookup, if your codes are 2011 codes"]


def _todo_keys(node, prefix: str = "") -> list[str]:
    """Every setting in a loaded config whose value still says TODO."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _todo_keys(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, str) and node.strip().upper().startswith(TODO):
        found.append(prefix)
    return found


def _todo_hint(key: str) -> str:
    if key in TODO_HINTS:
        return TODO_HINTS[key]
    if key.startswith("columns."):
        return "the name of the column in your extract, or delete the line"
    if key.startswith("values."):
        return "the NHS code for this value, or delete the line to count it as invalid"
    return "a value, or delete the line"


def check(config_path: str | Path) -> tuple[list[PlaybookError], str]:
    """Everything that still stops a run, in plain words, all at once.

    Every setting still marked TODO is named in one message, with what to put there;
    the other problems follow. Returns the problems and the report to print.
    """
    problems: list[PlaybookError] = []
    cfg = None
    try:
        cfg = load_config(config_path)
    except ConfigErrors as exc:
        problems = list(exc.errors)
    except PlaybookError as exc:
        problems = [exc]
    try:
        source = resolve_path(config_path)
        # Only a regular file is read: reading a pipe would wait for ever.
        text = source.read_text(encoding="utf-8-sig") if source.is_file() else ""
        raw = yaml.safe_load(text) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raw = {}
    todo = _todo_keys(raw) if isinstance(raw, dict) else []
    if todo:
        # A TODO is reported once, in the TODO message, not again as a bad value or file.
        problems = [
            p for p in problems if p.code != "CFG007" and p.fields.get("key") not in set(todo)
        ]
        problems.insert(0, ConfigError("CFG007", keys=", ".join(todo)))
    if problems or cfg is None:  # (cfg is None only when there are problems)
        text = f"{len(problems)} problem(s) stop this config from running:\n\n"
        text += "\n\n".join(str(p) for p in problems)
        if todo:
            text += "\n\nWhat to put in place of each TODO:\n" + "\n".join(
                f"  {key}: {_todo_hint(key)}" for key in todo
            )
        return problems, text
    # Every reference file is read as a step would read it, so none fails halfway through a run.
    reference = check_files(cfg)
    if reference:
        text = f"{len(reference)} reference file problem(s) stop this config from running:\n\n"
        return reference, text + "\n\n".join(str(p) for p in reference)
    try:
        prepared = prepare(cfg)
    except PlaybookError as exc:
        return [exc], "The config is valid, but the extract cannot be used:\n\n" + str(exc)
    return [], (
        "Ready to run. Every row is accounted for:\n"
        + prepared.account_text()
        + f"\n{len(prepared.issues)} data-quality notes; see them with "
        f"'equity-workbook prepare --config {config_path}'."
    )
