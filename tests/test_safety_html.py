"""No user string can put markup or script into a workbook page.

A service's config and extract are free text written by people outside the project.
Here every free-text setting of the config and every category field of the extract
holds a planted payload (a script tag, an image whose error handler runs code, a
``javascript:`` link, Markdown and MyST markup). One workbook is built from them, and:

* no built file holds the payload as live markup (pages, copied sources, the search
  index, the executed notebooks' HTML outputs, images);
* the exported tables cannot run as spreadsheet formulas;
* headless Chromium opens every page (and a search for the payload) and no planted
  script runs;
* a name with an apostrophe, an ampersand, quotes and angle brackets reads exactly as
  written, never as ``&#x27;`` or ``&amp;``.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from equity_helpers.safe_html import md_text
from equity_helpers.workbook import run_workbook

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

#: The name a user might really give: every character HTML and Markdown care about.
NAME = 'St Mary\'s & "Friends" <Clinic>'


def payload(tag: str) -> str:
    """A planted string: scripts, an event handler, a javascript link and MyST markup."""
    return (
        f"{tag} <script>window.__pwned='{tag}';alert('{tag}')</script>"
        f"<img src=x onerror=\"window.__pwned='{tag}';alert(1)\">"
        f" [go](javascript:window.__pwned=1) {{download}}`x <javascript:alert(1)>`"
    )


#: For file and folder names.
FILE_PAYLOAD = "<img src=x onerror=\"window.__pwned='file';alert(1)\">"

# Markers of live markup. Escaped text (&lt;script&gt;, \\<script\\>) does not match.
LIVE = [re.compile(r"<script>window\.__pwned", re.I), re.compile(r"<img src=x onerror", re.I)]


class _LiveMarkup(HTMLParser):
    """Planted code that a browser would run: a script, an event handler, a javascript: link."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hits: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        self.in_script = tag == "script"
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on") and ("__pwned" in value or "alert(" in value):
                self.hits.append(f"<{tag} {name}={value[:40]}>")
            if name in ("href", "src", "action", "formaction") and value.lower().startswith(
                "javascript:"
            ):
                self.hits.append(f"<{tag} {name}={value[:40]}>")

    def handle_endtag(self, tag):
        self.in_script = False

    def handle_data(self, data):
        if self.in_script and "__pwned" in data:
            self.hits.append(f"<script>{data[:40]}")


def live_markup(text: str) -> list[str]:
    hits = [m.group(0) for rx in LIVE for m in rx.finditer(text)]
    parser = _LiveMarkup()
    parser.feed(text)
    parser.close()
    return hits + parser.hits


def visible(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


# ----------------------------------------------------------------------------- the build


def _plant_extract(folder: Path) -> tuple[Path, dict]:
    """The sample extract with planted labels, each given to many people."""
    df = pd.read_csv(SAMPLE / "long_covid_service_extract.csv", dtype=str, keep_default_na=False)
    df = df.iloc[:3000].copy()
    labels = {
        "sex": payload("sex"),
        "ethnicity": payload("ethnicity"),
        "religion": payload("religion"),
        "religion_mapped": payload("religion-mapped"),
        "sexual_orientation": "@SUM(1) " + payload("orientation"),
        "marital_status": '=HYPERLINK("http://x") ' + payload("marital"),
        "disability": payload("disability"),
        "discharge": payload("discharge"),
    }
    df["Gender"] = df["Gender"].replace({"2": labels["sex"]})
    df["Ethnic Category"] = df["Ethnic Category"].replace({"A": labels["ethnicity"]})
    df["Religion"] = df["Religion"].replace({"Christian": labels["religion"]})
    df["Sexual Orientation"] = df["Sexual Orientation"].replace(
        {"Heterosexual or straight": labels["sexual_orientation"]}
    )
    df["Marital Status"] = df["Marital Status"].replace({"Single": labels["marital_status"]})
    df["Disability"] = df["Disability"].replace({"Y": labels["disability"]})
    df["Discharge Reason"] = df["Discharge Reason"].replace({"Completed": labels["discharge"]})
    for column, label in (
        ("Gender", labels["sex"]),
        ("Ethnic Category", labels["ethnicity"]),
        ("Religion", labels["religion"]),
        ("Marital Status", labels["marital_status"]),
    ):
        # Never rely on a small group: each planted label is given to many people.
        assert (df[column] == label).sum() >= 100, column
    # A column of the extract whose name is itself a payload.
    df = df.rename(columns={"Pregnant": payload("column")})
    # The extract's file name is shown on the front page (a file name cannot hold "/").
    path = folder / f"extract {FILE_PAYLOAD}.csv"
    df.to_csv(path, index=False)
    return path, labels


def _plant_config(folder: Path, extract: Path, labels: dict) -> Path:
    raw = yaml.safe_load((SAMPLE / "sample_service.yml").read_text())
    raw["service"] = {
        "name": f"{NAME} {payload('name')}",
        "organisation": payload("organisation"),
        "description": payload("description"),
    }
    raw["extract"]["path"] = str(extract)
    raw["columns"]["pregnancy"] = payload("column")
    raw["values"] = {
        "sex": {labels["sex"]: "2"},
        "ethnicity": {labels["ethnicity"]: "A"},
        "religion": {"Muslim": labels["religion_mapped"]},
        "disability": {labels["disability"]: "Yes"},
        "discharge_reason": {
            labels["discharge"]: "completed",
            "Disengaged": "disengaged",
            "Discharged after DNA": "dna_discharge",
            "Transferred": "transferred",
            "Other": "other",
        },
    }
    raw["catchment"]["name"] = payload("catchment")
    raw["outcome"]["name"] = payload("outcome")
    raw["evaluation"]["focus_field"] = "religion"
    raw["evaluation"]["focus_group"] = labels["religion"]
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        raw["reference"][key] = str(SAMPLE / raw["reference"][key])
    letters = folder / f"letters {FILE_PAYLOAD}"
    shutil.copytree(SAMPLE / "letters", letters)
    # A letter's file name is shown in the readability tables.
    shutil.copy2(
        letters / "before" / "appointment-letter.txt",
        letters / "before" / f"{FILE_PAYLOAD} letter.txt",
    )
    raw["readability"] = {"before": str(letters / "before"), "after": str(letters / "after")}
    path = folder / "planted.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """One workbook built from the planted config and extract (all steps; one fails)."""
    folder = tmp_path_factory.mktemp("planted")
    extract, labels = _plant_extract(folder)
    config = _plant_config(folder, extract, labels)
    # One step fails with the service's name in its message, to show the failed-step page.
    notebooks = folder / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    broken = notebooks / "data-completeness.md"
    broken.write_text(
        broken.read_text()
        + "\n```{code-cell} ipython3\nraise RuntimeError(svc.cfg.service_name)\n```\n"
    )
    result = run_workbook(config, folder / "out", jobs=2, notebook_dir=notebooks)
    statuses = {s.name: s.status for s in result.steps}
    assert statuses.pop("data-completeness") == "failed"
    assert set(statuses.values()) == {"ok"}, [s.message for s in result.failures]
    return result


def _html_dir(result) -> Path:
    return result.out_dir / "html"


# ----------------------------------------------------------------------------- files


@pytest.mark.slow
def test_no_built_file_holds_live_markup(planted):
    found = {}
    files = [p for p in planted.out_dir.rglob("*") if p.is_file()]
    checked = 0
    for path in files:
        rel = str(path.relative_to(planted.out_dir))
        if "_static" in path.parts:
            continue  # the themes' own scripts and styles, copied as they are
        if path.suffix in (".html", ".js", ".svg", ".md", ".txt", ".css", ".xml"):
            text = path.read_text(encoding="utf-8", errors="replace")
            checked += 1
        elif path.suffix == ".ipynb":
            # Plain-text outputs are text; what a page or JupyterLab renders must be safe.
            nb = json.loads(path.read_text(encoding="utf-8"))
            parts = []
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    parts.append("".join(cell["source"]))
                for out in cell.get("outputs", []):
                    for mime in ("text/html", "text/markdown", "image/svg+xml"):
                        value = out.get("data", {}).get(mime, "")
                        parts.append("".join(value) if isinstance(value, list) else value)
            text = "\n".join(parts)
            checked += 1
        else:
            continue
        hits = live_markup(text)
        if hits:
            found[rel] = hits[:3]
    assert checked > 30
    assert not found, found


@pytest.mark.slow
def test_the_payloads_reached_the_pages(planted):
    """Guard: the checks above mean something only if the planted strings got through."""
    html_dir = _html_dir(planted)
    pages = {p.name: p.read_text(encoding="utf-8") for p in html_dir.rglob("*.html")}
    everything = "\n".join(pages.values())
    for tag in ("name", "organisation", "religion", "religion-mapped", "marital", "orientation"):
        assert f"{tag} &lt;script&gt;window.__pwned=" in everything, tag
    for tag in ("outcome", "catchment"):
        assert f"{tag} &lt;script&gt;window.__pwned=" in everything, tag
    # The category labels reach the gaps and summary pages (through the pandas Styler).
    gaps = pages["access-and-outcome-gaps.html"]
    for tag in ("religion", "religion-mapped", "marital", "orientation"):
        assert f"{tag} &lt;script&gt;window.__pwned=" in gaps, tag
    assert "orientation &lt;script&gt;window.__pwned=" in pages["summary-and-plan.html"]
    assert "<td><p>extract &lt;img src=x onerror=" in pages["index.html"]
    assert "letter.txt" in pages["readability.html"]


@pytest.mark.slow
def test_exported_tables_cannot_run_as_formulas(planted):
    seen = 0
    for path in (planted.out_dir / "tables").glob("*.xlsx"):
        for row in openpyxl.load_workbook(path).active.iter_rows(values_only=True):
            for value in row:
                if isinstance(value, str):
                    seen += "HYPERLINK" in value or "@SUM" in value
                    assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (
                        path.name,
                        value,
                    )
    for path in (planted.out_dir / "tables").glob("*.csv"):
        for row in pd.read_csv(path, comment="#", dtype=str).astype(str).itertuples():
            for value in row[1:]:
                assert not value.startswith(("=", "@", "\t", "\r")), (path.name, value)
    assert seen, "the formula-like labels did not reach any exported table"


# ----------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def served(planted):
    handler = functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(_html_dir(planted)),
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: install it (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def _pages(html_dir: Path) -> list[str]:
    return sorted(
        str(p.relative_to(html_dir))
        for p in html_dir.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts
    )


def _visible(page) -> str:
    # The book's typography curls quotes; the name must otherwise read exactly as written.
    text = page.inner_text("body") + "\n" + page.title()
    for curly, straight in (("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"')):
        text = text.replace(curly, straight)
    return text


@pytest.mark.browser
def test_no_planted_script_runs_in_the_browser(planted, served, browser):
    urls = _pages(_html_dir(planted)) + ["search.html?q=pwned", "search.html?q=Mary"]
    assert len(urls) >= 10
    context = browser.new_context()
    dialogs = []
    context.on(
        "page", lambda pg: pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    )
    page = context.new_page()
    pwned, found = {}, {}
    for url in urls:
        page.goto(f"{served}/{url}")
        page.wait_for_load_state("load")
        if "?q=" in url:
            page.wait_for_function(
                "() => (document.querySelector('#search-results h2') || {}).textContent"
                " === 'Search Results'",
                timeout=20000,
            )
            found[url] = page.locator("#search-results li").count()
        page.wait_for_timeout(100)
        value = page.evaluate("typeof window.__pwned === 'undefined' ? null : window.__pwned")
        if value is not None:
            pwned[url] = value
    context.close()
    assert not pwned, pwned
    assert not dialogs, dialogs
    # The searches did list pages whose titles hold the planted strings.
    assert found["search.html?q=Mary"] >= 1 and found["search.html?q=pwned"] >= 1, found


@pytest.mark.browser
def test_the_name_reads_as_written(planted, served, browser):
    html_dir = _html_dir(planted)
    context = browser.new_context()
    page = context.new_page()
    checked = 0
    for url in _pages(html_dir):
        if url in ("search.html", "genindex.html"):
            continue
        page.goto(f"{served}/{url}")
        text = _visible(page)
        for bad in ("&#x27;", "&#39;", "&amp;", "&lt;", "&gt;", "&quot;", "\\<", "\\&"):
            assert bad not in text, (url, bad)
        # Every page names the workbook in its title (the theme's title slots).
        assert NAME in page.title().replace("\u2019", "'").replace("\u201c", '"').replace(
            "\u201d", '"'
        ), (url, page.title())
        checked += 1
    page.goto(f"{served}/index.html")
    front = _visible(page)
    assert f"{NAME} name <script>window.__pwned='name'" in front
    assert "organisation <script>window.__pwned='organisation'" in front
    page.goto(f"{served}/steps/data-completeness.html")
    failed = _visible(page)
    assert "This step did not run" in failed and NAME in failed
    context.close()
    assert checked >= 9


# ----------------------------------------------------------------------------- fast checks


@pytest.mark.parametrize(
    "text",
    [NAME, payload("x"), "a|b", "*bold* _it_ `code` $x$ {role}`y` [l](u) \\ # ~ ^", "&amp; &#x27;"],
)
def test_md_text_reads_back_as_written(text):
    """Markdown-escaped text renders as exactly the same visible text (no entity shown)."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(md_text(text))
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip() == text
    assert not live_markup(rendered)


def test_tables_escape_cells_labels_and_caption_once():
    from equity_helpers import display as D

    label = payload("cell")
    df = pd.DataFrame({"Group": [label, NAME], label: ["1", "2"], "%": [10.0, None]})
    html_out = D.table(df, caption=NAME, percents=["%"]).to_html()
    assert not live_markup(html_out)
    # The caption, a cell and a column label each read exactly as written.
    assert visible(html_out).count(NAME) == 2
    assert visible(html_out).count(label) == 2
    assert "&amp;lt;" not in html_out and "&amp;#" not in html_out


def test_a_text_note_in_a_number_column_is_shown():
    """A note in a column of numbers (a letter missing from one folder) does not stop the table."""
    from equity_helpers import display as D

    df = pd.DataFrame({"Document": ["a", "b"], "Reading ease": [61.04, "not in this folder"]})
    assert "not in this folder" in D.table(df, caption="x", numbers=["Reading ease"]).to_html()


def test_theme_slots_are_escaped_once_wherever_the_theme_writes_them():
    from jinja2 import Environment
    from markupsafe import Markup

    from equity_helpers.safe_html import RAW_SLOTS, _mark_safe

    context = {key: f"{NAME} {payload(key)}" for key in RAW_SLOTS}
    context["title"] = Markup("Already &amp; safe")
    _mark_safe(None, "index", "page.html", context, None)
    _mark_safe(None, "index", "page.html", context, None)  # a second pass changes nothing
    assert context["title"] == "Already &amp; safe"
    # The themes write some slots raw, some through |e or |striptags|e.
    env = Environment()
    for key in RAW_SLOTS:
        raw = f"{NAME} {payload(key)}"
        for form in ("{{ v }}", "{{ v|e }}", "{{ v|striptags|e }}"):
            out = env.from_string(form).render(v=context[key])
            assert not live_markup(out), (key, form)
            assert html.unescape(out) == raw, (key, form, out)
    # The logo's alt text is built with % and written raw into an attribute.
    logo = '{% set alt = "%s - Home" % docstitle %}<img alt="{{ alt }}">'
    out = env.from_string(logo).render(docstitle=context["docstitle"])
    assert not live_markup(out)
    assert html.unescape(re.fullmatch(r'<img alt="([^"]*)">', out).group(1)) == (
        f"{NAME} {payload('docstitle')} - Home"
    )


def test_index_of_several_services_escapes_names_once(tmp_path):
    from equity_helpers.workbook import WorkbookResult, write_index

    results = [
        WorkbookResult(NAME, "st-marys", tmp_path / "st-marys", []),
        WorkbookResult(payload("failed"), "failed", tmp_path / "failed", [], error=payload("err")),
    ]
    text = write_index(results, tmp_path).read_text()
    assert not live_markup(text)
    assert "St Mary&#x27;s &amp; &quot;Friends&quot; &lt;Clinic&gt;" in text
    assert "&amp;amp;" not in text and "&amp;lt;" not in text


def test_chart_text_is_escaped_in_svg():
    import io

    import matplotlib

    matplotlib.use("Agg")
    from equity_helpers import plots as P

    label = payload("chart")
    table = pd.DataFrame(
        {"group": [label, "B"], "pct": [10.0, 20.0], "lower": [8, 18], "upper": [12, 22]}
    )
    ax = P.bar_ci(table, title=label, xlabel=label)
    for fonttype in ("path", "none"):
        with matplotlib.rc_context({"svg.fonttype": fonttype}):
            buffer = io.StringIO()
            ax.figure.savefig(buffer, format="svg")
        assert not live_markup(buffer.getvalue()), fonttype
