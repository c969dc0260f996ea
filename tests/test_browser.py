"""The book and the sample workbook in a real browser (Debian's Chromium, headless):
navigation, search, charts, phone width, keyboard focus and axe-core accessibility checks."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-output"
# WCAG 2.2 A and AA rules (axe-core tags).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# Every rule runs on every node; axe details only the violations (it lists passes,
# inapplicable and incomplete rules by name with one example node, which nothing here reads).
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": WCAG_TAGS},
    "resultTypes": ["violations"],
}
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book, sample_workbook):
    """Serve the built book and the sample workbook on localhost."""
    out, proc, _ = sample_workbook
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    workbook_html = (
        next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) / "html"
    )
    root = OUT / "site"
    root.mkdir(parents=True, exist_ok=True)
    for name, target in (("book", built_book), ("workbook", workbook_html)):
        link = root / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    # Browsers ask the server root for /favicon.ico (the book's index page only forwards
    # to the landing page, so it names no icon); a hosted site has one there.
    shutil.copy2(ROOT / "book" / "_static" / "favicon.svg", root / "favicon.ico")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", built_book, workbook_html
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


def all_pages(html_dir: Path) -> list[str]:
    skip = {"search.html", "genindex.html"}
    # The book's own index.html only forwards to its landing page.
    redirect = html_dir / "index.html"
    if 'http-equiv="Refresh"' in redirect.read_text(encoding="utf-8"):
        skip_paths = {redirect}
    else:
        skip_paths = set()
    return sorted(
        str(p.relative_to(html_dir))
        for p in html_dir.rglob("*.html")
        if p.name not in skip
        and p not in skip_paths
        and "_static" not in p.parts
        and "_sources" not in p.parts
    )


def test_landing_page_and_screenshots(site, page):
    base, _, _ = site
    # The book's index page forwards to its landing page.
    page.goto(f"{base}/book/index.html")
    page.wait_for_url("**/book/intro.html")
    assert "Health inequalities playbook" in page.title()
    assert page.locator("article.bd-article h1").count() == 1
    shots = OUT / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "book-landing.png"), full_page=False)
    page.goto(f"{base}/workbook/index.html")
    assert "Derbyshire Long COVID Rehabilitation Service" in page.locator("main").inner_text()
    assert "Rows read from the extract" in page.locator("main").inner_text()
    page.screenshot(path=str(shots / "workbook-front.png"), full_page=False)
    assert page.errors == []


def test_table_of_contents_reaches_every_part(site, page):
    base, _, _ = site
    page.goto(f"{base}/book/book/intro.html")
    for part in ("Part 1", "Part 2", "Part 3", "Part 4", "Part 5"):
        link = page.locator("nav.bd-docs-nav a", has_text=part).first
        link.click()
        page.wait_for_load_state()
        assert part in page.locator("article.bd-article h1").inner_text(), part
        page.go_back()


def test_search_finds_core20(site, page):
    base, _, _ = site
    page.goto(f"{base}/book/search.html?q=Core20")
    page.wait_for_selector("#search-results li", timeout=20000)
    hrefs = page.locator("#search-results li a").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    assert any("step-3-local-data" in (h or "") for h in hrefs), hrefs


def test_notebook_pages_show_their_charts(site, page):
    base, book, _ = site
    pages = sorted(p.name for p in (book / "notebooks").glob("*.html"))
    assert len(pages) >= 8
    checked = 0
    for name in pages:
        page.goto(f"{base}/book/notebooks/{name}")
        imgs = page.locator("main img")
        sizes = imgs.evaluate_all(
            "els => els.map(e => [e.complete, e.naturalWidth, e.getAttribute('alt')])"
        )
        if name.startswith(("training", "summary-and-plan")) and not sizes:
            continue  # these pages hold tables and plans, not charts
        assert sizes, f"no charts on {name}"
        for complete, width, alt in sizes:
            assert complete and width > 0, name
            assert alt and alt.strip(), f"an image on {name} has no alt text"
        checked += 1
    assert checked >= 6
    assert page.errors == []


def test_phone_width_has_no_sideways_scrolling(browser, site):
    base, book, workbook = site
    context = browser.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    pg = context.new_page()
    for url in (
        "book/book/intro.html",
        "book/book/part-1/step-3-local-data.html",
        "book/notebooks/who-uses-the-service.html",
        "workbook/index.html",
    ):
        pg.goto(f"{base}/{url}")
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 375 + 1, f"{url} is {width}px wide at phone width"
    context.close()


def test_keyboard_focus_is_visible(site, page):
    base, _, _ = site
    page.goto(f"{base}/book/book/intro.html")
    for _ in range(3):
        page.keyboard.press("Tab")
    style = page.evaluate("""() => { const e = document.activeElement; const s = getComputedStyle(e);
        return [e.tagName, s.outlineStyle, s.outlineWidth, s.boxShadow]; }""")
    tag, outline_style, outline_width, shadow = style
    assert tag != "BODY"
    assert (outline_style != "none" and outline_width != "0px") or shadow != "none", style


def _headings_in_order(page) -> list[str]:
    levels = page.locator(
        "article h1, article h2, article h3, article h4, article h5, article h6"
    ).evaluate_all("els => els.map(e => parseInt(e.tagName[1]))")
    problems = []
    if levels and levels[0] != 1:
        problems.append("first heading is not h1")
    if levels.count(1) != 1:
        problems.append(f"{levels.count(1)} h1 headings")
    for a, b in zip(levels, levels[1:], strict=False):
        if b > a + 1:
            problems.append(f"h{a} followed by h{b}")
    return problems


def start_axe(pg) -> None:
    """Start axe-core on the page in ``pg`` and return at once: the check runs in the
    page's own browser process while the caller goes on (see :func:`axe_violations`)."""
    from axe_playwright_python.base import AXE_SCRIPT  # axe-core, as the package ships it

    pg.evaluate(AXE_SCRIPT)
    pg.evaluate(f"() => {{ window.__axeResults = axe.run({json.dumps(AXE_OPTIONS)}); }}")


def axe_violations(pg) -> list[dict]:
    """The violations axe-core found on the page in ``pg``, waiting for it to finish."""
    return pg.evaluate("() => window.__axeResults.then(results => results.violations)")


def test_the_axe_options_still_report_a_violation(page):
    """The options the page-by-page check uses leave violations reported in full."""
    page.set_content(
        '<html lang="en"><head><title>Check</title></head><body><main><h1>Check</h1>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main></body></html>'
    )
    start_axe(page)
    violations = axe_violations(page)
    image_alt = [v for v in violations if v["id"] == "image-alt"]
    assert image_alt and image_alt[0]["impact"] == "critical", violations
    assert len(image_alt[0]["nodes"]) == 2, image_alt


#: Pages checked at once, each in a browser context of its own (a process of its own).
AXE_LANES = 2


def test_accessibility_of_every_page(site, browser):
    """axe-core on every page of the book and the workbook: no serious or critical
    WCAG 2.2 A/AA violations; headings in order; every image has alt text.

    Two pages are checked at once: while axe-core works on one page, the next is loaded
    in a second browser context and its check started."""
    base, book, workbook = site
    report = {"pages": 0, "violations": 0, "serious_or_critical": [], "heading_problems": []}

    def finish(pg, where: str) -> None:
        violations = axe_violations(pg)
        report["pages"] += 1
        report["violations"] += len(violations)
        for v in violations:
            if v["impact"] in ("serious", "critical"):
                report["serious_or_critical"].append(
                    {
                        "page": where,
                        "rule": v["id"],
                        "impact": v["impact"],
                        "nodes": [n["target"] for n in v["nodes"][:3]],
                    }
                )
        for problem in _headings_in_order(pg):
            report["heading_problems"].append(f"{where}: {problem}")
        missing_alt = pg.locator("main img:not([alt]), main img[alt='']").count()
        if missing_alt:
            report["serious_or_critical"].append({"page": where, "rule": "img-alt-missing"})

    urls = [
        f"{prefix}/{rel}"
        for prefix, folder in (("book", book), ("workbook", workbook))
        for rel in all_pages(folder)
    ]
    contexts = [
        browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(AXE_LANES)
    ]
    lanes = [(context.new_page(), []) for context in contexts]
    try:
        for i, where in enumerate(urls):
            pg, busy = lanes[i % AXE_LANES]
            if busy:
                finish(pg, busy.pop())
            pg.goto(f"{base}/{where}")
            start_axe(pg)
            busy.append(where)
        for pg, busy in lanes:
            if busy:
                finish(pg, busy.pop())
    finally:
        for context in contexts:
            context.close()
    (OUT / "accessibility.json").write_text(json.dumps(report, indent=2))
    assert report["pages"] == len(urls) >= 40
    assert report["violations"] == 0, json.dumps(report, indent=1)[:3000]
    assert report["serious_or_critical"] == [], json.dumps(
        report["serious_or_critical"][:10], indent=1
    )
    assert report["heading_problems"] == [], report["heading_problems"][:10]


PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    pg = context.new_page()
    yield pg
    context.close()


#: Each SVG chart on the page as shown: its box, its own (natural) size, and whether the
#: output box around it scrolls sideways.
CHART_BOXES_JS = """() => [...document.querySelectorAll('main img')]
    .filter(e => e.currentSrc.endsWith('.svg'))
    .map(e => { const b = e.getBoundingClientRect(); const box = e.closest('.cell_output');
        return {src: e.currentSrc.split('/').pop(), left: b.left, right: b.right,
                width: b.width, height: b.height, naturalWidth: e.naturalWidth,
                naturalHeight: e.naturalHeight,
                scrolls: box ? box.scrollWidth > box.clientWidth + 1 : false}; })"""


def test_no_page_scrolls_sideways_on_a_phone(site, phone):
    """At 390 px wide, no page of the book or the sample workbook is wider than the
    screen: wide tables scroll inside their own box, and every chart fits the screen, its
    height scaled with its width, without a box to scroll."""
    base, book, workbook = site
    wide = []
    checked = charts = 0
    for prefix, folder in (("book", book), ("workbook", workbook)):
        for rel in all_pages(folder):
            phone.goto(f"{base}/{prefix}/{rel}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            checked += 1
            if width > PHONE["width"] + 1:
                wide.append(f"{prefix}/{rel}: {width}px")
            for chart in phone.evaluate(CHART_BOXES_JS):
                charts += 1
                where = f"{prefix}/{rel} {chart['src']}"
                if chart["left"] < -1 or chart["right"] > PHONE["width"] + 1:
                    wide.append(
                        f"{where}: chart from {chart['left']:.0f} to {chart['right']:.0f}px"
                    )
                if chart["scrolls"]:
                    wide.append(f"{where}: the chart's box scrolls sideways")
                shape = chart["height"] / chart["width"]
                own = chart["naturalHeight"] / chart["naturalWidth"]
                if abs(shape - own) > 0.02 * own:
                    wide.append(f"{where}: squashed ({shape:.3f} against {own:.3f})")
    assert checked >= 40
    assert charts >= 20, f"only {charts} SVG charts found"
    assert wide == [], wide


def test_home_page_table_becomes_one_card_per_part_on_a_phone(site, phone):
    base, _, _ = site
    phone.goto(f"{base}/book/book/intro.html")
    rows = phone.locator("table.reflow-table tbody tr")
    assert rows.count() == 5
    cards = rows.evaluate_all(
        """rows => rows.map(r => { const b = r.getBoundingClientRect();
            return [getComputedStyle(r).display, b.left, b.right,
                    r.querySelector('td').getAttribute('data-label')]; })"""
    )
    for display, left, right, label in cards:
        assert display == "block"
        assert left >= 0 and right <= PHONE["width"]
        assert label == "Part"  # each cell is labelled with its column's name


#: The size of the page's own small print: a <small> element in the article.
SMALL_PRINT_JS = """() => {
    const article = document.querySelector('article.bd-article') || document.querySelector('main');
    const probe = document.createElement('small');
    probe.textContent = 'x';
    article.appendChild(probe);
    const size = parseFloat(getComputedStyle(probe).fontSize);
    probe.remove();
    return size;
}"""

#: For each SVG chart on the page: its smallest text as shown, in CSS pixels
#: (the SVG's font sizes are in its own units; the image's shown width scales them).
CHART_TEXT_JS = """async () => {
    const out = [];
    for (const img of document.querySelectorAll('main img')) {
        if (!img.currentSrc.endsWith('.svg')) continue;
        const svg = await (await fetch(img.currentSrc)).text();
        const box = svg.match(/viewBox="([-\\d. ]+)"/)[1].split(' ').map(Number);
        const sizes = [...svg.matchAll(/font-size: ?([\\d.]+)px/g)].map(m => Number(m[1]));
        const texts = (svg.match(/<text\\b/g) || []).length;
        const next = img.nextElementSibling;
        const full = next && next.matches('p.chart-full-size:not([hidden])')
            ? next.querySelector('a').href : null;
        out.push({src: img.currentSrc.split('/').pop(), texts, sizes: sizes.length,
                  smallest: Math.min(...sizes) * img.getBoundingClientRect().width / box[2],
                  full, same: full === img.currentSrc});
    }
    return out;
}"""


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, PHONE], ids=["1280", "390"])
def test_chart_and_table_text_is_never_below_small_print(browser, site, viewport):
    """Chart text (SVG text, as shown) and table text are at least the page's small print,
    on a desktop and on a phone, in the book and in the workbook. On a phone a chart
    shrinks to the screen's width: its text may then be smaller, but the chart then has a
    link under it that opens it at full size. The smallest chart text each width ends up
    with is written to test-output/chart-text-<width>.json."""
    base, book, workbook = site
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500)
    pg = context.new_page()
    pages = [f"book/notebooks/{p.name}" for p in sorted((book / "notebooks").glob("*.html"))]
    pages += [f"workbook/steps/{p.name}" for p in sorted((workbook / "steps").glob("*.html"))]
    too_small, charts, png, shown = [], 0, [], []
    for url in pages:
        pg.goto(f"{base}/{url}")
        small = pg.evaluate(SMALL_PRINT_JS)
        for chart in pg.evaluate(CHART_TEXT_JS):
            charts += 1
            shown.append({"page": url, **chart})
            assert chart["texts"] > 0 and chart["sizes"] > 0, f"{url}: chart text is not text"
            if chart["smallest"] < small - 0.05 and not chart["same"]:
                too_small.append(
                    f"{url} {chart['src']}: {chart['smallest']:.1f}px < {small}px "
                    "and no link opens it at full size"
                )
        png += [f"{url}: {s}" for s in pg.locator("main img[src$='.png']").evaluate_all(
            "els => els.map(e => e.getAttribute('src'))")]  # fmt: skip
        # A box that scrolls sideways can be reached, and scrolled, with the keyboard.
        unreachable = pg.locator(".bd-article .cell_output").evaluate_all(
            """els => els.filter(e => e.scrollWidth > e.clientWidth + 1
                && e.getAttribute('tabindex') !== '0').length"""
        )
        if unreachable:
            too_small.append(
                f"{url}: {unreachable} sideways-scrolling box(es) not reachable by Tab"
            )
        cells = pg.locator("main td, main th").evaluate_all(
            "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))"
        )
        if cells and min(cells) < small - 0.05:
            too_small.append(f"{url}: table text {min(cells)}px < {small}px")
    context.close()
    smallest = min((c["smallest"] for c in shown), default=None)
    (OUT / f"chart-text-{viewport['width']}.json").write_text(
        json.dumps({"smallest_px": smallest, "charts": shown}, indent=1)
    )
    if viewport["width"] >= 1000:  # on a desktop, chart text is never much below small print
        assert smallest >= 0.9 * small, f"chart text {smallest:.1f}px on a desktop"
    assert charts >= 20, f"only {charts} SVG charts found"
    assert png == [], f"charts still drawn as PNG: {png[:5]}"
    assert too_small == [], too_small[:10]


def test_contacts_filter_works_by_keyboard_with_cards_on_a_phone(site, phone):
    base, _, _ = site
    phone.goto(f"{base}/book/book/reference/local-contacts.html")
    shown = "els => els.filter(e => !e.hidden).map(e => e.id)"
    every = phone.eval_on_selector_all(".directory-entry", shown)
    assert len(every) > 20
    # Cards: one column, each as wide as the list and inside the screen.
    boxes = phone.locator(".directory-entry").evaluate_all(
        "els => els.slice(0, 6).map(e => { const b = e.getBoundingClientRect(); return [b.left, b.right, b.top]; })"
    )
    lefts = {round(left) for left, _, _ in boxes}
    assert len(lefts) == 1, "cards are not in one column on a phone"
    assert all(right <= PHONE["width"] for _, right, _ in boxes)
    assert [top for _, _, top in boxes] == sorted(top for _, _, top in boxes)

    # Only the keyboard from here: Tab into the form, choose with the arrow keys, type words.
    phone.locator("#directory-area").focus()
    phone.keyboard.press("Shift+Tab")
    for _ in range(10):
        if phone.evaluate("document.activeElement.id") == "directory-area":
            break
        phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "directory-area"
    options = phone.eval_on_selector_all("#directory-area option", "els => els.map(e => e.value)")
    for _ in range(options.index("bolsover")):
        phone.keyboard.press("ArrowDown")
    assert phone.input_value("#directory-area") == "bolsover"
    bolsover = phone.eval_on_selector_all(".directory-entry", shown)
    assert "contact-bolsover-cvs" in bolsover
    assert "contact-community-action-derby" not in bolsover
    assert len(bolsover) < len(every)
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "directory-need"
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.id") == "directory-words"
    phone.keyboard.type("cvs")
    both = phone.eval_on_selector_all(".directory-entry", shown)
    assert "contact-bolsover-cvs" in both and len(both) < len(bolsover)
    count = phone.inner_text(".directory-count")
    assert count == f"Showing {len(both)} of {len(every)} entries."
    # The count is announced to screen readers as it changes.
    assert phone.get_attribute(".directory-count", "aria-live") == "polite"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
