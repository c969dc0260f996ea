"""Building the workbook's HTML site from its pages."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ..config import ServiceConfig
from ..errors import WorkbookError
from ..notebooks import NOTEBOOKS
from .pages import (
    CONFIG_AS_RUN,
    _front_page,
    _problem_page,
    _public_config,
    _step_notebook,
    _tables_page,
)
from .paths import ROOT
from .results import HEADLINES, StepResult

log = logging.getLogger("equity_helpers")


def assemble(
    cfg: ServiceConfig,
    meta: dict,
    steps: list[StepResult],
    work: Path,
    *,
    baseline: dict | None,
    run_date: dt.date,
    roots: list[tuple[str, str]] | None = None,
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
            _step_notebook(s, info, site / "steps" / f"{s.name}.ipynb", roots)
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
    cmd = [str(jb), "build", "site", "--path-output", "."]
    # Its own session: Ctrl-C goes to the run, which then ends the build.
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=work, start_new_session=True
    )
    (work / "logs" / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        raise WorkbookError(
            "RUN001",
            step="Assemble the workbook",
            detail="the HTML build failed",
            log="logs/build.log",
        )
    return work / "_build" / "html"
