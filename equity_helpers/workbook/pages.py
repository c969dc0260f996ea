"""The workbook's own pages: the front page, the step pages and the tables page."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import yaml

from ..config import FILE_SETTINGS, ServiceConfig
from ..extract import ACCOUNT_COUNT_HEADER, AccountLine, account_lines
from ..notebooks import NotebookInfo
from ..safe_html import md_text
from .cache import _versions
from .paths import sanitise_paths
from .results import DECIMALS, HEADLINES, StepResult, _as_number, _fmt, not_shown


def _public_config(cfg: ServiceConfig) -> str:
    """The config as run, with the file settings shortened to file names (no machine paths).

    Only settings that name files are shortened: a column called "Appt Dt/Time" or a
    service called "Derby/Derbyshire MSK" is shown as written. The service's own labels
    under ``values`` are counted, not shown: ``init`` writes a line for every label the
    extract holds, and a label held by one person must not be published.
    """

    def strip(o, key=""):
        if key.startswith("values.") and isinstance(o, dict):
            return f"{len(o)} of the service's own labels, each read as an NHS code (not shown)"
        if isinstance(o, dict):
            return {k: strip(v, f"{key}.{k}".lstrip(".")) for k, v in o.items()}
        if isinstance(o, list):
            return [strip(v, key) for v in o]
        if key in FILE_SETTINGS and isinstance(o, str):
            return Path(o.replace("\\", "/")).name
        return o

    return yaml.safe_dump(strip(cfg.raw), sort_keys=False, allow_unicode=True)


def _account_rows(lines: list[AccountLine]) -> list[str]:
    """Lines of the row account as a Markdown table, then a blank line.

    The labels are the playbook's own words (fixed text and the catalogue's titles).
    """
    rows = [f"| | {ACCOUNT_COUNT_HEADER} |", "|---|---:|"]
    rows += [f"| {line.label} | {line.rows:,} |" for line in lines]
    return [*rows, ""]


def _front_page(
    cfg: ServiceConfig,
    meta: dict,
    steps: list[StepResult],
    baseline: dict | None,
    headlines: dict,
    run_date: dt.date,
) -> str:
    rule = cfg.disclosure
    lines = ["(workbook-front)=", f"# {md_text(cfg.service_name)}", ""]
    warning = rule.warning()
    if warning:
        lines += ["```{warning}", md_text(warning), "```", ""]
    lines += [
        "This is the service's own health-inequalities workbook.",
        "Each step runs one analysis of the playbook on the service's extract.",
        "Read a step, talk about it as a team, and write your notes in the space at its end.",
        "",
        "| About this workbook | |",
        "|---|---|",
        f"| Organisation | {md_text(cfg.organisation) or '-'} |",
        f"| Data period | {cfg.period_start:%d %B %Y} to {cfg.period_end:%d %B %Y} |",
        f"| Date run | {run_date:%d %B %Y} |",
        f"| Extract | {md_text(meta.get('source', ''))} |",
        f"| Deprivation | IMD {cfg.imd_edition} |",
        f"| Small-number rule | {md_text(rule.describe())} |",
        "",
        "## Row account",
        "",
        "Every row of the extract is accounted for.",
        "",
    ]
    appointments = meta.get("appointments")
    account = account_lines(meta["account"], appointments)
    lines += _account_rows([a for a in account if not a.appointments])
    if appointments:  # an appointment-level file: every one of its rows is accounted for too
        source = md_text(appointments.get("source", "a second file"))
        lines += [f"Appointments were counted from {source}:", ""]
        lines += _account_rows([a for a in account if a.appointments])
    for key, kind in (("free_text", "Free-text"), ("dropped_identifiers", "Identifier")):
        if meta.get(key):
            names = ", ".join(md_text(c) for c in meta[key])
            lines += [f"{kind} columns were found in the extract and not read: {names}.", ""]
    lines += ["## Steps", "", "| Step | Status |", "|---|---|"]
    words = {
        "ok": "ran",
        "reused": "ran (reused from an earlier run)",
        "failed": "**failed**",
        "skipped": "skipped: a column it needs is missing",
    }
    for s in steps:
        # A step that ran with nothing to work on (no letters, no change date) says so, in
        # the step's own words (the playbook's text, never the service's).
        status = words[s.status]
        if s.status in ("ok", "reused") and isinstance(s.glued.get("step_status"), str):
            status = s.glued["step_status"].replace("|", "/")
        # Step titles are the playbook's own text: a role's title is not Markdown.
        lines.append(f"| {{doc}}`{s.title} <steps/{s.name}>` | {status} |")
    lines.append("")
    if headlines:
        why = not_shown(steps)
        lines += ["## Headline figures", ""]
        if baseline:
            lines += ["| Figure | Now | Baseline | Change |", "|---|---:|---:|---:|"]
        else:
            lines += ["| Figure | Value |", "|---|---:|"]
        for key, label in HEADLINES:
            if key not in headlines:
                continue
            now = headlines[key]
            if baseline:
                old = baseline.get(key)
                change = ""
                a, b = _as_number(now), _as_number(old)
                if a is not None and b is not None:
                    change = f"{a - b:+,.{DECIMALS.get(key, 1)}f}"
                lines.append(
                    f"| {label} | {md_text(_fmt(now, key, why.get(key)))} | "
                    f"{md_text(_fmt(old, key)) if key in baseline else '-'} | {change} |"
                )
            else:
                lines.append(f"| {label} | {md_text(_fmt(now, key, why.get(key)))} |")
        lines.append("")
    lines += [
        "## Versions and config",
        "",
        "The workbook was made with these versions, and this config (paths shortened).",
        "",
        "| Package | Version |",
        "|---|---|",
    ]
    for k, v in _versions().items():
        lines.append(f"| {k} | {v} |")
    # The config is included from its own file: a code block shows it as written, and
    # the page's copied source then holds no user text unescaped.
    lines += ["", "```{literalinclude} " + CONFIG_AS_RUN, ":language: yaml", "```", ""]
    return "\n".join(lines)


#: The config as run, shown on the front page (written beside the page, not published).
CONFIG_AS_RUN = "config-as-run.yml"

NOTES_CELL = """## Your team's notes

Use this space in the notebook copy (`notebooks/{name}.ipynb`), or print this page and write on it.

| What did we learn? | What will we do? | Who | By when |
|---|---|---|---|
| | | | |
| | | | |
"""


#: Markdown cells tagged so speak of the synthetic sample; a service's workbook leaves them out.
SAMPLE_NOTE_TAG = "sample-note"


def for_the_service(nb):
    """Leave out the cells that speak of the synthetic sample: this notebook ran on a service's data."""
    nb.cells = [c for c in nb.cells if SAMPLE_NOTE_TAG not in c.metadata.get("tags", [])]
    return nb


def _step_notebook(
    step: StepResult, info: NotebookInfo, dest: Path, roots: list[tuple[str, str]] | None = None
) -> None:
    """The executed notebook, framed for the workbook: guide's ask on top, notes space below."""
    import nbformat

    nb = sanitise_paths(nbformat.read(step.notebook, as_version=4), roots)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if tags & {"parameters", "injected-parameters"}:
            tags.add("remove-cell")
        elif not tags & {"remove-input", "remove-cell"}:
            tags.add("hide-input")
        cell.metadata["tags"] = sorted(tags)
    intro = nbformat.v4.new_markdown_cell(
        f"```{{admonition}} What the guide asks ({info.steps}, {info.part})\n:class: note\n"
        f"{info.guide_asks}\n```"
    )
    first_heading = next(
        (
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and c.source.lstrip().startswith(("#", "("))
        ),
        0,
    )
    nb.cells.insert(first_heading + 1, intro)
    nb.cells.append(nbformat.v4.new_markdown_cell(NOTES_CELL.format(name=step.name)))
    # Cross-references to other notebooks resolve inside the workbook too (same labels);
    # links to book pages do not, so they become plain text.
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = re.sub(
                r"\{doc\}`(?:([^`<]*?)\s*<)?/book/[^`>]*>?`",
                lambda m: (m.group(1) or "the playbook's book").strip(),
                cell.source,
            )
    nbformat.write(nb, dest)


def _problem_page(step: StepResult, info: NotebookInfo) -> str:
    title = "This step did not run" if step.status == "failed" else "This step was skipped"
    body = "\n".join(md_text(line.strip()) for line in step.message.splitlines())
    return (
        f"(nb:{step.name})=\n# {md_text(info.title)}\n\n"
        f"```{{admonition}} What the guide asks ({info.steps}, {info.part})\n:class: note\n"
        f"{info.guide_asks}\n```\n\n```{{admonition}} {title}\n:class: warning\n{body}\n```\n\n"
        f"**Key question:** {info.key_question}\n\n" + NOTES_CELL.format(name=step.name)
    )


def _tables_page(tables: list[Path], rule_text: str) -> str:
    lines = [
        "(workbook-tables)=",
        "# Summary tables",
        "",
        "These tables hold the figures behind each step, under the small-number rule.",
        md_text(rule_text),
        "Each table comes as CSV and as Excel.",
        "",
    ]
    for p in sorted(tables):
        if p.suffix == ".csv":
            xlsx = p.with_suffix(".xlsx")
            lines.append(
                f"- {md_text(p.stem.replace('_', ' ').capitalize())}: "
                f"{{download}}`CSV <tables/{p.name}>`"
                + (f", {{download}}`Excel <tables/{xlsx.name}>`" if xlsx.exists() else "")
            )
    if len(lines) == 7:
        lines.append("No summary tables were written.")
    return "\n".join(lines) + "\n"
