"""The index page comparing several services' workbooks."""

from __future__ import annotations

from pathlib import Path

from ..errors import WorkbookError
from ..safe_html import html_text
from .folders import INDEX_MARK, _write_atomic
from .results import HEADLINES, WorkbookResult, _fmt


def write_index(results: list[WorkbookResult], out: Path) -> Path:
    """An index page comparing the services' headline figures."""
    rows = []
    keys = [k for k, _ in HEADLINES]
    labels = dict(HEADLINES)
    for r in results:
        h = r.headlines() if r.error is None else {}
        link = (
            f'<a href="{html_text(r.out_dir.name)}/html/index.html">{html_text(r.service)}</a>'
            if r.error is None
            else html_text(r.service)
        )
        status = (
            "complete"
            if r.ok
            else (
                "failed: " + html_text((r.error or "").splitlines()[0])
                if r.error
                else f"{len(r.failures)} step(s) failed"
                if r.failures
                else "complete, but the PDF was not printed"
            )
        )
        cells = "".join(f"<td>{html_text(_fmt(h[k], k)) if k in h else '-'}</td>" for k in keys)
        rows.append(f"<tr><th scope='row'>{link}</th><td>{status}</td>{cells}</tr>")
    head = "".join(f"<th scope='col'>{html_text(labels[k])}</th>" for k in keys)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{INDEX_MARK}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Health-inequalities workbooks</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}}table{{border-collapse:collapse}}
th,td{{border:1px solid #767676;padding:.4rem .6rem;text-align:left}}a{{color:#005eb8}}
a:focus{{outline:3px solid #ffb81c}}</style></head>
<body><main><h1>Health-inequalities workbooks</h1>
<p>One workbook for each service, with its headline figures. Figures follow each workbook's small-number rule.</p>
<table><caption>Headline figures by service</caption><thead><tr><th scope="col">Service</th><th scope="col">Status</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></main></body></html>"""
    path = out / "index.html"
    if path.exists() and INDEX_MARK not in path.read_text(encoding="utf-8", errors="replace"):
        raise WorkbookError("RUN005", path=str(path))
    _write_atomic(path, page)
    return path
