"""One figure, one value: every headline figure of the sample workbook reads the same wherever
it appears, and no page of the workbook or the book shows a missing value.

The workbook is the session's shared sample build (``sample_folder``), the book the shared
book build (``built_book``); nothing is built here. The front page's table of headline
figures is the reference: each figure is found by its sentence on the step pages (the same
text, character for character), and in the exported tables (CSV and XLSX: the same number).
"""

from __future__ import annotations

import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from equity_helpers.workbook import HEADLINES

pytestmark = pytest.mark.slow

LABELS = dict(HEADLINES)
#: A figure as a page shows it: 5,974 or 81.0 or -7.5.
NUM = r"-?\d[\d,]*(?:\.\d+)?"
GAPS = "steps/access-and-outcome-gaps.html"

#: Where each headline figure appears on the workbook's pages: (page, pattern). The
#: pattern's group ``v`` is the figure as the page shows it.
ON_PAGES: dict[str, list[tuple[str, str]]] = {
    "rows_used": [
        ("index.html", rf"Rows analysed (?P<v>{NUM})"),
        ("steps/data-completeness.html", rf"Rows analysed (?P<v>{NUM})"),
        ("steps/data-completeness.html", rf"rows, and (?P<v>{NUM}) are analysed"),
    ],
    "ethnicity_recorded_pct": [
        ("steps/data-completeness.html", rf"Ethnicity is recorded for (?P<v>{NUM}) ?%"),
    ],
    "most_under_group": [
        (
            "steps/who-uses-the-service.html",
            r"The most under-represented group is (?P<v>.+?), with a ratio of",
        ),
    ],
    "core20_share_referrals": [
        ("steps/deprivation-and-core20.html", rf"give (?P<v>{NUM}) ?% of referrals: a ratio"),
    ],
    "core20_ratio": [
        ("steps/deprivation-and-core20.html", rf"% of referrals: a ratio of (?P<v>{NUM})"),
        ("steps/who-uses-the-service.html", rf"\(Core20\) have a ratio of (?P<v>{NUM})"),
    ],
    "dna_overall_pct": [
        (
            GAPS,
            r"Across the (?:service|groups shown \(hidden groups left out\)) ?, "
            rf"(?P<v>{NUM}) ?% of offered appointments were missed",
        ),
    ],
    "dna_sii": [
        (GAPS, rf"The slope index of inequality is (?P<v>{NUM}) percentage points"),
    ],
    "reading_age_before": [
        ("steps/readability.html", rf"average reading age was (?P<v>{NUM}) before the rewrite"),
    ],
    "reading_age_after": [
        ("steps/readability.html", rf"before the rewrite and (?P<v>{NUM}) after it"),
    ],
    "gap_before": [
        ("steps/evaluation.html", rf"Before the change, the gap was (?P<v>{NUM}) percentage"),
    ],
    "gap_after": [
        ("steps/evaluation.html", rf"After the change, it was (?P<v>{NUM}) points"),
    ],
    "top_focus_text": [
        ("steps/summary-and-plan.html", r"Suggested focus: (?P<v>.+?\)\.)"),
    ],
}

# ----------------------------------------------------------------------------- reading pages


class _Text(HTMLParser):
    """The text a reader sees: no scripts, styles, code blocks or cell sources."""

    SKIP = {"script", "style", "pre"}
    VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.stack: list[bool] = []  # for each open element: is it skipped

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        self.stack.append(tag in self.SKIP or "cell_input" in classes)

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()
        self.parts.append(" ")

    def handle_data(self, data):
        if not any(self.stack):
            self.parts.append(data)


def page_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    text = " ".join("".join(parser.parts).split())
    # The book's typography curls quotes.
    return text.translate(
        str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
    )


def visible(path: Path) -> str:
    """All visible text of a page, cell sources included (as test_workbook reads it)."""
    text = re.sub(
        r"<(script|style)[^>]*>.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S
    )
    text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", text).split()))
    return text.replace("\u2019", "'")


@pytest.fixture(scope="module")
def front(sample_folder) -> dict[str, str]:
    """The front page's headline figures, as shown: figure key -> text of its cell."""
    page = (sample_folder / "html" / "index.html").read_text(encoding="utf-8")
    tables = pd.read_html(io.StringIO(page), match="Figure", thousands=None, keep_default_na=False)
    table = next(t for t in tables if list(t.columns)[:2] == ["Figure", "Value"])
    shown = {
        str(k).replace("\u2019", "'"): str(v)
        for k, v in zip(table["Figure"], table["Value"], strict=True)
    }
    keys = {label: key for key, label in HEADLINES}
    return {keys[label]: value for label, value in shown.items()}


@pytest.fixture(scope="module")
def manifest(sample_folder) -> dict:
    return json.loads((sample_folder / "manifest.json").read_text(encoding="utf-8"))


def test_the_front_page_shows_every_headline_the_run_made(front, manifest):
    assert set(front) == set(manifest["headlines"]), set(front) ^ set(manifest["headlines"])
    assert set(front) == set(ON_PAGES), "a headline figure has no place listed in this test"


@pytest.mark.parametrize("key", list(LABELS))
def test_the_front_page_figure_is_the_run_s_figure(front, manifest, key):
    """The front page shows the run's value, rounded to the places it shows."""
    value, shown = manifest["headlines"][key], front[key]
    if isinstance(value, float):
        places = len(shown.partition(".")[2])
        assert float(shown.replace(",", "")) == round(value, places), (shown, value)
    else:
        assert shown == str(value)


def _places(key: str):
    return [
        pytest.param(key, page, pattern, id=f"{key}-{page.split('/')[-1].removesuffix('.html')}")
        for page, pattern in ON_PAGES[key]
    ]


@pytest.mark.parametrize(
    ("key", "page", "pattern"),
    [p for key in ON_PAGES for p in _places(key)],
)
def test_a_headline_reads_the_same_on_every_page(sample_folder, front, key, page, pattern):
    text = visible(sample_folder / "html" / page)
    found = [m.group("v") for m in re.finditer(pattern, text)]
    assert found, f"{LABELS[key]!r} is not on {page} (looked for {pattern!r})"
    assert set(found) == {front[key]}, f"{LABELS[key]}: front page {front[key]!r}, {page} {found}"


# ----------------------------------------------------------------------------- the tables


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)


def _xlsx(path: Path) -> pd.DataFrame:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    finally:
        book.close()
    blank = next(i for i, r in enumerate(rows) if all(v is None for v in r))
    header = ["" if v is None else str(v) for v in rows[blank + 1]]
    body = [["" if v is None else str(v) for v in r] for r in rows[blank + 2 :]]
    return pd.DataFrame(body, columns=header)


def _both(sample_folder: Path, name: str) -> list[tuple[str, pd.DataFrame]]:
    tables = sample_folder / "tables"
    return [
        (f"{name}.csv", _csv(tables / f"{name}.csv")),
        (f"{name}.xlsx", _xlsx(tables / f"{name}.xlsx")),
    ]


def _cell(table: pd.DataFrame, where: str, starts: str, column: str) -> str:
    first = table.columns[0] if where == "" else where
    rows = table[table[first].astype(str).str.startswith(starts)]
    assert len(rows) >= 1, f"no row starting {starts!r} in {list(table[first])}"
    return str(rows.iloc[0][column])


#: (figure, table, label column ("" for the first), row label starts with, value column)
IN_TABLES = [
    ("ethnicity_recorded_pct", "data_completeness", "Field", "Ethnicity", "% recorded"),
    ("core20_share_referrals", "core20_share", "", "Referrals from the catchment", "% Core20"),
    ("core20_ratio", "representation", "group", "IMD quintile 1", "ratio"),
]


@pytest.mark.parametrize(
    ("key", "name", "where", "starts", "column"), IN_TABLES, ids=[t[0] for t in IN_TABLES]
)
def test_a_headline_is_the_same_number_in_the_exported_tables(
    sample_folder, front, key, name, where, starts, column
):
    for file, table in _both(sample_folder, name):
        value = _cell(table, where, starts, column)
        assert float(value) == float(front[key]), (
            f"{LABELS[key]}: front {front[key]}, {file} {value}"
        )


def test_the_most_under_represented_group_heads_its_table(sample_folder, front):
    for file, table in _both(sample_folder, "under_represented"):
        assert table["Group"].iloc[0] == front["most_under_group"], file


def test_the_reading_ages_are_the_average_of_the_letters_table(sample_folder, front):
    for file, table in _both(sample_folder, "readability"):
        for key, column in (
            ("reading_age_before", "Reading age before"),
            ("reading_age_after", "Reading age after"),
        ):
            mean = pd.to_numeric(table[column]).mean()
            assert round(mean, 1) == float(front[key]), (file, key, mean)


def test_the_suggested_focus_is_the_first_of_the_largest_gaps(sample_folder, front):
    focus = front["top_focus_text"]
    for file, table in _both(sample_folder, "largest_gaps"):
        first = table.iloc[0]
        for column in ("%", "Everyone else %"):
            assert f"{float(first[column]):.1f}%" in focus, (file, column, focus)
        gap, lower, upper = (
            abs(float(first[c])) for c in ("Gap (points)", "Lower limit", "Upper limit")
        )
        assert f"a gap of {gap:.1f} percentage points" in focus, (file, focus)
        low, high = sorted((lower, upper))
        assert f"95% interval {low:.1f} to {high:.1f}" in focus, (file, focus)


def test_the_summary_counts_the_gaps_the_gaps_page_found(sample_folder):
    gaps = visible(sample_folder / "html" / GAPS)
    summary = visible(sample_folder / "html" / "steps" / "summary-and-plan.html")
    on_gaps = re.findall(r"Number of gaps bigger than chance: (\d+)", gaps)
    on_summary = re.findall(r"The gaps page found (\d+) gaps bigger than chance", summary)
    assert on_gaps and on_summary and set(on_gaps) == set(on_summary), (on_gaps, on_summary)


# ----------------------------------------------------------------------------- no missing values

#: What a missing or broken figure looks like once it is on a page.
BROKEN = [
    (re.compile(r"\bnan\b|\bNaN\b|NaN%"), "a missing value (nan)"),
    (re.compile(r"\bNone\b(?! of\b)"), "Python's None"),  # not "None of the ..."
    (re.compile(r"-?\binf\b|\bInfinity\b"), "an infinite value"),
    (re.compile(r"<NA>"), "pandas' <NA>"),
    (
        re.compile(r"\b(?:by|of|was|is|from|at|and|than) (?:%|percentage points|points)(?!\w)"),
        "an empty figure",
    ),
    (re.compile(r"\binterval (?:to\b|of to\b)|\bto \)|\(\s*\)"), "an empty interval"),
    (re.compile(r"\{glue"), "a figure that was never pasted"),
]


def problems(text: str) -> list[str]:
    found = []
    for pattern, what in BROKEN:
        for m in pattern.finditer(text):
            found.append(f"{what}: ...{text[max(0, m.start() - 60) : m.end() + 40]}...")
    return found


def test_the_scan_finds_each_kind_of_broken_figure():
    """The scanner itself, on sentences as a broken run would write them."""
    for sentence in (
        "The ratio is nan (95% interval nan to nan).",
        "Missed: NaN% of appointments.",
        "The group is None.",
        "None (ethnic group) has the biggest shortfall.",
        "The ratio is inf.",
        "A count of <NA> referrals.",
        "The gap narrowed by  points.",
        "a gap of 6.8 percentage points, 95% interval  to 7.9",
        "Number of gaps: {glue:text}`n`.",
    ):
        assert problems(" ".join(sentence.split())), sentence
    fine = (
        "The ratio is 0.80 (95% interval 0.76 to 0.85); a gap of 6.8 points; 8.9 % missed. "
        "None of the local authority codes match."
    )
    assert problems(fine) == []


def _pages(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*.html")
        if not {"_static", "_sources", "_images"} & set(p.relative_to(folder).parts)
        and p.name not in ("genindex.html", "search.html")
    )


def test_no_workbook_page_shows_a_missing_value(sample_folder):
    pages = _pages(sample_folder / "html")
    assert len(pages) >= 9, pages
    found = {str(p.relative_to(sample_folder)): problems(page_text(p)) for p in pages}
    found = {k: v[:3] for k, v in found.items() if v}
    assert not found, found


def test_no_book_page_shows_a_missing_value(built_book):
    pages = _pages(built_book)
    assert len(pages) >= 30, len(pages)
    found = {str(p.relative_to(built_book)): problems(page_text(p)) for p in pages}
    found = {k: v[:3] for k, v in found.items() if v}
    assert not found, found
