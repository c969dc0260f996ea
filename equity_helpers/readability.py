"""How easy are a service's letters and leaflets to read?

Scores come from textstat 0.7.3, which counts syllables with the pyphen hyphenation
dictionaries installed with the pyphen package, so scoring never needs the internet.

textstat 0.7.3 rounds the average sentence length and the average syllables per word to
1 decimal place *before* applying the formulas, which can move a Flesch reading ease score
by several points. This module therefore uses textstat's own counters (words, sentences,
syllables, words of three or more syllables) and applies the published formulas to the
unrounded averages:

* Flesch reading ease = 206.835 - 1.015 x (words / sentences) - 84.6 x (syllables / words)
* Flesch-Kincaid grade = 0.39 x (words / sentences) + 11.8 x (syllables / words) - 15.59
* SMOG index = 1.043 x sqrt(30 x polysyllables / sentences) + 3.1291

The UK reading age is an approximation: a US school grade plus 5 (grade 1 is age 6 to 7),
rounded to a whole year.

Examples
--------
>>> score = score_text("Please phone the clinic today. We can change your appointment.")
>>> score.words, score.sentences, score.flesch_reading_ease, score.uk_reading_age
(10, 2, 83.3, 8)
"""

from __future__ import annotations

import logging
import math
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .errors import PlaybookError
from .lazy import lazy_value

logger = logging.getLogger("equity_helpers")

__all__ = [
    "READABLE_SUFFIXES",
    "SMOG_MIN_SENTENCES",
    "ReadabilityInputError",
    "ReadabilityScore",
    "read_document",
    "read_folder",
    "prepare_text",
    "score_text",
    "score_folder",
    "longest_sentences",
    "hardest_words",
    "compare",
]

#: File endings the playbook can read.
READABLE_SUFFIXES = (".txt", ".md", ".docx")
#: SMOG was designed for samples of 30 sentences; fewer makes it a rough guide only.
SMOG_MIN_SENTENCES = 30


def _textstat():
    from textstat.textstat import textstatistics  # slow to import: loaded on first use

    counter = textstatistics()
    counter.set_rounding(False)
    return counter


# A private textstat object with its output rounding off, so the module's results do not
# depend on (or change) settings of the shared ``textstat.textstat`` object.
_TEXTSTAT = lazy_value(_textstat)

_SENTENCE = re.compile(r"\b[^.!?]+[.!?]*", re.UNICODE)  # textstat's own sentence pattern
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


class ReadabilityInputError(PlaybookError, ValueError):
    """A document or folder cannot be read for scoring (catalogue code RDB001)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__("RDB001", detail=detail)


# --------------------------------------------------------------------------------------------
# Reading documents
# --------------------------------------------------------------------------------------------
def read_document(path: str | Path) -> str:
    """Read the text of one .txt, .md or .docx document.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        The text. For .docx, the non-empty paragraphs joined by blank lines (tables, headers
        and footers are not read).

    Raises
    ------
    ReadabilityInputError
        If the file is missing, has another ending, is not UTF-8 text, or is not a Word
        document that python-docx can open.

    Examples
    --------
    >>> read_document("sample_data/letters/after/appointment-letter.txt")[:20]  # doctest: +SKIP
    'Derbyshire Long COVI'
    """
    path = Path(path)
    if not path.is_file():
        raise ReadabilityInputError(f"There is no file at {path}.")
    suffix = path.suffix.lower()
    if suffix not in READABLE_SUFFIXES:
        raise ReadabilityInputError(
            f"{path.name} has the ending '{path.suffix}'. Save it as "
            f"{', '.join(READABLE_SUFFIXES)} to score it."
        )
    if suffix == ".docx":
        import docx  # python-docx
        from docx.opc.exceptions import PackageNotFoundError

        try:
            document = docx.Document(str(path))
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ReadabilityInputError(
                f"{path.name} could not be read as a Word document ({exc}). Open it in Word "
                "and save it again as .docx, or save it as plain text (.txt)."
            ) from exc
        paragraphs = [p.text.strip() for p in document.paragraphs]
        return "\n\n".join(p for p in paragraphs if p)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadabilityInputError(
            f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start}). Save it again "
            "with UTF-8 encoding."
        ) from exc


def read_folder(folder: str | Path) -> list[tuple[str, str]]:
    """Read every .txt, .md and .docx document in a folder (not its sub-folders).

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of (str, str)
        (file name, text) pairs sorted by file name. Hidden files and Word's ``~$`` lock
        files are skipped.

    Raises
    ------
    ReadabilityInputError
        If the folder is missing, or holds no readable documents (the message lists what it
        does hold), or a document cannot be read.

    Examples
    --------
    >>> [name for name, _ in read_folder("sample_data/letters/before")]  # doctest: +SKIP
    ['appointment-letter.txt', 'service-leaflet.txt']
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "nothing there"
        raise ReadabilityInputError(
            f"The folder of letters {folder} cannot be found ({what}). Check the path in "
            "the config."
        )
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    documents = [
        p
        for p in entries
        if p.is_file()
        and p.suffix.lower() in READABLE_SUFFIXES
        and not p.name.startswith((".", "~$"))
    ]
    if not documents:
        found = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries) or "nothing"
        raise ReadabilityInputError(
            f"The folder {folder} has no documents to score (found: {found}). Put the "
            f"letters in it as {', '.join(READABLE_SUFFIXES)} files."
        )
    return [(p.name, read_document(p)) for p in documents]


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------
def prepare_text(text: str) -> str:
    """Turn a document's layout into sentences a readability formula can count.

    Blank lines separate paragraphs; lines inside a paragraph are joined (hard-wrapped
    text). Each bullet point and each markdown heading is its own line. A paragraph, bullet
    or heading that does not end with sentence punctuation gets a full stop, so headings,
    addresses and list items are not run into the next sentence. A point between digits
    (a time such as 10.30am, a decimal) becomes a comma so it does not end a sentence.

    Examples
    --------
    >>> prepare_text("# Your visit\\n\\n- Bring your letter\\n- Bring a friend if you like")
    'Your visit.\\nBring your letter.\\nBring a friend if you like.'
    """
    pieces: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        current: list[str] = []
        for line in block.split("\n"):
            if not line.strip():
                continue
            if _BULLET.match(line) or _HEADING.match(line):
                if current:
                    pieces.append(" ".join(current))
                pieces.append(_HEADING.sub("", _BULLET.sub("", line)).strip())
                current = []
            else:
                current.append(line.strip())
        if current:
            pieces.append(" ".join(current))
    finished = []
    for piece in pieces:
        piece = _DECIMAL_POINT.sub(",", piece)  # "10.30am" is not the end of a sentence
        piece = re.sub(r"[*_`]+", "", piece).strip()  # markdown emphasis
        if not piece:
            continue
        if not re.search(r"[.!?:;]['\")\u2019\u201d]*$", piece):
            piece += "."
        finished.append(piece)
    return "\n".join(finished)


@dataclass(frozen=True)
class ReadabilityScore:
    """Readability of one text.

    Attributes
    ----------
    words, sentences, syllables, polysyllables : int
        textstat's counts (polysyllables: words of three or more syllables).
    flesch_reading_ease : float
        0 to 100, higher is easier; 60 to 70 is plain English. 1 decimal place.
    flesch_kincaid_grade : float
        US school grade. 1 decimal place.
    smog_index : float
        US school grade; NaN for fewer than 3 sentences. 1 decimal place.
    smog_valid : bool
        Whether the text has the 30 sentences SMOG was designed for.
    uk_reading_age : int
        Approximate UK reading age in years: the Flesch-Kincaid grade plus 5, rounded.
    notes : tuple of str
        Caveats to show beside the numbers.
    """

    words: int
    sentences: int
    syllables: int
    polysyllables: int
    flesch_reading_ease: float
    flesch_kincaid_grade: float
    smog_index: float
    smog_valid: bool
    uk_reading_age: int
    notes: tuple[str, ...]

    def as_dict(self) -> dict:
        """The score as a plain dict (notes joined into one string)."""
        out = asdict(self)
        out["notes"] = " ".join(self.notes)
        return out


def _round(value: float, decimals: int = 1) -> float:
    """Round halves up (away from zero for negatives), as people round by hand."""
    scale = 10**decimals
    return math.copysign(math.floor(abs(value) * scale + 0.5), value) / scale


def score_text(text: str, *, prepare: bool = True) -> ReadabilityScore:
    """Score a text's readability.

    Parameters
    ----------
    text : str
    prepare : bool, default True
        Pass the text through :func:`prepare_text` first, so headings and list items count
        as sentences. Use ``False`` for text that is already plain sentences.

    Returns
    -------
    ReadabilityScore

    Raises
    ------
    ReadabilityInputError
        If the text has no words.

    Examples
    --------
    >>> score_text("The cat sat on the mat.").flesch_reading_ease
    116.1
    """
    if not isinstance(text, str):
        raise ReadabilityInputError(f"score_text needs text; it was given {type(text).__name__}.")
    body = prepare_text(text) if prepare else text
    words = _TEXTSTAT.lexicon_count(body)
    if words == 0:
        raise ReadabilityInputError("The text has no words to score.")
    sentences = _TEXTSTAT.sentence_count(body)
    syllables = _TEXTSTAT.syllable_count(body)
    polysyllables = _TEXTSTAT.polysyllabcount(body)
    per_sentence = words / sentences
    per_word = syllables / words
    fre = 206.835 - 1.015 * per_sentence - 84.6 * per_word
    grade = _round(0.39 * per_sentence + 11.8 * per_word - 15.59)
    smog = (
        _round(1.043 * math.sqrt(30 * polysyllables / sentences) + 3.1291)
        if sentences >= 3
        else float("nan")
    )
    notes = ["UK reading age is approximate: the US school grade (Flesch-Kincaid) plus 5 years."]
    if sentences < SMOG_MIN_SENTENCES:
        notes.append(
            f"SMOG needs at least {SMOG_MIN_SENTENCES} sentences to be valid; this text has "
            f"{sentences}, so treat its SMOG index as a rough guide"
            + (" (none is given below 3 sentences)." if sentences < 3 else ".")
        )
    return ReadabilityScore(
        words=words,
        sentences=sentences,
        syllables=syllables,
        polysyllables=polysyllables,
        flesch_reading_ease=_round(fre),
        flesch_kincaid_grade=grade,
        smog_index=smog,
        smog_valid=sentences >= SMOG_MIN_SENTENCES,
        uk_reading_age=int(_round(grade + 5, 0)),
        notes=tuple(notes),
    )


_COLUMNS = [
    "document",
    "words",
    "sentences",
    "syllables",
    "polysyllables",
    "flesch_reading_ease",
    "flesch_kincaid_grade",
    "smog_index",
    "smog_valid",
    "uk_reading_age",
    "notes",
]


def score_folder(folder: str | Path) -> pd.DataFrame:
    """Score every document in a folder: one row per document, sorted by name.

    Returns
    -------
    pandas.DataFrame
        Columns ``document`` (file name) and the fields of :class:`ReadabilityScore`.

    Raises
    ------
    ReadabilityInputError
        As :func:`read_folder`, or for a document with no words (named in the message).

    Examples
    --------
    >>> score_folder("sample_data/letters/after")["uk_reading_age"].tolist()  # doctest: +SKIP
    [10, 10]
    """
    rows = []
    for name, text in read_folder(folder):
        try:
            score = score_text(text)
        except ReadabilityInputError as exc:
            raise ReadabilityInputError(f"{name}: {exc.detail}") from exc
        rows.append({"document": name, **score.as_dict()})
    logger.info("Scored %d document(s) in %s.", len(rows), folder)
    return pd.DataFrame(rows, columns=_COLUMNS)


# --------------------------------------------------------------------------------------------
# What drives a score
# --------------------------------------------------------------------------------------------
def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(prepare_text(text)) if s.strip()]


def longest_sentences(text: str, n: int = 5) -> pd.DataFrame:
    """The ``n`` longest sentences by word count, longest first (ties in document order).

    Examples
    --------
    >>> longest_sentences("Come in. Please bring your letter with you.", n=1)["words"].tolist()
    [6]
    """
    rows = [
        {"sentence": s, "words": _TEXTSTAT.lexicon_count(s), "order": k}
        for k, s in enumerate(_sentences(text))
    ]
    frame = pd.DataFrame(rows, columns=["sentence", "words", "order"])
    frame = frame.sort_values(["words", "order"], ascending=[False, True], kind="stable")
    return frame.head(n)[["sentence", "words"]].reset_index(drop=True)


def hardest_words(text: str, n: int = 10) -> pd.DataFrame:
    """The ``n`` words with most syllables (ties: longer first, then A to Z).

    Each word is listed once (in lower case); numbers are ignored.

    Examples
    --------
    >>> hardest_words("An interdisciplinary assessment, 2024.", n=2)["word"].tolist()
    ['interdisciplinary', 'assessment']
    """
    seen: dict[str, int] = {}
    for match in _WORD.finditer(text):
        word = match.group(0).lower().replace("\u2019", "'")
        if word not in seen:
            seen[word] = _TEXTSTAT.syllable_count(word)
    frame = pd.DataFrame(
        [{"word": w, "syllables": s, "letters": len(w)} for w, s in seen.items()],
        columns=["word", "syllables", "letters"],
    )
    frame = frame.sort_values(["syllables", "letters", "word"], ascending=[False, False, True])
    return frame.head(n).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Before and after
# --------------------------------------------------------------------------------------------
def compare(before_folder: str | Path, after_folder: str | Path) -> pd.DataFrame:
    """Reading ages of documents before and after rewriting, matched by name.

    Documents are matched by file name without its ending, so ``letter.docx`` before can
    be compared with ``letter.txt`` after. A document found on one side only is kept, with
    the other side empty (``<NA>``), so nothing drops out silently.

    Returns
    -------
    pandas.DataFrame
        One row per document: ``document``, ``before_reading_age``, ``after_reading_age``,
        ``change`` (after minus before; negative is easier), and both sides'
        Flesch-Kincaid grades and Flesch reading ease.

    Raises
    ------
    ReadabilityInputError
        As :func:`score_folder`, or if two documents in one folder share a name.

    Examples
    --------
    >>> compare("sample_data/letters/before", "sample_data/letters/after")  # doctest: +SKIP
    """
    sides = {}
    for side, folder in (("before", before_folder), ("after", after_folder)):
        scores = score_folder(folder)
        stems = scores["document"].map(lambda name: Path(name).stem)
        dupes = sorted(set(stems[stems.duplicated()]))
        if dupes:
            raise ReadabilityInputError(
                f"The {side} folder {folder} has more than one document called {dupes[0]!r} "
                "(with different endings). Keep one of them."
            )
        sides[side] = pd.DataFrame(
            {
                "document": stems,
                f"{side}_reading_age": scores["uk_reading_age"].astype("Int64"),
                f"{side}_fk_grade": scores["flesch_kincaid_grade"],
                f"{side}_reading_ease": scores["flesch_reading_ease"],
            }
        )
    merged = sides["before"].merge(sides["after"], on="document", how="outer", sort=True)
    merged["change"] = merged["after_reading_age"] - merged["before_reading_age"]
    unmatched = merged.loc[merged["change"].isna(), "document"].tolist()
    if unmatched:
        logger.warning("No before/after match for: %s", ", ".join(unmatched))
    columns = [
        "document",
        "before_reading_age",
        "after_reading_age",
        "change",
        "before_fk_grade",
        "after_fk_grade",
        "before_reading_ease",
        "after_reading_ease",
    ]
    return merged[columns].reset_index(drop=True)
