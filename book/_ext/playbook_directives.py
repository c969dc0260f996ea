"""Sphinx directives used by the book's pages.

``local-directory``
    Renders one table of local partners from ``book/data/local-directory.yml``.
    The step 6 page uses it once per category::

        ```{local-directory}
        :category: cvs
        ```

    Each entry in the YAML has ``name``, ``category``, ``helps_with``, ``area``
    and ``contact``. A contact that is an email address becomes a ``mailto:``
    link; one that is a web address becomes a link; anything else is shown as
    words, with any web address inside it made into a link. So changing a
    contact is a one-line edit to the YAML, and the page rebuilds because the
    file is registered as a dependency of every page that uses the directive.

The directive builds plain docutils nodes (a table with a header row), so it
works with every Sphinx builder. A plain ``list-table`` or ``csv-table`` was
considered, but neither can read YAML or keep the data in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

#: Where the directory lives, relative to the book's source folder.
DIRECTORY_FILE = "book/data/local-directory.yml"

#: The categories an entry may have.
CATEGORIES = (
    "locality-partnership",
    "speciality-partnership",
    "forum",
    "cvs",
    "directory",
    "statutory-body",
)

#: Every entry needs these fields.
REQUIRED_FIELDS = ("name", "category", "helps_with", "area", "contact")

#: Column headings and their relative widths.
COLUMNS = (
    ("Organisation", 25),
    ("What they help with", 40),
    ("Area", 15),
    ("How to contact", 20),
)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL = re.compile(r"https?://[^\s)]+")


def load_directory(path: Path) -> list[dict]:
    """Read the YAML file and check every entry.

    Raises ``ValueError`` naming the entry and the problem, so a bad edit to
    the YAML gives a clear build error rather than a broken table.
    """
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    entries = data.get("organisations") or []
    for number, entry in enumerate(entries, start=1):
        missing = [field for field in REQUIRED_FIELDS if not entry.get(field)]
        if missing:
            label = entry.get("name", f"entry {number}")
            message = f"{path.name}: {label!r} is missing {', '.join(missing)}"
            raise ValueError(message)
        if entry["category"] not in CATEGORIES:
            message = (
                f"{path.name}: {entry['name']!r} has category {entry['category']!r}; "
                f"use one of {', '.join(CATEGORIES)}"
            )
            raise ValueError(message)
    return entries


def contact_nodes(contact: str) -> list[nodes.Node]:
    """Turn a contact into inline nodes: a mailto link, a web link or words."""
    contact = str(contact).strip()
    if EMAIL.match(contact):
        return [nodes.reference(contact, contact, refuri=f"mailto:{contact}")]
    parts: list[nodes.Node] = []
    position = 0
    for match in URL.finditer(contact):
        if match.start() > position:
            parts.append(nodes.Text(contact[position : match.start()]))
        url = match.group(0)
        shown = url.split("://", 1)[1].removeprefix("www.").rstrip("/")
        parts.append(nodes.reference(shown, shown, refuri=url))
        position = match.end()
    if position < len(contact):
        parts.append(nodes.Text(contact[position:]))
    return parts


def cell(*children: nodes.Node) -> nodes.entry:
    """One table cell holding one paragraph."""
    return nodes.entry("", nodes.paragraph("", "", *children))


class LocalDirectory(SphinxDirective):
    """Render the local directory entries of one category as a table."""

    has_content = False
    option_spec = {"category": lambda value: directives.choice(value, CATEGORIES)}

    def run(self) -> list[nodes.Node]:
        category = self.options.get("category")
        if not category:
            raise self.error(f"local-directory needs :category: (one of {', '.join(CATEGORIES)})")

        path = Path(self.env.srcdir) / DIRECTORY_FILE
        self.env.note_dependency(str(path))
        try:
            entries = load_directory(path)
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise self.error(f"local-directory could not read {DIRECTORY_FILE}: {error}") from error

        chosen = [entry for entry in entries if entry["category"] == category]
        if not chosen:
            raise self.error(f"local-directory: no entries with category {category!r}")

        table = nodes.table(classes=["local-directory", f"local-directory-{category}"])
        group = nodes.tgroup(cols=len(COLUMNS))
        table += group
        for _heading, width in COLUMNS:
            group += nodes.colspec(colwidth=width)

        header = nodes.row()
        for heading, _width in COLUMNS:
            header += cell(nodes.Text(heading))
        group += nodes.thead("", header)

        body = nodes.tbody()
        for entry in chosen:
            row = nodes.row()
            row += cell(nodes.strong(entry["name"], entry["name"]))
            row += cell(nodes.Text(str(entry["helps_with"]).strip()))
            row += cell(nodes.Text(str(entry["area"]).strip()))
            row += cell(*contact_nodes(entry["contact"]))
            body += row
        group += body
        return [table]


class MessageCatalogue(SphinxDirective):
    """Every error, warning and exclusion the tool can give, from its own catalogue.

    The troubleshooting page uses it once per kind (``:kind: error``), so the page lists
    exactly the messages in ``equity_helpers.errors.CATALOGUE`` and never drifts.
    """

    option_spec = {"kind": directives.unchanged_required}
    KINDS = {
        "error": "Stops the run",
        "warning": "Run goes on; values counted",
        "exclusion": "Rows left out, with the reason",
    }

    def run(self):
        from equity_helpers.errors import CATALOGUE

        self.env.note_dependency(str(Path(self.env.srcdir) / "equity_helpers" / "errors.py"))
        kind = self.options.get("kind", "error")
        entries = [m for m in CATALOGUE.values() if m.kind == kind]
        table = nodes.table(classes=["message-catalogue"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (12, 48, 40):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        row = nodes.row()
        for title in ("Code", "What you see", "What to do"):
            row += nodes.entry("", nodes.paragraph(text=title))
        head += row
        group += head
        body = nodes.tbody()
        for m in entries:
            row = nodes.row(ids=[f"msg-{m.code.lower()}"])
            row += nodes.entry("", nodes.paragraph("", "", nodes.literal(text=m.code)))
            said = nodes.paragraph()
            said += nodes.strong(text=m.title)
            said += nodes.Text(". " + _plain(m.template))
            row += nodes.entry("", said)
            row += nodes.entry("", nodes.paragraph(text=_plain(m.what_to_do)))
            body += row
        group += body
        return [table]


def _plain(template: str) -> str:
    """A message template with its placeholders shown as words a reader recognises."""
    return re.sub(
        r"\{(\w+)(![rs])?(:[^}]*)?\}", lambda m: "<" + m.group(1).replace("_", " ") + ">", template
    )


def _offer_ipynb(app, pagename, templatename, context, doctree):
    """Offer each notebook page's executed .ipynb for download, beside its .md source.

    The theme shows an .ipynb download only when a launch service is set up; this copies
    the executed notebook into ``_sources`` and tells the theme it is there.
    """
    import shutil

    if "kernelspec" not in app.env.metadata.get(pagename, {}):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if executed.is_file():
        target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(executed, target)
        context["ipynb_source"] = f"{pagename}.ipynb"


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    """Drop scripts that two extensions both add, which makes browsers report an error
    ("Identifier 'THEBE_JS_URL' has already been declared")."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        # An inline script's filename may be None or "": the same script either way.
        key = (getattr(script, "filename", str(script)) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"][:] = kept


def setup(app):
    app.add_directive("local-directory", LocalDirectory)
    # Last, after other extensions have added their per-page scripts.
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    # Before the theme builds its header buttons (priority 501).
    app.connect("html-page-context", _offer_ipynb, priority=500)
    app.add_directive("message-catalogue", MessageCatalogue)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.2"}
