"""What every step returns, and how a notebook shows it.

A step's ``run(service)`` does all the work and returns a :class:`StepResult`: its
controlled tables, chart-ready data, named values to glue, findings in words, and a note
for every view it could not show saying why. The notebook then only narrates:
``result.show("name")`` shows a table, chart, list or paragraph (or the note that says
why it is missing), and ``result.glue()`` glues every value for the prose and the
workbook.
"""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import CATEGORY_FIELDS
from ..privacy import control_chart_data, merge_small_groups, seal_counts
from ..wording import is_number


@dataclass
class Table:
    """A controlled table ready to show: every count already under the rule."""

    frame: pd.DataFrame
    caption: str
    counts: tuple[str, ...] = ()
    percents: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    #: File name (no suffix) for the summary tables, or None to show only.
    export: str | None = None
    #: False for a table that is written to the summary tables but not shown on the page.
    shown: bool = True
    label_columns: tuple[str, ...] = ()
    #: True for a table whose counts are exact on purpose because they are not about people
    #: (rows of the file, areas); every other table's counts are sealed under the rule.
    exact: bool = False


@dataclass
class Chart:
    """Data for one chart and the :mod:`equity_helpers.plots` function that draws it.

    Every chart says who its points are about, so that :func:`seal` can put it under the
    rule like a table (rule 5 in :mod:`equity_helpers.privacy`): ``people`` names the
    column with the number of people behind each point (or gives a grid of them for a
    two-way chart), ``values`` the figures hidden for a point about too few people,
    ``counts`` the counts of people drawn, and ``top``/``denominator`` the columns for the
    one-person rule when a rate is not counted in people. A chart that is not about people
    (documents, say) is marked ``exact``.
    """

    plot: str
    data: Any
    options: dict = field(default_factory=dict)
    people: Any = None
    values: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()
    top: str | None = None
    denominator: str | None = None
    exact: bool = False

    def table(self) -> pd.DataFrame:
        """The data behind this chart, as text: the same controlled figures it draws."""
        from ..plots import chart_table

        return chart_table(self)


@dataclass
class StepResult:
    """Everything one step found, ready for a notebook to show."""

    name: str
    #: Every value the notebook glues, by glue name (numbers and sentences).
    values: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    charts: dict[str, Chart] = field(default_factory=dict)
    #: Bullet lists (such as an action list), by name.
    lists: dict[str, list[str]] = field(default_factory=dict)
    #: Paragraphs in markdown, by name.
    texts: dict[str, str] = field(default_factory=dict)
    #: For each view that could not be shown, the reason in words.
    notes: dict[str, str] = field(default_factory=dict)
    #: The step's main findings, as plain sentences.
    findings: list[str] = field(default_factory=list)
    #: Working results other steps reuse (raw; never shown).
    data: dict[str, Any] = field(default_factory=dict)

    # -- for notebooks ---------------------------------------------------------------------
    def glue(self) -> None:
        """Glue every value (as ``myst_nb.glue`` does) so the prose and the workbook can quote it."""
        for key, value in self.values.items():
            glue(key, value)

    def show(self, name: str):
        """Show one view: a table, a chart, a list or a paragraph, or the note saying why not.

        Returns what a notebook cell displays (a table or markdown); a chart is drawn
        and shown at once, and nothing is returned.
        """
        from IPython.display import Markdown

        from .. import display as show

        if name in self.tables and self.tables[name].shown:
            t = self.tables[name]
            return show.table(
                t.frame, caption=t.caption, counts=t.counts, percents=t.percents, numbers=t.numbers
            )
        if name in self.charts:
            import matplotlib.pyplot as plt

            from .. import plots

            plots.draw(self.charts[name])
            plt.show()
            return plots.data_behind(self.charts[name])
        if name in self.lists:
            return show.bullet_list(self.lists[name])
        if name in self.texts:
            return Markdown(self.texts[name])
        if name in self.notes:
            return Markdown(self.notes[name])
        return None

    def publish(self, service) -> None:
        """Write the summary tables and glue every value: what each notebook does once."""
        self.export(service)
        self.glue()

    def intro(self, rule):
        """The small-number rule, and the step's own notice (what it cannot show, and why)."""
        from IPython.display import Markdown

        from .. import display as show

        parts = [show.disclosure_notice(rule).data, self.texts.get("notice", "")]
        return Markdown("\n\n".join(p for p in parts if p))

    def export(self, service) -> None:
        """Write every table with an export name to the service's summary tables."""
        for t in self.tables.values():
            if t.export:
                service.export(t.export, t.frame, t.caption, label_columns=t.label_columns)

    # -- for tests and other steps ---------------------------------------------------------
    def words(self) -> list[str]:
        """Every piece of prose this result holds: findings, text values, lists, notes."""
        out = list(self.findings) + list(self.texts.values()) + list(self.notes.values())
        out += [v for v in self.values.values() if isinstance(v, str)]
        for items in self.lists.values():
            out += list(items)
        return out


#: The prefix ``myst_nb.glue`` gives the output of a value glued without showing it.
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: Any) -> None:
    """Glue a value without showing it: the same output as ``myst_nb.glue(name, value, False)``.

    Importing ``myst_nb`` costs a notebook about a second (it loads ``nbformat``), for
    three lines of work; the book and :func:`~equity_helpers.notebooks.read_glued` read
    the output either way.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    mimebundle, metadata = format_display_data(value)
    metadata["scrapbook"] = dict(name=name, mime_prefix=GLUE_PREFIX)
    display({GLUE_PREFIX + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)


def number_or_none(value) -> float | None:
    """A glued figure as a float, or None for one that could not be worked out or is withheld.

    A missing figure is glued as None, never as NaN or infinity: those read back from a
    notebook as the text "nan" or "inf", which would reach the front page as a figure.

    >>> number_or_none(12), number_or_none(float("nan")), number_or_none(None)
    (12.0, None, None)
    """
    return float(value) if is_number(value) else None


def headline(result: StepResult, key: str, value, why: str) -> None:
    """Glue a headline figure; one that could not be worked out or is withheld is glued as
    None, with ``<key>_why`` saying why in words (the front page shows the reason; a blank
    ``why`` says only that it could not be worked out).

    >>> r = StepResult("x"); headline(r, "ratio", float("nan"), "Too few referrals to show.")
    >>> r.values
    {'ratio': None, 'ratio_why': 'Too few referrals to show.'}
    """
    result.values[key] = number_or_none(value)
    if result.values[key] is None:
        result.values[f"{key}_why"] = why or "It could not be worked out."
    else:
        result.values.pop(f"{key}_why", None)


def protect_labels(service) -> None:
    """Merge free-text groups too small to name into "Other (small groups)", once per service.

    Religion, sexual orientation and marital status hold whatever the service's own system
    holds, so a label seen for a handful of people can identify them (rule 2 in
    :mod:`equity_helpers.privacy`). Every step runs on the merged data, so no step can
    publish such a label, in a table, a chart, a sentence or a summary table.
    """
    if service.__dict__.get("_labels_protected"):
        return
    merge = functools.partial(_merge_small_labels, rule=service.rule)
    if callable(getattr(service, "when_read", None)):
        service.when_read(merge)  # as the rows are read: a step that needs none reads none
    else:
        service.data = merge(service.data)
    service.__dict__["_labels_protected"] = True


def _merge_small_labels(data: pd.DataFrame, rule) -> pd.DataFrame:
    """The rows with free-text groups too small to name merged (see :func:`protect_labels`)."""
    # A shallow copy: only the merged columns are new (copy-on-write keeps the rest shared),
    # so a big extract's table is not held twice.
    data = data.copy(deep=False)
    for name in CATEGORY_FIELDS:
        if name in data:
            data[name] = merge_small_groups(data[name], rule)
    return data


def seal(result: StepResult, rule) -> StepResult:
    """The last guard before anything is shown: every count column goes under the rule.

    A step controls its counts itself; this makes sure no step can publish one that slipped
    through. Controlled counts pass unchanged. Tables marked ``exact`` (rows of the file,
    areas) are left as they are.
    """
    for table in result.tables.values():
        if table.exact:
            continue
        for column in table.counts:
            if column in table.frame:
                table.frame[column] = seal_counts(table.frame[column], rule)
    for name, chart in result.charts.items():
        seal_chart(chart, rule, f"{result.name}: {name}")
    return result


def seal_chart(chart: Chart, rule, name: str = "a chart") -> Chart:
    """Put one chart's data under the rule (rule 5 in :mod:`equity_helpers.privacy`).

    Points about too few people, or whose rate is mostly one person's, are hidden; counts
    are rounded as in a table; raw columns are dropped. A chart that does not say who its
    points are about is refused, so that no chart can be drawn from exact data by mistake.
    """
    if chart.exact or chart.__dict__.get("_sealed"):
        return chart
    if chart.people is None and not chart.counts:
        raise ValueError(
            f"The chart {name!r} does not say how many people are behind each point: give "
            "Chart(people=...) or counts=..., or exact=True for a chart not about people."
        )
    chart.data = control_chart_data(
        chart.data,
        rule,
        people=chart.people,
        values=chart.values,
        counts=chart.counts,
        top=chart.top,
        denominator=chart.denominator,
    )
    if isinstance(chart.people, pd.DataFrame):
        chart.people = None  # exact people per cell: not kept once used
    chart.__dict__["_sealed"] = True
    return chart


def cached(step: Callable) -> Callable:
    """Run a step once per service object; later calls (say, from the summary) reuse it.

    Before the first step runs, small free-text groups are merged (:func:`protect_labels`).
    Results handed over by the workbook runner (:func:`load_results`) are used as they
    are. The steps this service object worked out itself are listed in
    ``service.computed_steps``.
    """

    @functools.wraps(step)
    def run(service) -> StepResult:
        cache = service.__dict__.setdefault("_step_results", {})
        key = step.__module__
        if key not in cache:  # results handed over need no rows: none are read
            protect_labels(service)
            cache[key] = seal(step(service), service.rule)
            service.__dict__.setdefault("computed_steps", []).append(key.rsplit(".", 1)[-1])
        return cache[key]

    return run


def save_results(service, path) -> list[str]:
    """Write the step results this service object holds to one file, for its notebooks.

    The workbook runner works out every step once, in one process, and hands the file to
    each notebook's :func:`~equity_helpers.service.open_service`. The file belongs to one
    service's run and lives in that run's private folder. A result that cannot be written
    is left out (its notebook then works it out itself). Returns the steps written.
    """
    kept = {}
    for key, result in service.__dict__.get("_step_results", {}).items():
        try:
            kept[key] = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an odd value costs only the reuse
            continue
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump({"service": service.name, "results": kept}, fh)
    os.replace(tmp, path)
    return [key.rsplit(".", 1)[-1] for key in kept]


def load_results(service, path) -> list[str]:
    """Take the step results the workbook runner worked out (see :func:`save_results`).

    Only results made for this same service are taken. Returns the steps taken.
    """
    with open(path, "rb") as fh:
        saved = pickle.load(fh)  # the run's own file, in its private folder
    if saved.get("service") != service.name:
        return []
    cache = service.__dict__.setdefault("_step_results", {})
    for key, blob in saved["results"].items():
        cache.setdefault(key, pickle.loads(blob))
    return [key.rsplit(".", 1)[-1] for key in saved["results"]]
