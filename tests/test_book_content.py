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

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import textstat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK_SOURCE = ROOT / "book"
DATA_DIR = BOOK_SOURCE / "data"
DIRECTORY_YAML = DATA_DIR / "local-directory.yml"
#: Every list of contacts and resources the book renders.
RESOURCE_YAMLS = ("local-directory.yml", "national-resources.yml", "training-courses.yml")
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
    """Every entry name in the book's lists of contacts and resources."""
    names = [entry["name"] for entry in resource_entries()]
    if not names:
        pytest.fail(f"No entries with a 'name' found in {DATA_DIR}")
    return names


def resource_entries() -> list[dict]:
    """Every entry of every list under book/data, each with its file name under '_file'."""
    found = []
    for name in RESOURCE_YAMLS:
        path = DATA_DIR / name
        if not path.is_file():
            pytest.fail(f"A list of contacts and resources is missing: expected {path}")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("organisations") or []:
            found.append({**entry, "_file": name})
    return found


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


# ---------------------------------------------------------------------------
# Contacts and resources: every signpost leads somewhere
# ---------------------------------------------------------------------------

WAYS_IN = ("url", "email", "phone", "how_to_find")


def test_every_resource_entry_has_a_way_in_and_a_checked_date() -> None:
    problems = []
    for entry in resource_entries():
        label = f"{entry['_file']}: {entry.get('id') or entry.get('name')}"
        if not any(str(entry.get(field) or "").strip() for field in WAYS_IN):
            problems.append(f"{label} has none of {', '.join(WAYS_IN)}")
        if not isinstance(entry.get("checked"), dt.date):
            problems.append(f"{label} has no `checked` date (found {entry.get('checked')!r})")
        url = entry.get("url")
        if url and not re.match(r"https?://\S+$", str(url)):
            problems.append(f"{label} has a url that is not a web address: {url!r}")
        email = entry.get("email")
        if email and not re.match(r"[^@\s]+@[^@\s]+\.[^@\s]+$", str(email)):
            problems.append(f"{label} has an email that is not an email address: {email!r}")
    assert not problems, "\n".join(problems)


def test_entry_ids_are_unique_across_the_lists() -> None:
    ids = [entry.get("id") for entry in resource_entries()]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert all(ids), "Every entry needs an id"
    assert not repeated, f"These ids are used more than once: {repeated}"


def test_no_signpost_just_says_the_guide_names_it() -> None:
    pattern = re.compile(r"named in the guide|listed in the guide", re.IGNORECASE)
    sources = [DATA_DIR / name for name in RESOURCE_YAMLS] + sorted(BOOK_SOURCE.rglob("*.md"))
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "Say who to ask or where to look instead:\n" + "\n".join(found)


def test_every_resource_role_names_a_known_entry() -> None:
    known = {entry["id"] for entry in resource_entries()}
    role = re.compile(r"\{resource\}`(?:[^`<]*<)?([^`<>]+)>?`")
    unknown = [
        f"{path.relative_to(ROOT)}: {target}"
        for path in sorted(BOOK_SOURCE.rglob("*.md"))
        for target in role.findall(path.read_text(encoding="utf-8"))
        if target.strip() not in known
    ]
    assert not unknown, f"{{resource}} roles that name no entry: {unknown}"


def _directives_module():
    """The book's Sphinx extension, imported from book/_ext."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "playbook_directives", BOOK_SOURCE / "_ext" / "playbook_directives.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOOD_ENTRY = """
categories:
  cvs: Councils for Voluntary Service
organisations:
  - id: a-cvs
    name: A CVS
    category: cvs
    helps_with: Supports groups.
    area: Derby
    covers: [derby]
    {way_in}
    checked: 2026-12-02
"""


@pytest.mark.parametrize(
    ("way_in", "problem"),
    [
        ("", "needs at least one of url, email, phone, how_to_find"),
        ("how_to_find: The partnership's website (named in the guide)", "says only that the guide"),
        ("url: www.example.org", "must start with https://"),
        ("email: not-an-email", "not an email address"),
    ],
)
def test_the_build_refuses_an_entry_with_no_way_in(
    tmp_path: Path, way_in: str, problem: str
) -> None:
    path = tmp_path / "list.yml"
    path.write_text(GOOD_ENTRY.format(way_in=way_in), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(problem)):
        _directives_module().load_directory(path)


def test_the_build_accepts_an_entry_with_a_way_in(tmp_path: Path) -> None:
    path = tmp_path / "list.yml"
    path.write_text(GOOD_ENTRY.format(way_in="email: hello@example.org"), encoding="utf-8")
    categories, entries = _directives_module().load_directory(path)
    assert categories == {"cvs": "Councils for Voluntary Service"}
    assert [entry["id"] for entry in entries] == ["a-cvs"]


@slow
def test_contacts_page_has_a_card_and_anchor_for_every_entry(built_book: Path) -> None:
    page = built_book / "book" / "reference" / "local-contacts.html"
    assert page.is_file(), f"The contacts page was not built: {page}"
    html = page.read_text(encoding="utf-8")
    missing = [e["id"] for e in resource_entries() if f'id="contact-{e["id"]}"' not in html]
    assert not missing, f"No card on the contacts page for: {missing}"
    assert 'class="directory-filter"' in html, "The contacts page has no filter form"
    for control in ("directory-area", "directory-need", "directory-words"):
        assert f'<label for="{control}">' in html, f"The filter's {control} control has no label"


#: Pages that name local teams or resources must link into the contacts page.
PAGES_LINKING_TO_CONTACTS = (
    "book/part-1/step-2-patient-insights.html",
    "book/part-1/step-3-local-data.html",
    "book/part-2/step-5-literature-reviews.html",
    "book/part-2/step-6-place-based-knowledge.html",
    "book/part-2/step-7-community-engagement.html",
    "book/part-3/step-9-process-mapping.html",
    "book/part-4/index.html",
    "book/part-5/training-and-support.html",
    "book/part-5/reflective-practice.html",
)


@pytest.mark.parametrize("page", PAGES_LINKING_TO_CONTACTS)
@slow
def test_pages_link_into_the_contacts_page(built_book: Path, page: str) -> None:
    html = (built_book / page).read_text(encoding="utf-8")
    assert re.search(r'href="[^"]*local-contacts\.html(#[^"]*)?"', html), (
        f"{page} names local teams or resources but never links to the contacts page"
    )


# ---------------------------------------------------------------------------
# Every step is tied to its analysis
# ---------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def step_pages(built_book: Path) -> dict[int, Path]:
    """The built page of each numbered step, found by its title."""
    found: dict[int, Path] = {}
    for path in sorted((built_book / "book").rglob("*.html")):
        page = visible_text(path.read_text(encoding="utf-8"), path)
        for title in page.headings:
            match = re.match(r"Step (\d+)\b", title)
            if match:
                found[int(match.group(1))] = path
    return found


@pytest.mark.parametrize("number", range(1, 14))
@slow
def test_each_step_links_to_its_analysis_and_to_running_it(built_book: Path, number: int) -> None:
    pages = step_pages(built_book)
    assert number in pages, f"No built page is titled 'Step {number} ...'"
    html = pages[number].read_text(encoding="utf-8")
    links = _Links()
    links.feed(html)
    text = normalise(visible_text(html).text)
    to_notebook = [h for h in links.hrefs if re.search(r"(^|/)notebooks/[\w-]+\.html", h)]
    assert to_notebook or "conversation, not data" in text, (
        f"Step {number} neither links to a notebook nor says it is a conversation, not data"
    )
    assert any("using/run-on-your-data.html" in h for h in links.hrefs), (
        f"Step {number} does not link to 'Run the playbook on your service's data'"
    )


#: Steps whose notebook the book must link to (a notebook serves them).
STEP_NOTEBOOKS = {
    1: ("data-completeness", "who-uses-the-service"),
    3: ("deprivation-and-core20",),
    4: ("access-and-outcome-gaps",),
    8: ("readability",),
    9: ("pathway",),
    10: ("readability",),
    11: ("evaluation",),
    12: ("evaluation",),
    13: ("summary-and-plan",),
}


@pytest.mark.parametrize("number", sorted(STEP_NOTEBOOKS))
@slow
def test_steps_served_by_a_notebook_link_to_it(built_book: Path, number: int) -> None:
    html = step_pages(built_book)[number].read_text(encoding="utf-8")
    for notebook in STEP_NOTEBOOKS[number]:
        assert f"notebooks/{notebook}.html" in html, f"Step {number} does not link to {notebook}"


# ---------------------------------------------------------------------------
# Reading times, titles and callouts agree everywhere
# ---------------------------------------------------------------------------

WORDS_PER_MINUTE = 200


def home_page_minutes() -> dict[int, int]:
    """The reading time the home page gives each part, from its table."""
    source = (BOOK_SOURCE / "intro.md").read_text(encoding="utf-8")
    rows = re.split(r"^\* - ", source, flags=re.MULTILINE)
    found = {}
    for row in rows:
        part = re.match(r"\{doc\}`/book/part-(\d)/index`", row)
        minutes = re.search(r"About (\d+) minutes", row)
        if part and minutes:
            found[int(part.group(1))] = int(minutes.group(1))
    return found


def part_page_minutes(part: int) -> int:
    source = (BOOK_SOURCE / f"part-{part}" / "index.md").read_text(encoding="utf-8")
    match = re.search(r"\*\*Time to read:\*\* about (\d+) minutes", source)
    assert match, f"Part {part}'s page does not say '**Time to read:** about N minutes'"
    return int(match.group(1))


@pytest.mark.parametrize("part", range(1, 6))
def test_home_page_reading_time_matches_the_part_page(part: int) -> None:
    home = home_page_minutes()
    assert part in home, f"The home page gives no reading time for Part {part}"
    assert home[part] == part_page_minutes(part), (
        f"Part {part}: the home page says {home[part]} minutes, the part page {part_page_minutes(part)}"
    )


@pytest.mark.parametrize("part", range(1, 6))
def test_reading_time_fits_the_length_of_the_part(part: int) -> None:
    words = sum(
        len(" ".join(prose_units(markdown_prose(path.read_text(encoding="utf-8")))).split())
        for path in sorted((BOOK_SOURCE / f"part-{part}").glob("*.md"))
    )
    needed = words / WORDS_PER_MINUTE
    stated = part_page_minutes(part)
    assert needed <= stated <= needed + 5, (
        f"Part {part} has {words} words: about {needed:.0f} minutes at {WORDS_PER_MINUTE} a minute, "
        f"but its page says {stated}"
    )


def part_titles() -> dict[int, str]:
    titles = {}
    for part in range(1, 6):
        source = (BOOK_SOURCE / f"part-{part}" / "index.md").read_text(encoding="utf-8")
        titles[part] = re.search(r"^# (.+)$", source, flags=re.MULTILINE).group(1).strip()
    return titles


def test_every_mention_of_a_part_uses_its_page_title() -> None:
    titles = part_titles()
    mention = re.compile(r"Part ([1-5]): ([A-Z][^<`*)\]\n.]*)")
    wrong = []
    for path in sorted(BOOK_SOURCE.rglob("*.md")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in mention.finditer(line):
                said = f"Part {match.group(1)}: {match.group(2).strip()}"
                if not titles[int(match.group(1))].startswith(said):
                    wrong.append(f"{path.relative_to(ROOT)}:{number}: {said!r}")
    assert not wrong, f"These do not match the part titles {titles}:\n" + "\n".join(wrong)


def test_sidebar_captions_do_not_repeat_page_titles() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    captions = [normalise(part["caption"]) for part in toc["parts"] if part.get("caption")]
    titles = [normalise(title) for title in part_titles().values()]
    assert len(captions) == len(set(captions)), f"A sidebar caption appears twice: {captions}"
    clash = [c for c in captions if c in titles or re.match(r"part \d", c)]
    assert not clash, f"These captions repeat or stand in for a part's page title: {clash}"


CALLOUT_CLASSES = {
    "Try it with data": "try-it",
    "A conversation step": "try-it",
    "Key question": "key-question",
}


def test_each_kind_of_callout_has_one_class_everywhere() -> None:
    fence = re.compile(r"^(?:`{3,}|:{3,})\{admonition\} (.+)$")
    wrong = []
    for path in sorted(BOOK_SOURCE.rglob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            match = fence.match(line.strip())
            if not match:
                continue
            kind = next((k for k in CALLOUT_CLASSES if match.group(1).startswith(k)), None)
            if kind is None:
                continue
            option = lines[number + 1].strip() if number + 1 < len(lines) else ""
            if option != f":class: {CALLOUT_CLASSES[kind]}":
                wrong.append(f"{path.relative_to(ROOT)}:{number + 1}: {kind!r} has {option!r}")
    assert not wrong, "\n".join(wrong)


def _hex(colour: str) -> tuple[float, float, float]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4))


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [
            c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in _hex(colour)
        ]
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_helper_matches_known_ratios() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


def css_palettes() -> dict[str, dict[str, str]]:
    css = (BOOK_SOURCE / "_static" / "playbook.css").read_text(encoding="utf-8")
    palettes = {}
    for name, selector in (("light", r":root"), ("dark", r'html\[data-theme="dark"\]')):
        block = re.search(selector + r"\s*\{([^}]*)\}", css)
        assert block, f"playbook.css has no {name} colour block ({selector})"
        palettes[name] = dict(
            re.findall(r"--playbook-([\w-]+):\s*(#[0-9a-fA-F]{6})", block.group(1))
        )
    return palettes


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_callout_colours_are_distinct_and_meet_aa(theme: str) -> None:
    colours = css_palettes()[theme]
    for kind in ("try", "key"):
        text, tint, border = (
            colours[f"{kind}-text"],
            colours[f"{kind}-bg"],
            colours[f"{kind}-border"],
        )
        assert contrast(text, tint) >= 4.5, f"{theme} {kind}: title text {text} on {tint}"
        assert contrast(border, colours["page"]) >= 3, (
            f"{theme} {kind}: border {border} on the page"
        )
    assert colours["try-border"] != colours["key-border"], "Both kinds of callout share one colour"
    assert colours["try-bg"] != colours["key-bg"], "Both kinds of callout share one tint"


# ---------------------------------------------------------------------------
# Meaning slips that must not come back
# ---------------------------------------------------------------------------

#: Wrong wording, with why it is wrong.
SLIPS = {
    r"other protected characteristics": "the reasonable adjustments duty covers disabled people",
    r"\bpersonal care\b": "the guide means personalised care",
    r"Glossop": "the guide does not say where The Bureau is",
    r"Derbyshire, including Derby": "the guide says Derbyshire LGBT+ serves Derbyshire",
    r"Derby City('s)? librar": "the guide does not say whose libraries they are",
    r"asks every service to reach": "Core20PLUS5 is an approach, not a rule for every service",
}


@pytest.mark.parametrize("slip", sorted(SLIPS))
def test_meaning_slips_are_gone(slip: str) -> None:
    sources = sorted(BOOK_SOURCE.rglob("*.md")) + [DATA_DIR / name for name in RESOURCE_YAMLS]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(slip, line, flags=re.IGNORECASE)
    ]
    assert not found, f"{SLIPS[slip]}: {found}"


def test_evaluation_cycle_maps_act_to_adopt_adapt_or_drop() -> None:
    svg = (BOOK_SOURCE / "_static" / "figures" / "evaluation-cycle.svg").read_text(encoding="utf-8")
    texts = [collapse(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    labels = {
        texts[i - 1]: texts[i] for i, t in enumerate(texts) if t.startswith(("PDSA:", "Step "))
    }
    acts = [step for step, label in labels.items() if label == "PDSA: Act"]
    assert acts and all(re.search(r"adopt, adapt or drop", step, re.I) for step in acts), labels
    share = [step for step in labels if step.lower().startswith("share")]
    assert share and all(not labels[step].startswith("PDSA") for step in share), labels
    training = (BOOK_SOURCE / "part-5" / "training-and-support.md").read_text(encoding="utf-8")
    assert re.search(r"\*\*Act\*\*[^\n]*adopt, adapt or drop", training), (
        "The training page no longer defines Act as adopt, adapt or drop; keep the figure in step"
    )


def test_case_study_keeps_peoples_own_words() -> None:
    source = (BOOK_SOURCE / "part-3" / "case-study-long-covid.md").read_text(encoding="utf-8")
    quotes = re.findall(r'^> "(.+)"$\n>\n> — (.+)$', source, flags=re.MULTILINE)
    speakers = [speaker for _, speaker in quotes]
    assert sum("patient" in s for s in speakers) >= 3, f"Patients' quotes missing: {quotes}"
    assert any("staff" in s for s in speakers), f"No attributed staff quote: {quotes}"
    assert all(len(quote.split()) <= 25 for quote, _ in quotes), "Keep each quote short"


@slow
def test_glossary_has_an_a_to_z_jump_list(built_book: Path) -> None:
    html = (built_book / "book" / "reference" / "glossary.html").read_text(encoding="utf-8")
    jump = re.search(r'<div class="glossary-jump[^"]*">(.*?)</div>', html, flags=re.S)
    assert jump, "The glossary has no jump list"
    links = _Links()
    links.feed(jump.group(1))
    terms = re.findall(r'<dt id="term-([^"]+)"', html)
    assert terms, "No glossary terms found"
    letters = sorted({unquote(term)[0].upper() for term in terms})
    targets = {href.split("#", 1)[1] for href in links.hrefs if "#" in href}
    for letter in letters:
        # A letter links to its own section, or straight to a term filed under
        # another letter (Quintile sits with Decile).
        section = f"glossary-{letter.lower()}"
        starting = {f"term-{t}" for t in terms if unquote(t)[0].upper() == letter}
        assert section in targets or starting & targets, f"The jump list has no link for {letter}"
        if section in targets:
            assert f'id="{section}"' in html, f"The jump list links to a missing section {letter}"


@pytest.mark.browser
@slow
def test_contacts_filter_shows_only_matching_cards(built_book: Path) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    url = (built_book / "book" / "reference" / "local-contacts.html").resolve().as_uri()
    shown = "els => els.filter(e => !e.hidden).map(e => e.id)"
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 390, "height": 900})
        page.goto(url)
        every = page.eval_on_selector_all(".directory-entry", shown)
        assert len(every) == len(resource_entries()), "Some cards are hidden before any filter"
        page.select_option("#directory-area", "bolsover")
        page.select_option("#directory-need", "cvs")
        bolsover_cvs = page.eval_on_selector_all(".directory-entry", shown)
        page.select_option("#directory-area", "")
        page.select_option("#directory-need", "")
        page.fill("#directory-words", "dementia")
        dementia = page.eval_on_selector_all(".directory-entry", shown)
        count = page.inner_text(".directory-count")
        width = page.evaluate("document.documentElement.scrollWidth")
        browser.close()
    # Bolsover's own CVS and the county-wide ones, but not the city's or another district's.
    assert "contact-bolsover-cvs" in bolsover_cvs
    assert "contact-derbyshire-voluntary-action" in bolsover_cvs
    assert "contact-community-action-derby" not in bolsover_cvs
    assert "contact-links-cvs" not in bolsover_cvs
    assert dementia == ["contact-derby-dementia-action-forum"]
    assert count == f"Showing 1 of {len(every)} entries."
    assert width <= 390, f"The contacts page scrolls sideways on a phone ({width}px wide)"


def test_troubleshooting_page_adds_nothing_the_catalogue_already_says() -> None:
    """The catalogue tables are the only place a message is explained; a hand-written
    entry with the same title would drift from the message the tool prints."""
    from equity_helpers.errors import CATALOGUE

    source = (BOOK_SOURCE / "using" / "troubleshooting.md").read_text(encoding="utf-8")
    own = source.split("## Other things that can go wrong", 1)[-1].lower()
    repeated = [
        f"{code} ({message.title})"
        for code, message in CATALOGUE.items()
        if message.title.lower() in own
    ]
    assert not repeated, f"Hand-written entries repeat catalogue messages: {repeated}"


#: Attributes that hold a link or the address of something the page loads.
LINK_ATTRIBUTES = re.compile(
    r"""\b(href|src|action|poster|data|formaction|content)\s*=\s*("[^"]*"|'[^']*')""", re.IGNORECASE
)


def _root_absolute(value: str) -> bool:
    """'/page.html' breaks at https://owner.github.io/repository/; '//host/x' and 'https:' do not."""
    value = value.strip()
    if value.lower().startswith(("0;", "1;")) or "url=" in value.lower():
        value = value.split("=", 1)[-1].strip()  # <meta http-equiv="Refresh" content="0; url=...">
    return value.startswith("/") and not value.startswith("//")


@slow
def test_the_built_site_works_from_a_sub_path(built_book: Path) -> None:
    """GitHub Pages serves a project's site under /<repository>/, so no page, stylesheet
    or script may point at the server's root."""
    found = []
    files = [
        p
        for p in built_book.rglob("*")
        if p.suffix in (".html", ".css", ".js") and "_sources" not in p.parts
    ]
    assert len([p for p in files if p.suffix == ".html"]) >= 40
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".html":
            for attribute, quoted in LINK_ATTRIBUTES.findall(text):
                if attribute.lower() == "content" and "url=" not in quoted.lower():
                    continue
                if _root_absolute(quoted[1:-1]):
                    found.append(f"{path.relative_to(built_book)}: {attribute}={quoted}")
            for srcset in re.findall(r"""srcset\s*=\s*["']([^"']*)["']""", text):
                found += [
                    f"{path.relative_to(built_book)}: srcset {part}"
                    for part in srcset.split(",")
                    if _root_absolute(part.split()[0] if part.split() else "")
                ]
        for target in re.findall(r"""url\(\s*["']?(/[^/"')][^"')]*)""", text):
            found.append(f"{path.relative_to(built_book)}: url({target})")
    assert found == [], found[:20]


def test_root_absolute_links_are_recognised() -> None:
    assert _root_absolute("/book/intro.html")
    assert _root_absolute("0; url=/book/intro.html")
    assert not _root_absolute("book/intro.html")
    assert not _root_absolute("../_static/playbook.css")
    assert not _root_absolute("//cdn.example.org/x.js")
    assert not _root_absolute("https://example.org/")
