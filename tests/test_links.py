"""Every internal link and anchor in the built book resolves."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.slow


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.links.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") != "canonical":
            self.links.append(a["href"])


def parse(path: Path) -> Collector:
    c = Collector()
    c.feed(path.read_text(encoding="utf-8"))
    return c


def test_internal_links_and_anchors_resolve(built_book):
    pages = [p for p in built_book.rglob("*.html") if "_static" not in p.parts]
    parsed = {p: parse(p) for p in pages}
    broken = []
    external = set()
    checked = 0
    for page, c in parsed.items():
        for href in c.links:
            url = urlparse(href)
            if url.scheme in (
                "http",
                "https",
                "mailto",
                "tel",
                "data",
                "javascript",
            ) or href.startswith("//"):
                if url.scheme in ("http", "https"):
                    external.add(href)
                continue
            target = page if not url.path else (page.parent / unquote(url.path)).resolve()
            checked += 1
            if not target.exists():
                broken.append(f"{page.relative_to(built_book)} -> {href}")
                continue
            if url.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse(target).ids
                if url.fragment not in ids:
                    broken.append(f"{page.relative_to(built_book)} -> {href} (no such anchor)")
    assert checked > 500
    assert broken == [], "\n".join(broken[:30])
    # External links are checked separately (`make links`), never in CI: there is no internet.
    assert all(re.match(r"https?://", u) for u in external)
