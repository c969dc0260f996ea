"""The templates to take away: one source, two forms.

``book/data/templates.yml`` holds each template's title, questions and table. This
extension renders them on the book's Downloads page (the ``take-away-templates``
directive: headings, questions with room to write, tables with empty rows, so the page
prints as a set of worksheets) and, when the HTML build finishes, writes each one as an
editable Word document to ``downloads/<id>.docx`` in the built site. Nothing generated
is kept in the repository.

Each page a template lists under ``steps`` ends with a box, "Templates for this step",
linking that template's Word document (and, in the book, its printable worksheet on the
Downloads page). A notebook listed there (``notebooks/pathway``) also gets the box on its
page in a service's workbook (``steps/pathway``), which is built from the same notebook;
the workbook's site then holds the Word documents too.

:func:`load_templates` checks the YAML, so a bad edit gives a clear build error naming
the template. :func:`write_docx` is used by the build and by the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

#: The one source, relative to the book's root.
TEMPLATES_FILE = "book/data/templates.yml"
#: Where the Word documents go, inside the built HTML folder.
DOWNLOADS_DIR = "downloads"
#: The line a reader writes an answer on, in the Word documents.
ANSWER_LINES = 3
#: The book's Downloads page, which prints every template.
DOWNLOADS_PAGE = "book/reference/downloads"
#: The title of the box that links a step's templates.
STEP_BOX_TITLE = "Templates for this step"

TEMPLATE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def load_templates(path: Path) -> list[dict]:
    """Read and check every template. Raises ``ValueError`` naming the template and problem."""
    with Path(path).open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    templates = data.get("templates") or []
    if not templates:
        raise ValueError(f"{Path(path).name}: no templates listed under 'templates:'")
    seen: set[str] = set()
    for number, template in enumerate(templates, start=1):
        label = template.get("id") or f"template {number}"

        def fail(problem: str, label: str = str(label)) -> None:
            raise ValueError(f"{Path(path).name}: {label!r} {problem}")

        for key in ("id", "title", "intro"):
            if not str(template.get(key) or "").strip():
                fail(f"is missing {key}")
        if not TEMPLATE_ID.match(template["id"]):
            fail("needs an id of lower-case words joined by hyphens, such as 'action-plan'")
        if template["id"] in seen:
            fail("is listed twice; give each template its own id")
        seen.add(template["id"])
        if not template.get("sections") and not template.get("table"):
            fail("needs sections (questions), a table, or both")
        for section in template.get("sections") or []:
            if not section.get("heading") or not section.get("questions"):
                fail("has a section without a heading or without questions")
        table = template.get("table")
        if table is not None and not table.get("columns"):
            fail("has a table without columns")
        steps = template.get("steps") or []
        if not isinstance(steps, list) or not all(isinstance(p, str) for p in steps):
            fail("needs 'steps' as a list of pages, such as book/part-3/step-9-process-mapping")
    return templates


def templates_file(srcdir: Path) -> Path | None:
    """The templates file: the book's own, or, for a service's workbook (whose site is
    built in another folder from the same notebooks), the one beside this extension."""
    for path in (
        Path(srcdir) / TEMPLATES_FILE,
        Path(__file__).resolve().parents[2] / TEMPLATES_FILE,
    ):
        if path.is_file():
            return path
    return None


def templates_for(templates: list[dict], docname: str) -> list[dict]:
    """The templates a page links to: those made for fewest pages (the step's own) first.

    A page is named as in the book (``book/part-3/step-9-process-mapping``). A notebook
    (``notebooks/pathway``) is also its page in a service's workbook (``steps/pathway``).
    """
    wanted = {docname}
    if docname.startswith("steps/"):
        wanted.add("notebooks/" + docname.removeprefix("steps/"))
    found = [t for t in templates if wanted & set(t.get("steps") or [])]
    return sorted(found, key=lambda t: len(t["steps"]))


def _first_sentence(text: str) -> str:
    words = " ".join(str(text).split())
    end = words.find(". ")
    return words if end < 0 else words[: end + 1]


def table_rows(template: dict) -> list[list[str]]:
    """The table's body: each listed row (first cell filled in), then the empty rows."""
    table = template["table"]
    width = len(table["columns"])
    rows = [[str(first)] + [""] * (width - 1) for first in table.get("rows") or []]
    rows += [[""] * width for _ in range(int(template.get("blank_rows") or 0))]
    return rows


def docx_name(template: dict) -> str:
    return f"{template['id']}.docx"


# ----------------------------------------------------------------------------- Word


def write_docx(template: dict, path: Path) -> Path:
    """Write one template as an editable Word document and return its path.

    The document has the template's title (Heading 1), its introduction, then each
    section (Heading 2) with its questions, each followed by empty lines to write on,
    and the table with a header row that repeats on every printed page.
    """
    import docx  # python-docx
    from docx.enum.section import WD_ORIENT
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    document = docx.Document()
    document.core_properties.title = template["title"]
    document.core_properties.author = "Health inequalities playbook"
    document.core_properties.comments = ""
    section = document.sections[0]
    if template.get("table") and len(template["table"]["columns"]) > 4:
        # Wide tables print across the page.
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(1.8))
    document.styles["Normal"].font.size = Pt(11)

    document.add_heading(template["title"], level=1)
    document.add_paragraph(" ".join(str(template["intro"]).split()))
    document.add_paragraph("Team: ____________________    Date: ____________________")
    for part in template.get("sections") or []:
        document.add_heading(part["heading"], level=2)
        for question in part["questions"]:
            document.add_paragraph(str(question), style="List Bullet")
            for _ in range(ANSWER_LINES):
                document.add_paragraph("_" * 80)
    table = template.get("table")
    if table:
        columns = [str(c) for c in table["columns"]]
        grid = document.add_table(rows=1, cols=len(columns))
        grid.style = "Table Grid"
        header = grid.rows[0]
        # The header row repeats at the top of each printed page.
        properties = header._tr.get_or_add_trPr()
        repeat = OxmlElement("w:tblHeader")
        repeat.set(qn("w:val"), "true")
        properties.append(repeat)
        for cell, text in zip(header.cells, columns, strict=True):
            cell.text = ""
            cell.paragraphs[0].add_run(text).bold = True
        for values in table_rows(template):
            row = grid.add_row()
            row.height = Cm(2)
            for cell, text in zip(row.cells, values, strict=True):
                cell.text = text
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def write_all(srcdir: Path, outdir: Path) -> list[Path]:
    """Write every template's Word document into ``outdir``."""
    templates = load_templates(Path(srcdir) / TEMPLATES_FILE)
    return [write_docx(t, Path(outdir) / docx_name(t)) for t in templates]


# ----------------------------------------------------------------------------- the page


class TakeAwayTemplates(SphinxDirective):
    """Every template as a printable worksheet, each with a link to its Word document."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        path = Path(self.env.srcdir) / TEMPLATES_FILE
        self.env.note_dependency(str(path))
        try:
            templates = load_templates(path)
        except (OSError, ValueError, yaml.YAMLError) as error:
            message = f"take-away-templates could not read {TEMPLATES_FILE}: {error}"
            raise self.error(message) from error
        # A relative link, so the site works from any address (such as a project's sub-path).
        up = "../" * self.env.docname.count("/")
        out: list[nodes.Node] = []
        for template in templates:
            section_id = f"template-{template['id']}"
            section = nodes.section(ids=[section_id], classes=["take-away"])
            section += nodes.title(text=template["title"])
            section += nodes.paragraph(text=" ".join(str(template["intro"]).split()))
            link = nodes.paragraph(classes=["take-away-download"])
            name = docx_name(template)
            link += nodes.reference(
                "",
                f"Download “{template['title']}” as a Word document ({name})",
                refuri=f"{up}{DOWNLOADS_DIR}/{name}",
                classes=["print-url-in-text"],
            )
            section += link
            for part in template.get("sections") or []:
                block = nodes.container(classes=["take-away-questions"])
                block += nodes.paragraph("", "", nodes.strong(text=part["heading"]))
                items = nodes.bullet_list()
                for question in part["questions"]:
                    item = nodes.list_item()
                    item += nodes.paragraph(text=str(question))
                    item += nodes.container(classes=["take-away-answer"])
                    items += item
                block += items
                section += block
            if template.get("table"):
                section += _table(template)
            out.append(section)
        return out


def _table(template: dict) -> nodes.table:
    columns = [str(c) for c in template["table"]["columns"]]
    table = nodes.table(classes=["take-away-table"])
    group = nodes.tgroup(cols=len(columns))
    table += group
    for _ in columns:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    row = nodes.row()
    for text in columns:
        row += nodes.entry("", nodes.paragraph(text=text))
    head += row
    group += head
    body = nodes.tbody()
    for values in table_rows(template):
        row = nodes.row(classes=["print-blank-row"])
        for text in values:
            row += nodes.entry("", nodes.paragraph(text=text))
        body += row
    group += body
    return table


def step_box(templates: list[dict], docname: str, downloads_page: bool) -> nodes.Node:
    """The "Templates for this step" box: each template's name, what it is for, and links
    to its Word document and (when the site has the Downloads page) its printable page."""
    up = "../" * docname.count("/")
    box = nodes.admonition(classes=["step-templates"])
    box += nodes.title(text=STEP_BOX_TITLE)
    box += nodes.paragraph(
        text="Print these, or fill them in on a computer and share them with your team."
    )
    items = nodes.bullet_list()
    for template in templates:
        line = nodes.paragraph()
        line += nodes.strong(text=template["title"])
        line += nodes.Text(f": {_first_sentence(template['intro'])} ")
        name = docx_name(template)
        line += nodes.reference(
            "",
            f"Download “{template['title']}” as a Word document",
            refuri=f"{up}{DOWNLOADS_DIR}/{name}",
        )
        if downloads_page:
            line += nodes.Text(", or ")
            line += nodes.reference(
                "",
                "print it from the Downloads page",
                refuri=f"{up}{DOWNLOADS_PAGE}.html#template-{template['id']}",
            )
        line += nodes.Text(".")
        item = nodes.list_item()
        item += line
        items += item
    box += items
    return box


def _link_step_templates(app, doctree) -> None:
    """End each page a template lists under ``steps`` with the box that links it."""
    path = templates_file(Path(app.srcdir))
    if path is None:
        return
    docname = app.env.docname
    app.env.note_dependency(str(path))
    templates = templates_for(load_templates(path), docname)
    if not templates:
        return
    box = step_box(templates, docname, DOWNLOADS_PAGE in app.env.found_docs)
    top = next(iter(doctree.findall(nodes.section)), None)
    (top if top is not None else doctree).append(box)


def _write_downloads(app, exception) -> None:
    """After a successful HTML build, write the Word documents beside the pages."""
    if exception is not None or app.builder.format != "html":
        return
    path = templates_file(Path(app.srcdir))
    if path is None:
        return
    out = Path(app.outdir) / DOWNLOADS_DIR
    for template in load_templates(path):
        write_docx(template, out / docx_name(template))


def setup(app):
    app.add_directive("take-away-templates", TakeAwayTemplates)
    app.connect("doctree-read", _link_step_templates)
    app.connect("build-finished", _write_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
