"""The printed workbook (`--pdf`): what the HTML workbook holds is on paper, laid out for a
meeting, and a missing, stuck or failing Chromium gives a plain message and no PDF.

The sample's PDF is built once for the module and read back with poppler's `pdftotext`.
A few pages are rendered as PNG into test-output/pdf/ for a person to look at.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from equity_helpers.config import load_config
from equity_helpers.errors import CATALOGUE, WorkbookError
from equity_helpers.pdf import collect_parts, print_html, print_pdf
from equity_helpers.workbook import HEADLINES, StepResult, WorkbookResult

pytestmark = [pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"
CHROMIUM = Path("/usr/bin/chromium")
PNG_DIR = ROOT / "test-output" / "pdf"


def need_tools():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium).")
    if not shutil.which("pdftotext") or not shutil.which("pdftoppm"):
        pytest.fail("poppler is missing: `make test` installs it (apt-get install poppler-utils).")


def norm(text: str) -> str:
    return " ".join(text.split())


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, flags=re.M).group(1))


def page_text(pdf: Path, n: int) -> str:
    proc = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-f", str(n), "-l", str(n), str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return norm(proc.stdout)


def pdf_text(pdf: Path) -> str:
    """The whole PDF's text in the order it was written, so a table heading that wraps
    inside its cell reads as one phrase (the default order mixes the cells' lines)."""
    proc = subprocess.run(
        ["pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return norm(proc.stdout)


class CellText(HTMLParser):
    """The text of every table heading, caption and cell inside a page's article."""

    CELLS = {"th", "td", "caption"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_article = 0
        self.current: list[str] | None = None
        self.kind = ""
        self.cells: list[tuple[str, str]] = []
        self.h1: list[str] = []
        self._h1: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article" and "bd-article" in (attrs.get("class") or ""):
            self.in_article += 1
        elif self.in_article and tag in self.CELLS:
            self.current, self.kind = [], tag
        elif self.in_article and tag == "h1" and not self.h1:
            self._h1 = []
        elif tag == "a" and "headerlink" in (attrs.get("class") or ""):
            self._skip += 1
        elif tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag == "article" and self.in_article:
            self.in_article -= 1
        elif tag == self.kind and self.current is not None:
            text = norm("".join(self.current))
            if text:
                self.cells.append((tag, text))
            self.current = None
        elif tag == "h1" and self._h1 is not None:
            self.h1.append(norm("".join(self._h1)))
            self._h1 = None
        elif tag in ("a", "style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if self._skip:
            return
        if self.current is not None:
            self.current.append(data)
        if self._h1 is not None:
            self._h1.append(data)


def read_cells(page: Path) -> CellText:
    parser = CellText()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def printed(sample_folder, tmp_path_factory):
    """The shared sample workbook printed once, as `--pdf` prints it; its pages' text.

    The PDF is printed with the runner's own ``print_pdf`` from the published HTML into a
    folder of its own (the shared workbook is only read). `--pdf` through the runner is
    checked in test_workbook_options.py.
    """
    need_tools()
    cfg = load_config(SAMPLE_CFG)
    manifest = json.loads((sample_folder / "manifest.json").read_text(encoding="utf-8"))
    steps = [StepResult(**s) for s in manifest["steps"]]
    result = WorkbookResult(cfg.service_name, sample_folder.name, sample_folder, steps)
    assert result.ok, [s.message for s in result.failures]
    pdf = print_pdf(sample_folder / "html", tmp_path_factory.mktemp("print") / "workbook.pdf", cfg)
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    result.pdf = pdf
    pages = [page_text(pdf, n) for n in range(1, page_count(pdf) + 1)]
    # Pages for a person to look at: the cover, the first step and the longest table.
    shutil.rmtree(PNG_DIR, ignore_errors=True)
    PNG_DIR.mkdir(parents=True)
    table_page = next(
        (n for n, t in enumerate(pages, 1) if "Every measure for every group (percentages)" in t),
        len(pages),
    )
    for name, n in (("cover", 1), ("overview", 2), ("every-measure", table_page)):
        subprocess.run(
            ["pdftoppm", "-r", "60", "-png", "-singlefile", "-f", str(n), "-l", str(n)]
            + [str(pdf), str(PNG_DIR / name)],
            check=True,
        )
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", "-f", str(len(pages)), "-l", str(len(pages))]
        + [str(pdf), str(PNG_DIR / "last")],
        check=True,
    )
    return result, pages


@pytest.mark.slow
def test_every_table_heading_of_the_workbook_is_printed(printed):
    result, _ = printed
    text = pdf_text(result.pdf)
    html_dir = result.out_dir / "html"
    headings = set()
    for page in [html_dir / "index.html", *sorted((html_dir / "steps").glob("*.html"))]:
        headings |= {t for kind, t in read_cells(page).cells if kind in ("th", "caption")}
    # The long table that used to stay folded away is among them.
    assert "Missed appointments %" in headings
    assert "Every measure for every group (percentages)" in headings
    missing = sorted(h for h in headings if h not in text)
    assert not missing, f"table headings in the HTML but not in the PDF: {missing[:10]}"


@pytest.mark.slow
def test_every_figure_of_the_front_page_is_printed(printed):
    result, _ = printed
    text = pdf_text(result.pdf)
    cells = [t for _, t in read_cells(result.out_dir / "html" / "index.html").cells]
    # The headline figures table is among them, with every figure the run made.
    labels = dict(HEADLINES)
    assert len(result.headlines()) >= 10
    for key in result.headlines():
        assert labels[key].replace("'", "\u2019") in cells, labels[key]
    missing = [c for c in cells if c not in text]
    assert not missing, f"front-page cells not in the PDF: {missing[:10]}"


@pytest.mark.slow
def test_the_cover_names_the_service_once_with_the_facts_and_the_rule(printed):
    result, pages = printed
    cfg = load_config(SAMPLE_CFG)
    cover = pages[0]
    assert cover.count(cfg.service_name) == 1
    for fact in (
        cfg.organisation,
        f"{cfg.period_start:%d %B %Y} to {cfg.period_end:%d %B %Y}",
        f"{dt.date.today():%d %B %Y}",
        cfg.disclosure.describe(),
        "Contents",
    ):
        assert fact in cover, fact
    # The next page carries the name only in its running header.
    assert pages[1].count(cfg.service_name) == 1


@pytest.mark.slow
def test_each_step_starts_a_page_and_the_contents_give_that_page(printed):
    result, pages = printed
    cfg = load_config(SAMPLE_CFG)
    html_dir = result.out_dir / "html"
    titles = ["Overview"]
    for step in result.steps:
        titles += read_cells(html_dir / "steps" / f"{step.name}.html").h1
    assert len(titles) == 1 + len(result.steps) == 9

    def body(page: str) -> str:
        # Every page after the cover opens with the running header: the service's name.
        assert page.startswith(cfg.service_name), page[:80]
        return page[len(cfg.service_name) :].strip()

    starts = [n for n, page in enumerate(pages[1:], 2) for t in titles if body(page).startswith(t)]
    assert len(starts) == len(titles), "a step does not start at the top of a page"
    for title in titles:
        m = re.search(re.escape(title) + r" (\d+)", pages[0])
        assert m, f"{title} is not in the contents with a page number"
        number = int(m.group(1))
        assert body(pages[number - 1]).startswith(title), (title, number)


@pytest.mark.slow
def test_the_rule_and_the_page_number_are_on_every_page(printed):
    _, pages = printed
    rule = load_config(SAMPLE_CFG).disclosure.describe()
    for n, page in enumerate(pages, 1):
        assert rule in page, f"page {n} has no small-number rule"
        assert f"Page {n} of {len(pages)}" in page, f"page {n} has no page number"


@pytest.mark.slow
def test_no_screen_controls_on_paper(printed):
    _, pages = printed
    text = " ".join(pages)
    for control in ("Show code cell", "Hide code cell", "Search", "Ctrl", "Click to", "previous"):
        assert control not in text, control


@pytest.mark.slow
def test_the_pdf_names_no_machine_path(printed):
    result, pages = printed
    raw = result.pdf.read_bytes()
    assert b"file:" not in raw
    assert str(result.out_dir).encode() not in raw
    assert str(result.out_dir) not in " ".join(pages)


@pytest.mark.slow
def test_notes_tables_leave_room_to_write(printed, tmp_path):
    """The blank rows of each step's notes table are at least 2.5 cm tall on paper."""
    from playwright.sync_api import sync_playwright

    result, _ = printed
    html_dir = (result.out_dir / "html").resolve()
    cfg = load_config(SAMPLE_CFG)
    page_file = tmp_path / "print-check.html"
    page_file.write_text(print_html(html_dir, collect_parts(html_dir), cfg, dt.date.today()))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        pg = browser.new_page(viewport={"width": 680, "height": 1000})
        pg.emulate_media(media="print")
        pg.goto(page_file.as_uri())
        heights = pg.evaluate(
            """() => [...document.querySelectorAll('section[id^="your-team-s-notes"] tbody tr')]
                 .map(tr => tr.getBoundingClientRect().height)"""
        )
        one_cm = pg.evaluate(
            """() => { const d = document.createElement('div'); d.style.height = '1cm';
                 document.body.append(d); const h = d.getBoundingClientRect().height;
                 d.remove(); return h; }"""
        )
        browser.close()
    assert len(heights) >= 2 * len(result.steps)
    assert min(heights) >= 2.5 * one_cm, heights


# ----------------------------------------------------------------------------- failures, fast


@pytest.fixture
def small_workbook(tmp_path):
    """A two-page HTML workbook with things planted in it: scripts, a fold, links."""
    html_dir = tmp_path / "html"
    (html_dir / "steps").mkdir(parents=True)
    (html_dir / "_static").mkdir()
    (html_dir / "_static" / "site.css").write_text("body { font-family: sans-serif; }")

    def page(title: str, body: str, static: str) -> str:
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f'<link rel="stylesheet" href="{static}_static/site.css" />'
            "<script>document.write('HEAD SCRIPT RAN')</script></head><body>"
            '<nav>Search this book</nav><main><article class="bd-article" role="main">'
            f"<section id='s'><h1>{html.escape(title)}</h1>{body}</section>"
            "</article></main></body></html>"
        )

    (html_dir / "index.html").write_text(
        page("Front", "<p>Front page text.</p><a href='steps/one.html#deep'>to the step</a>", "")
    )
    planted = (
        "<script>while (true) {}</script>"
        "<script>document.write('SCRIPT RAN')</script>"
        "<img src='missing.png' alt='' onerror=\"document.body.append('HANDLER RAN')\">"
        "<details><summary>How to read this table</summary><p>FOLDED TEXT</p></details>"
        "<p><a href='https://example.org/guide'>the guide</a> and "
        "<a href='https://example.org/bare'>https://example.org/bare</a></p>"
        "<p id='deep'>Deep part.</p>"
    )
    (html_dir / "steps" / "one.html").write_text(page("Step one", planted, "../"))
    return html_dir


@pytest.fixture(scope="module")
def cfg():
    return load_config(SAMPLE_CFG)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".pdf" or "partial" in p.name)


def test_planted_scripts_do_not_run_and_folds_print_open(small_workbook, cfg, tmp_path):
    need_tools()
    # Markup in the service's name is printed as text, in the cover and the running header.
    name = 'Clinic <script>while (true) {}</script> "A" \\ B'
    cfg = dataclasses.replace(cfg, service_name=name)
    pdf = print_pdf(small_workbook, tmp_path / "workbook.pdf", cfg, timeout=60)
    assert page_text(pdf, 1).count(name) == 1
    assert page_text(pdf, 2).startswith(name)
    text = pdf_text(pdf)
    assert "FOLDED TEXT" in text and "Deep part." in text
    assert "RAN" not in text
    assert "the guide (https://example.org/guide)" in text
    assert text.count("https://example.org/bare") == 1
    assert "Search this book" not in text
    assert leftovers(tmp_path) == ["workbook.pdf"]


def test_missing_chromium_gives_the_catalogue_message(small_workbook, cfg, tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(WorkbookError) as err:
        print_pdf(small_workbook, tmp_path / "workbook.pdf", cfg)
    assert err.value.code == "PDF001"
    assert CATALOGUE["PDF001"].title in str(err.value)
    assert "apt-get install chromium" in str(err.value)
    assert leftovers(tmp_path) == []


def fake_chromium(folder: Path, body: str) -> Path:
    path = folder / "chromium"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_stuck_chromium_is_stopped_with_the_catalogue_message(small_workbook, cfg, tmp_path):
    pids = tmp_path / "pids"
    # Like a hung browser: a helper process and the main one both wait for ever.
    chromium = fake_chromium(
        tmp_path, f"sleep 600 &\necho $! >> {pids}\necho $$ >> {pids}\nsleep 600\n"
    )
    with pytest.raises(WorkbookError) as err:
        print_pdf(small_workbook, tmp_path / "workbook.pdf", cfg, chromium=str(chromium), timeout=2)
    assert err.value.code == "PDF002"
    assert CATALOGUE["PDF002"].title in str(err.value) and "2 seconds" in str(err.value)
    assert leftovers(tmp_path) == []
    time.sleep(0.5)
    assert [pid for pid in map(int, pids.read_text().split()) if alive(pid)] == []


def test_a_half_written_pdf_is_never_left_looking_complete(small_workbook, cfg, tmp_path):
    # Writes the start of a PDF where it was asked to, then fails.
    chromium = fake_chromium(
        tmp_path,
        'for a in "$@"; do case "$a" in --print-to-pdf=*) '
        'printf "%%PDF-1.4\\n%s" "$(head -c 2000 /dev/zero | tr "\\0" x)" > "${a#--print-to-pdf=}";; '
        "esac; done\nexit 0\n",
    )
    with pytest.raises(WorkbookError) as err:
        print_pdf(small_workbook, tmp_path / "workbook.pdf", cfg, chromium=str(chromium))
    assert err.value.code == "PDF003"
    assert "not write a complete PDF" in str(err.value)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_the_command_reports_a_missing_chromium_without_a_traceback(tmp_path, sample_one_step):
    """End to end: `equity-workbook run --pdf` on a machine without Chromium."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = dict(os.environ, PATH=str(bin_dir))
    cli = Path(sys.executable).with_name("equity-workbook")
    # As after a first run without --pdf: the step is reused, the pages are built again.
    out = sample_one_step(tmp_path / "out")
    proc = subprocess.run(
        [str(cli), "run", "--config", str(SAMPLE_CFG), "--out", str(out)]
        + ["--steps", "data-completeness", "--jobs", "1", "--pdf"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    assert "[PDF001]" in output and CATALOGUE["PDF001"].title in output
    assert list((tmp_path / "out").rglob("*.pdf")) == []
    # The HTML workbook is published all the same, and the run says so.
    assert len(list((tmp_path / "out").glob("*/html/index.html"))) == 1
    assert "The PDF was not printed" in output
    # Published by this run (the earlier one left a complete workbook), not yet complete.
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text(encoding="utf-8"))
    assert manifest["complete"] is False


def test_the_book_prints_closed_folds_open(tmp_path):
    """The book's own print view (no print page is built for it): the style sheet shows
    what closed dropdowns, hidden cell outputs and toggles hold, and hides their controls."""
    from playwright.sync_api import sync_playwright

    need_tools()
    css = (ROOT / "book" / "_static" / "playbook.css").as_uri()
    page = tmp_path / "page.html"
    page.write_text(
        f"<!DOCTYPE html><html><head><link rel='stylesheet' href='{css}'></head><body>"
        "<details class='sd-dropdown'><summary>How to read this table</summary>"
        "<p id='dropdown'>Inside the dropdown</p></details>"
        "<div class='cell'><details class='hide above-output'>"
        "<summary id='control'>Show code cell outputs</summary>"
        "<p id='output'>The table</p></details></div>"
        "<div class='admonition toggle toggle-hidden'><p class='admonition-title'>Answer</p>"
        "<p id='answer'>Model answer</p><button class='toggle-button' id='button'>x</button>"
        "</div></body></html>"
    )
    ids = ["dropdown", "output", "answer", "control", "button"]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        pg = browser.new_page()
        pg.goto(page.as_uri())
        on_screen = pg.evaluate(
            "ids => ids.filter(i => document.getElementById(i).checkVisibility())", ids
        )
        pg.pdf(path=str(tmp_path / "page.pdf"))
        browser.close()
    # On screen the folds are closed (so the check below means something) ...
    assert "dropdown" not in on_screen and "output" not in on_screen
    # ... and on paper what they hold is printed, while the controls are not.
    on_paper = pdf_text(tmp_path / "page.pdf")
    for text in ("Inside the dropdown", "The table", "Model answer", "How to read this table"):
        assert text in on_paper, text
    assert "Show code cell" not in on_paper
