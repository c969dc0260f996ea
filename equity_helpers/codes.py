"""NHS data dictionary codes and the labels services use for them.

Sources: NHS Data Model and Dictionary, ETHNIC CATEGORY (2001 census categories,
codes A to S, Z not stated, 99 not known) and PERSON STATED GENDER CODE (1 male,
2 female, 9 indeterminate, X not known); age bands as used in NHS publications;
Census 2021 broad ethnic groups.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

ETHNIC_CATEGORIES: dict[str, str] = {
    "A": "White: British",
    "B": "White: Irish",
    "C": "White: Any other White background",
    "D": "Mixed: White and Black Caribbean",
    "E": "Mixed: White and Black African",
    "F": "Mixed: White and Asian",
    "G": "Mixed: Any other mixed background",
    "H": "Asian or Asian British: Indian",
    "J": "Asian or Asian British: Pakistani",
    "K": "Asian or Asian British: Bangladeshi",
    "L": "Asian or Asian British: Any other Asian background",
    "M": "Black or Black British: Caribbean",
    "N": "Black or Black British: African",
    "P": "Black or Black British: Any other Black background",
    "R": "Other ethnic groups: Chinese",
    "S": "Other ethnic groups: Any other ethnic group",
    "Z": "Not stated",
    "99": "Not known",
}
#: Census 2021 broad groups, in the order used in tables.
BROAD_GROUPS = ["Asian", "Black", "Mixed", "White", "Other"]
NOT_STATED = "Not stated"
NOT_KNOWN = "Not known"
INVALID = "Invalid"
_BROAD = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    **dict.fromkeys("RS", "Other"),
    "Z": NOT_STATED,
    "99": NOT_KNOWN,
}
# Labels services commonly export, lower-cased with punctuation folded.
_ETHNIC_LABELS = {
    "british": "A",
    "white british": "A",
    "english": "A",
    "welsh": "A",
    "scottish": "A",
    "irish": "B",
    "white irish": "B",
    "any other white background": "C",
    "other white": "C",
    "white other": "C",
    "white and black caribbean": "D",
    "white and black african": "E",
    "white and asian": "F",
    "any other mixed background": "G",
    "other mixed": "G",
    "mixed other": "G",
    "indian": "H",
    "pakistani": "J",
    "bangladeshi": "K",
    "any other asian background": "L",
    "other asian": "L",
    "asian other": "L",
    "caribbean": "M",
    "black caribbean": "M",
    "african": "N",
    "black african": "N",
    "any other black background": "P",
    "other black": "P",
    "black other": "P",
    "chinese": "R",
    "any other ethnic group": "S",
    "other ethnic group": "S",
    "other": "S",
    "not stated": "Z",
    "declined": "Z",
    "refused": "Z",
    "prefer not to say": "Z",
    "not known": "99",
    "unknown": "99",
    "not recorded": "99",
}
for _code, _label in ETHNIC_CATEGORIES.items():
    _ETHNIC_LABELS[_label.lower()] = _code
    _ETHNIC_LABELS[_label.split(": ", 1)[-1].lower()] = _code
    if ": " in _label:  # the broad group's short name too, as exports write it: "Asian - Pakistani"
        _broad, _specific = _label.split(": ", 1)
        _ETHNIC_LABELS[f"{_broad.split()[0]}: {_specific}".lower()] = _code

SEX_CODES = {"1": "Male", "2": "Female", "9": "Indeterminate", "X": "Not known"}
_SEX_LABELS = {
    "male": "1",
    "m": "1",
    "man": "1",
    "female": "2",
    "f": "2",
    "woman": "2",
    "indeterminate": "9",
    "not specified": "9",
    "i": "9",
    "not known": "X",
    "unknown": "X",
    "u": "X",
    "x": "X",
    "0": "X",
    # Gender identity in words, as newer systems record it. Non-binary and other
    # identities are "9" (not classed as male or female) on the stated gender list.
    "male (including trans man)": "1",
    "female (including trans woman)": "2",
    "trans man": "1",
    "trans woman": "2",
    "non-binary": "9",
    "non binary": "9",
    "nonbinary": "9",
    "genderqueer": "9",
    "not stated": "X",
    "prefer not to say": "X",
    "declined": "X",
    "not recorded": "X",
}

#: NHS five-year age bands (as in NHS Digital publications), with 90+.
AGE_BANDS = [f"{a}-{a + 4}" for a in range(0, 90, 5)] + ["90+"]
#: The six Census 2021 bands the catchment population is given in.
CENSUS_AGE_GROUPS = ["0-15", "16-24", "25-34", "35-49", "50-64", "65+"]
UNKNOWN_AGE = "Unknown"

DISCHARGE_REASONS = ("completed", "disengaged", "dna_discharge", "transferred", "other")
_DISCHARGE_LABELS = {
    "completed": "completed",
    "complete": "completed",
    "treatment completed": "completed",
    "discharged - completed": "completed",
    "goals met": "completed",
    "disengaged": "disengaged",
    "did not engage": "disengaged",
    "dropped out": "disengaged",
    "self-discharged": "disengaged",
    "self discharged": "disengaged",
    "dna": "dna_discharge",
    "dna_discharge": "dna_discharge",
    "discharged after dna": "dna_discharge",
    "did not attend": "dna_discharge",
    "transferred": "transferred",
    "transfer": "transferred",
    "referred on": "transferred",
    "other": "other",
    "died": "other",
    "moved away": "other",
}
_YES = {"y", "yes", "true", "1", "t", "accepted", "opted in", "yes - accepted"}
_NO = {"n", "no", "false", "0", "f", "declined", "rejected", "not accepted", "opted out"}
_BLANKS = {"", "nan", "none", "null", "n/a", "na", "<na>"}
LSOA_PATTERN = re.compile(r"^E01\d{6}$")


def _fold(values: pd.Series) -> pd.Series:
    return (
        values.astype("string")
        .str.strip()
        .str.lower()
        .str.replace(r"[\s_]+", " ", regex=True)
        .str.replace(r"\s*[-–:]\s*", " - ", regex=True)
    )


_MISSING = "\x00missing"


def by_unique(values: pd.Series, func) -> pd.Series:
    """Apply ``func`` to the distinct values only, then spread the result back.

    Coded fields and dates have few distinct values, so this turns a million string
    operations into a few hundred (before this, it was the extract's biggest cost).

    >>> by_unique(pd.Series(["a", "b", "a", None]), lambda s: s.str.upper()).tolist()
    ['A', 'B', 'A', <NA>]
    """
    filled = values.astype("string").fillna(_MISSING)
    uniques = pd.Series(filled.unique(), dtype="string")
    mapped = func(uniques.replace(_MISSING, pd.NA))
    lookup = dict(zip(uniques.tolist(), mapped.tolist(), strict=True))
    return filled.map(lookup).astype(mapped.dtype)


def _apply(values: pd.Series, builtin: dict, custom: dict | None) -> pd.Series:
    """Map raw values: the service's own mapping first, then built-in labels.

    Returns the code, ``<NA>`` for blanks, and ``INVALID`` for anything unrecognised.
    """
    raw = values.astype("string").str.strip()
    out = pd.Series(pd.NA, index=values.index, dtype="string")
    if custom:
        out = raw.map({str(k).strip(): str(v) for k, v in custom.items()}).astype("string")
    folded = _fold(raw)
    # Fold the built-in labels the same way as the data, so "Self-discharged" and
    # "self discharged" or "White: British" and "White - British" all match.
    keys = pd.Series(list(builtin), dtype="string")
    folded_builtin = dict(zip(_fold(keys), builtin.values(), strict=True)) | builtin
    fallback = folded.map(folded_builtin).astype("string")
    out = out.fillna(fallback)
    blank = raw.isna() | folded.isin(_BLANKS)
    out = out.mask(blank & out.isna(), pd.NA)
    return out.mask(~blank & out.isna(), INVALID)


def _distinct(func):
    """Run a normaliser on distinct values only (see :func:`by_unique`)."""

    def wrapper(values: pd.Series, custom: dict | None = None) -> pd.Series:
        return by_unique(values, lambda u: func(u, custom))

    wrapper.__doc__ = func.__doc__
    wrapper.__name__ = func.__name__
    return wrapper


# A code written with its label, as many systems export it: "A - White - British",
# "A: White British", "White - British (A)", "(A) White British".
_CODE_FIRST = re.compile(r"^\(?([A-HJ-NPRSZ]|99)\)?\s*(?:[-–:.]\s*|\s+)\D", re.IGNORECASE)
_CODE_LAST = re.compile(r"\(\s*([A-HJ-NPRSZ]|99)\s*\)\s*$", re.IGNORECASE)


def _combined_code(raw: pd.Series) -> pd.Series:
    """The NHS ethnic code inside a combined code-and-label value, else <NA>."""
    first = raw.str.extract(_CODE_FIRST.pattern, flags=re.IGNORECASE)[0]
    last = raw.str.extract(_CODE_LAST.pattern, flags=re.IGNORECASE)[0]
    return first.fillna(last).astype("string").str.upper()


@_distinct
def normalise_ethnicity(values: pd.Series, custom: dict | None = None) -> pd.Series:
    """Map codes or labels to NHS ethnic category codes (A-S, Z, 99).

    Blanks become ``99`` (not known); unrecognised values become ``"Invalid"``. A code
    written with its label ("A - White - British", "White - British (A)") is read by its
    code.

    >>> normalise_ethnicity(pd.Series(["A", "Indian", "", "Q", "H - Asian - Indian"])).tolist()
    ['A', 'H', '99', 'Invalid', 'H']
    >>> normalise_ethnicity(pd.Series(["Asian - Pakistani", "Black: Caribbean", "Other: Chinese"])).tolist()
    ['J', 'M', 'R']
    """
    builtin = {c.lower(): c for c in ETHNIC_CATEGORIES} | _ETHNIC_LABELS
    raw = values.astype("string").str.strip()
    combined = _combined_code(raw)
    mapped_by_person = (
        raw.isin([str(k).strip() for k in custom]) if custom else pd.Series(False, index=raw.index)
    )
    values = raw.mask(combined.notna() & ~mapped_by_person, combined)
    out = _apply(values, builtin, custom)
    out = out.where(out.isin(list(ETHNIC_CATEGORIES) + [INVALID]) | out.isna(), INVALID)
    return out.fillna("99")


def broad_ethnic_group(codes: pd.Series) -> pd.Series:
    """Census 2021 broad group of each NHS ethnic category code."""
    return codes.map(_BROAD).fillna(INVALID).astype("string")


@_distinct
def normalise_sex(values: pd.Series, custom: dict | None = None) -> pd.Series:
    """Map codes or labels to PERSON STATED GENDER CODE (1, 2, 9, X).

    >>> normalise_sex(pd.Series(["Female", "1", "", "Q"])).tolist()
    ['2', '1', 'X', 'Invalid']
    """
    builtin = {"1": "1", "2": "2", "9": "9", "x": "X"} | _SEX_LABELS
    out = _apply(values, builtin, custom)
    out = out.where(out.isin(list(SEX_CODES) + [INVALID]) | out.isna(), INVALID)
    return out.fillna("X")


@_distinct
def normalise_yes_no(values: pd.Series, custom: dict | None = None) -> pd.Series:
    """Map yes/no answers to ``"Yes"``, ``"No"``, ``<NA>`` (blank) or ``"Invalid"``."""
    builtin = dict.fromkeys(_YES, "Yes") | dict.fromkeys(_NO, "No")
    if custom:
        custom = {
            k: ("Yes" if str(v).lower() in _YES else "No" if str(v).lower() in _NO else v)
            for k, v in custom.items()
        }
    out = _apply(values, builtin, custom)
    return out.where(out.isin(["Yes", "No", INVALID]) | out.isna(), INVALID)


@_distinct
def normalise_category(values: pd.Series, custom: dict | None = None) -> pd.Series:
    """Free categories (religion, sexual orientation): mapped labels, tidy case, blanks NA."""
    raw = values.astype("string").str.strip()
    if custom:
        raw = raw.map(lambda v: custom.get(v, v) if v is not pd.NA else v).astype("string")
    blank = raw.isna() | raw.str.lower().isin(_BLANKS)
    return raw.mask(blank, pd.NA)


@_distinct
def normalise_discharge_reason(values: pd.Series, custom: dict | None = None) -> pd.Series:
    """Map discharge reasons to the five canonical values; blank means still open."""
    builtin = _DISCHARGE_LABELS
    out = _apply(values, builtin, custom)
    return out.where(out.isin(list(DISCHARGE_REASONS) + [INVALID]) | out.isna(), INVALID)


def age_to_band(age: pd.Series) -> pd.Series:
    """NHS five-year age band of each age in whole years; ``Unknown`` when missing.

    >>> age_to_band(pd.Series([0, 4, 5, 89, 90, 104, None])).tolist()
    ['0-4', '0-4', '5-9', '85-89', '90+', '90+', 'Unknown']
    """
    a = pd.to_numeric(age, errors="coerce")
    idx = np.clip(np.floor(a.to_numpy(dtype=float) / 5), 0, len(AGE_BANDS) - 1)
    bands = np.array(AGE_BANDS, dtype=object)[np.nan_to_num(idx, nan=0).astype(int)]
    out = pd.Series(bands, index=age.index, dtype="string")
    return out.mask(a.isna(), UNKNOWN_AGE)


def age_to_census_group(age: pd.Series) -> pd.Series:
    """Census 2021 six-band age group of each age in years."""
    a = pd.to_numeric(age, errors="coerce")
    cuts = [-0.5, 15.5, 24.5, 34.5, 49.5, 64.5, np.inf]
    out = pd.cut(a, bins=cuts, labels=CENSUS_AGE_GROUPS).astype("string")
    return out.fillna(UNKNOWN_AGE)


def band_to_census_group(bands: pd.Series) -> pd.Series:
    """Census group for an NHS age band (when only bands are exported).

    Bands that straddle a census boundary (15-19, 20-24 straddle 16) are assigned
    by their lower bound; the few people misplaced are noted in the notebook.
    """
    lower = pd.to_numeric(bands.astype("string").str.extract(r"^(\d+)")[0], errors="coerce")
    return age_to_census_group(lower)


def lsoa_format_ok(codes: pd.Series) -> pd.Series:
    """True where a value is an English LSOA code (E01 followed by six digits)."""
    return (
        codes.astype("string")
        .str.strip()
        .str.upper()
        .str.fullmatch(LSOA_PATTERN.pattern)
        .fillna(False)
    )


#: What happened to an appointment: the national ATTENDED OR DID NOT ATTEND codes
#: (5 and 6 attended; 2 and 4 cancelled; 3 and 7 did not attend), and common words.
ATTENDANCE_CODES = {
    "5": "attended",
    "6": "attended",
    "2": "cancelled",
    "4": "cancelled",
    "3": "missed",
    "7": "missed",
}
_ATTENDANCE_LABELS = {
    "attended": "attended",
    "attended on time": "attended",
    "seen": "attended",
    "patient seen": "attended",
    "seen on time": "attended",
    "attended late": "attended",
    "attended late - seen": "attended",
    "arrived late but was seen": "attended",
    "arrived late - seen": "attended",
    "finished": "attended",
    "completed": "attended",
    "cancelled": "cancelled",
    "cancelled by patient": "cancelled",
    "patient cancelled": "cancelled",
    "cancelled by provider": "cancelled",
    "cancelled by service": "cancelled",
    "cancelled by hospital": "cancelled",
    "hospital cancelled": "cancelled",
    "provider cancelled": "cancelled",
    "service cancelled": "cancelled",
    "clinic cancelled": "cancelled",
    "could not attend": "cancelled",
    "postponed": "cancelled",
    "did not attend": "missed",
    "dna": "missed",
    "not attended": "missed",
    "no show": "missed",
    "was not brought": "missed",
    "wnb": "missed",
    "arrived late - not seen": "missed",
    "arrived late and could not be seen": "missed",
    "attended late - not seen": "missed",
}


@_distinct
def normalise_attendance(values: pd.Series, custom: dict | None = None) -> pd.Series:
    """Map attendance codes or words to ``attended``, ``cancelled`` or ``missed``.

    A national code first, as in "5 - Attended on time", is read by its code. Blanks
    are ``<NA>``; unrecognised values are ``"Invalid"``.

    >>> normalise_attendance(pd.Series(["5", "DNA", "Patient cancelled", "7 - late", "?"])).tolist()
    ['attended', 'missed', 'cancelled', 'missed', 'Invalid']
    """
    raw = values.astype("string").str.strip()
    code = raw.str.extract(r"^([2-7])(?:\s*[-–:.]\s*\D.*)?$")[0].astype("string")
    by_person = (
        raw.isin([str(k).strip() for k in custom]) if custom else pd.Series(False, index=raw.index)
    )
    raw = raw.mask(code.notna() & ~by_person, code)
    out = _apply(raw, ATTENDANCE_CODES | _ATTENDANCE_LABELS, custom)
    outcomes = ["attended", "cancelled", "missed"]
    return out.where(out.isin(outcomes + [INVALID]) | out.isna(), INVALID)
