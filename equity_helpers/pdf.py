"""Print a service's workbook to one PDF for the team meeting, with headless Chromium.

The printed workbook holds everything the HTML workbook holds: every fold (dropdowns,
hidden cell outputs, toggles) is opened before printing, so long tables are on paper too.

The print is built in these steps:

1. Take the article of the front page and of each step's page, in the workbook's order.
   Open every ``<details>`` fold, take out every script, and point links and images at
   the right place in the one combined page.
2. Put a cover page in front: the service, the organisation, the data period, the date
   run and the small-number rule, and a list of contents.
3. Print with Chromium, scripts off and nothing fetched from the network. Each part
   starts a new page; every page has a running header (the service) and footer (the
   rule, and the page number).
4. Find the page each part starts on with ``pdftotext`` (poppler), write the page
   numbers into the contents and print again. Without poppler the contents have no
   page numbers.

The PDF is written under a temporary name and renamed only when it is complete, so a
failed or stopped print never leaves a PDF that looks finished. A missing or stuck
Chromium gives a message from the catalogue, not a traceback.

Example
-------
>>> from equity_helpers.pdf import print_pdf
>>> print_pdf(html_dir, html_dir.parent / "workbook.pdf", cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import WorkbookError
from .safe_html import html_text

log = logging.getLogger("equity_helpers")
ROOT = Path(__file__).resolve().parents[1]

#: Seconds one Chromium print may take before it is stopped.
PRINT_TIMEOUT = 180

#: The names Chromium is installed under, in the order they are looked for.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Headless, offline and with a throw-away profile (the same flags as the browser tests).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-pdf-header-footer",
]

# No script runs and nothing is fetched from the network: only the workbook's own files.
CONTENT_POLICY = (
    "default-src 'none'; img-src file: data:; style-src file: 'unsafe-inline'; font-src file: data:"
)

_ARTICLE = re.compile(r"<article\b[^>]*\bbd-article\b[^>]*>(.*?)</article>", re.S)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>|<script\b[^>]*/?>", re.S | re.I)
_EVENT_ATTR = re.compile(r"""\s on[a-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.I | re.X)
_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.S)
_HEADERLINK = re.compile(r"<a\b[^>]*\bheaderlink\b[^>]*>.*?</a>", re.S)
_TAG = re.compile(r"<[^>]+>")
_DETAILS = re.compile(r"<details\b(?![^>]*\sopen\b)")
_LINK = re.compile(r"<a\b([^>]*)>(.*?)</a>", re.S)
_HREF = re.compile(r"""\shref=(?:"([^"]*)"|'([^']*)')""")
_SRC = re.compile(r"""(<(?:img|source)\b[^>]*\ssrc=)(?:"([^"]*)"|'([^']*)')""")
_ROW = re.compile(r"<tr\b([^>]*)>(.*?)</tr>", re.S)
_ID = re.compile(r"""\sid=(?:"([^"]*)"|'([^']*)')""")
_STYLESHEET = re.compile(r"<link\b[^>]*\brel=\"stylesheet\"[^>]*>")
_EXTERNAL = ("http://", "https://", "mailto:")


@dataclass
class Part:
    """One page of the workbook as a part of the print: its title and its content."""

    source: str  # the page's path inside the HTML folder, such as "steps/pathway.html"
    title: str
    body: str


def find_chromium() -> str | None:
    """The Chromium (or Chrome) program on this machine, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(
    html_dir: Path,
    pdf: Path,
    cfg,
    *,
    run_date: dt.date | None = None,
    chromium: str | None = None,
    timeout: float = PRINT_TIMEOUT,
) -> Path:
    """Print the workbook in ``html_dir`` to ``pdf``, with a cover page and numbered contents.

    ``cfg`` is the service's :class:`~equity_helpers.config.ServiceConfig` (for the cover
    and the running header and footer). ``chromium`` is the program to print with (found
    on the PATH if not given); ``timeout`` is how many seconds one print may take.
    Raises :class:`~equity_helpers.errors.WorkbookError` (PDF001 to PDF003) if Chromium is
    missing, stuck or fails; no PDF is left behind then.
    """
    html_dir = Path(html_dir).resolve()
    pdf = Path(pdf)
    chromium = chromium or find_chromium()
    if not chromium:
        raise WorkbookError("PDF001", names=", ".join(CHROMIUM_NAMES[:2]))
    run_date = run_date or dt.date.today()
    parts = collect_parts(html_dir)
    pdftotext = shutil.which("pdftotext")
    partial = pdf.with_name(f".{pdf.name}.partial")
    with tempfile.TemporaryDirectory(prefix="equity-print-") as tmp:
        tmp = Path(tmp)
        page = tmp / "print.html"
        first = tmp / "first.pdf"
        starts = None
        if pdftotext:
            # The first print only finds the page each part starts on.
            page.write_text(print_html(html_dir, parts, cfg, run_date, marks=True), "utf-8")
            _run_chromium(chromium, page, first, tmp / "profile-1", timeout)
            starts = find_part_pages(first, len(parts), pdftotext)
            if starts is None:
                log.warning("The PDF's contents have no page numbers: a part was not found.")
        else:
            log.warning(
                "pdftotext (poppler-utils) is not installed: the contents have no page numbers."
            )
        page.write_text(print_html(html_dir, parts, cfg, run_date, starts=starts), "utf-8")
        final = tmp / "workbook.pdf"
        _run_chromium(chromium, page, final, tmp / "profile-2", timeout)
        try:
            shutil.copyfile(final, partial)
            os.replace(partial, pdf)
        finally:
            partial.unlink(missing_ok=True)
    return pdf


# ----------------------------------------------------------------------------- the print page


def collect_parts(html_dir: Path) -> list[Part]:
    """The front page and every step's page, in the workbook's order, ready to print."""
    from .notebooks import NOTEBOOKS

    steps_dir = html_dir / "steps"
    named = [steps_dir / f"{n.name}.html" for n in NOTEBOOKS]
    others = sorted(p for p in steps_dir.glob("*.html") if p not in named)
    pages = [html_dir / "index.html"] + [p for p in named + others if p.is_file()]
    sources = [p.relative_to(html_dir).as_posix() for p in pages]
    bodies = []
    for p in pages:
        text = p.read_text(encoding="utf-8")
        m = _ARTICLE.search(text)
        bodies.append(m.group(1) if m else "")
    ids: dict[str, int] = {}
    for body in bodies:
        for i in (a or b for a, b in _ID.findall(body)):
            ids[i] = ids.get(i, 0) + 1
    parts = []
    for k, (source, body) in enumerate(zip(sources, bodies, strict=True)):
        body = _clean(body, source, sources, ids, k)
        m = _H1.search(body)
        title = _text(m.group(1)) if m else source
        if k == 0 and m:
            # The cover carries the service's name; the front page becomes the overview.
            title = "Overview"
            body = body[: m.start()] + "<h1>Overview</h1>" + body[m.end() :]
        parts.append(Part(source, title, body))
    return parts


def _text(fragment: str) -> str:
    """The plain text of an HTML fragment (headerlinks left out)."""
    fragment = _HEADERLINK.sub("", fragment)
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


def _clean(body: str, source: str, sources: list[str], ids: dict[str, int], k: int) -> str:
    """One page's article, ready for paper: folds open, no scripts, links that still work."""
    body = _SCRIPT.sub("", body)
    body = _EVENT_ATTR.sub("", body)
    body = _DETAILS.sub("<details open", body)
    here = posixpath.dirname(source)

    def target(href: str) -> str | None:
        if href.startswith(_EXTERNAL):
            return href
        path, _, fragment = href.partition("#")
        if not path:
            page = k
        else:
            resolved = posixpath.normpath(posixpath.join(here, path))
            if resolved not in sources:
                return None  # a download or a page that is not printed: text only
            page = sources.index(resolved)
        if fragment and ids.get(fragment) == 1:
            return f"#{fragment}"
        return f"#print-part-{page}"

    def link(m: re.Match) -> str:
        attrs, inner = m.group(1), m.group(2)
        h = _HREF.search(attrs)
        if not h:
            return m.group(0)
        href = html.unescape(h.group(1) if h.group(1) is not None else h.group(2))
        new = target(href)
        if new is None:
            return f"<span>{inner}</span>"
        attrs = attrs[: h.start()] + f' href="{html_text(new)}"' + attrs[h.end() :]
        if href.startswith(_EXTERNAL) and _same_address(_text(inner), href):
            attrs = _add_class(attrs, "print-url-in-text")
        return f"<a{attrs}>{inner}</a>"

    body = _LINK.sub(link, body)

    def image(m: re.Match) -> str:
        src = html.unescape(m.group(2) if m.group(2) is not None else m.group(3))
        if not src.startswith(("data:", "http://", "https://", "/")):
            src = posixpath.normpath(posixpath.join(here, src))
        return f'{m.group(1)}"{html_text(src)}"'

    body = _SRC.sub(image, body)

    def row(m: re.Match) -> str:
        attrs, inner = m.group(1), m.group(2)
        if "<td" in inner and not _text(inner).replace("\xa0", ""):
            return f"<tr{_add_class(attrs, 'print-blank-row')}>{inner}</tr>"
        return m.group(0)

    return _ROW.sub(row, body)


def _same_address(text: str, href: str) -> bool:
    def bare(u: str) -> str:
        return re.sub(r"^(https?://|mailto:)(www\.)?", "", u.strip()).rstrip("/")

    return bare(text) == bare(href)


def _add_class(attrs: str, name: str) -> str:
    m = re.search(r"""\sclass=(["'])(.*?)\1""", attrs)
    if m:
        return attrs[: m.start(2)] + f"{m.group(2)} {name}".strip() + attrs[m.end(2) :]
    return f'{attrs} class="{name}"'


def _css_string(text: str) -> str:
    """A CSS string holding ``text`` as plain text (safe inside a <style> element)."""
    out = " ".join(str(text).split())
    for char, code in (("\\", "\\5c "), ('"', "\\22 "), ("<", "\\3c "), (">", "\\3e ")):
        out = out.replace(char, code)
    return f'"{out}"'


def print_html(
    html_dir: Path,
    parts: list[Part],
    cfg,
    run_date: dt.date,
    *,
    starts: list[int] | None = None,
    marks: bool = False,
) -> str:
    """The one page that is printed: the cover with the contents, then every part.

    ``starts`` are the page numbers of the parts (for the contents); ``marks`` adds an
    invisible mark at the start of each part so that the first print can find them.
    """
    index = (html_dir / "index.html").read_text(encoding="utf-8")
    head_end = index.find("</head>")
    links = [
        tag
        for tag in _STYLESHEET.findall(index[: head_end if head_end >= 0 else None])
        if 'href="http' not in tag
    ]
    rule = cfg.disclosure
    footer = rule.warning() or rule.describe()
    e = html_text
    facts = [
        ("Organisation", cfg.organisation or "-"),
        ("Data period", f"{cfg.period_start:%d %B %Y} to {cfg.period_end:%d %B %Y}"),
        ("Date run", f"{run_date:%d %B %Y}"),
        ("Small-number rule", rule.describe()),
    ]
    warning = rule.warning()
    entries = []
    for k, part in enumerate(parts):
        number = "00" if marks else (str(starts[k]) if starts else "")
        entries.append(
            f"<li><a href='#print-part-{k}'><span class='print-contents-title'>{e(part.title)}</span>"
            + (
                f"<span class='print-contents-leader'></span>"
                f"<span class='print-contents-page'>{number}</span>"
                if number
                else ""
            )
            + "</a></li>"
        )
    cover = (
        "<section class='print-cover'>"
        "<p class='print-kicker'>Health-inequalities workbook</p>"
        f"<h1 class='print-title'>{e(cfg.service_name)}</h1>"
        "<dl class='print-facts'>"
        + "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts)
        + "</dl>"
        + (f"<p class='print-warning'>{e(warning)}</p>" if warning else "")
        + "<nav class='print-contents' aria-label='Contents'><h2>Contents</h2><ol>"
        + "".join(entries)
        + "</ol></nav></section>"
    )
    body = [cover]
    for k, part in enumerate(parts):
        mark = f"<span class='print-mark'>{_mark(k)}</span>" if marks else ""
        body.append(f"<section class='print-part' id='print-part-{k}'>{mark}{part.body}</section>")
    # The paper rules of the book's style sheet, as they are now, then the PDF's own.
    static = ROOT / "book" / "_static"
    style = (
        (static / "playbook.css").read_text(encoding="utf-8")
        + (static / "print.css").read_text(encoding="utf-8")
        + "\n@page { @top-left { content: "
        + _css_string(cfg.service_name)
        + "; } @bottom-left { content: "
        + _css_string(footer)
        + "; } }\n"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en' data-theme='light' data-mode='light'><head>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CONTENT_POLICY}\">"
        "<meta charset='utf-8'>"
        f"<base href='{e(html_dir.as_uri())}/'>"
        f"<title>{e('Workbook: ' + cfg.service_name)}</title>"
        + "".join(links)
        + f"<style>{style}</style></head><body class='print-workbook'>"
        + "".join(body)
        + "</body></html>"
    )


def _mark(k: int) -> str:
    return f"zqprintpart{k}zq"


def find_part_pages(pdf: Path, count: int, pdftotext: str = "pdftotext") -> list[int] | None:
    """The page (from 1) each part starts on, from the marks of the first print."""
    proc = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(pdf), "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        return None
    pages = proc.stdout.split("\f")
    starts = []
    for k in range(count):
        found = next((n for n, text in enumerate(pages, 1) if _mark(k) in text), None)
        if found is None:
            return None
        starts.append(found)
    return starts


# ----------------------------------------------------------------------------- Chromium


def _run_chromium(chromium: str, page: Path, out: Path, profile: Path, timeout: float) -> None:
    """Print ``page`` to ``out``; stop Chromium (and all it started) if it takes too long."""
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={out}"]
    cmd.append(page.as_uri())
    chatter = page.with_name(f"{out.stem}.log")
    try:
        with open(chatter, "wb") as fh:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
                out.unlink(missing_ok=True)
                raise WorkbookError("PDF002", seconds=f"{timeout:g}") from None
            finally:
                _stop(proc)
    except OSError as exc:
        raise WorkbookError("PDF003", detail=exc.strerror or type(exc).__name__) from None
    if code != 0:
        raise WorkbookError("PDF003", detail=f"Chromium stopped with exit status {code}")
    if not _complete(out):
        raise WorkbookError("PDF003", detail="Chromium did not write a complete PDF")


def _stop(proc: subprocess.Popen) -> None:
    """End the Chromium process group this print started (it starts helper processes)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        elif proc.poll() is None:  # Windows: no process groups here; end the browser itself
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _complete(pdf: Path) -> bool:
    """Whether ``pdf`` is a whole PDF file: its header at the start, its end mark at the end."""
    if not pdf.is_file() or pdf.stat().st_size < 100:
        return False
    with open(pdf, "rb") as fh:
        start = fh.read(5)
        fh.seek(-64, os.SEEK_END)
        end = fh.read()
    return start == b"%PDF-" and b"%%EOF" in end
