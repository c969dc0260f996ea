"""Building the workbook's HTML site from its pages."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import importlib
import io
import logging
import shutil
import sys
import threading
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
    (site / "_static").mkdir(exist_ok=True)
    for name in ("playbook.js", "playbook.css", "favicon.svg"):
        shutil.copy2(ROOT / "book" / "_static" / name, site / "_static" / name)
    config = site_config(cfg)
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    status, output = build_html(site, work / "_build" / "html")
    (work / "logs" / "build.log").write_text(output)
    if status != 0:
        raise WorkbookError(
            "RUN001",
            step="Assemble the workbook",
            detail="the HTML build failed",
            log="logs/build.log",
        )
    return work / "_build" / "html"


#: The book's own configuration: the workbook's site is built with the same settings.
BOOK_CONFIG = ROOT / "_config.yml"
#: Settings of the book that do not apply to a workbook's site.
BOOK_ONLY = ("copyright", "exclude_patterns")


def site_config(cfg: ServiceConfig, book_config: Path = BOOK_CONFIG) -> dict:
    """The workbook site's Jupyter Book configuration: the book's, with what differs.

    What differs: the title and author (the service's), no execution (the notebooks
    already ran), the small-number rule (and any warning) in every page's footer, the
    site's own static folder, and the safe_html extension that escapes the theme's slots.
    """
    config = _book_settings(book_config)
    # Plain text: the theme's title, author and footer slots are escaped once by the
    # safe_html extension, wherever the theme writes them.
    footer = cfg.disclosure.warning() or cfg.disclosure.describe()
    config["title"] = f"Workbook: {cfg.service_name}"
    config["author"] = cfg.organisation or cfg.service_name
    config["only_build_toc_files"] = True
    config["execute"] = {"execute_notebooks": "off"}
    config["html"] = {**config.get("html", {}), "extra_footer": footer}
    sphinx = config.setdefault("sphinx", {})
    options = sphinx.setdefault("config", {})
    options["html_theme_options"] = {
        **options.get("html_theme_options", {}),
        "extra_footer": footer,  # the rule (and any warning) in every page's footer
    }
    options["html_favicon"] = "_static/favicon.svg"
    options["html_static_path"] = ["_static"]
    return config


def _book_settings(book_config: Path) -> dict:
    """The book's settings that the workbook's site keeps, with the site's extensions: the
    book's, and the safe_html extension that escapes the theme's slots."""
    book = yaml.safe_load(book_config.read_text(encoding="utf-8")) or {}
    config = {k: copy.deepcopy(v) for k, v in book.items() if k not in BOOK_ONLY}
    sphinx = config.setdefault("sphinx", {})
    sphinx["extra_extensions"] = [
        *sphinx.get("extra_extensions", []),
        "equity_helpers.safe_html",
    ]
    # The book's own extensions, found from the book's folder wherever the site is built.
    sphinx["local_extensions"] = {
        name: str((book_config.parent / folder).resolve())
        for name, folder in sphinx.get("local_extensions", {}).items()
    }
    return config


def build_html(site: Path, html: Path) -> tuple[int, str]:
    """Build the site in ``site`` into ``html`` with Sphinx, in this process.

    Jupyter Book's own build, without starting a second Python. Returns the status (0
    when the build succeeded) and Sphinx's messages.
    """
    from jupyter_book.sphinx import build_sphinx

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        result = build_sphinx(
            site,
            html,
            use_external_toc=True,
            noconfig=True,
            path_config=str(site / "_config.yml"),
            confoverrides={
                "external_toc_path": (site / "_toc.yml").as_posix(),
                "latex_individualpages": False,
            },
            builder="html",
            freshenv=True,
        )
    if isinstance(result, BaseException):
        if isinstance(result, KeyboardInterrupt):
            raise result
        output.write(f"\n{type(result).__name__}: {result}\n")
        return 1, output.getvalue()
    return int(result or 0), output.getvalue()


def site_modules(book_config: Path = BOOK_CONFIG) -> list[str]:
    """The modules Sphinx loads to build a workbook's site: its own, its extensions
    (Jupyter Book's, the book's and the site's own, with what they load as they are set
    up) and the theme.

    The book's local extensions are found from their folder, put on Python's path as the
    build puts it.
    """
    from jupyter_book.config import get_final_config
    from sphinx.application import builtin_extensions

    settings = _book_settings(book_config)
    for folder in settings["sphinx"]["local_extensions"].values():
        if folder not in sys.path:
            sys.path.append(folder)
    config, _ = get_final_config(
        user_yaml=settings,
        cli_config={"latex_individualpages": False},
        validate=False,
    )
    theme = config.get("html_theme")
    return [
        *builtin_extensions,
        *config.get("extensions", []),
        *([theme] if isinstance(theme, str) else []),
        "myst_nb.sphinx_ext",
        "sphinx.search.en",
    ]


def preload() -> threading.Thread:
    """Load Sphinx, Jupyter Book and every module the site's build uses, in the background
    (a few seconds), while notebooks run."""

    def load():
        try:
            import jupyter_book.sphinx  # noqa: F401
            import myst_nb  # noqa: F401

            names = site_modules()
        except Exception:  # noqa: BLE001 - the build itself reports any problem
            return
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - as above
                pass

    thread = threading.Thread(target=load, name="preload-sphinx", daemon=True)
    thread.start()
    return thread
