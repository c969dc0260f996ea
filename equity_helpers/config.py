"""The service config: one YAML file that tells the playbook about a service's extract.

A service maps its own column names and code values onto the playbook's canonical
names here, so the loader never asks a service to rename its export.

Example
-------
>>> from equity_helpers.config import load_config
>>> cfg = load_config("sample_data/sample_service.yml")  # doctest: +SKIP
>>> cfg.service_name  # doctest: +SKIP
'Derbyshire Long COVID Rehabilitation Service (synthetic example)'
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, ConfigErrors, PlaybookError
from .privacy import DisclosureConfigError, DisclosureRule

#: Canonical columns of the data contract, with what each means.
CANONICAL_COLUMNS: dict[str, str] = {
    "referral_id": "unique referral key",
    "referral_date": "date the referral was received",
    "age": "age in years at referral",
    "age_band": "age band at referral (if age in years is not exported)",
    "sex": "NHS person stated gender code (1, 2, 9, X) or its labels",
    "ethnicity": "NHS ethnic category code (A to S, Z, 99) or its labels",
    "lsoa_code": "LSOA 2011 or 2021 code of the person's home",
    "accepted": "referral accepted or opted in (yes/no)",
    "first_appointment_date": "date of first contact",
    "appointments_offered": "number of appointments offered",
    "appointments_attended": "number of appointments attended",
    "appointments_dna": "number of appointments not attended (attendance codes 3 and 7)",
    "discharge_date": "date of discharge (blank if still open)",
    "discharge_reason": "completed, disengaged, dna_discharge, transferred or other",
    "outcome_start": "outcome measure score at the start",
    "outcome_end": "outcome measure score at the end",
    "religion": "religion or belief",
    "sexual_orientation": "sexual orientation",
    "marital_status": "marital or civil partnership status",
    "carer": "is a carer (yes/no)",
    "pregnancy": "pregnant or recently pregnant (yes/no)",
    "armed_forces": "armed forces veteran or family (yes/no)",
    "disability": "has a disability (yes/no)",
    "interpreter_needed": "needs an interpreter (yes/no)",
    "learning_disability": "has a learning disability (yes/no)",
    "smi": "has a severe mental illness (yes/no)",
}
REQUIRED_COLUMNS = ("referral_id", "referral_date", "sex", "ethnicity")
YES_NO_FIELDS = (
    "accepted",
    "carer",
    "pregnancy",
    "armed_forces",
    "disability",
    "interpreter_needed",
    "learning_disability",
    "smi",
)
CATEGORY_FIELDS = ("religion", "sexual_orientation", "marital_status")
#: The equality-monitoring fields, in the guide's order (accepting a referral is not one).
EQUALITY_FIELDS = (
    "ethnicity",
    "sex",
    "age_band",
    *CATEGORY_FIELDS,
    *(f for f in YES_NO_FIELDS if f != "accepted"),
)
#: Columns of an appointments file (one row per appointment), with what each means.
APPOINTMENT_COLUMNS: dict[str, str] = {
    "referral_id": "the referral the appointment belongs to (as in the referral file)",
    "appointment_date": "date (and time) of the appointment",
    "attendance": "attended, cancelled or did not attend, in words or national codes",
}
#: The referral columns an appointments file provides: derived, never mapped by hand.
DERIVED_FROM_APPOINTMENTS = (
    "appointments_offered",
    "appointments_attended",
    "appointments_dna",
    "first_appointment_date",
)
VALUE_MAPPED_FIELDS = ("sex", "ethnicity", "discharge_reason", *YES_NO_FIELDS, *CATEGORY_FIELDS)

_TOP_KEYS = {
    "service": "name and organisation of the service",
    "extract": "where the extract is and how to read it",
    "columns": "canonical name: your column name",
    "values": "canonical field: {your value: NHS code}",
    "catchment": "local authority codes or a file of LSOA codes",
    "reference": "deprivation and population files",
    "period": "start and end dates of the analysis",
    "evaluation": "change date and focus group for Steps 11-12",
    "outcome": "the outcome measure and its direction",
    "disclosure": "small-number rule",
    "readability": "folders of letters before and after a change",
    "appointments": "an optional file of appointments, one row per appointment",
}
_SECTION_KEYS = {
    "service": {"name", "organisation", "description"},
    "extract": {"path", "sheet", "header_row", "date_format"},
    "catchment": {"local_authorities", "lsoa_file", "name"},
    "reference": {
        "imd_edition",
        "imd_path",
        "population_ethnicity",
        "population_age",
        "population_sex",
        "lsoa_lookup",
    },
    "period": {"start", "end"},
    "evaluation": {"change_date", "focus_field", "focus_group", "measure"},
    "outcome": {"name", "higher_is_better"},
    "disclosure": {"threshold", "rounding", "enabled"},
    "readability": {"before", "after"},
    "appointments": {"path", "sheet", "header_row", "columns", "values"},
}
TODO = "TODO"
log = logging.getLogger("equity_helpers")


@dataclass
class ServiceConfig:
    """A validated service config. Paths are absolute."""

    path: Path
    service_name: str
    organisation: str
    extract_path: Path
    columns: dict[str, str]
    values: dict[str, dict[str, str]]
    catchment_lads: list[str]
    catchment_lsoa_file: Path | None
    catchment_name: str
    imd_edition: int
    imd_path: Path
    population_ethnicity: Path | None
    population_age: Path | None
    population_sex: Path | None
    lsoa_lookup: Path | None
    period_start: dt.date
    period_end: dt.date
    change_date: dt.date | None
    focus_field: str | None
    focus_group: str | None
    evaluation_measure: str
    outcome_name: str
    outcome_higher_is_better: bool
    disclosure: DisclosureRule
    readability_before: Path | None
    readability_after: Path | None
    extract_sheet: str | int | None = None
    extract_header_row: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    appointments_path: Path | None = None
    appointments_sheet: str | int | None = None
    appointments_header_row: int | None = None
    appointments_columns: dict[str, str] = field(default_factory=dict)
    #: Your attendance value: attended, cancelled or missed.
    appointments_values: dict[str, str] = field(default_factory=dict)

    def has(self, canonical: str) -> bool:
        """Whether the extract provides this canonical column (an appointments file counts)."""
        if self.appointments_path is not None and canonical in DERIVED_FROM_APPOINTMENTS:
            return True
        return canonical in self.columns


#: The settings that name a file or folder. Published pages show only its name.
FILE_SETTINGS = frozenset(
    {
        "extract.path",
        "catchment.lsoa_file",
        "reference.imd_path",
        "reference.population_ethnicity",
        "reference.population_age",
        "reference.population_sex",
        "reference.lsoa_lookup",
        "readability.before",
        "readability.after",
        "appointments.path",
    }
)


def resolve_path(path: str | Path) -> Path:
    """Find a file given relative to the current folder or to any folder above it.

    Notebooks run from ``notebooks/`` in the book and in JupyterLab, and from the
    repository root under papermill; this lets the same default work in all three.
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    for parent in Path.cwd().resolve().parents:
        candidate = parent / p
        if candidate.exists():
            return candidate
    return p.resolve()


def file_problem(path: str | Path, key: str, error: type[PlaybookError] = ConfigError):
    """Why ``path`` cannot be read as a file, as a catalogue error; None when it can.

    The type is checked with ``os.stat``, before anything opens the path: opening a pipe
    (FIFO) waits for a writer, and a device such as /dev/zero never ends.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return error("CFG006", key=key, path=str(path))
    except OSError as exc:
        return error("CFG009", key=key, path=str(path), problem=f"cannot be opened ({exc})")
    if stat.S_ISDIR(mode):
        return error("CFG009", key=key, path=str(path), problem="is a folder, not a file")
    if not stat.S_ISREG(mode):
        return error(
            "CFG009",
            key=key,
            path=str(path),
            problem="is not a regular file (it is a pipe, a device or a socket)",
        )
    return None


def _close(word: str, options) -> str:
    match = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""


def _unknown_key(key: str, section: str, allowed) -> ConfigError:
    """A key the playbook does not know, with the closest allowed one suggested."""
    allowed = list(allowed)
    return ConfigError(
        "CFG003",
        key=key,
        section=section,
        suggestion=_close(key, allowed),
        allowed=", ".join(allowed),
    )


def _date(value, key: str, problems: list) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(str(value), fmt).date()
        except ValueError:
            pass
    problems.append(
        ConfigError("CFG005", key=key, value=value, allowed="a date like 2024-04-01 or 01/04/2024")
    )
    return None


def _date_format_ok(fmt) -> bool:
    """Whether a date format (``%d/%m/%Y``) writes a date and reads it back."""
    if not isinstance(fmt, str) or "%" not in fmt:
        return False
    import pandas as pd

    try:
        text = dt.date(2024, 1, 31).strftime(fmt)
        return bool(pd.to_datetime(pd.Series([text]), format=fmt, errors="coerce").notna().all())
    except (ValueError, TypeError, OverflowError):
        return False


def load_config(path: str | Path, *, check_files: bool = True) -> ServiceConfig:
    """Read and validate a service config, reporting every problem at once.

    Parameters
    ----------
    path : str or Path
        The YAML file. Relative paths inside it are read from its folder.
    check_files : bool
        Check that the files it names exist.

    Raises
    ------
    ConfigError
        One problem; ``ConfigErrors`` when there are several.
    """
    cfg_path = resolve_path(path)
    if not cfg_path.is_file():
        problem = file_problem(cfg_path, "config")  # a folder or a pipe, named as such
        if problem is not None and problem.code == "CFG009":
            raise problem
        raise ConfigError("CFG001", path=str(path))
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as exc:
        detail = str(exc).replace("\n", " ")
        raise ConfigError("CFG002", path=str(cfg_path), detail=detail) from None
    if not isinstance(raw, dict):
        raise ConfigError("CFG002", path=str(cfg_path), detail="the top level is not a mapping")
    return _validate(raw, cfg_path, check_files)


def _validate(raw: dict, cfg_path: Path, check_files: bool) -> ServiceConfig:
    problems: list[PlaybookError] = []
    base = cfg_path.parent

    for key in raw:
        if key not in _TOP_KEYS:
            problems.append(_unknown_key(key, "the top level", _TOP_KEYS))
    sections = {}
    for name, allowed in _SECTION_KEYS.items():
        section = raw.get(name) or {}
        if not isinstance(section, dict):
            problems.append(
                ConfigError(
                    "CFG005", key=name, value=section, allowed="a set of 'key: value' lines"
                )
            )
            section = {}
        for key in section:
            if key not in allowed:
                problems.append(_unknown_key(key, name, sorted(allowed)))
        sections[name] = section

    def file_setting(
        section: str, key: str, required: bool = False, must_exist: bool = True
    ) -> Path | None:
        value = sections[section].get(key)
        full_key = f"{section}.{key}"
        if full_key not in FILE_SETTINGS:  # pages show only a file name for these
            raise RuntimeError(f"{full_key} names a file: add it to FILE_SETTINGS")
        if value in (None, ""):
            if required:
                problems.append(
                    ConfigError("CFG004", key=full_key, hint="Give the path to the file.")
                )
            return None
        try:
            p = Path(str(value)).expanduser()
        except RuntimeError:  # "~name" for a user this machine does not have
            p = Path(str(value))
        p = p if p.is_absolute() else (base / p)
        try:
            exists = p.exists()
        except (OSError, ValueError):  # a name too long, or with a character no path holds
            exists = False
        if check_files and not exists:
            if must_exist:
                problems.append(ConfigError("CFG006", key=full_key, path=str(p)))
            else:
                log.warning(str(ConfigError("CFG006", key=full_key, path=str(p))))
        elif check_files and must_exist:  # a file setting: a folder or a pipe will not do
            problem = file_problem(p, full_key)
            if problem is not None:
                problems.append(problem)
        return p.resolve() if exists else p

    todo: list[str] = []
    name = sections["service"].get("name")
    if name and str(name).strip().upper().startswith(TODO):
        todo.append("service.name")
        name = None
    elif not name:
        problems.append(ConfigError("CFG004", key="service.name", hint="Give the service's name."))

    extract_path = file_setting("extract", "path", required=True)

    columns = _columns(
        raw.get("columns"),
        "columns",
        CANONICAL_COLUMNS,
        REQUIRED_COLUMNS,
        ("your extract", "referral_id: Referral Number"),
        problems,
        todo,
    )
    if "age" not in columns and "age_band" not in columns and "columns.age" not in todo:
        problems.append(
            ConfigError("CFG004", key="columns.age", hint="Map either 'age' or 'age_band'.")
        )

    values_raw = raw.get("values") or {}
    values: dict[str, dict[str, str]] = {}
    if isinstance(values_raw, dict):
        for fieldname, mapping in values_raw.items():
            if fieldname not in VALUE_MAPPED_FIELDS:
                problems.append(_unknown_key(fieldname, "values", VALUE_MAPPED_FIELDS))
                continue
            if mapping is None:  # every line deleted, as init's notes allow: nothing to map
                continue
            if not isinstance(mapping, dict):
                problems.append(
                    ConfigError(
                        "CFG005",
                        key=f"values.{fieldname}",
                        value=mapping,
                        allowed="lines like 'Your value: NHS code'",
                    )
                )
                continue
            for k, v in mapping.items():
                if str(v).strip().upper().startswith(TODO):
                    todo.append(f"values.{fieldname}.{k}")
            values[fieldname] = {str(k).strip(): str(v).strip() for k, v in mapping.items()}
    appt = _appointments(sections["appointments"], file_setting, problems, todo)
    if todo:
        problems.append(ConfigError("CFG007", keys=", ".join(todo)))

    lads = sections["catchment"].get("local_authorities") or []
    if not isinstance(lads, list):  # one code, or a value that is not a list
        lads = [lads]
    lads = [str(x).strip() for x in lads]
    for code in lads:
        if not (len(code) == 9 and code[0] == "E" and code[1:].isdigit()):
            problems.append(
                ConfigError(
                    "CFG005",
                    key="catchment.local_authorities",
                    value=code,
                    allowed="local authority codes like E06000015 (Derby)",
                )
            )
    lsoa_file = file_setting("catchment", "lsoa_file")

    edition = sections["reference"].get("imd_edition", 2025)
    if edition not in (2019, 2025):
        problems.append(
            ConfigError("CFG005", key="reference.imd_edition", value=edition, allowed="2019, 2025")
        )
        edition = 2025
    imd_path = file_setting("reference", "imd_path", required=True)

    start = _date(sections["period"].get("start"), "period.start", problems)
    end = _date(sections["period"].get("end"), "period.end", problems)
    if start is None and "start" not in sections["period"]:
        problems.append(ConfigError("CFG004", key="period.start", hint="For example 2022-04-01."))
    if end is None and "end" not in sections["period"]:
        problems.append(ConfigError("CFG004", key="period.end", hint="For example 2025-03-31."))
    if start and end and start >= end:
        problems.append(
            ConfigError(
                "CFG005", key="period", value=f"{start} to {end}", allowed="a start before the end"
            )
        )
    change = _date(sections["evaluation"].get("change_date"), "evaluation.change_date", problems)
    if change and start and end and not (start < change < end):
        problems.append(
            ConfigError(
                "CFG005",
                key="evaluation.change_date",
                value=str(change),
                allowed=f"a date between {start} and {end}",
            )
        )
    measure = sections["evaluation"].get("measure", "dna_rate")
    measures = ("dna_rate", "drop_out_rate", "completion_rate")
    if measure not in measures:
        problems.append(
            ConfigError(
                "CFG005", key="evaluation.measure", value=measure, allowed=", ".join(measures)
            )
        )

    higher = sections["outcome"].get("higher_is_better", True)
    if not isinstance(higher, bool):
        problems.append(
            ConfigError(
                "CFG005", key="outcome.higher_is_better", value=higher, allowed="true, false"
            )
        )
        higher = True

    try:
        # Unknown keys were reported above; pass only the known ones, so a typo is one message.
        known = {
            k: v for k, v in sections["disclosure"].items() if k in _SECTION_KEYS["disclosure"]
        }
        rule = DisclosureRule.from_config(known)
    except DisclosureConfigError as exc:
        problems.append(ConfigError("CFG005", key=exc.key, value=exc.value, allowed=exc.allowed))
        rule = DisclosureRule()

    date_format = sections["extract"].get("date_format")
    if date_format is not None and not _date_format_ok(date_format):
        problems.append(
            ConfigError(
                "CFG005",
                key="extract.date_format",
                value=date_format,
                allowed="a date format such as %d/%m/%Y (31/01/2024) or %Y-%m-%d (2024-01-31)",
            )
        )
    sheet = sections["extract"].get("sheet")
    header_row = _header_row(sections["extract"], "extract", problems)

    cfg = ServiceConfig(
        path=cfg_path,
        service_name=str(name or ""),
        organisation=str(sections["service"].get("organisation", "")),
        extract_path=extract_path or base,
        columns=columns,
        values=values,
        catchment_lads=lads,
        catchment_lsoa_file=lsoa_file,
        catchment_name=str(sections["catchment"].get("name", "the catchment")),
        imd_edition=int(edition),
        imd_path=imd_path or base,
        population_ethnicity=file_setting("reference", "population_ethnicity"),
        population_age=file_setting("reference", "population_age"),
        population_sex=file_setting("reference", "population_sex"),
        lsoa_lookup=file_setting("reference", "lsoa_lookup"),
        period_start=start or dt.date(1900, 1, 1),
        period_end=end or dt.date(2100, 1, 1),
        change_date=change,
        focus_field=sections["evaluation"].get("focus_field"),
        focus_group=(
            str(sections["evaluation"]["focus_group"])
            if sections["evaluation"].get("focus_group") is not None
            else None
        ),
        evaluation_measure=str(measure),
        outcome_name=str(sections["outcome"].get("name", "outcome score")),
        outcome_higher_is_better=bool(higher),
        disclosure=rule,
        readability_before=file_setting("readability", "before", must_exist=False),
        readability_after=file_setting("readability", "after", must_exist=False),
        extract_sheet=sheet,
        extract_header_row=header_row,
        raw=raw,
        **appt,
    )
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)
    return cfg


def _columns(
    given,
    key: str,
    known: dict[str, str],
    required: tuple[str, ...],
    words: tuple[str, str],
    problems: list,
    todo: list,
) -> dict[str, str]:
    """A ``columns:`` section, checked: each playbook column and the file's name for it.

    ``key`` is where the section is (``columns`` or ``appointments.columns``); ``words``
    are how to name the file ("your extract") and an example line. A blank line is left
    out, a TODO is noted, and a required column that is not given is a problem.
    """
    file_words, example = words
    given = given or {}
    if not isinstance(given, dict):
        allowed = f"lines like '{example}'"
        problems.append(ConfigError("CFG005", key=key, value=given, allowed=allowed))
        given = {}
    columns: dict[str, str] = {}
    for name, source in given.items():
        if name not in known:
            problems.append(_unknown_key(name, key, known))
        elif source is not None and str(source).strip().upper().startswith(TODO):
            todo.append(f"{key}.{name}")
        elif source is not None and str(source).strip():
            columns[name] = str(source)
    for name in required:
        if name not in columns and f"{key}.{name}" not in todo:
            hint = f"Name the column of {file_words} that holds the {known[name]}."
            problems.append(ConfigError("CFG004", key=f"{key}.{name}", hint=hint))
    return columns


def _header_row(section: dict, name: str, problems: list) -> int | None:
    """The section's ``header_row``: a row number from 1, or None when not given or wrong."""
    header_row = section.get("header_row")
    if header_row is not None and (not isinstance(header_row, int) or header_row < 1):
        problems.append(
            ConfigError(
                "CFG005",
                key=f"{name}.header_row",
                value=header_row,
                allowed="a row number, 1 or more",
            )
        )
        return None
    return header_row


#: What each attendance outcome may be called in ``appointments.values.attendance``.
ATTENDANCE_OUTCOMES = ("attended", "cancelled", "missed")


def _appointments(section: dict, file_setting, problems: list, todo: list) -> dict:
    """The ``appointments:`` section, checked: its file, its three columns, its values."""
    if not section:
        return {}
    path = file_setting("appointments", "path", required=True)
    columns = _columns(
        section.get("columns"),
        "appointments.columns",
        APPOINTMENT_COLUMNS,
        tuple(APPOINTMENT_COLUMNS),
        ("the appointments file", "attendance: Attendance Status"),
        problems,
        todo,
    )
    values: dict[str, str] = {}
    given = section.get("values") or {}
    mapping = given.get("attendance") if isinstance(given, dict) else given
    if not isinstance(mapping, dict | None):
        problems.append(
            ConfigError(
                "CFG005",
                key="appointments.values",
                value=given,
                allowed="lines like 'attendance:' then 'Your value: attended'",
            )
        )
        mapping = None
    for raw_value, outcome in (mapping or {}).items():
        outcome = str(outcome).strip()
        if outcome.upper().startswith(TODO):
            todo.append(f"appointments.values.attendance.{raw_value}")
        elif outcome not in ATTENDANCE_OUTCOMES:
            problems.append(
                ConfigError(
                    "CFG005",
                    key=f"appointments.values.attendance.{raw_value}",
                    value=outcome,
                    allowed=", ".join(ATTENDANCE_OUTCOMES),
                )
            )
        else:
            values[str(raw_value).strip()] = outcome
    header_row = _header_row(section, "appointments", problems)
    return {
        "appointments_path": path,
        "appointments_sheet": section.get("sheet"),
        "appointments_header_row": header_row,
        "appointments_columns": columns,
        "appointments_values": values,
    }
