"""One module per analytic step, named like its notebook.

Each module's ``run(service)`` returns a :class:`~equity_helpers.steps.base.StepResult`
(run once per service object and reused) and declares ``HEADLINES``: the glue names and
labels of the figures the workbook's front page shows.
"""

from __future__ import annotations

from . import (
    access_and_outcome_gaps,
    data_completeness,
    deprivation_and_core20,
    evaluation,
    pathway,
    readability,
    summary_and_plan,
    who_uses_the_service,
)
from .base import Chart, StepResult, Table

#: The step modules in the order of the notebooks.
STEPS = {
    "data-completeness": data_completeness,
    "who-uses-the-service": who_uses_the_service,
    "deprivation-and-core20": deprivation_and_core20,
    "access-and-outcome-gaps": access_and_outcome_gaps,
    "pathway": pathway,
    "readability": readability,
    "evaluation": evaluation,
    "summary-and-plan": summary_and_plan,
}


def columns_for(name: str, cfg) -> list[str] | None:
    """The prepared columns a step reads (None: every column), as the step declares them.

    The workbook runner works each step out in a process of its own, which then reads only
    these columns of the prepared file: on a big extract, a fraction of the time and
    memory of reading every one. A step module without ``READS`` reads every column.
    """
    module = STEPS[name]
    columns = getattr(module, "READS", None)
    if columns is None:
        return None
    extra = module.config_columns(cfg) if hasattr(module, "config_columns") else ()
    return list(dict.fromkeys((*columns, *extra)))


def headlines() -> list[tuple[str, str]]:
    """Every step's headline figures as (glue name, label), in the order of the steps."""
    return [item for module in STEPS.values() for item in module.HEADLINES.items()]


def headline_decimals() -> dict[str, int]:
    """Decimal places of each headline figure shown to other than one, as its step shows it."""
    return {
        name: places
        for module in STEPS.values()
        for name, places in getattr(module, "HEADLINE_DECIMALS", {}).items()
    }


__all__ = ["STEPS", "Chart", "StepResult", "Table", "columns_for", "headline_decimals", "headlines"]
