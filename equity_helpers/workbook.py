"""Build a service's personalised workbook: run every notebook on its extract, then assemble.

The steps, in order:

1. Validate the config and the extract (fast, clear errors); stop before any notebook
   runs if the data cannot serve.
2. Prepare the extract once (Parquet) and pass its path to every notebook.
3. Run the notebooks with papermill, in parallel, reporting progress. A failing notebook
   does not lose the others.
4. Assemble a browsable HTML workbook with Jupyter Book (execution off: the notebooks
   already ran), plus the executed notebooks and the controlled summary tables.

The workbook is built in a temporary folder and moved into place only when it is
complete, so an interrupted run never leaves a half-built workbook that looks finished.
Re-running with unchanged inputs reuses the earlier result.

Example
-------
>>> from equity_helpers.workbook import run_workbook
>>> result = run_workbook("sample_data/sample_service.yml", "workbooks")  # doctest: +SKIP
>>> result.html_index  # doctest: +SKIP
PosixPath('workbooks/derbyshire-long-covid-rehabilitation-service-synthetic-example/html/index.html')
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from . import __version__
from .config import ServiceConfig, load_config, resolve_path
from .errors import CATALOGUE, PlaybookError, WorkbookError, render
from .notebooks import NOTEBOOK_DIR, NOTEBOOKS, NotebookInfo, read_glued, to_notebook
from .pdf import print_pdf
from .safe_html import html_text, md_text
from .service import input_fingerprint, prepare_to_file
from .steps import headlines as step_headlines

log = logging.getLogger("equity_helpers")
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "equity-helpers",
    "pandas",
    "numpy",
    "scipy",
    "matplotlib",
    "papermill",
    "jupyter-book",
    "myst-nb",
    "textstat",
    "pyarrow",
]

#: The headline figures shown on the front page and compared across runs and services.
#: Each step declares its own (glue name, label) pairs in ``equity_helpers.steps``.
HEADLINES = step_headlines()


@dataclass
class StepResult:
    name: str
    title: str
    status: str  # "ok", "failed", "skipped" or "reused"
    seconds: float = 0.0
    message: str = ""
    notebook: str | None = None
    glued: dict = field(default_factory=dict)


@dataclass
class WorkbookResult:
    service: str
    slug: str
    out_dir: Path
    steps: list[StepResult]
    reused: bool = False
    seconds: float = 0.0
    pdf: Path | None = None
    error: str | None = None

    @property
    def html_index(self) -> Path:
        return self.out_dir / "html" / "index.html"

    @property
    def failures(self) -> list[StepResult]:
        return [s for s in self.steps if s.status == "failed"]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures

    def headlines(self) -> dict:
        glued = {}
        for s in self.steps:
            glued.update(s.glued)
        return {k: glued[k] for k, _ in HEADLINES if k in glued}


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "service"


def md_escape(text: str) -> str:
    """Make user text safe inside MyST markdown: no HTML, no markup, no roles."""
    return md_text(text)


def _code_hash(notebook_dir: Path = NOTEBOOK_DIR) -> str:
    h = hashlib.sha256(__version__.encode())
    for p in sorted(notebook_dir.glob("*.md")) + sorted((ROOT / "equity_helpers").glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def _versions() -> dict[str, str]:
    out = {"Python": sys.version.split()[0]}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


# ----------------------------------------------------------------------------- running notebooks


def _execute(source: str, output: str, params: dict, cwd: str) -> tuple[str, str, float]:
    """Run one notebook with papermill (in a worker process). Returns status, message, seconds."""
    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.ERROR)
    # The kernel's own start-up chatter goes to a log file, not the user's terminal.
    err_log = Path(output).with_suffix(".stderr.log")
    saved = os.dup(2)
    with open(err_log, "w") as fh:
        os.dup2(fh.fileno(), 2)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            source,
            output,
            parameters=params,
            cwd=cwd,
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
        return "ok", "", time.perf_counter() - start
    except pm.PapermillExecutionError as exc:
        detail = f"{exc.ename}: {exc.evalue}".strip()
        first = detail.splitlines()[0] if detail else "the notebook stopped with an error"
        return "failed", first[:500], time.perf_counter() - start
    except Exception as exc:  # a kernel that dies, a missing kernel: still one step's failure
        return "failed", f"{type(exc).__name__}: {exc}"[:500], time.perf_counter() - start
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _missing_columns(info: NotebookInfo, columns: set[str]) -> list[str]:
    return [c for c in info.needs if c not in columns]


def run_steps(
    cfg: ServiceConfig,
    prepared: Path,
    work: Path,
    *,
    jobs: int,
    cache: Path,
    fingerprint: str,
    progress: Callable[[str], None],
    steps: list[str] | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
) -> list[StepResult]:
    """Run the notebooks for one service in parallel; reuse unchanged finished steps."""
    import pyarrow.parquet as pq

    columns = set(pq.read_schema(prepared).names)
    (work / "notebooks").mkdir(parents=True, exist_ok=True)
    (work / "tables").mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    results: dict[str, StepResult] = {}
    todo = []
    chosen = [n for n in NOTEBOOKS if steps is None or n.name in steps]
    for info in chosen:
        missing = _missing_columns(info, columns)
        if missing:
            msg = render("RUN003", step=info.title, columns=", ".join(missing))
            results[info.name] = StepResult(info.name, info.title, "skipped", message=msg)
            continue
        source_hash = hashlib.sha256((notebook_dir / f"{info.name}.md").read_bytes()).hexdigest()
        source_hash = source_hash[:12]
        cached = cache / f"{info.name}-{fingerprint}-{source_hash}.ipynb"
        cached_tables = cache / f"{info.name}-{fingerprint}-{source_hash}.tables"
        target = work / "notebooks" / f"{info.name}.ipynb"
        if cached.is_file():
            shutil.copy2(cached, target)
            if cached_tables.is_dir():
                shutil.copytree(cached_tables, work / "tables", dirs_exist_ok=True)
            results[info.name] = StepResult(
                info.name, info.title, "reused", notebook=str(target), glued=read_glued(target)
            )
            continue
        source = work / "logs" / f"{info.name}.source.ipynb"
        import nbformat

        nbformat.write(to_notebook(notebook_dir / f"{info.name}.md"), source)
        step_tables = work / "logs" / f"{info.name}.tables"
        params = {
            "config_path": str(cfg.path),
            "prepared_path": str(prepared),
            "output_dir": str(step_tables),
        }
        todo.append((info, source, target, params, cached, cached_tables, step_tables))

    total = len(chosen)
    done = len(results)
    for r in results.values():
        progress(f"[{done}/{total}] {r.title}: {r.status}")
    if todo:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            max_workers=max(1, min(jobs, len(todo))), mp_context=ctx
        ) as pool:
            futures = {
                pool.submit(_execute, str(job[1]), str(job[2]), job[3], str(work)): job
                for job in todo
            }
            for fut in cf.as_completed(futures):
                info, src, tgt, params, cached, cached_tables, step_tables = futures[fut]
                try:
                    status, message, seconds = fut.result()
                except cf.process.BrokenProcessPool:
                    # Worker processes could not start (for example when Python runs
                    # from standard input): run this step here instead.
                    status, message, seconds = _execute(str(src), str(tgt), params, str(work))
                done += 1
                if status == "ok":
                    shutil.copy2(tgt, cached)
                    if step_tables.is_dir():
                        shutil.copytree(step_tables, cached_tables, dirs_exist_ok=True)
                        shutil.copytree(step_tables, work / "tables", dirs_exist_ok=True)
                    results[info.name] = StepResult(
                        info.name,
                        info.title,
                        "ok",
                        seconds,
                        notebook=str(tgt),
                        glued=read_glued(tgt),
                    )
                else:
                    log_path = work / "logs" / f"{info.name}.ipynb"
                    if tgt.is_file():
                        shutil.move(tgt, log_path)
                    msg = render(
                        "RUN001", step=info.title, detail=message, log=f"logs/{info.name}.ipynb"
                    )
                    results[info.name] = StepResult(info.name, info.title, "failed", seconds, msg)
                progress(f"[{done}/{total}] {info.title}: {status} in {seconds:.1f} s")
    return [results[n.name] for n in chosen if n.name in results]


# ----------------------------------------------------------------------------- assembling


def _public_config(cfg: ServiceConfig) -> str:
    """The config as run, with paths shortened to file names (no machine paths)."""

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()}
        if isinstance(o, list):
            return [strip(v) for v in o]
        if isinstance(o, str) and ("/" in o or "\\" in o):
            return Path(o.replace("\\", "/")).name
        return o

    return yaml.safe_dump(strip(cfg.raw), sort_keys=False, allow_unicode=True)


def _as_number(v) -> float | None:
    """A headline figure as a number ("5,974" counts too), or None for text."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return None


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _front_page(
    cfg: ServiceConfig,
    meta: dict,
    steps: list[StepResult],
    baseline: dict | None,
    headlines: dict,
    run_date: dt.date,
) -> str:
    rule = cfg.disclosure
    lines = ["(workbook-front)=", f"# {md_escape(cfg.service_name)}", ""]
    warning = rule.warning()
    if warning:
        lines += ["```{warning}", md_escape(warning), "```", ""]
    lines += [
        "This is the service's own health-inequalities workbook.",
        "Each step runs one analysis of the playbook on the service's extract.",
        "Read a step, talk about it as a team, and write your notes in the space at its end.",
        "",
        "| About this workbook | |",
        "|---|---|",
        f"| Organisation | {md_escape(cfg.organisation) or '-'} |",
        f"| Data period | {cfg.period_start:%d %B %Y} to {cfg.period_end:%d %B %Y} |",
        f"| Date run | {run_date:%d %B %Y} |",
        f"| Extract | {md_escape(meta.get('source', ''))} |",
        f"| Deprivation | IMD {cfg.imd_edition} |",
        f"| Small-number rule | {md_escape(rule.describe())} |",
        "",
        "## Row account",
        "",
        "Every row of the extract is accounted for.",
        "",
        "| | Rows |",
        "|---|---:|",
        f"| Rows read from the extract | {meta['account']['rows_read']:,} |",
    ]
    for code, n in meta["account"]["excluded"].items():
        lines.append(f"| Left out: {CATALOGUE[code].title.lower()} | {n:,} |")
    lines += [f"| Rows analysed | {meta['account']['rows_used']:,} |", ""]
    if meta.get("dropped_identifiers"):
        lines += [
            "Identifier columns were found in the extract and not read: "
            + ", ".join(md_escape(c) for c in meta["dropped_identifiers"])
            + ".",
            "",
        ]
    lines += ["## Steps", "", "| Step | Status |", "|---|---|"]
    words = {
        "ok": "ran",
        "reused": "ran (reused from an earlier run)",
        "failed": "**failed**",
        "skipped": "skipped: a column it needs is missing",
    }
    for s in steps:
        # Step titles are the playbook's own text: a role's title is not Markdown.
        lines.append(f"| {{doc}}`{s.title} <steps/{s.name}>` | {words[s.status]} |")
    lines.append("")
    if headlines:
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
                    change = f"{a - b:+,.1f}"
                lines.append(
                    f"| {label} | {md_escape(_fmt(now))} | "
                    f"{md_escape(_fmt(old)) if old is not None else '-'} | {change} |"
                )
            else:
                lines.append(f"| {label} | {md_escape(_fmt(now))} |")
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


def sanitise_paths(nb):
    """Shorten the file paths papermill injected to file names (no machine paths are shared)."""
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = re.sub(
                r'(["\'])((?:[A-Za-z]:)?[\\/][^"\']*[\\/])([^"\'\\/]*)\1',
                lambda m: f"{m.group(1)}{m.group(3)}{m.group(1)}",
                cell.source,
            )
    return nb


def _step_notebook(step: StepResult, info: NotebookInfo, dest: Path) -> None:
    """The executed notebook, framed for the workbook: guide's ask on top, notes space below."""
    import nbformat

    nb = sanitise_paths(nbformat.read(step.notebook, as_version=4))
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
    body = "\n".join(md_escape(line.strip()) for line in step.message.splitlines())
    return (
        f"(nb:{step.name})=\n# {md_escape(info.title)}\n\n"
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
        md_escape(rule_text),
        "Each table comes as CSV and as Excel.",
        "",
    ]
    for p in sorted(tables):
        if p.suffix == ".csv":
            xlsx = p.with_suffix(".xlsx")
            lines.append(
                f"- {md_escape(p.stem.replace('_', ' ').capitalize())}: "
                f"{{download}}`CSV <tables/{p.name}>`"
                + (f", {{download}}`Excel <tables/{xlsx.name}>`" if xlsx.exists() else "")
            )
    if len(lines) == 7:
        lines.append("No summary tables were written.")
    return "\n".join(lines) + "\n"


def assemble(
    cfg: ServiceConfig,
    meta: dict,
    steps: list[StepResult],
    work: Path,
    *,
    baseline: dict | None,
    run_date: dt.date,
) -> Path:
    """Write the workbook's Jupyter Book sources into ``work/site`` and build the HTML."""
    site = work / "site"
    (site / "steps").mkdir(parents=True, exist_ok=True)
    (site / "tables").mkdir(parents=True, exist_ok=True)
    for p in (work / "tables").glob("*"):
        shutil.copy2(p, site / "tables" / p.name)
    headlines = {}
    for s in steps:
        headlines.update(s.glued)
    headlines = {k: headlines[k] for k, _ in HEADLINES if k in headlines}
    (site / CONFIG_AS_RUN).write_text(_public_config(cfg), encoding="utf-8")
    (site / "index.md").write_text(_front_page(cfg, meta, steps, baseline, headlines, run_date))
    chapters = []
    by_name = {n.name: n for n in NOTEBOOKS}
    for s in steps:
        info = by_name[s.name]
        if s.status in ("ok", "reused"):
            _step_notebook(s, info, site / "steps" / f"{s.name}.ipynb")
        else:
            (site / "steps" / f"{s.name}.md").write_text(_problem_page(s, info))
        chapters.append({"file": f"steps/{s.name}"})
    (site / "tables.md").write_text(
        _tables_page(list((site / "tables").glob("*")), cfg.disclosure.describe())
    )
    chapters.append({"file": "tables"})
    toc = {
        "format": "jb-book",
        "root": "index",
        "parts": [{"caption": "Steps", "chapters": chapters}],
    }
    (site / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    # Plain text: the theme's title, author and footer slots are escaped once by the
    # safe_html extension, wherever the theme writes them.
    footer = cfg.disclosure.warning() or cfg.disclosure.describe()
    config = {
        "title": f"Workbook: {cfg.service_name}",
        "author": cfg.organisation or cfg.service_name,
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "parse": {"myst_enable_extensions": ["colon_fence", "deflist", "dollarmath"]},
        "html": {"home_page_in_navbar": True, "extra_footer": footer},
        "sphinx": {
            "config": {
                "html_show_copyright": False,
                "language": "en",
                # The rule (and any warning) in every page's footer.
                "html_theme_options": {
                    "use_download_button": True,
                    "show_navbar_depth": 1,
                    "extra_footer": footer,
                },
                "html_context": {"default_mode": "light"},
                "html_favicon": "_static/favicon.svg",
                "html_static_path": ["_static"],
                "html_js_files": ["playbook.js"],
                "html_css_files": ["playbook.css"],
            },
            "extra_extensions": [
                "sphinx_togglebutton",
                "sphinx_design",
                "equity_helpers.safe_html",
            ],
            "local_extensions": {"playbook_directives": str(ROOT / "book" / "_ext")},
        },
    }
    (site / "_static").mkdir(exist_ok=True)
    for name in ("playbook.js", "playbook.css", "favicon.svg"):
        shutil.copy2(ROOT / "book" / "_static" / name, site / "_static" / name)
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(site), "--path-output", str(work)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    (work / "logs" / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        raise WorkbookError(
            "RUN001",
            step="Assemble the workbook",
            detail="the HTML build failed",
            log="logs/build.log",
        )
    return work / "_build" / "html"


# ----------------------------------------------------------------------------- the run


def run_workbook(
    config_path: str | Path,
    out: str | Path = "workbooks",
    *,
    jobs: int | None = None,
    baseline: str | Path | None = None,
    pdf: bool = False,
    force: bool = False,
    steps: list[str] | None = None,
    progress: Callable[[str], None] = lambda m: log.info(m),
    notebook_dir: str | Path | None = None,
) -> WorkbookResult:
    """Build one service's workbook. Raises ConfigError or ExtractError before any notebook runs."""
    started = time.perf_counter()
    notebook_dir = Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR
    cfg = load_config(resolve_path(config_path))
    out = Path(out).resolve()
    slug = slugify(cfg.service_name)
    final = out / slug
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise WorkbookError("RUN002", path=str(out), detail=exc.strerror or str(exc)) from None
    fingerprint = input_fingerprint(cfg)
    run_key = hashlib.sha256(
        f"{fingerprint}{_code_hash(notebook_dir)}{steps}{bool(pdf)}".encode()
    ).hexdigest()[:20]
    baseline_figures = _read_baseline(baseline) if baseline else None
    manifest_path = final / "manifest.json"
    if not force and manifest_path.is_file() and baseline is None:
        old = json.loads(manifest_path.read_text())
        if (
            old.get("run_key") == run_key
            and old.get("complete")
            and (final / "html" / "index.html").is_file()
        ):
            progress("Nothing has changed since the last run: the workbook was reused.")
            steps_done = [StepResult(**s) for s in old["steps"]]
            return WorkbookResult(
                cfg.service_name,
                slug,
                final,
                steps_done,
                reused=True,
                seconds=time.perf_counter() - started,
                pdf=final / "workbook.pdf" if (final / "workbook.pdf").exists() else None,
            )

    work = out / f".{slug}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        progress(f"Checking and preparing the extract for {cfg.service_name}")
        prepared, meta = prepare_to_file(cfg, work / "prepared.parquet")
        acc = meta["account"]
        progress(
            f"Read {acc['rows_read']:,} rows; {acc['rows_used']:,} used, "
            f"{acc['rows_read'] - acc['rows_used']:,} left out with reasons"
        )
        results = run_steps(
            cfg,
            prepared,
            work,
            jobs=jobs or os.cpu_count() or 1,
            cache=out / ".cache" / slug,
            fingerprint=fingerprint,
            progress=progress,
            steps=steps,
            notebook_dir=notebook_dir,
        )
        progress("Assembling the HTML workbook")
        html_dir = assemble(
            cfg, meta, results, work, baseline=baseline_figures, run_date=dt.date.today()
        )
        staged = work / "publish"
        staged.mkdir()
        shutil.move(str(html_dir), staged / "html")
        shutil.copytree(work / "tables", staged / "tables")
        (staged / "notebooks").mkdir()
        import nbformat

        for s in results:
            if s.status in ("ok", "reused"):
                nb = nbformat.read(work / "notebooks" / f"{s.name}.ipynb", as_version=4)
                nbformat.write(sanitise_paths(nb), staged / "notebooks" / f"{s.name}.ipynb")
        shutil.copytree(
            work / "logs",
            staged / "logs",
            ignore=shutil.ignore_patterns("*.source.ipynb", "*.tables"),
        )
        result = WorkbookResult(cfg.service_name, slug, final, results)
        if pdf:
            progress("Printing the PDF with headless Chromium")
            result.pdf = print_pdf(staged / "html", staged / "workbook.pdf", cfg)
        manifest = {
            "service": cfg.service_name,
            "run_key": run_key,
            "complete": True,
            "date": dt.date.today().isoformat(),
            "account": meta["account"],
            "headlines": result.headlines(),
            "steps": [asdict(s) for s in results],
        }
        for s in manifest["steps"]:
            s["notebook"] = None
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        # Publish: the old workbook is replaced only now, when the new one is complete.
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(staged), final)
        result.out_dir = final
        result.seconds = time.perf_counter() - started
        if result.pdf:
            result.pdf = final / "workbook.pdf"
        return result
    except KeyboardInterrupt:
        raise WorkbookError("RUN004") from None
    except OSError as exc:
        raise WorkbookError("RUN002", path=str(out), detail=exc.strerror or str(exc)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        result_seconds = time.perf_counter() - started
        log.info("Workbook run took %.1f s", result_seconds)


def _read_baseline(path: str | Path) -> dict:
    p = Path(path)
    manifest = p / "manifest.json" if p.is_dir() else p
    if not manifest.is_file():
        raise WorkbookError(
            "RUN002", path=str(p), detail="no manifest.json: give the folder of an earlier workbook"
        )
    return json.loads(manifest.read_text()).get("headlines", {})


def run_many(
    config_paths: list[str | Path], out: str | Path = "workbooks", **kwargs
) -> list[WorkbookResult]:
    """Build a workbook for each config; one service's failure does not stop the others."""
    results = []
    for path in config_paths:
        try:
            results.append(run_workbook(path, out, **kwargs))
        except PlaybookError as exc:
            name = Path(path).stem
            results.append(
                WorkbookResult(name, slugify(name), Path(out) / slugify(name), [], error=str(exc))
            )
    if len(config_paths) > 1:
        write_index(results, Path(out))
    return results


def write_index(results: list[WorkbookResult], out: Path) -> Path:
    """An index page comparing the services' headline figures."""
    rows = []
    keys = [k for k, _ in HEADLINES]
    labels = dict(HEADLINES)
    for r in results:
        h = r.headlines() if r.error is None else {}
        link = (
            f'<a href="{html_text(r.slug)}/html/index.html">{html_text(r.service)}</a>'
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
            )
        )
        cells = "".join(f"<td>{html_text(_fmt(h[k])) if k in h else '-'}</td>" for k in keys)
        rows.append(f"<tr><th scope='row'>{link}</th><td>{status}</td>{cells}</tr>")
    head = "".join(f"<th scope='col'>{html_text(labels[k])}</th>" for k in keys)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Health-inequalities workbooks</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1a1a1a}}table{{border-collapse:collapse}}
th,td{{border:1px solid #767676;padding:.4rem .6rem;text-align:left}}a{{color:#005eb8}}
a:focus{{outline:3px solid #ffb81c}}</style></head>
<body><main><h1>Health-inequalities workbooks</h1>
<p>One workbook for each service, with its headline figures. Figures follow each workbook's small-number rule.</p>
<table><caption>Headline figures by service</caption><thead><tr><th scope="col">Service</th><th scope="col">Status</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></main></body></html>"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
