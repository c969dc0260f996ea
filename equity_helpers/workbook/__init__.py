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

The package is split by job: :mod:`.pipeline` runs one service (and several in turn),
:mod:`.execute` runs the notebooks in a pool of worker processes, :mod:`.cache` keeps
finished steps for reuse, :mod:`.pages` writes the workbook's own pages, :mod:`.site`
builds the HTML, :mod:`.index` compares several services, :mod:`.folders` makes sure
nothing is ever lost and :mod:`.paths` keeps machine paths out of what is published.
Data flows one way: the pipeline calls the others; none of them calls the pipeline.
"""

from __future__ import annotations

from .execute import run_steps
from .folders import (
    INDEX_MARK,
    MADE_BY,
    PARTIAL_MARK,
    RUN_PREFIX,
    RunInterrupted,
    _clean_other_stale_publishes,
    _clean_stale_runs,
)
from .index import write_index
from .pages import SAMPLE_NOTE_TAG, for_the_service
from .paths import sanitise_paths, scrub_text
from .pipeline import run_many, run_workbook
from .results import HEADLINES, StepResult, WorkbookResult, slugify
from .site import assemble

__all__ = [
    "HEADLINES",
    "INDEX_MARK",
    "MADE_BY",
    "PARTIAL_MARK",
    "RUN_PREFIX",
    "SAMPLE_NOTE_TAG",
    "RunInterrupted",
    "StepResult",
    "WorkbookResult",
    "_clean_other_stale_publishes",
    "_clean_stale_runs",
    "assemble",
    "for_the_service",
    "run_many",
    "run_steps",
    "run_workbook",
    "sanitise_paths",
    "scrub_text",
    "slugify",
    "write_index",
]
