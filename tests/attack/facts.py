"""Read everything a workbook publishes into facts an attacker can work with.

A workbook folder holds HTML pages (visible text, tables, alt text), their ``_sources``,
the search index, CSV and XLSX tables, executed notebooks, a manifest and logs. This
module turns all of it into two kinds of fact:

* :class:`Table`: a grid of text cells with a header, a title and where it was found;
* :class:`Text`: a piece of prose (a sentence, an alt text, a log line) and where it was
  found.

Cells are interpreted with :func:`parse_cell` (hidden marker, whole number, percentage with
its stated number of decimals, other number, text).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

#: Markers a publication uses for a hidden cell ("hidden" in the data behind a chart).
HIDDEN_MARKERS = {"*", "[c]", "c", "[x]", "hidden"}
#: Files that carry no text.
BINARY = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".woff", ".woff2", ".ttf", ".eot", ".pdf"}
#: Theme and library files every Jupyter Book ships: not about the service.
SKIP_DIRS = {"_static", "_sphinx_design_static"}

_NUMBER = re.compile(r"^[-−]?\d{1,3}(?:,\d{3})*(?:\.\d+)?$|^[-−]?\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Cell:
    """One parsed cell: ``kind`` is hidden, int, number or text (percent is a number)."""

    text: str
    kind: str
    value: float | None = None
    decimals: int = 0
    percent: bool = False


def parse_cell(text: object) -> Cell:
    """Interpret one published cell.

    >>> parse_cell("1,235").kind, parse_cell("1,235").value
    ('int', 1235.0)
    >>> c = parse_cell("99.8%"); (c.kind, c.value, c.decimals, c.percent)
    ('number', 99.8, 1, True)
    >>> parse_cell("*").kind
    'hidden'
    """
    raw = "" if text is None else str(text).strip()
    if raw.lower() in HIDDEN_MARKERS:
        return Cell(raw, "hidden")
    body = raw
    percent = body.endswith("%")
    if percent:
        body = body[:-1].strip()
    if body and _NUMBER.match(body):
        clean = body.replace(",", "").replace("−", "-")
        decimals = len(clean.split(".")[1]) if "." in clean else 0
        value = float(clean)
        if decimals == 0 and not percent:
            return Cell(raw, "int", value, 0, False)
        return Cell(raw, "number", value, decimals, percent)
    return Cell(raw, "text" if raw else "blank")


@dataclass
class Table:
    """A published table: header, rows of cell text, title and where it was found."""

    source: str
    where: str
    title: str
    header: list[str]
    rows: list[list[str]]

    def cells(self, i: int) -> list[Cell]:
        return [parse_cell(t) for t in self.rows[i]]

    def column(self, j: int) -> list[Cell]:
        return [parse_cell(r[j]) if j < len(r) else Cell("", "blank") for r in self.rows]


@dataclass
class Text:
    """A piece of published prose and where it was found."""

    source: str
    where: str
    text: str


@dataclass
class Publication:
    """Everything a workbook publishes, as tables, texts and the raw text of each file."""

    root: Path
    tables: list[Table] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)
    files: int = 0


# ----------------------------------------------------------------------------- readers


def _csv_tables(text: str, source: str) -> list[Table]:
    lines = text.splitlines()
    comments = [line[1:].strip() for line in lines if line.startswith("#")]
    body = [line for line in lines if not line.startswith("#")]
    rows = [r for r in csv.reader(io.StringIO("\n".join(body))) if any(c.strip() for c in r)]
    if not rows:
        return []
    title = comments[0] if comments else ""
    return [Table(source, "table", title, rows[0], rows[1:])]


def _xlsx_tables(path: Path, source: str) -> tuple[list[Table], str]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    tables, words = [], []
    for sheet in book.worksheets:
        grid = [
            ["" if c.value is None else _xlsx_text(c.value, c.number_format) for c in row]
            for row in sheet.iter_rows()
        ]
        words += [" ".join(r) for r in grid]
        # Title lines (one cell each) first, then a blank row, then the table.
        titles, start = [], 0
        for k, row in enumerate(grid):
            filled = [c for c in row if c.strip()]
            if not filled:
                start = k + 1
                break
            if len(filled) == 1 and k == len(titles):
                titles.append(filled[0])
        table = [r for r in grid[start:] if any(c.strip() for c in r)]
        if table:
            width = max(len(r) for r in table)
            table = [r + [""] * (width - len(r)) for r in table]
            tables.append(
                Table(
                    source, f"sheet {sheet.title}", titles[0] if titles else "", table[0], table[1:]
                )
            )
    return tables, "\n".join(words)


def _xlsx_text(value: object, number_format: str = "General") -> str:
    """A cell as a reader sees it: a float shows the decimals of its number format."""
    if isinstance(value, float):
        shown = re.fullmatch(r"0\.(0+)", number_format or "")
        if shown:
            return f"{value:.{len(shown[1])}f}"
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)


def _html_facts(html: str, source: str) -> tuple[list[Table], list[Text]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    texts: list[Text] = []
    for img in soup.find_all(["img", "svg", "figure", "area"]):
        for attr in ("alt", "title", "aria-label"):
            if img.get(attr):
                texts.append(Text(source, f"{attr} text of an image", str(img[attr])))
    for tag in soup.find_all(attrs={"title": True}):
        if tag.name not in ("img",):
            texts.append(Text(source, "title attribute", str(tag["title"])))
    tables = []
    for number, table in enumerate(soup.find_all("table"), start=1):
        rows = []
        header: list[str] = []
        for tr in table.find_all("tr"):
            cells = [c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
            if not cells:
                continue
            if not header and (tr.find_parent("thead") is not None or not tr.find("td")):
                header = cells
                continue
            rows.append(cells)
        caption = table.find("caption")
        title = caption.get_text(" ", strip=True) if caption else ""
        if not title:
            previous = table.find_previous(["h1", "h2", "h3", "h4", "p"])
            title = previous.get_text(" ", strip=True)[:200] if previous else ""
        if header and len(rows) and len(rows[0]) == len(header) + 1:
            header = [""] + header  # a pandas table with an unnamed index column
        tables.append(Table(source, f"HTML table {number}", title, header, rows))
    for block in soup.find_all(
        ["p", "li", "h1", "h2", "h3", "h4", "dt", "dd", "figcaption", "pre"]
    ):
        if block.find(["p", "li"]):
            continue
        text = block.get_text(" ", strip=True)
        if text:
            texts.append(Text(source, f"<{block.name}>", text))
    body = soup.get_text("\n", strip=True)
    return tables, texts + [Text(source, "page text", line) for line in body.splitlines()]


def _notebook_facts(text: str, source: str) -> tuple[list[Table], list[Text]]:
    nb = json.loads(text)
    tables: list[Table] = []
    texts: list[Text] = []
    for number, cell in enumerate(nb.get("cells", []), start=1):
        where = f"cell {number}"
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                texts.append(Text(source, f"{where} (markdown)", line))
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            chunks = []
            if "text" in output:
                chunks.append("".join(output["text"]))
            if "text/html" in data:
                t, x = _html_facts("".join(data["text/html"]), source)
                for table in t:
                    table.where = f"{where} output, {table.where}"
                tables += t
                texts += [Text(source, f"{where} output", p.text) for p in x]
            elif "text/plain" in data:
                chunks.append("".join(data["text/plain"]))
            if "text/markdown" in data:
                chunks.append("".join(data["text/markdown"]))
            for chunk in chunks:
                for line in chunk.splitlines():
                    texts.append(Text(source, f"{where} output", line))
    return tables, texts


def read_publication(root: Path) -> Publication:
    """Read every file under a workbook folder into tables and texts."""
    root = Path(root)
    pub = Publication(root)
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower() in BINARY:
            continue
        rel = path.relative_to(root).as_posix()
        if set(path.relative_to(root).parts) & SKIP_DIRS:
            continue
        pub.files += 1
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            tables, words = _xlsx_tables(path, rel)
            pub.tables += tables
            pub.raw[rel] = words
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_bytes().decode("latin-1")
        pub.raw[rel] = text
        if suffix == ".csv":
            pub.tables += _csv_tables(text, rel)
            pub.texts += [
                Text(rel, "comment line", line[1:].strip())
                for line in text.splitlines()
                if line.startswith("#")
            ]
        elif suffix in (".html", ".htm"):
            tables, texts = _html_facts(text, rel)
            pub.tables += tables
            pub.texts += texts
        elif suffix == ".ipynb":
            tables, texts = _notebook_facts(text, rel)
            pub.tables += tables
            pub.texts += texts
        elif suffix == ".json":
            pub.texts += [Text(rel, "line", line) for line in _json_lines(text)]
        else:
            pub.texts += [
                Text(rel, f"line {k}", line) for k, line in enumerate(text.splitlines(), 1)
            ]
    return pub


def _json_lines(text: str) -> list[str]:
    """A JSON file as ``key: value`` lines, so that headline figures read as sentences."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.splitlines()
    out: list[str] = []

    def walk(value: object, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, list):
            for k, v in enumerate(value):
                walk(v, f"{key}[{k}]")
        else:
            out.append(f"{key}: {value}")

    walk(data, "")
    return out
