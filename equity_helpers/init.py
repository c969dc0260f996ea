"""Help an analyst start: write a starter config for an extract, and check a config.

``write_starter_config`` inspects an extract and guesses which of its columns holds
each canonical field, proposes NHS codes for the values it finds in coded fields, and
marks with ``TODO`` whatever it could not guess. ``check`` then lists every problem
that still stops a run, all at once.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pandas as pd

from . import codes
from .config import CANONICAL_COLUMNS, REQUIRED_COLUMNS, YES_NO_FIELDS, load_config
from .errors import ConfigErrors, PlaybookError
from .extract import IDENTIFIER_PATTERN, prepare, read_extract

#: Words that often name each canonical column in clinical-system exports.
SYNONYMS = {
    "referral_id": [
        "referral id",
        "referral ref",
        "referral number",
        "ref no",
        "referral key",
        "episode id",
        "pathway id",
        "referral reference",
    ],
    "referral_date": [
        "referral date",
        "date referred",
        "date referral received",
        "received date",
        "referral received",
        "ref date",
    ],
    "age": ["age", "age at referral", "age years", "age on referral"],
    "age_band": ["age band", "age group", "age range"],
    "sex": ["sex", "gender", "stated gender", "person stated gender code"],
    "ethnicity": ["ethnicity", "ethnic category", "ethnic group", "ethnic origin", "ethnic code"],
    "lsoa_code": ["lsoa", "lsoa code", "lsoa 2021", "lsoa21", "lsoa11", "lower super output area"],
    "accepted": ["accepted", "referral accepted", "opted in", "opt in", "referral outcome"],
    "first_appointment_date": [
        "first appointment date",
        "first contact date",
        "first seen date",
        "first attended",
        "date first seen",
        "first appt",
    ],
    "appointments_offered": ["appointments offered", "appts offered", "contacts offered", "booked"],
    "appointments_attended": [
        "appointments attended",
        "appts attended",
        "contacts attended",
        "attended",
    ],
    "appointments_dna": ["dna", "appointments dna", "did not attend", "appts dna", "dnas"],
    "discharge_date": ["discharge date", "date discharged", "end date", "closed date"],
    "discharge_reason": [
        "discharge reason",
        "reason for discharge",
        "discharge outcome",
        "closure reason",
    ],
    "outcome_start": [
        "outcome start",
        "score start",
        "baseline score",
        "initial score",
        "start score",
    ],
    "outcome_end": ["outcome end", "score end", "final score", "end score", "discharge score"],
    "religion": ["religion", "religion or belief", "faith"],
    "sexual_orientation": ["sexual orientation", "sexuality"],
    "marital_status": ["marital status", "civil status"],
    "carer": ["carer", "is carer", "carer status"],
    "pregnancy": ["pregnant", "pregnancy", "pregnancy status"],
    "armed_forces": ["armed forces", "veteran", "military", "ex forces"],
    "disability": ["disability", "disabled", "has disability"],
    "interpreter_needed": ["interpreter", "interpreter required", "interpreter needed"],
    "learning_disability": ["learning disability", "ld"],
    "smi": ["smi", "severe mental illness"],
}
_CODED = {
    "sex": codes.normalise_sex,
    "ethnicity": codes.normalise_ethnicity,
    "discharge_reason": codes.normalise_discharge_reason,
    **dict.fromkeys(YES_NO_FIELDS, codes.normalise_yes_no),
}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(text).lower()).strip()


def guess_columns(columns: list[str]) -> dict[str, str | None]:
    """For each canonical field, the extract column that most likely holds it (or None)."""
    normed = {_norm(c): c for c in columns if not IDENTIFIER_PATTERN.search(c)}
    taken: set[str] = set()
    out: dict[str, str | None] = {}
    for canonical, words in SYNONYMS.items():
        best, score = None, 0.0
        for n, original in normed.items():
            if original in taken:
                continue
            s = max(
                difflib.SequenceMatcher(None, n, w).ratio()
                for w in words + [canonical.replace("_", " ")]
            )
            if n in words:
                s = 1.0
            if s > score:
                best, score = original, s
        out[canonical] = best if score >= 0.75 else None
        if out[canonical]:
            taken.add(out[canonical])
    return out


def propose_values(field: str, values: pd.Series) -> dict[str, str]:
    """Distinct values of a coded field with the code each maps to (TODO where unknown)."""
    distinct = values.astype("string").str.strip()
    distinct = distinct[distinct.notna() & distinct.ne("")].value_counts().index[:40]
    s = pd.Series(list(distinct), dtype="string")
    mapped = _CODED[field](s)
    out = {}
    for raw, code in zip(s, mapped, strict=True):
        if code is pd.NA or code == codes.INVALID:
            out[str(raw)] = "TODO"
        else:
            out[str(raw)] = str(code)
    return out


def write_starter_config(
    extract: str | Path, out: str | Path | None = None
) -> tuple[Path, list[str]]:
    """Inspect an extract and write a starter service config beside it (or at ``out``)."""
    extract = Path(extract).resolve()
    df, _ = read_extract(extract, expected_columns=[w for ws in SYNONYMS.values() for w in ws])
    guesses = guess_columns(list(df.columns))
    out = Path(out) if out else extract.with_name(extract.stem + "_service.yml")
    todos: list[str] = []
    lines = [
        "# Starter config written by 'equity-workbook init'. Check every line.",
        "# Lines marked TODO need you: give the column name, or delete the line if your",
        "# extract does not have that field. Then run: equity-workbook check " + out.name,
        "service:",
        "  name: TODO the name of your service",
        "  organisation: ''",
        "extract:",
        f"  path: {_rel(extract, out)}",
        "columns:",
    ]
    todos.append("service.name")
    for canonical, desc in CANONICAL_COLUMNS.items():
        source = guesses.get(canonical)
        if canonical == "age_band" and guesses.get("age"):
            continue
        if source:
            lines.append(f"  {canonical}: {_q(source)}  # {desc}")
        elif canonical in REQUIRED_COLUMNS or canonical == "age":
            lines.append(f"  {canonical}: TODO  # {desc} (required)")
            todos.append(f"columns.{canonical}")
        else:
            lines.append(f"  # {canonical}:   # {desc} (optional; not found)")
    lines.append("values:")
    for field in _CODED:
        source = guesses.get(field)
        if not source:
            continue
        proposal = propose_values(field, df[source])
        needs_map = any(v == "TODO" for v in proposal.values()) or any(
            k != v for k, v in proposal.items()
        )
        if not needs_map:
            continue
        lines.append(f"  {field}:")
        for raw, code in proposal.items():
            lines.append(f"    {_q(raw)}: {code}")
            if code == "TODO":
                todos.append(f"values.{field}.{raw}")
    lines += [
        "catchment:",
        "  name: TODO the area your service covers",
        "  local_authorities: []  # for example [E06000015] for Derby",
        "reference:",
        "  imd_edition: 2025",
        "  imd_path: TODO path to the IMD 2025 File 7 CSV ('equity-workbook reference download')",
        "  # population_ethnicity: census2021-ts021-lsoa.csv",
        "  # population_age: census2021-ts007a-lsoa.csv",
        "  # population_sex: census2021-ts008-lsoa.csv",
        "period:",
        "  start: TODO  # first referral date to include, for example 2022-04-01",
        "  end: TODO    # last referral date to include",
        "evaluation:",
        "  measure: dna_rate",
        "  focus_field: core20",
        "  focus_group: Core20",
        "  # change_date: 2024-04-01",
        "outcome:",
        "  name: outcome score",
        "  higher_is_better: true",
        "disclosure:",
        "  threshold: 7",
        "  rounding: 5",
    ]
    todos += ["catchment.name", "reference.imd_path", "period.start", "period.end"]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out, todos


def _q(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _rel(path: Path, config: Path) -> str:
    try:
        return str(path.relative_to(config.resolve().parent))
    except ValueError:
        return str(path)


def check(config_path: str | Path) -> tuple[list[PlaybookError], str]:
    """Everything that still stops a run, in plain words, all at once."""
    problems: list[PlaybookError] = []
    try:
        cfg = load_config(config_path)
    except ConfigErrors as exc:
        problems = exc.errors
    except PlaybookError as exc:
        problems = [exc]
    if problems:
        text = f"{len(problems)} problem(s) stop this config from running:\n\n"
        return problems, text + "\n\n".join(str(p) for p in problems)
    try:
        prepared = prepare(cfg)
    except PlaybookError as exc:
        return [exc], "The config is valid, but the extract cannot be used:\n\n" + str(exc)
    acc = prepared.account
    return [], (
        f"Ready to run. {acc.rows_read:,} rows read, {acc.rows_used:,} will be analysed.\n"
        f"{len(prepared.issues)} data-quality notes; see them with "
        f"'equity-workbook prepare --config {config_path}'."
    )
