"""Sphinx directives and roles used by the book's pages.

``local-directory``
    Renders the entries of one category from one of the book's YAML lists as
    cards: ``book/data/local-directory.yml`` (local contacts, the default),
    ``national-resources.yml`` or ``training-courses.yml``. The "Local contacts
    and resources" page uses it once per category::

        ```{local-directory}
        :source: national-resources
        :category: evidence
        ```

    Each card has an anchor, ``contact-<id>``, registered as a label, so any
    page can link to it with ``{ref}`contact-<id>```. Each card carries
    classes for the page's filter: ``covers-<area>`` and ``need-<category>``.

``directory-filter``
    A small form (area, need, words) that ``playbook.js`` uses to show only
    the matching cards. Without JavaScript the form stays hidden and every
    card shows.

``{resource}`id``` (role)
    Links to one entry by its id, from any of the three lists. It links
    straight to the entry's web address when that is all a reader needs, and
    to the entry's card otherwise (so the reader sees the email, phone or the
    "how to find" advice). ``{resource}`other words <id>``` changes the text.

Each entry in the YAML has ``id``, ``name``, ``category``, ``helps_with``,
``area``, ``covers`` and ``checked``, and at least one of ``url``, ``email``,
``phone`` or ``how_to_find``. :func:`load_directory` checks all of this, so a
bad edit gives a clear build error naming the entry. The YAML files are
registered as dependencies of every page that uses them, so a one-line edit
rebuilds the right pages.

The directive builds plain docutils nodes, so it works with every builder.
"""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from pathlib import Path

import yaml
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective, SphinxRole
from sphinx.util.nodes import split_explicit_title

#: The book's lists, by the name the ``:source:`` option uses.
SOURCES = {
    "local-directory": "book/data/local-directory.yml",
    "national-resources": "book/data/national-resources.yml",
    "training-courses": "book/data/training-courses.yml",
}
#: Kept for callers that want the local list on its own.
DIRECTORY_FILE = SOURCES["local-directory"]

#: Area keys an entry may list under ``covers``, with the words the filter shows.
AREAS = {
    "derby": "Derby",
    "amber-valley": "Amber Valley",
    "bolsover": "Bolsover",
    "chesterfield": "Chesterfield",
    "derbyshire-dales": "Derbyshire Dales",
    "erewash": "Erewash",
    "high-peak": "High Peak",
    "north-east-derbyshire": "North East Derbyshire",
    "south-derbyshire": "South Derbyshire",
}
#: Keys that stand for more than one area.
WIDE_AREAS = ("derbyshire", "england")

#: Every entry needs these fields.
REQUIRED_FIELDS = ("id", "name", "category", "helps_with", "area", "checked")
#: And at least one of these.
CONTACT_FIELDS = ("url", "email", "phone", "how_to_find")
#: Words that point a reader at the guide instead of at a way in.
VAGUE = re.compile(r"named in the guide|listed in the guide", re.IGNORECASE)

ENTRY_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL = re.compile(r"^https?://[^\s]+$")
PHONE = re.compile(r"^[0-9 +()]{8,}$")


def load_directory(path: Path) -> tuple[dict[str, str], list[dict]]:
    """Read one YAML list and check every entry.

    Returns the category labels and the entries. Raises ``ValueError``
    naming the file, the entry and the problem.
    """
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    categories = data.get("categories") or {}
    entries = data.get("organisations") or []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        label = entry.get("id") or entry.get("name") or f"entry {number}"

        def fail(problem: str, label: str = str(label)) -> None:
            raise ValueError(f"{path.name}: {label!r} {problem}")

        missing = [field for field in REQUIRED_FIELDS if not entry.get(field)]
        if missing:
            fail(f"is missing {', '.join(missing)}")
        if not ENTRY_ID.match(str(entry["id"])):
            fail("needs an id of lower-case words joined by hyphens, such as 'links-cvs'")
        if entry["id"] in seen:
            fail("is listed twice; give each entry its own id")
        seen.add(entry["id"])
        if entry["category"] not in categories:
            fail(f"has category {entry['category']!r}; use one of {', '.join(categories)}")
        if not any(entry.get(field) for field in CONTACT_FIELDS):
            fail(f"needs at least one of {', '.join(CONTACT_FIELDS)}")
        if not isinstance(entry["checked"], dt.date):
            fail("needs `checked` as a date, such as 2026-12-02")
        if entry.get("url") and not URL.match(str(entry["url"])):
            fail(f"has url {entry['url']!r}; it must start with https:// or http://")
        if entry.get("email") and not EMAIL.match(str(entry["email"])):
            fail(f"has email {entry['email']!r}, which is not an email address")
        if entry.get("phone") and not PHONE.match(str(entry["phone"])):
            fail(f"has phone {entry['phone']!r}; use digits and spaces only")
        unknown = [
            key for key in entry.get("covers") or [] if key not in AREAS and key not in WIDE_AREAS
        ]
        if unknown:
            fail(f"covers unknown areas {unknown}; use {', '.join([*AREAS, *WIDE_AREAS])}")
        for field in ("helps_with", "area", "how_to_find"):
            if entry.get(field) and VAGUE.search(str(entry[field])):
                fail(f"says only that the guide names it ({field}); say who to ask instead")
    return categories, entries


def load_all(srcdir: Path) -> dict[str, tuple[str, dict]]:
    """Every entry of every list, by id, with the name of its list."""
    found: dict[str, tuple[str, dict]] = {}
    for source, relative in SOURCES.items():
        _, entries = load_directory(Path(srcdir) / relative)
        for entry in entries:
            if entry["id"] in found:
                message = (
                    f"{Path(relative).name}: {entry['id']!r} is also used in "
                    f"{Path(SOURCES[found[entry['id']][0]]).name}; ids must be unique"
                )
                raise ValueError(message)
            found[entry["id"]] = (source, entry)
    return found


def anchor(entry_id: str) -> str:
    """The html id, and the label, of one entry's card."""
    return f"contact-{entry_id}"


def needs_card(entry: dict) -> bool:
    """True when a link should go to the card rather than straight to the web address."""
    return not entry.get("url") or bool(
        entry.get("email") or entry.get("phone") or entry.get("how_to_find")
    )


def shown_url(url: str) -> str:
    """A web address as people read it: no scheme, no www, no trailing slash."""
    return url.split("://", 1)[1].removeprefix("www.").rstrip("/")


def card(entry: dict, category: str) -> nodes.container:
    """One entry as a card: name, what they help with, area, ways in, date checked."""
    covers = entry.get("covers") or []
    classes = ["directory-entry", f"need-{category}", *(f"covers-{key}" for key in covers)]
    box = nodes.container(ids=[anchor(entry["id"])], classes=classes)
    name = str(entry["name"]).strip()
    box += nodes.paragraph("", "", nodes.strong(name, name), classes=["directory-name"])
    box += nodes.paragraph(text=str(entry["helps_with"]).strip())
    area = nodes.paragraph(classes=["directory-area"])
    area += nodes.strong(text="Area: ")
    area += nodes.Text(str(entry["area"]).strip())
    box += area

    ways: list[nodes.Node] = []
    if entry.get("url"):
        url = str(entry["url"]).strip()
        ways.append(nodes.reference(shown_url(url), shown_url(url), refuri=url))
    if entry.get("email"):
        email = str(entry["email"]).strip()
        ways.append(nodes.reference(email, email, refuri=f"mailto:{email}"))
    if entry.get("phone"):
        phone = str(entry["phone"]).strip()
        ways.append(nodes.reference(phone, phone, refuri="tel:" + re.sub(r"[^0-9+]", "", phone)))
    if ways:
        line = nodes.paragraph(classes=["directory-contact"])
        line += nodes.strong(text="Contact: ")
        for position, way in enumerate(ways):
            if position:
                line += nodes.Text(" or ")
            line += way
        box += line
    if entry.get("how_to_find"):
        tip = nodes.paragraph(classes=["directory-how"])
        tip += nodes.strong(text="How to find them: ")
        tip += nodes.Text(str(entry["how_to_find"]).strip())
        box += tip
    checked = entry["checked"]
    box += nodes.paragraph(
        text=f"Checked {checked.day} {checked:%B %Y}.", classes=["directory-checked"]
    )
    return box


class LocalDirectory(SphinxDirective):
    """Render the entries of one category of one list as cards."""

    has_content = False
    option_spec = {
        "category": directives.unchanged_required,
        "source": lambda value: directives.choice(value, tuple(SOURCES)),
    }

    def run(self) -> list[nodes.Node]:
        source = self.options.get("source", "local-directory")
        relative = SOURCES[source]
        path = Path(self.env.srcdir) / relative
        self.env.note_dependency(str(path))
        try:
            categories, entries = load_directory(path)
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise self.error(f"local-directory could not read {relative}: {error}") from error

        category = self.options.get("category")
        if category not in categories:
            raise self.error(f"local-directory needs :category: (one of {', '.join(categories)})")
        chosen = [entry for entry in entries if entry["category"] == category]
        if not chosen:
            raise self.error(f"local-directory: no entries with category {category!r}")

        std = self.env.get_domain("std")
        listing = nodes.container(classes=["directory-list", f"directory-{source}"])
        for entry in chosen:
            listing += card(entry, category)
            std.note_hyperlink_target(
                anchor(entry["id"]), self.env.docname, anchor(entry["id"]), str(entry["name"])
            )
        return [listing]


class DirectoryFilter(SphinxDirective):
    """The filter form for the contacts page: area, need and words."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        needs: dict[str, str] = {}
        for relative in SOURCES.values():
            path = Path(self.env.srcdir) / relative
            self.env.note_dependency(str(path))
            try:
                categories, _ = load_directory(path)
            except (OSError, ValueError, yaml.YAMLError) as error:
                raise self.error(f"directory-filter could not read {relative}: {error}") from error
            needs.update(categories)
        areas = "".join(
            f'<option value="{key}">{escape(label)}</option>' for key, label in AREAS.items()
        )
        need_options = "".join(
            f'<option value="{key}">{escape(label)}</option>' for key, label in needs.items()
        )
        html = (
            '<form class="directory-filter" role="search" aria-label="Filter the contacts and resources" hidden>'
            '<div class="directory-filter-field"><label for="directory-area">Where you work</label>'
            f'<select id="directory-area"><option value="">Anywhere</option>{areas}</select></div>'
            '<div class="directory-filter-field"><label for="directory-need">What you need</label>'
            f'<select id="directory-need"><option value="">Anything</option>{need_options}</select></div>'
            '<div class="directory-filter-field"><label for="directory-words">Words to look for</label>'
            '<input id="directory-words" type="search" autocomplete="off"></div>'
            '<p class="directory-count" aria-live="polite"></p>'
            "</form>"
        )
        return [nodes.raw("", html, format="html")]


class ResourceRole(SphinxRole):
    """``{resource}`id``` links to one entry of the book's lists."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        has_title, title, target = split_explicit_title(self.text)
        target = target.strip()
        for relative in SOURCES.values():
            self.env.note_dependency(str(Path(self.env.srcdir) / relative))
        try:
            found = load_all(Path(self.env.srcdir))
        except (OSError, ValueError, yaml.YAMLError) as error:
            message = self.inliner.reporter.error(f"resource: {error}", line=self.lineno)
            return [self.inliner.problematic(self.rawtext, self.rawtext, message)], [message]
        if target not in found:
            message = self.inliner.reporter.error(
                f"resource: no entry with id {target!r} in {', '.join(SOURCES.values())}",
                line=self.lineno,
            )
            return [self.inliner.problematic(self.rawtext, self.rawtext, message)], [message]
        _, entry = found[target]
        text = title if has_title else str(entry["name"])
        if not needs_card(entry):
            return [nodes.reference(self.rawtext, text, refuri=str(entry["url"]))], []
        xref = addnodes.pending_xref(
            self.rawtext,
            nodes.inline(text, text),
            refdomain="std",
            reftype="ref",
            reftarget=anchor(target),
            refexplicit=True,
            refwarn=True,
        )
        return [xref], []


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
    app.add_directive("directory-filter", DirectoryFilter)
    app.add_role("resource", ResourceRole())
    # Last, after other extensions have added their per-page scripts.
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    # Before the theme builds its header buttons (priority 501).
    app.connect("html-page-context", _offer_ipynb, priority=500)
    app.add_directive("message-catalogue", MessageCatalogue)
    # The templates to take away (book/data/templates.yml): the Downloads page and .docx files.
    app.setup_extension("playbook_templates")
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.3"}
