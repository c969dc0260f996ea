"""The catalogue of every error, warning and exclusion the playbook can report.

Each message has a stable code, a plain-English title, a template filled with the
details of the case, and what to do next. The troubleshooting page of the book is
generated from :data:`CATALOGUE`, so the two never drift apart.

Exceptions carry the file, column, row numbers and an example value, and build their
message once, before they are raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One entry of the catalogue."""

    code: str
    kind: str  # "error", "warning" or "exclusion"
    title: str
    template: str
    what_to_do: str


def _m(code: str, kind: str, title: str, template: str, what_to_do: str) -> Message:
    return Message(code, kind, title, template, what_to_do)


_ENTRIES = [
    # --- the service config ------------------------------------------------------------
    _m(
        "CFG001",
        "error",
        "The config file cannot be found",
        "There is no file at {path}.",
        "Check the path. Run `equity-workbook init EXTRACT` to write a starter config.",
    ),
    _m(
        "CFG002",
        "error",
        "The config file is not valid YAML",
        "{path} could not be read as YAML: {detail}.",
        "Open the file in a text editor and fix the line named. Indent with spaces, not tabs.",
    ),
    _m(
        "CFG003",
        "error",
        "The config has a key the playbook does not know",
        "Unknown key '{key}' in {section}.{suggestion}",
        "Correct the spelling. The allowed keys are: {allowed}.",
    ),
    _m(
        "CFG004",
        "error",
        "A required config setting is missing",
        "The config has no '{key}'.",
        "Add it. {hint}",
    ),
    _m(
        "CFG005",
        "error",
        "A config setting has a value the playbook cannot use",
        "'{key}' is {value!r}, which is not allowed.",
        "Use one of: {allowed}.",
    ),
    _m(
        "CFG006",
        "error",
        "A file named in the config cannot be found",
        "'{key}' points to {path}, and there is no file there.",
        "Check the path. Relative paths are read from the folder that holds the config.",
    ),
    _m(
        "CFG007",
        "error",
        "The config still has TODO marks",
        "These settings still say TODO: {keys}.",
        "Replace each TODO with the name of a column in your extract, or delete the line "
        "if your extract does not have that field.",
    ),
    _m(
        "CFG008",
        "warning",
        "Disclosure control is relaxed or off",
        "{detail}",
        "Do not share this workbook outside your organisation. Before sharing, set "
        "disclosure.enabled to true, disclosure.threshold to 7 and disclosure.rounding to 5.",
    ),
    _m(
        "CFG009",
        "error",
        "A path names a folder or a special file, not a file",
        "'{key}' points to {path}, which {problem}.",
        "Give the path of the file itself, such as a .csv file inside that folder.",
    ),
    # --- reading the extract -------------------------------------------------------------
    _m(
        "EXT001",
        "error",
        "The extract is empty",
        "{path} has no content.",
        "Export the data again and check the file is not empty.",
    ),
    _m(
        "EXT002",
        "error",
        "The extract has a header but no rows",
        "{path} has column names but no data rows.",
        "Check the date range of your export: it may have matched no referrals.",
    ),
    _m(
        "EXT003",
        "error",
        "The extract's format is not supported",
        "{path} has the ending '{suffix}'.",
        "Save the extract as CSV (.csv), Excel (.xlsx) or Parquet (.parquet).",
    ),
    _m(
        "EXT004",
        "error",
        "Required columns are missing from the extract",
        "The config maps {missing} to columns the extract does not have. "
        "Columns found: {found}.{suggestion}",
        "Correct the column names under 'columns:' in the config so they match the extract exactly.",
    ),
    _m(
        "EXT005",
        "error",
        "The extract looks like it uses a different delimiter",
        "{path} was read as a single column: {header!r}.",
        "Save the extract as a comma-separated CSV, or check it is not a report with text "
        "above the table.",
    ),
    _m(
        "EXT006",
        "error",
        "The header row of the Excel sheet cannot be found",
        "None of the first {searched} rows of sheet '{sheet}' in {path} holds the mapped column names.",
        "Delete any title rows above the table, or set extract.header_row in the config.",
    ),
    _m(
        "EXT007",
        "error",
        "Referral IDs are repeated",
        "{count} referral IDs appear more than once in column '{column}' (rows {rows}).",
        "Each row must be one referral. Remove repeated rows from the export, or map "
        "referral_id to a column that is unique.",
    ),
    _m(
        "EXT008",
        "error",
        "The extract cannot be read",
        "{path} could not be read: {detail}.",
        "Open the file in Excel or a text editor to check it, then export it again.",
    ),
    _m(
        "EXT009",
        "warning",
        "Identifier columns were dropped",
        "These columns look like personal identifiers and were not read: {columns}.",
        "Nothing to do: identifiers are never used. Leave them out of future exports if you can.",
    ),
    _m(
        "EXT010",
        "error",
        "No rows are left to analyse",
        "All {count} rows of {path} were excluded. The largest reason: {reason}.",
        "Check the analysis period in the config and the date format of the referral date.",
    ),
    _m(
        "EXT011",
        "warning",
        "The text encoding was guessed",
        "{path} is not UTF-8; it was read as {encoding}.",
        "Check that names with accents look right. Save as 'CSV UTF-8' to avoid this.",
    ),
    _m(
        "EXT012",
        "error",
        "A column name appears more than once",
        "The extract {path} has more than one column called {columns}.",
        "Rename or delete the repeated columns so each name is used once.",
    ),
    _m(
        "EXT013",
        "error",
        "Some rows have the wrong number of values",
        "{count} rows of {path} have {found} values where the header has {width} (lines {rows}).",
        "Check those lines for a stray comma or a missing value; values holding the "
        "delimiter must be in quotes. Save the file again from the system or Excel.",
    ),
    _m(
        "EXT014",
        "warning",
        "Lines that are not part of the table were left out",
        "Some lines of the file are not rows of the table, and were not read as rows: {lines}.",
        "Nothing to do if these are titles, totals or notes. If a row of data is among "
        "them, check that row has a value in most of its columns.",
    ),
    # --- rows left out (exclusions) -------------------------------------------------------
    _m(
        "EXC001",
        "exclusion",
        "Referral ID is blank",
        "{count} rows have no referral ID (rows {rows}).",
        "Fill the ID in your system, or leave these rows out of the export.",
    ),
    _m(
        "EXC002",
        "exclusion",
        "Referral date is missing or not a date",
        "{count} rows have a referral date that is blank or cannot be read (rows {rows}; "
        "for example {example!r}).",
        "Use dates like 31/01/2024 or 2024-01-31.",
    ),
    _m(
        "EXC003",
        "exclusion",
        "Referral date is in the future",
        "{count} rows have a referral date after the date of the run (rows {rows}; "
        "for example {example!r}).",
        "Correct the dates in your system; they are usually typing errors.",
    ),
    _m(
        "EXC004",
        "exclusion",
        "Referral date is outside the analysis period",
        "{count} rows fall outside the analysis period {start} to {end} (rows {rows}).",
        "Nothing to do if this is expected. Otherwise change period.start or period.end "
        "in the config.",
    ),
    # --- values that are recorded but unusable (kept, counted as invalid) ----------------
    _m(
        "VAL001",
        "warning",
        "Codes the playbook does not recognise",
        "{count} rows of '{column}' hold codes that are not on the NHS list "
        "(rows {rows}; for example {example!r}). They are counted as 'invalid'.",
        "Map these values under 'values: {field}:' in the config, or correct them at source.",
    ),
    _m(
        "VAL002",
        "warning",
        "Ages below 0 or above 120",
        "{count} rows have an impossible age in '{column}' (rows {rows}; for example "
        "{example!r}). They are counted as unknown age.",
        "Check how age is calculated in your export.",
    ),
    _m(
        "VAL003",
        "warning",
        "Dates that cannot be read",
        "{count} rows of '{column}' hold values that are not dates (rows {rows}; "
        "for example {example!r}). They are treated as blank.",
        "Use dates like 31/01/2024 or 2024-01-31.",
    ),
    _m(
        "VAL004",
        "warning",
        "Dates before the referral date",
        "{count} rows have '{column}' before the referral date (rows {rows}). "
        "They are treated as blank.",
        "Correct the dates at source; wait times and pathway stages ignore them meanwhile.",
    ),
    _m(
        "VAL005",
        "warning",
        "LSOA codes in the wrong format",
        "{count} rows of '{column}' are not LSOA codes (E01 and six digits) (rows {rows}; "
        "for example {example!r}). They are counted as unknown area.",
        "Export the LSOA code, not the postcode or area name.",
    ),
    _m(
        "VAL006",
        "warning",
        "LSOA codes outside the catchment",
        "{count} rows live outside the catchment set in the config (rows {rows}; "
        "for example {example!r}). They are kept, but left out of comparisons with the "
        "catchment population.",
        "Check catchment.local_authorities in the config if this number is large.",
    ),
    _m(
        "VAL007",
        "warning",
        "LSOA codes not found in the deprivation file",
        "{count} rows have LSOA codes that are not in the IMD {edition} file (rows {rows}; "
        "for example {example!r}).",
        "{hint}",
    ),
    _m(
        "VAL008",
        "warning",
        "Appointment counts that do not add up",
        "{count} rows have attended + did-not-attend greater than offered, or a negative "
        "count (rows {rows}). Their appointment counts are not used.",
        "Check how the counts are built in your export.",
    ),
    _m(
        "VAL009",
        "warning",
        "Yes/no values the playbook does not recognise",
        "{count} rows of '{column}' hold values that are not yes or no (rows {rows}; "
        "for example {example!r}). They are treated as unknown.",
        "Map them under 'values: {field}:' in the config.",
    ),
    _m(
        "VAL010",
        "warning",
        "Values that should be numbers but are not",
        "{count} rows of '{column}' are not numbers (rows {rows}; for example {example!r}). "
        "They are treated as blank.",
        "Export the column as plain numbers, with no words or units.",
    ),
    _m(
        "VAL011",
        "warning",
        "LSOA codes were converted between 2011 and 2021",
        "{count:,} rows held LSOA {old} codes that changed in {new}, and were matched to "
        "LSOA {new} codes through the ONS lookup. {split:,} of them are in areas that were "
        "split, and each was given {rule}; {changed:,} of these would be in another IMD "
        "quintile had another of its new areas been chosen. Another {unchanged:,} rows "
        "hold codes that are the same in {old} and {new}, so they needed no change.",
        "Nothing to do. In future, export LSOA codes of the same year as the IMD edition "
        "(2021 for IMD 2025) if your system has them.",
    ),
    # --- the appointments file (one row per appointment) ---------------------------------
    _m(
        "APP001",
        "warning",
        "Appointments for referrals not in the referral file",
        "{count} rows of the appointments file {file} have a referral ID that is blank or "
        "not in the referral file ('{column}', rows {rows}; for example {example!r}). "
        "These appointments are not counted.",
        "Export appointments and referrals for the same service and dates, and map "
        "appointments referral_id to the same key the referral file uses.",
    ),
    _m(
        "APP002",
        "warning",
        "Attendance values the playbook does not recognise",
        "{count} rows of '{column}' in {file} hold an attendance value that is blank or not "
        "recognised (rows {rows}; for example {example!r}). These appointments are not "
        "counted.",
        "Map each value to attended, cancelled or missed under 'appointments: values: "
        "attendance:' in the config. National codes 5 and 6 (attended), 2 and 4 "
        "(cancelled) and 3 and 7 (did not attend) are read as they are.",
    ),
    _m(
        "APP003",
        "warning",
        "Appointment rows repeated",
        "{count} rows of {file} repeat an earlier row exactly: the same referral, date and "
        "time, and attendance (rows {rows}; for example referral {example!r}). Each "
        "appointment is counted once.",
        "Nothing to do if your system exports some appointments twice. Otherwise check how "
        "the export joins its tables.",
    ),
    _m(
        "APP004",
        "warning",
        "Appointment dates that cannot be read",
        "{count} rows of '{column}' in {file} are not dates (rows {rows}; for example "
        "{example!r}). These appointments are counted, but not used for the date of first "
        "contact.",
        "Use dates like 31/01/2024, 31/01/2024 14:30 or 2024-01-31.",
    ),
    # --- reference data ------------------------------------------------------------------
    _m(
        "REF001",
        "error",
        "The deprivation file's layout is not recognised",
        "{path} has no column for {missing}. Columns found: {found}.",
        "Use the official MHCLG File 1 or File 7 CSV, unchanged. "
        "`equity-workbook reference download` fetches it.",
    ),
    _m(
        "REF002",
        "error",
        "The population file's layout is not recognised",
        "{path} has no column for {missing}. Columns found: {found}.",
        "Use the Nomis bulk CSV for the Census 2021 table, unchanged.",
    ),
    _m(
        "REF003",
        "error",
        "The download failed",
        "Could not download {url}: {detail}.",
        "Check your internet connection or proxy, or download the file by hand from the "
        "page named in the book and set its path in the config.",
    ),
    _m(
        "REF004",
        "error",
        "No catchment areas were found",
        "None of the local authority codes {codes} appear in {path}.",
        "Check catchment.local_authorities in the config (Derby is E06000015).",
    ),
    _m(
        "REF005",
        "error",
        "A reference file cannot be read",
        "The {what} {path} could not be read: {detail}.",
        "Use the official file, saved as CSV and unchanged: `equity-workbook reference "
        "download` fetches the deprivation and census files. Then check its path under "
        "'reference:' or 'catchment:' in the config.",
    ),
    # --- the workbook run ----------------------------------------------------------------
    _m(
        "RUN001",
        "error",
        "A step of the workbook failed",
        "The step '{step}' stopped with: {detail}.",
        "The other steps are still in the workbook. Open {log} for the details, fix the "
        "cause and run again: finished steps are reused.",
    ),
    _m(
        "RUN002",
        "error",
        "The output folder cannot be written",
        "Could not write to {path}: {detail}.",
        "Choose another folder with --out, or free some disk space.",
    ),
    _m(
        "RUN003",
        "warning",
        "A step was skipped because a column is missing",
        "The step '{step}' needs {columns}, which the extract does not have.",
        "Add the column to your export and map it in the config to include this step.",
    ),
    _m(
        "RUN004",
        "error",
        "The run was interrupted",
        "The run stopped before it finished; no workbook was published.",
        "Run the same command again: finished steps are reused.",
    ),
    # --- printing the PDF (--pdf) ---------------------------------------------------------
    _m(
        "PDF001",
        "error",
        "Chromium is not installed",
        "The PDF is printed with the Chromium browser, and no program called {names} was found.",
        "Install it (on Debian or Ubuntu: sudo apt-get install chromium) and run again: "
        "finished steps are reused. Or run without --pdf and print from your browser.",
    ),
    _m(
        "PDF002",
        "error",
        "Printing the PDF took too long",
        "Chromium had not finished printing the PDF after {seconds} seconds, so it was "
        "stopped. No PDF was written.",
        "Run again: finished steps are reused. If it happens again, run without --pdf and "
        "print the HTML workbook from your browser.",
    ),
    _m(
        "PDF003",
        "error",
        "Chromium could not print the PDF",
        "The PDF was not written: {detail}.",
        "Run again: finished steps are reused. If it happens again, check that Chromium "
        "opens on this computer, or run without --pdf and print from your browser.",
    ),
    _m(
        "RUN005",
        "error",
        "A folder in the way was not made by the playbook",
        "{path} already exists and is not a workbook made by equity-workbook, so the run will "
        "not replace it. Nothing in it was changed.",
        "Choose another output folder with --out, or move that folder somewhere else, then run "
        "again.",
    ),
    _m(
        "RUN006",
        "error",
        "Another run is building this workbook",
        "Another equity-workbook run is building the workbook in {path} right now.",
        "Wait for that run to finish, then run again: finished steps are reused. Nothing was "
        "changed by this run.",
    ),
    _m(
        "RUN007",
        "error",
        "The Dask cluster cannot be reached",
        "No Dask scheduler answered at {address}: {detail}.",
        "Check the address your platform gives for its Dask scheduler (it looks like "
        "tcp://host:8786) and that this machine can reach it. Without --scheduler the "
        "workbooks are built on this machine.",
    ),
    _m(
        "RUN008",
        "error",
        "The cluster's workers run another version of the playbook",
        "The workers at {address} have a different version of the playbook installed "
        "(here: {here}; on the workers: {there}).",
        "Install the same version on the workers as here (the same requirements.txt and "
        "package), then run again, so every workbook is built by the same code.",
    ),
    _m(
        "RDB001",
        "error",
        "A letter or a folder of letters cannot be read",
        "{detail}",
        "Check the letter or folder named, and the folders set as readability.before and "
        "readability.after in the config.",
    ),
    # --- disclosure control ----------------------------------------------------------------
    _m(
        "DSC001",
        "error",
        "Disclosure control was given figures it cannot use",
        "{detail}",
        "This is a fault in how a table was built, not in your extract. Report it with the "
        "step's log; the other steps are still in the workbook.",
    ),
    _m(
        "DSC002",
        "error",
        "A table about to be published still holds small counts",
        "{detail}",
        "Nothing was published from this table. Report it: every table must go through "
        "disclosure control before it is published.",
    ),
]

CATALOGUE: dict[str, Message] = {m.code: m for m in _ENTRIES}


def format_rows(rows: Iterable[int], limit: int = 5, total: int | None = None) -> str:
    """Row numbers as a person counts them in a spreadsheet (header is row 1).

    ``total`` is how many rows there are in all, when ``rows`` holds only the first few.

    >>> format_rows([2, 3, 10, 11, 12, 13, 40])
    '2, 3, 10, 11, 12 and 2 more'
    >>> format_rows(range(3, 23), total=1009)
    '3, 4, 5, 6, 7 and 1,004 more'
    """
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = (len(rows) if total is None else max(total, len(rows))) - len(rows[:limit])
    if more > 0:
        shown += f" and {more:,} more"
    return shown


#: Verbs after "rows", as they read after "1 row".
_VERB_FOR_ONE = {
    "have": "has",
    "are": "is",
    "were": "was",
    "hold": "holds",
    "live": "lives",
    "fall": "falls",
    "repeat": "repeats",
}
_ONE_ROWS = re.compile(
    r"(^|[^\d,.])1 rows\b((?:[^.;]|\.(?!\s|$))*?\b)(" + "|".join(_VERB_FOR_ONE) + r")\b"
)


def for_one(text: str) -> str:
    """A message's grammar when a count is one: "1 rows have" reads "1 row has".

    >>> for_one("1 rows of 'Age' are not numbers (rows 6; for example 'x'), lines 9)")
    "1 row of 'Age' is not numbers (row 6; for example 'x'), line 9)"
    """
    text = _ONE_ROWS.sub(lambda m: f"{m[1]}1 row{m[2]}{_VERB_FOR_ONE[m[3]]}", text)
    text = re.sub(r"(^|[^\d,.])1 rows\b", r"\g<1>1 row", text)
    return re.sub(r"\b(row|line)s (\d[\d,]*)(?=[;)])", r"\1 \2", text)


def render(code: str, **fields) -> str:
    """Fill a catalogue entry with the details of one case."""
    entry = CATALOGUE[code]
    body = for_one(entry.template.format(**fields))
    todo = for_one(entry.what_to_do.format(**fields))
    return f"{entry.title} [{code}]\n  {body}\n  What to do: {todo}"


class PlaybookError(Exception):
    """Base class: a problem a user can fix, with a message that says how.

    Attributes hold the details (``code``, ``path``, ``column``, ``rows``) so that
    callers can act on them; ``str(error)`` is the full plain-English message.
    """

    def __init__(
        self,
        code: str,
        *,
        path=None,
        column=None,
        rows: Sequence[int] = (),
        rows_total: int | None = None,
        **fields,
    ):
        self.code = code
        self.path = path
        self.column = column
        self.rows = list(rows)
        self.fields = fields
        shown = format_rows(rows, total=rows_total)  # rows_total: when rows are the first few
        message = render(code, path=path, column=column, rows=shown, **fields)
        super().__init__(message)

    def __reduce__(self):
        # Sent whole from another process (a Dask worker): the words and details as they
        # are, not made again from the code.
        return (_restore_error, (type(self), str(self), self.__dict__))


def _restore_error(cls: type, message: str, state: dict) -> PlaybookError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigError(PlaybookError):
    """The service config is missing, unreadable or has a wrong setting."""


class ExtractError(PlaybookError):
    """The extract cannot be read or cannot serve the analysis."""


class ReferenceDataError(PlaybookError):
    """A deprivation, population or lookup file is missing or in an unknown layout."""


class WorkbookError(PlaybookError):
    """The workbook run cannot go on."""


class ConfigErrors(ConfigError):
    """Several config problems found at once (``equity-workbook check`` lists them all)."""

    def __init__(self, errors: Sequence[PlaybookError]):
        self.errors = list(errors)
        self.code = "CFG-MANY"
        self.path = None
        self.column = None
        self.rows = []
        self.fields = {}
        Exception.__init__(
            self, f"{len(self.errors)} problems stop this run:\n\n" + "\n\n".join(map(str, errors))
        )
