"""The one place where user text is made safe for the workbook's pages.

A service's name, its organisation, the labels in its extract and the names of its
files are written by people outside the project. None of them may become markup or
script in a page. Each route into a page escapes exactly once, here:

* :func:`html_text` for text placed straight into HTML (the multi-service index page,
  table captions);
* :func:`md_text` for text placed into MyST Markdown (the workbook's own pages,
  Markdown shown by a notebook). Markdown then renders it as plain text, and Sphinx
  escapes it for HTML, so it is never escaped twice;
* :func:`safe_table` for tables shown with the pandas Styler, which otherwise writes
  cells and labels into the page as raw HTML;
* the Sphinx extension in this module (:func:`setup`) for the slots where the theme
  writes the book's title, author and footer without escaping them, and for the
  section titles the search page shows as HTML.

Examples
--------
>>> html_text("St Mary's & <Clinic>")
'St Mary&#x27;s &amp; &lt;Clinic&gt;'
>>> md_text("St Mary's & <Clinic>")
"St Mary\\\\'s \\\\& \\\\<Clinic\\\\>"
"""

from __future__ import annotations

import html
import re
import string
from typing import Any

from markupsafe import Markup

# Every ASCII punctuation character can be escaped with a backslash in CommonMark, and
# MyST's roles, substitutions, maths and targets all start with one of them.
_MD_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")

#: Template values that the themes write into every page, some unescaped.
RAW_SLOTS = (
    "docstitle",
    "shorttitle",
    "root_title",
    "pagetitle",
    "page_description",
    "author",
    "project",
    "copyright",
    "theme_extra_footer",
)


def html_text(value: Any) -> str:
    """User text ready to go straight into HTML, as element content or an attribute."""
    return html.escape(str(value), quote=True)


def md_text(value: Any) -> str:
    """User text ready to go into MyST Markdown on one line (a heading, a table cell).

    Every punctuation character is backslash-escaped, so no HTML, link, role, maths or
    table cell break can start; line breaks become spaces. The text reads exactly as
    written once rendered: no character entity is ever shown.
    """
    text = re.sub(r"\s*[\r\n]+\s*", " ", str(value))
    return _MD_SPECIAL.sub(r"\\\1", text)


def safe_table(styler):
    """A pandas Styler whose cells, column labels and row labels are escaped as HTML.

    The Styler writes cell values and labels into its HTML as they are; a category
    label from an extract such as ``<img src=x onerror=...>`` would run. Formats set
    earlier on the Styler are replaced: format the values before styling them.
    """
    styler = styler.format(escape="html")
    for axis in (0, 1):
        styler = styler.format_index(escape="html", axis=axis)
        # The names of the row and column labels (a two-way table's corner).
        styler = styler.format_index_names(escape="html", axis=axis)
    return styler


def _mark_safe(app, pagename, templatename, context, doctree) -> None:
    """Escape the values the themes may write raw, once, and mark them as safe.

    A value marked safe is not escaped again where a template does escape it (``|e``),
    so the same value reads correctly in every slot.
    """
    for key in RAW_SLOTS:
        value = context.get(key)
        if isinstance(value, str) and not isinstance(value, Markup):
            context[key] = Markup(html_text(value))


def _escape_search_titles(app, docname, source) -> None:
    """Keep the search index's section titles as escaped HTML, as its page titles are.

    Sphinx stores section titles as plain text, but its search page writes them into
    the results as HTML. The indexer's ``feed`` is wrapped once, so each page's titles
    are escaped as they are indexed (and stored escaped, so never escaped twice).
    """
    indexer = getattr(app.builder, "indexer", None)
    if indexer is None or getattr(indexer, "_titles_escaped", False):
        return
    feed = indexer.feed

    def escaped_feed(docname, filename, title, doctree):
        feed(docname, filename, title, doctree)
        titles = getattr(indexer, "_all_titles", {})
        if docname in titles:
            titles[docname] = [(html_text(t), anchor) for t, anchor in titles[docname]]

    indexer.feed = escaped_feed
    indexer._titles_escaped = True


def _wrap_indexer(app, doctree, docname) -> None:
    _escape_search_titles(app, docname, None)


def setup(app):
    """Sphinx extension: the workbook's title, author and footer are escaped once."""
    # After the themes have filled in their own values (they use the default priority).
    app.connect("html-page-context", _mark_safe, priority=900)
    # The indexer exists once writing starts; each page is resolved before it is indexed.
    app.connect("doctree-resolved", _wrap_indexer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
