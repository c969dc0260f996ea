"""Plain words for fields, groups and numbers: one place for every label the pages use.

Tables, charts and sentences all name groups through these functions, so a group reads
the same on every page ("IMD quintile 1 (most deprived)", "Asian (ethnic group)") and
no sentence ever shows a missing value as "nan".
"""

from __future__ import annotations

import math

from . import codes
from .config import YES_NO_FIELDS

#: Plain names of fields, for tables and charts.
FIELD_LABELS = {
    "ethnic_group": "Ethnic group",
    "ethnicity": "Ethnicity",
    "sex": "Sex",
    "sex_label": "Sex",
    "age_band": "Age band",
    "age_group": "Age group",
    "imd_decile": "IMD decile",
    "imd_quintile": "IMD quintile",
    "core20": "Core20",
    "lsoa_code": "Home area (LSOA)",
    "religion": "Religion",
    "sexual_orientation": "Sexual orientation",
    "marital_status": "Marital status",
    "carer": "Carer",
    "pregnancy": "Pregnancy",
    "armed_forces": "Armed forces",
    "disability": "Disability",
    "interpreter_needed": "Interpreter needed",
    "learning_disability": "Learning disability",
    "smi": "Severe mental illness",
}
#: Field names as a noun inside a sentence ("by ethnic group").
FIELD_NOUNS = {"sex_label": "sex", "imd_quintile": "IMD quintile", "imd_decile": "IMD decile"}
#: Groups that say a value is missing rather than name a group.
UNKNOWN_GROUPS = frozenset(
    {"Not known", codes.NOT_STATED, codes.NOT_KNOWN, codes.INVALID, codes.UNKNOWN_AGE}
)
YES_NO_PHRASES = {
    "carer": "carers",
    "pregnancy": "people who are pregnant",
    "armed_forces": "armed forces veterans and their families",
    "disability": "disabled people",
    "interpreter_needed": "people who need an interpreter",
    "learning_disability": "people with a learning disability",
    "smi": "people with a severe mental illness",
}
#: The sentence used wherever a step needs home areas and the extract has none.
NO_LSOA = (
    "This step needs home area (LSOA) codes, and this extract has none. "
    "Add the LSOA of each person's home address to the extract to see this view."
)


def label(field: str) -> str:
    """A field's name for a table or chart heading.

    >>> label("imd_quintile"), label("first_language")
    ('IMD quintile', 'First language')
    """
    return FIELD_LABELS.get(field, field.replace("_", " ").capitalize())


def noun(field: str) -> str:
    """A field's name inside a sentence: "ethnic group", "IMD quintile", "home area (LSOA)".

    >>> noun("lsoa_code"), noun("ethnic_group")
    ('home area (LSOA)', 'ethnic group')
    """
    return FIELD_NOUNS.get(field, first_lower(label(field)))


def first_lower(text: str) -> str:
    """Lower-case the first letter only, unless the first word is an abbreviation (IMD).

    >>> first_lower("Home area (LSOA)"), first_lower("IMD quintile")
    ('home area (LSOA)', 'IMD quintile')
    """
    word = text.split(" ", 1)[0]
    if len(word) > 1 and word.isupper():
        return text
    return text[:1].lower() + text[1:]


def _group_text(group) -> str:
    """A group as text: a missing value reads "Not known", never "nan" or "None"."""
    if group is None or (isinstance(group, float) and math.isnan(group)):
        return codes.NOT_KNOWN
    text = str(group)
    return codes.NOT_KNOWN if text.strip().lower() in ("", "nan", "none", "<na>") else text


def first_upper(text: str) -> str:
    """Capitalise the first letter only, keeping names such as "Asian" and "IMD" intact.

    >>> first_upper("people in the Asian ethnic group")
    'People in the Asian ethnic group'
    """
    return text[:1].upper() + text[1:]


def imd_words(groups, field: str) -> list:
    """IMD quintile or decile numbers as words a reader needs no key for.

    >>> imd_words(["1", "3", "5", "Not known"], "imd_quintile")
    ['Quintile 1 (most deprived)', 'Quintile 3', 'Quintile 5 (least deprived)', 'Not known']
    """
    kind, last = ("Quintile", "5") if field == "imd_quintile" else ("Decile", "10")
    ends = {"1": " (most deprived)", last: " (least deprived)"}
    return [f"{kind} {g}{ends.get(str(g), '')}" if str(g).isdigit() else g for g in groups]


def group_label(field: str, group) -> str:
    """A short name for a group, such as "IMD quintile 1 (most deprived)" or "Ethnic group: Asian".

    >>> group_label("imd_quintile", "1"), group_label("ethnic_group", "Asian")
    ('IMD quintile 1 (most deprived)', 'Ethnic group: Asian')
    """
    group = _group_text(group)
    if field in ("imd_quintile", "imd_decile") and group.isdigit():
        words = imd_words([group], field)[0]
        return f"IMD {words[0].lower()}{words[1:]}"
    return f"{label(field)} {group}" if group.isdigit() else f"{label(field)}: {group}"


def group_name(field: str, group) -> str:
    """A group named with its field in brackets, for lists mixing fields.

    >>> group_name("ethnic_group", "Asian"), group_name("carer", "Yes")
    ('Asian (ethnic group)', 'Carer: yes')
    >>> group_name("imd_quintile", "Quintile 1 (most deprived)")
    'IMD quintile 1 (most deprived)'
    """
    group = _group_text(group)
    if field in ("imd_quintile", "imd_decile"):
        if group.isdigit():
            return group_label(field, group)
        if group.startswith(("Quintile", "Decile")):
            return f"IMD {group[0].lower()}{group[1:]}"
    if field in YES_NO_FIELDS:
        return f"{label(field)}: {group.lower()}"
    return f"{group} ({noun(field)})"


def group_phrase(field: str, group) -> str:
    """A group in words, for sentences: "people aged 16-24", "disabled people".

    >>> group_phrase("imd_quintile", "1")
    'people in IMD quintile 1 (the most deprived fifth of areas)'
    >>> group_phrase("ethnic_group", "Asian")
    'people in the Asian ethnic group'
    >>> group_phrase("religion", float("nan")), group_phrase("lsoa_code", "in catchment")
    ('people whose religion is Not known', 'people whose home area (LSOA) is in catchment')
    """
    group = _group_text(group)
    if field in ("imd_quintile", "imd_decile"):
        word = "fifth" if field == "imd_quintile" else "tenth"
        extreme = {"1": f" (the most deprived {word} of areas)"}
        extreme["5" if field == "imd_quintile" else "10"] = f" (the least deprived {word} of areas)"
        return f"people in {label(field)} {group}{extreme.get(group, '')}"
    if field == "core20":
        return "people in Core20 areas (the most deprived 20% nationally)"
    if field == "ethnic_group":
        return f"people in the {group} ethnic group"
    if field in ("age_group", "age_band"):
        return f"people aged {group}"
    if field in ("sex", "sex_label"):
        return f"people recorded as {group.lower()}"
    if field in YES_NO_PHRASES:
        if group == "Yes":
            return YES_NO_PHRASES[field]
        return f"people not recorded as {first_lower(label(field))}"
    return f"people whose {noun(field)} is {group}"


def is_number(value) -> bool:
    """True for a finite number (not None, NaN, NA or infinity)."""
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def number(value, fmt: str = ".1f", missing: str = "not available") -> str:
    """A number for a sentence, or ``missing`` (never "nan" or "inf").

    >>> number(12.345), number(float("nan")), number(None, ".0f", "hidden")
    ('12.3', 'not available', 'hidden')
    """
    return format(float(value), fmt) if is_number(value) else missing


def too_few(rule) -> str:
    """How few people the small-number rule hides, in words ("fewer than 8 people" under
    NHS England's rule, which hides 1 to 7; the number follows the configured threshold).

    >>> from equity_helpers.privacy import DisclosureRule
    >>> too_few(DisclosureRule(threshold=10))
    'fewer than 11 people'
    """
    if not rule.enabled or rule.threshold == 0:
        return "too few people (although this run hides no small numbers)"
    return f"fewer than {rule.threshold + 1} people"


def withheld(what: str) -> str:
    """The sentence in place of a figure for everyone that is not shown, because a group in
    the table beside it is hidden and the figure would give that group's figure away.

    >>> withheld("median wait")
    "The median wait for everyone is not shown. A group in the table above is too small to show, and the figure for everyone, set beside the groups shown, could give that group's figure away."
    """  # noqa: E501
    return (
        f"The {what} for everyone is not shown. A group in the table above is too small to "
        "show, and the figure for everyone, set beside the groups shown, could give that "
        "group's figure away."
    )
