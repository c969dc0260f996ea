"""The templates to take away: each Word document says what book/data/templates.yml says,
the Downloads page shows the same, and the book build writes a document for each."""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path

import docx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "book" / "data" / "templates.yml"
#: What the brief for the Downloads page asks for, by id.
EXPECTED = {"key-questions", "pathway-mapping", "action-plan", "evaluation-plan", "pdsa-cycle"}


def _module():
    spec = importlib.util.spec_from_file_location(
        "playbook_templates", ROOT / "book" / "_ext" / "playbook_templates.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raw() -> list[dict]:
    return yaml.safe_load(SOURCE.read_text(encoding="utf-8"))["templates"]


def _words(text: str) -> str:
    return " ".join(str(text).split())


def _headings(document, level: int) -> list[str]:
    return [p.text for p in document.paragraphs if p.style.name == f"Heading {level}"]


def test_the_source_lists_every_template_once():
    ids = [t["id"] for t in _raw()]
    assert len(ids) == len(set(ids))
    assert set(ids) == EXPECTED


@pytest.mark.parametrize("template_id", sorted(EXPECTED))
def test_each_word_document_matches_the_source(tmp_path, template_id):
    module = _module()
    template = next(t for t in _raw() if t["id"] == template_id)
    path = module.write_docx(template, tmp_path / f"{template_id}.docx")
    document = docx.Document(str(path))

    assert _headings(document, 1) == [template["title"]]
    assert document.core_properties.title == template["title"]
    texts = [_words(p.text) for p in document.paragraphs]
    assert _words(template["intro"]) in texts
    sections = template.get("sections") or []
    assert _headings(document, 2) == [s["heading"] for s in sections]
    # Every question, in order, under its own heading.
    questions = [p.text for p in document.paragraphs if p.style.name == "List Bullet"]
    assert questions == [q for s in sections for q in s["questions"]]
    for section in sections:
        heading_at = texts.index(section["heading"])
        for question in section["questions"]:
            assert texts.index(question) > heading_at

    table = template.get("table")
    if not table:
        assert document.tables == []
        return
    (grid,) = document.tables
    header = [c.text for c in grid.rows[0].cells]
    assert header == table["columns"]
    body = [[c.text for c in row.cells] for row in grid.rows[1:]]
    assert [row[0] for row in body[: len(table["rows"])]] == table["rows"]
    assert len(body) == len(table["rows"]) + template.get("blank_rows", 0)
    # Everything but the named first column is left for the team to fill in.
    assert all(cell == "" for row in body for cell in row[1:])
    # The header row repeats on every printed page.
    assert 'w:tblHeader w:val="true"' in grid.rows[0]._tr.xml


def test_the_key_questions_are_the_ones_the_book_asks():
    """Each part's key question in the template is the one in that part's callout."""
    template = next(t for t in _raw() if t["id"] == "key-questions")
    for section in template["sections"]:
        part = section["page"].split("/")[1]
        pages = "\n".join(
            p.read_text(encoding="utf-8") for p in (ROOT / "book" / part).glob("*.md")
        )
        callouts = re.findall(r"```\{admonition\} Key question.*?```", pages, flags=re.DOTALL)
        asked = _words(section["questions"][0]).lower()
        assert any(asked in _words(c).lower() for c in callouts), (part, asked)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t[0].pop("title"), "is missing title"),
        (lambda t: t.append(dict(t[0])), "is listed twice"),
        (lambda t: t[0].update(id="Key Questions"), "needs an id of lower-case words"),
        (lambda t: t[0].pop("sections"), "needs sections (questions), a table, or both"),
    ],
)
def test_a_bad_edit_gives_a_clear_build_error(tmp_path, change, problem):
    templates = _raw()
    change(templates)
    bad = tmp_path / "templates.yml"
    bad.write_text(yaml.safe_dump({"templates": templates}), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(problem)):
        _module().load_templates(bad)


@pytest.mark.slow
def test_the_book_build_writes_every_document_and_links_it(built_book):
    page = (built_book / "book" / "reference" / "downloads.html").read_text(encoding="utf-8")
    # The page's text as a reader sees it (the build curls apostrophes).
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).replace("\u2019", "'").split())
    for template in _raw():
        path = built_book / "downloads" / f"{template['id']}.docx"
        assert path.is_file(), f"The book build did not write {path.name}"
        assert _headings(docx.Document(str(path)), 1) == [template["title"]]
        # The page links to it relatively, and prints the template itself.
        assert f'href="../../downloads/{template["id"]}.docx"' in page
        assert f'id="template-{template["id"]}"' in page
        for section in template.get("sections") or []:
            for question in section["questions"]:
                assert _words(question) in text, question


# ----------------------------------------------------------------------------- templates on step pages

STEP_PAGES = sorted(
    p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.glob("book/part-*/step-*.md")
)


def test_every_step_page_has_its_templates_and_every_listed_page_exists():
    listed = {page for t in _raw() for page in t.get("steps") or []}
    assert len(STEP_PAGES) == 13
    assert set(STEP_PAGES) <= listed, set(STEP_PAGES) - listed
    for page in listed:
        assert (ROOT / f"{page}.md").is_file(), f"templates.yml lists {page}, which is not a page"
    # Each template is linked where its own page says it belongs.
    for template in _raw():
        if (
            template["page"].startswith(("book/part-", "notebooks/"))
            and "index" not in template["page"]
        ):
            assert template["page"] in template["steps"], template["id"]


def test_a_notebook_s_templates_follow_it_into_a_workbook():
    module = _module()
    templates = _raw()
    in_book = [t["id"] for t in module.templates_for(templates, "notebooks/pathway")]
    in_workbook = [t["id"] for t in module.templates_for(templates, "steps/pathway")]
    assert in_book == in_workbook == ["pathway-mapping"]
    assert module.templates_for(templates, "book/intro") == []
    assert module.templates_for(templates, "steps/data-completeness") == []


def test_a_bad_steps_list_gives_a_clear_build_error(tmp_path):
    templates = _raw()
    templates[0]["steps"] = "book/part-1/step-1-service-data"
    bad = tmp_path / "templates.yml"
    bad.write_text(yaml.safe_dump({"templates": templates}), encoding="utf-8")
    with pytest.raises(ValueError, match="needs 'steps' as a list of pages"):
        _module().load_templates(bad)


def _step_box(page: str) -> str:
    """The "Templates for this step" box of a built page, or "" when it has none."""
    box = r'<div class="[^"]*\bstep-templates\b[^"]*">(.*?)</div>'
    found = re.search(box, page, flags=re.DOTALL)
    return found.group(1) if found else ""


@pytest.mark.slow
def test_each_step_page_of_the_built_book_links_its_templates(built_book):
    listed = {page for t in _raw() for page in t.get("steps") or []}
    for page_name in sorted(listed) + ["book/intro", "book/part-1/index"]:
        page = (built_book / f"{page_name}.html").read_text(encoding="utf-8")
        box = _step_box(page)
        wanted = _module().templates_for(_raw(), page_name)
        if not wanted:
            assert not box, f"{page_name} has a templates box but lists none"
            continue
        assert "Templates for this step" in box, page_name
        up = "../" * page_name.count("/")
        links = re.findall(r'href="([^"]+)"', box)
        expected = []
        for template in wanted:
            expected += [
                f"{up}downloads/{template['id']}.docx",
                f"{up}book/reference/downloads.html#template-{template['id']}",
            ]
            assert html.escape(template["title"], quote=False) in box, template["id"]
        assert links == expected, page_name
        for link in links:  # every link reaches a file the build wrote, and its anchor
            target, _, anchor = link.partition("#")
            path = (built_book / page_name).parent / target
            assert path.resolve().is_file(), link
            if anchor:
                assert f'id="{anchor}"' in path.read_text(encoding="utf-8"), link


@pytest.mark.slow
def test_a_workbook_step_page_links_the_templates_of_its_notebook(sample_folder):
    html_dir = sample_folder / "html"
    for step in ("pathway", "evaluation", "summary-and-plan", "data-completeness"):
        page = (html_dir / "steps" / f"{step}.html").read_text(encoding="utf-8")
        box = _step_box(page)
        wanted = _module().templates_for(_raw(), f"steps/{step}")
        links = re.findall(r'href="([^"]+)"', box)
        # The workbook has no Downloads page: each template's Word document, written
        # into the workbook's own site.
        assert links == [f"../downloads/{t['id']}.docx" for t in wanted], step
        for link in links:
            path = html_dir / "steps" / link
            assert path.resolve().is_file(), link
            assert _headings(docx.Document(str(path)), 1)[0] in box
