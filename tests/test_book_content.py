"""Checks on what the built book says, and on how easy it is to read.

The content tests read the BUILT html (one build per session, from the
`built_book` fixture), so they check what a reader actually sees. They look
for the guide's facts that must never be lost in the rewrite: every step, each
part's key question, the Core20PLUS5 areas and local targets, the inclusion
health groups, the local directory, and the key figures.

The readability test compares the book's markdown prose with the text of the
February 2025 guide, using the same Flesch reading ease method on both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import textstat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK_SOURCE = ROOT / "book"
DIRECTORY_YAML = BOOK_SOURCE / "data" / "local-directory.yml"
GUIDE_DIR = ROOT.parent / "shared" / "seed"
TEST_OUTPUT = ROOT / "test-output"

#: Tests that need the built book.
slow = pytest.mark.slow


# ---------------------------------------------------------------------------
# Visible text from built html
# ---------------------------------------------------------------------------

#: Tags that start a new block of text, so words either side must not run together.
BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
    "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
#: Tags whose contents are never shown as text.
HIDDEN_TAGS = {"script", "style", "template", "noscript", "svg"}
#: Tags that never have a closing tag.
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}


@dataclass
class Page:
    """The visible text of one built page."""

    path: Path
    text: str
    headings: list[str] = field(default_factory=list)
    admonitions: list[str] = field(default_factory=list)


class _VisibleText(HTMLParser):
    """Collect the text a reader sees in a page's main article.

    Also keeps each h1 heading and each admonition (callout) as separate
    strings, so tests can check titles and key question callouts on their own.
    If a page has no ``<article>`` (unusual), the whole body is used.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, set[str]]] = []
        self.article_parts: list[str] = []
        self.body_parts: list[str] = []
        self.seen_article = False
        self.h1s: list[list[str]] = []
        self.open_admonitions: list[tuple[int, list[str]]] = []
        self.admonitions: list[str] = []

    def _flags(self) -> set[str]:
        return self.stack[-1][1] if self.stack else set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = set((dict(attrs).get("class") or "").split())
        flags = set(self._flags())
        if tag in HIDDEN_TAGS or "headerlink" in classes:
            flags.add("hidden")
        if tag == "article":
            flags.add("article")
            self.seen_article = True
        if tag in BLOCK_TAGS:
            self._write(" ")
        if tag in VOID_TAGS:
            return
        self.stack.append((tag, flags))
        if tag == "h1" and "article" in flags and "hidden" not in flags:
            self.h1s.append([])
        if tag == "div" and "admonition" in classes:
            self.open_admonitions.append((len(self.stack), []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self._write(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        # Pop back to the matching open tag; tolerate sloppy html.
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                while len(self.stack) > depth:
                    self._close_top()
                break
        if tag in BLOCK_TAGS:
            self._write(" ")

    def _close_top(self) -> None:
        if self.open_admonitions and self.open_admonitions[-1][0] == len(self.stack):
            _, parts = self.open_admonitions.pop()
            self.admonitions.append(collapse("".join(parts)))
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self._write(data)

    def _write(self, data: str) -> None:
        flags = self._flags()
        if "hidden" in flags:
            return
        self.body_parts.append(data)
        if "article" in flags:
            self.article_parts.append(data)
            if self.h1s and any(tag == "h1" for tag, _ in self.stack):
                self.h1s[-1].append(data)
            for _, parts in self.open_admonitions:
                parts.append(data)

    def result(self, path: Path) -> Page:
        parts = self.article_parts if self.seen_article else self.body_parts
        return Page(
            path=path,
            text=collapse("".join(parts)),
            headings=[collapse("".join(h)) for h in self.h1s],
            admonitions=self.admonitions,
        )


def collapse(text: str) -> str:
    """Collapse every run of whitespace (including non-breaking spaces) to one space."""
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


def visible_text(html: str, path: Path = Path("page.html")) -> Page:
    """Extract the visible text of one html page, tags stripped, whitespace collapsed."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return parser.result(path)


def normalise(text: str) -> str:
    """Lower case, one kind of dash and apostrophe, and '%' for 'per cent'."""
    text = text.lower()
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"\s*per\s?cent\b", "%", text)
    return collapse(text)


# ---------------------------------------------------------------------------
# Fixtures over the built book
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pages(built_book: Path) -> list[Page]:
    """Every content page of the built book (search, index and static files left out)."""
    skip_dirs = {"_static", "_sources", "_images", "_sphinx_design_static"}
    skip_names = {"search.html", "genindex.html", "py-modindex.html"}
    found = []
    for path in sorted(built_book.rglob("*.html")):
        rel = path.relative_to(built_book)
        if skip_dirs & set(rel.parts) or rel.name in skip_names:
            continue
        found.append(visible_text(path.read_text(encoding="utf-8"), rel))
    assert found, f"No html pages found in {built_book}"
    return found


@pytest.fixture(scope="session")
def book_text(pages: list[Page]) -> str:
    """The visible text of the whole book, normalised, one page after another."""
    return " \n ".join(normalise(page.text) for page in pages)


def near(text: str, anchor: str, wanted: Iterable[str], window: int = 300) -> bool:
    """True if, at some match of `anchor`, every pattern in `wanted` is within `window` chars."""
    for match in re.finditer(anchor, text):
        chunk = text[max(0, match.start() - window) : match.end() + window]
        if all(re.search(pattern, chunk) for pattern in wanted):
            return True
    return False


# ---------------------------------------------------------------------------
# The steps and the key questions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", range(1, 14))
@slow
def test_every_step_has_a_page_titled_with_its_number(pages: list[Page], number: int) -> None:
    pattern = re.compile(rf"^Step {number}(?!\d)\b", re.IGNORECASE)
    titles = [title for page in pages for title in page.headings]
    assert any(pattern.search(title) for title in titles), (
        f"No page is titled 'Step {number} ...'. Page titles found: {titles}"
    )


#: The concepts each part's key question must carry, as the book phrases it.
#: Every pattern must appear in one 'Key question' callout on that part's pages.
KEY_QUESTIONS = {
    "part-1": (r"\bfocus", r"\bdata\b", r"\binsights?\b"),
    "part-2": (r"people behind", r"\bdata\b"),
    "part-3": (r"\bplan", r"adjustments", r"\binsights\b", r"\bdata\b"),
    "part-4": (r"evaluation plan", r"staff development"),
}


@pytest.mark.parametrize("part", sorted(KEY_QUESTIONS))
@slow
def test_each_part_ends_with_its_key_question(pages: list[Page], part: str) -> None:
    callouts = [
        normalise(callout)
        for page in pages
        if part in page.path.parts
        for callout in page.admonitions
        if normalise(callout).startswith("key question")
    ]
    assert callouts, f"No 'Key question' callout on any page of {part}"
    concepts = KEY_QUESTIONS[part]
    assert any(all(re.search(c, callout) for c in concepts) for callout in callouts), (
        f"No key question in {part} covers all of {concepts}. Found: {callouts}"
    )


# ---------------------------------------------------------------------------
# Core20PLUS5, the local PLUS targets and inclusion health
# ---------------------------------------------------------------------------

CORE20PLUS5_CLINICAL_AREAS = (
    r"maternity",
    r"severe mental illness",
    r"chronic respiratory disease",
    r"early cancer diagnosis",
    r"hypertension case-? ?finding",
    r"lipid",
)


@pytest.mark.parametrize("area", CORE20PLUS5_CLINICAL_AREAS)
@slow
def test_core20plus5_clinical_areas(book_text: str, area: str) -> None:
    assert re.search(area, book_text), f"The Core20PLUS5 clinical area '{area}' is missing"


#: Derby and Derbyshire's PLUS five areas: each figure must sit next to its area.
PLUS_TARGETS = {
    "maternity continuity of care for 75%": (r"maternity", (r"continuity of care", r"\b75%")),
    "annual health checks for 60%": (r"annual health check", (r"\b60%",)),
    "vaccination uptake": (r"vaccin", (r"covid", r"\bflu\b", r"pneumonia")),
    "cancer: 75% at stage 1 or 2 by 2028": (
        r"cancer",
        (r"\b75%", r"stage (1|one) or (stage )?(2|two)", r"\b2028\b"),
    ),
    "hypertension: blood pressure, heart attack and stroke": (
        r"hypertension",
        (r"blood pressure", r"stroke"),
    ),
}


@pytest.mark.parametrize("target", sorted(PLUS_TARGETS))
@slow
def test_derby_and_derbyshire_plus_targets(book_text: str, target: str) -> None:
    anchor, wanted = PLUS_TARGETS[target]
    assert near(book_text, anchor, wanted), (
        f"The local PLUS target '{target}' is missing, or its figures are not next to '{anchor}'"
    )


INCLUSION_HEALTH_GROUPS = (
    r"homeless",
    r"drugs? (and|or) alcohol",
    r"migrants",
    r"gypsy,? roma,? and traveller",
    r"sex workers?",
    r"justice system",
    r"modern slavery",
    r"socially excluded",
)


@pytest.mark.parametrize("group", INCLUSION_HEALTH_GROUPS)
@slow
def test_inclusion_health_groups(book_text: str, group: str) -> None:
    assert re.search(group, book_text), f"The inclusion health group '{group}' is missing"


# ---------------------------------------------------------------------------
# The local directory and the key figures
# ---------------------------------------------------------------------------


def directory_names() -> list[str]:
    """Every entry name in book/data/local-directory.yml."""
    if not DIRECTORY_YAML.is_file():
        pytest.fail(f"The local directory is missing: expected {DIRECTORY_YAML}")
    data = yaml.safe_load(DIRECTORY_YAML.read_text(encoding="utf-8"))
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("name"), str):
                names.append(node["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    if not names:
        pytest.fail(f"No entries with a 'name' found in {DIRECTORY_YAML}")
    return names


@slow
def test_every_local_directory_entry_is_in_the_book(book_text: str) -> None:
    missing = [name for name in directory_names() if normalise(name) not in book_text]
    assert not missing, f"These local directory entries are not in the built book: {missing}"


LIFE_EXPECTANCY = {
    "England, most deprived areas, males": "73.5",
    "England, least deprived areas, males": "83.2",
    "England, most deprived areas, females": "78.3",
    "England, least deprived areas, females": "86.3",
    "Derby City, males": "77.7",
    "Derby City, females": "81.5",
    "Derbyshire, males": "79.2",
    "Derbyshire, females": "82.8",
}


@pytest.mark.parametrize("who", sorted(LIFE_EXPECTANCY))
@slow
def test_life_expectancy_figures(book_text: str, who: str) -> None:
    figure = LIFE_EXPECTANCY[who]
    assert re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d])", book_text), (
        f"Life expectancy for {who} ({figure} years) is missing"
    )


@pytest.mark.parametrize("figure", ["32,844", "33,755"])
@slow
def test_small_area_counts(book_text: str, figure: str) -> None:
    assert figure in book_text, f"The small-area count {figure} is missing from the book"


# ---------------------------------------------------------------------------
# Readability: the book must be easier to read than the guide
# ---------------------------------------------------------------------------

#: Fenced blocks whose content is code or machinery, not prose.
NON_PROSE_FENCES = {
    "code", "code-block", "code-cell", "sourcecode", "literalinclude", "math", "raw",
    "eval-rst", "toctree", "tableofcontents", "mermaid", "glue", "glue:figure",
    "local-directory", "list-table", "csv-table",
}  # fmt: skip
FENCE = re.compile(r"^\s*(?P<mark>`{3,}|~{3,}|:{3,})\s*(?P<info>.*)$")
OPTION_LINE = re.compile(r"^\s*:[\w-]+:(\s.*)?$")
LABEL_LINE = re.compile(r"^\s*\([^()\s]+\)=\s*$")
ROLE_WITH_TEXT = re.compile(r"\{[\w:-]+\}`([^`<]*?)\s*<[^`>]*>`")
TERM_ROLE = re.compile(r"\{term\}`([^`]*)`")
OTHER_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
AUTOLINK = re.compile(r"<(?:https?://|mailto:)[^>]*>")
BARE_URL = re.compile(r"https?://\S+")
BULLET = re.compile(r"^\s*(?:[-*+\u2022\u00b7]|\d+[.)])\s+(?:[\u2022\u00b7]\s*)?")


def markdown_prose(source: str) -> list[str]:
    """The prose lines of a MyST markdown page, with the markup taken out.

    Drops front matter, labels, directive fences and their option lines, code
    and other non-prose blocks, comments, link targets and role markup. Keeps
    the words of headings, paragraphs, lists, callouts, captions and tables.
    """
    lines = source.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        lines = lines[end + 1 :]
    source = re.sub(r"<!--.*?-->", "", "\n".join(lines), flags=re.S)

    out: list[str] = []
    fences: list[tuple[str, bool]] = []  # (closing mark, is prose)
    for line in source.splitlines():
        fence = FENCE.match(line)
        if fence:
            mark, info = fence["mark"], fence["info"].strip()
            if (
                fences
                and not info
                and mark[0] == fences[-1][0][0]
                and len(mark) >= len(fences[-1][0])
            ):
                fences.pop()
                out.append("")
                continue
            if not fences or fences[-1][1]:
                name = info[1:].split("}")[0] if info.startswith("{") else ""
                is_prose = bool(name) and name not in NON_PROSE_FENCES
                fences.append((mark, is_prose))
                out.append("")
                continue
        if fences and not fences[-1][1]:
            continue
        if OPTION_LINE.match(line) or LABEL_LINE.match(line) or line.lstrip().startswith("%"):
            continue
        if re.match(r"^\s*\|?\s*:?-{3,}", line):  # table separator row
            continue
        if line.lstrip().startswith("|"):
            out.extend("- " + cell.strip() for cell in line.strip().strip("|").split("|"))
            continue
        line = re.sub(r"^\s*#{1,6}\s+", "- ", line)  # a heading is a unit of its own
        line = re.sub(r"^\s*:\s+", "- ", line)  # a definition list body
        line = ROLE_WITH_TEXT.sub(r"\1", line)
        line = TERM_ROLE.sub(r"\1", line)
        line = OTHER_ROLE.sub("", line)
        line = IMAGE.sub("", line)
        line = LINK.sub(r"\1", line)
        line = AUTOLINK.sub("", line)
        line = BARE_URL.sub("", line)
        line = re.sub(r"\$[^$]+\$", "", line)
        line = re.sub(r"\{\{[^}]*\}\}", "", line)
        line = line.replace("`", "").replace("**", "").replace("__", "")
        line = re.sub(r"(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)", "", line)
        out.append(line)
    return out


def prose_units(lines: Iterable[str]) -> list[str]:
    """Group lines into units: paragraphs, list items and headings, each ending in a stop.

    A blank line ends a unit; a bulleted or numbered line starts a new one;
    other lines continue the unit above (so wrapped lines join up). A unit
    that does not end in . ! or ? gets a full stop, so that list items and
    headings count as sentences of their own instead of running together.
    """
    units: list[list[str]] = []
    current: list[str] | None = None
    for raw in lines:
        line = raw.strip()
        if not line:
            current = None
            continue
        bullet = BULLET.match(line)
        if bullet:
            line = line[bullet.end() :].strip()
            current = None
        if current is None:
            current = []
            units.append(current)
        if line:
            current.append(line)
    texts = []
    for unit in units:
        text = collapse(" ".join(unit))
        if not re.search(r"\w", text):
            continue
        text = re.sub(r"[:;,]+$", "", text)
        if not re.search(r"[.!?][\"')\]\u2019\u201d]*$", text):
            text += "."
        texts.append(text)
    return texts


def reading_ease(lines: Iterable[str]) -> float:
    """Flesch reading ease of the whole text, built from prose units. Higher is easier."""
    return textstat.flesch_reading_ease(" ".join(prose_units(lines)))


def guide_file() -> Path:
    if not GUIDE_DIR.is_dir():
        pytest.fail(f"The guide is missing: expected a folder at {GUIDE_DIR}")
    texts = sorted(GUIDE_DIR.glob("*.txt"))
    if len(texts) != 1:
        pytest.fail(f"Expected exactly one .txt file (the guide) in {GUIDE_DIR}, found {texts}")
    return texts[0]


def test_markdown_prose_strips_markup() -> None:
    source = "\n".join(
        [
            "(part-9:label)=",
            "# A heading",
            "```{admonition} Key question",
            ":class: tip",
            "Have you read {term}`IMD` and {ref}`the step <part-9:label>`?",
            "```",
            "```python",
            "print('not prose')",
            "```",
            "See [the page](https://example.org/x) and {doc}`/book/x`.",
        ]
    )
    prose = " ".join(prose_units(markdown_prose(source)))
    assert prose == "A heading. Have you read IMD and the step? See the page and ."


def test_book_is_easier_to_read_than_the_guide() -> None:
    guide = reading_ease(guide_file().read_text(encoding="utf-8").splitlines())
    pages = sorted(BOOK_SOURCE.rglob("*.md"))
    assert pages, f"No markdown pages found under {BOOK_SOURCE}"
    book_lines: list[str] = []
    for page in pages:
        book_lines.extend(markdown_prose(page.read_text(encoding="utf-8")))
        book_lines.append("")
    book = reading_ease(book_lines)

    report = (
        f"Flesch reading ease (higher is easier)\n"
        f"guide: {guide:.1f}\n"
        f"book:  {book:.1f}  ({len(pages)} markdown pages under book/)\n"
    )
    print("\n" + report)
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    (TEST_OUTPUT / "readability.txt").write_text(report, encoding="utf-8")
    assert book > guide, report
