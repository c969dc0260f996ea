"""Charts for the notebooks: readable without colour, drawn from controlled figures.

Every function takes ``ax=None`` and returns the matplotlib Axes. Colours come from the
Okabe-Ito palette (safe for the common kinds of colour blindness), and every series
also differs by marker, line style or hatching, and is labelled directly, so a chart
reads the same in greyscale. Hidden (suppressed) values are marked with ``*``.

Charts are drawn as SVG, with their text kept as text (:data:`STYLE`): sharp on any
screen and on paper, and the same size in every chart. :data:`TEXT`, the smallest size,
is 11 points: 14.7 CSS pixels when the chart is shown at its own size, a little more
than the book's small print (14.4 pixels). The book's stylesheet shrinks a chart to a
narrower column (a phone), height with width, so the page never scrolls sideways; a link
under such a chart opens it at full size.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), "-"]
# Making Data Count colours: blue improvement, orange concern, grey common cause.
MDC = {"improvement": "#289DE0", "concern": "#E46C0A", "neutral": "#490092", "common": "#7F7F7F"}
HIDDEN_NOTE = (
    "* hidden: too few people to show under the small-number rule, or to protect a hidden figure"
)
#: The same note on two lines, to fit under a chart at the chart's text size.
HIDDEN_NOTE_WRAPPED = HIDDEN_NOTE.replace(" rule, ", " rule,\n")

#: Text sizes in points. Every word on a chart uses one of these.
TITLE = 14
TEXT = 11
#: The default chart size in inches; a chart is shown at this size, or the page's width.
#: 5.9 inches is 566 CSS pixels: on a phone 390 pixels wide the column is about 352
#: pixels, so a chart shrunk to fit still has text of at least 9 pixels, as long as
#: nothing on it reaches past its width (see :func:`fit_width`).
WIDTH = 5.9
#: The CSS pixels a chart is shown in on a phone 390 pixels wide (the page's margins take
#: the rest), and the smallest text, in CSS pixels, a chart may then have.
PHONE_COLUMN = 352
PHONE_TEXT = 9
#: The margin (inches) a chart is saved with around everything drawn on it.
PAD = 0.05
#: The longest title line, in characters, that fits across a chart of :data:`WIDTH`.
TITLE_CHARACTERS = 47

#: The shared look of every chart, and how notebooks show them.
STYLE = {
    "font.size": TEXT,
    "axes.titlesize": TITLE,
    "axes.labelsize": TEXT,
    "xtick.labelsize": TEXT,
    "ytick.labelsize": TEXT,
    "legend.fontsize": TEXT,
    "figure.titlesize": TITLE,
    # SVG keeps its text as text: crisp at any zoom, found by the browser's search,
    # and checked by the privacy tests like any other published words.
    "svg.fonttype": "none",
    # The same chart gets the same element ids, run after run.
    "svg.hashsalt": "equity-playbook",
    # Where a chart needs pixels (the shaded cells of a heatmap inside its SVG, or a PNG
    # saved by hand), there are enough of them to print sharply.
    "figure.dpi": 200,
    "savefig.dpi": 200,
    # A chart is saved cut to what is drawn on it (as notebooks show it), with a thin margin.
    "savefig.pad_inches": PAD,
}


def use_style() -> None:
    """Apply :data:`STYLE`, and have notebooks show charts as SVG rather than PNG."""
    plt.rcParams.update(STYLE)
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython comes with the notebooks
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("svg")


use_style()


def _title(title: str) -> str:
    """A long title on two lines, so it never makes the chart wider than its plot."""
    import textwrap

    return textwrap.fill(title, TITLE_CHARACTERS)


#: The longest line of an axis label, in characters, before it is wrapped.
LABEL_CHARACTERS = 50


def _label(text: str) -> str:
    """A long axis label on two lines or more, each line kept as it was given."""
    import textwrap

    return "\n".join(textwrap.fill(line, LABEL_CHARACTERS) for line in text.split("\n"))


#: The longest line of a group's name beside a bar, in characters, before it is wrapped.
TICK_CHARACTERS = 30


def _names(labels: list[str]) -> list[str]:
    """Groups' names beside a plot, long ones on two lines or more, so the plot keeps
    most of the chart's width."""
    import textwrap

    return [textwrap.fill(str(label), TICK_CHARACTERS) for label in labels]


def _rows_height(labels, row: float, extra: float) -> float:
    """A chart's height for one row a group: ``row`` inches each, more for a name on
    several lines (so that names never run into each other), and ``extra`` for the rest."""
    lines = max([name.count("\n") + 1 for name in _names(labels)] + [1])
    return max(row, 0.19 * lines + 0.1) * len(labels) + extra


def _style(ax, title: str, xlabel: str | None, ylabel: str | None) -> None:
    ax.set_title(_title(title), loc="left", fontsize=TITLE, fontweight="bold")
    if xlabel:
        ax.set_xlabel(_label(xlabel))
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _spread(values: list[float], gap: float) -> list[float]:
    """Label positions for sorted ``values``, each at least ``gap`` above the one below,
    kept centred on the values they label."""
    if not values:
        return []
    placed = [values[0]]
    for v in values[1:]:
        placed.append(max(v, placed[-1] + gap))
    # Moving every label by the same amount keeps the gaps; this keeps them centred.
    shift = sum(p - v for p, v in zip(placed, values, strict=True)) / len(values)
    return [p - shift for p in placed]


def _end_names(ax, ends: list[tuple[object, float, str]]) -> None:
    """Names at the ends of lines (x, y, name), moved apart so that no two overprint: at
    least a line and a half of text apart, measured on the plot as laid out."""
    if not ends:
        return
    fig = ax.figure
    fig.canvas.draw()
    bottom, top = ax.get_ylim()
    per_unit = ax.get_window_extent().height * 72 / fig.dpi / (top - bottom)  # points
    order = sorted(range(len(ends)), key=lambda i: ends[i][1])
    gap = 1.5 * TEXT / per_unit
    placed = _spread([ends[i][1] for i in order], gap)
    # Kept within the plot's height: never up into the title, nor down under the axis.
    if placed[-1] > top - gap / 2:
        placed = [p - (placed[-1] - top + gap / 2) for p in placed]
    if placed[0] < bottom + gap / 2:
        placed = [p + (bottom + gap / 2 - placed[0]) for p in placed]
    for i, at in zip(order, placed, strict=True):
        x, y, name = ends[i]
        ax.annotate(
            f" {name}",
            (x, y),
            xytext=(2, (at - y) * per_unit),
            textcoords="offset points",
            va="center",
            fontsize=TEXT,
        )


def _dates(ax) -> None:
    """Month labels that never run into each other: at most six, written briefly."""
    import matplotlib.dates as mdates

    start, end = ax.get_xlim()
    months = max(1.0, (end - start) / 30.4)
    step = next((k for k in (1, 2, 3, 4, 6, 12) if months / k <= 6), int(months // 6) + 1)
    locator = mdates.MonthLocator(interval=step)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _new(ax, height: float = 3.6, width: float = WIDTH):
    if ax is None:
        _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return ax


def bar_ci(
    table: pd.DataFrame,
    value: str = "pct",
    lower: str | None = "lower",
    upper: str | None = "upper",
    group: str = "group",
    *,
    title: str,
    xlabel: str,
    reference: float | None = None,
    reference_label: str = "Overall",
    ax=None,
):
    """Horizontal bars with 95% intervals; hidden values shown as ``*``.

    >>> t = pd.DataFrame({"group": ["A", "B"], "pct": [10.0, None], "lower": [8, None], "upper": [12, None]})
    >>> ax = bar_ci(t, title="Example", xlabel="%")
    """
    ax = _new(ax, height=max(2.2, _rows_height(table[group], 0.45, 1.2)))
    labels = table[group].astype(str).tolist()[::-1]
    vals = pd.to_numeric(table[value], errors="coerce").to_numpy(dtype=float)[::-1]
    y = np.arange(len(labels))
    shown = ~np.isnan(vals)
    ax.barh(y[shown], vals[shown], color="#9ecae1", edgecolor="#08306b", hatch="//", linewidth=0.8)
    # Each value is written past the end of its bar or interval, whichever is further right.
    ends = vals.copy()
    if lower and upper:
        lo = pd.to_numeric(table[lower], errors="coerce").to_numpy(dtype=float)[::-1]
        hi = pd.to_numeric(table[upper], errors="coerce").to_numpy(dtype=float)[::-1]
        ok = shown & ~np.isnan(lo) & ~np.isnan(hi)
        ax.errorbar(
            vals[ok],
            y[ok],
            xerr=[vals[ok] - lo[ok], hi[ok] - vals[ok]],
            fmt="none",
            ecolor="black",
            capsize=3,
            linewidth=1,
        )
        ends = np.fmax(vals, hi)
    top = np.nanmax(np.concatenate([ends[shown], [0]])) if shown.any() else 1
    # A white box behind each number, above the lines: a line never runs through a number.
    box = {"fc": "white", "ec": "none", "pad": 0.5}
    for yi, v, end in zip(y, vals, ends, strict=True):
        if np.isnan(v):
            ax.text(0, yi, " *", va="center", ha="left", fontsize=TITLE, fontweight="bold")
        else:
            ax.annotate(
                f"{v:.1f}",
                (end, yi),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=TEXT,
                bbox=box,
                zorder=4,
            )
    if reference is not None and np.isfinite(reference):
        ax.axvline(reference, color="black", linestyle="--", linewidth=1)
        # In its own band above the top bar, clear of every bar and number.
        ax.text(
            reference,
            len(labels) - 0.45,
            f" {reference_label} {reference:.1f}",
            fontsize=TEXT,
            va="bottom",
            bbox=box,
            zorder=4,
        )
        ax.set_ylim(-0.6, len(labels) + 0.35)
    ax.set_yticks(y, _names(labels))
    # Room for the longest interval and its number: no error bar is cut off.
    ax.set_xlim(0, max(top * 1.2, 1))
    if (~shown).any():
        xlabel = f"{xlabel}\n{HIDDEN_NOTE_WRAPPED}"
    _style(ax, title, xlabel, None)
    return ax


def paired_bars(
    table: pd.DataFrame, a: str, b: str, group: str = "group", *, title: str, xlabel: str, ax=None
):
    """Two measures side by side for each group (for example referrals and population)."""
    ax = _new(ax, height=max(2.4, _rows_height(table[group], 0.55, 1.2)))
    labels = table[group].astype(str).tolist()[::-1]
    y = np.arange(len(labels))
    h = 0.38
    for k, (col, colour, hatch) in enumerate(((a, OKABE_ITO[0], ""), (b, "#bbbbbb", "xx"))):
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)[::-1]
        pos = y + (h / 2 if k == 0 else -h / 2)
        ax.barh(
            pos[~np.isnan(v)],
            v[~np.isnan(v)],
            height=h,
            color=colour,
            hatch=hatch,
            edgecolor="black",
            linewidth=0.6,
            label=col,
        )
        for yi, vi in zip(pos, v, strict=True):
            ax.text(
                0 if np.isnan(vi) else vi,
                yi,
                " *" if np.isnan(vi) else f" {vi:.1f}",
                va="center",
                fontsize=TEXT,
            )
    ax.set_yticks(y, _names(labels))
    # The key goes under the chart, where it cannot hide a bar.
    handles, labels = ax.get_legend_handles_labels()
    if ax.figure.get_layout_engine() is not None:
        ax.figure.legend(
            handles, labels, loc="outside lower center", ncols=2, frameon=False, fontsize=TEXT
        )
    else:
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, frameon=False, fontsize=TEXT
        )
    _style(ax, title, xlabel, None)
    return ax


def ratio_plot(table: pd.DataFrame, group: str = "group", *, title: str, ax=None):
    """Representation ratios with intervals against the line of fair share (1)."""
    ax = _new(ax, height=max(2.2, _rows_height(table[group], 0.45, 1.2)))
    labels = table[group].astype(str).tolist()[::-1]
    r = pd.to_numeric(table["ratio"], errors="coerce").to_numpy(dtype=float)[::-1]
    lo = pd.to_numeric(table["lower"], errors="coerce").to_numpy(dtype=float)[::-1]
    hi = pd.to_numeric(table["upper"], errors="coerce").to_numpy(dtype=float)[::-1]
    y = np.arange(len(labels))
    ok = ~np.isnan(r)
    under = ok & (hi < 1)
    ax.errorbar(
        r[ok], y[ok], xerr=[r[ok] - lo[ok], hi[ok] - r[ok]], fmt="none", ecolor="black", capsize=3
    )
    ax.scatter(
        r[ok & ~under],
        y[ok & ~under],
        marker="o",
        s=45,
        color=OKABE_ITO[0],
        zorder=3,
        label="in line with, or above, fair share",
    )
    ax.scatter(
        r[under],
        y[under],
        marker="v",
        s=60,
        color=OKABE_ITO[1],
        zorder=3,
        label="under-represented (whole interval below 1)",
    )
    # Each number sits just above its point on a white box, over the lines, so neither
    # the interval nor the line at 1 runs through it.
    for yi, v in zip(y, r, strict=True):
        ax.annotate(
            f"{v:.2f}" if not np.isnan(v) else "*",
            (v if not np.isnan(v) else 1, yi),
            xytext=(0, 5),
            textcoords="offset points",
            fontsize=TEXT,
            ha="center",
            va="bottom",
            bbox={"fc": "white", "ec": "none", "pad": 0.3},
            zorder=4,
        )
    ax.axvline(1, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(y, _names(labels))
    ax.set_ylim(-0.6, len(labels) - 0.1)
    # The key goes under the chart, where it cannot hide a point.
    if ax.figure.get_layout_engine() is not None:
        ax.figure.legend(loc="outside lower center", ncols=1, frameon=False, fontsize=TEXT)
    else:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False, fontsize=TEXT)
    _style(ax, title, "Representation ratio (1 = referred in proportion to population)", None)
    return ax


def line_chart(
    df: pd.DataFrame, x: str, y: str, *, title: str, ylabel: str, ax=None, series: str | None = None
):
    """A line over time, one style per series, labelled at the end of each line."""
    ax = _new(ax)
    ends: list[tuple[object, float, str]] = []
    groups = [(None, df)] if series is None else list(df.groupby(series, sort=False))
    for k, (name, sub) in enumerate(groups):
        ax.plot(
            sub[x],
            sub[y],
            marker=MARKERS[k % 8],
            markersize=3,
            linestyle=LINESTYLES[k % 8],
            color=OKABE_ITO[k % 8],
            label=name,
        )
        last = sub.dropna(subset=[y]).tail(1)
        if name is not None and len(last):
            ends.append((last[x].iloc[0], float(last[y].iloc[0]), str(name)))
    if pd.api.types.is_datetime64_any_dtype(df[x]):
        _dates(ax)
    elif not pd.api.types.is_numeric_dtype(df[x]):  # named steps along the axis, wrapped
        steps = [str(v) for v in dict.fromkeys(df[x])]
        ax.set_xticks(range(len(steps)), [textwrap.fill(v, 14) for v in steps])
    _end_names(ax, ends)
    _style(ax, title, None, ylabel)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    return ax


def funnel_plot(points: pd.DataFrame, limits: pd.DataFrame, *, title: str, ax=None):
    """Funnel plot: each area's rate against 95% and 99.8% limits around the overall rate."""
    ax = _new(ax, height=4.2)
    n = limits["n"].to_numpy()
    # Column names as stats.funnel_limits writes them: lower95_0cl, upper99_8cl and so on.
    styles = {"95_0": ("--", "95% limits"), "99_8": (":", "99.8% limits")}
    for key, (ls, lab) in styles.items():
        ax.plot(n, limits[f"lower{key}cl"], color="black", linestyle=ls, linewidth=1, label=lab)
        ax.plot(n, limits[f"upper{key}cl"], color="black", linestyle=ls, linewidth=1)
    ax.axhline(
        points.attrs.get("baseline", limits["baseline"].iloc[0]),
        color="black",
        linewidth=1,
        label="Overall rate",
    )
    pos = points["funnel_position"].astype(str)
    kinds = [
        ("within", "o", OKABE_ITO[5], "within limits"),
        ("above", "^", OKABE_ITO[1], "above the 95% limit"),
        ("below", "v", OKABE_ITO[2], "below the 95% limit"),
    ]
    for word, marker, colour, lab in kinds:
        m = pos.str.startswith(word)
        ax.scatter(
            points.loc[m, "offered"].astype(float),
            points.loc[m, "value"],
            marker=marker,
            color=colour,
            edgecolor="black",
            linewidth=0.4,
            s=28,
            label=lab,
            zorder=3,
        )
    # The key goes under the chart, where it cannot hide an area's point.
    ax.legend(frameon=False, fontsize=TEXT, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3)
    _style(
        ax,
        title,
        "Appointments offered in the area (rounded to the nearest 5)",
        "Missed appointments (%)",
    )
    return ax


def funnel_plot_adjusted(
    points: pd.DataFrame, limits: pd.DataFrame, plain: pd.DataFrame, *, title: str, ax=None
):
    """A funnel plot (:func:`funnel_plot`) with limits widened for over-dispersion, and the
    plain limits drawn too as thin grey lines so readers can see how much they moved."""
    ax = funnel_plot(points, limits, title=title, ax=ax)
    n = plain["n"].to_numpy()
    for side in ("lower", "upper"):
        ax.plot(n, plain[f"{side}95_0cl"], color="#888888", linestyle="-", linewidth=0.8,
                label="95% limits before widening" if side == "lower" else None)  # fmt: skip
    ax.legend(frameon=False, fontsize=TEXT, loc="upper right")
    return ax


def spc_chart(spc: pd.DataFrame, x, *, title: str, ylabel: str, ax=None):
    """An XmR chart in the Making Data Count style, with special causes marked."""
    ax = _new(ax, height=3.8)
    ax.plot(x, spc["value"], color="#555555", linewidth=1)
    ax.plot(x, spc["mean"], color="black", linewidth=1, label="Mean")
    ax.plot(
        x,
        spc["upper_process_limit"],
        color="black",
        linestyle="--",
        linewidth=1,
        label="Process limits",
    )
    ax.plot(x, spc["lower_process_limit"], color="black", linestyle="--", linewidth=1)
    kind = spc["point_type"].astype(str)
    groups = [
        ("common_cause", "o", MDC["common"], "Common cause"),
        ("special_cause_improvement", "^", MDC["improvement"], "Special cause: improvement"),
        ("special_cause_concern", "v", MDC["concern"], "Special cause: concern"),
        ("special_cause_neutral", "D", MDC["neutral"], "Special cause: neutral"),
    ]
    for key, marker, colour, lab in groups:
        m = kind.str.startswith(key).to_numpy()
        if m.any():
            ax.scatter(
                np.asarray(x)[m],
                spc["value"].to_numpy()[m],
                marker=marker,
                color=colour,
                edgecolor="black",
                linewidth=0.4,
                s=30,
                label=lab,
                zorder=3,
            )
    ax.legend(frameon=False, fontsize=TEXT, loc="upper left", ncols=2)
    _style(ax, title, None, ylabel)
    return ax


def pathway_chart(path: pd.DataFrame, *, title: str, ax=None):
    """Share of each group still in the pathway at each stage."""
    ax = _new(ax, height=4)
    stages = list(dict.fromkeys(path["stage"]))
    ends: list[tuple[object, float, str]] = []
    for k, (g, sub) in enumerate(path.groupby("group", sort=False)):
        v = sub.set_index("stage").reindex(stages)["% of referred"].to_numpy(dtype=float)
        ax.plot(
            stages,
            v,
            marker=MARKERS[k % 8],
            linestyle=LINESTYLES[k % 8],
            color=OKABE_ITO[k % 8],
            label=str(g),
        )
        if not np.isnan(v[-1]):
            ends.append((len(stages) - 1, float(v[-1]), str(g)))
    ax.set_ylim(0, 105)
    _end_names(ax, ends)
    ax.legend(frameon=False, fontsize=TEXT, loc="lower left", ncols=2)
    _style(ax, title, None, "% of those referred")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    return ax


def heatmap(wide: pd.DataFrame, *, title: str, value_label: str, ax=None):
    """A two-way table drawn as shaded cells, each with its number written in it."""
    ax = _new(ax, height=0.5 * len(wide) + 1.8)
    v = wide.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(v), cmap="Blues", aspect="auto")
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            val = v[i, j]
            text = "*" if np.isnan(val) else f"{val:.1f}"
            dark = not np.isnan(val) and val > np.nanpercentile(v, 60)
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=TEXT,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(v.shape[1]), [str(c) for c in wide.columns])
    ax.set_yticks(range(v.shape[0]), [str(r) for r in wide.index])
    ax.set_xlabel(wide.columns.name or "")
    ax.set_ylabel(wide.index.name or "")
    ax.set_title(_title(title), loc="left", fontsize=TITLE, fontweight="bold")
    plt.colorbar(im, ax=ax, label=value_label)
    return ax


def spc_with_change(spc: pd.DataFrame, *, title: str, ylabel: str, change=None, ax=None):
    """An XmR chart (:func:`spc_chart`) with a dotted line where a change began.

    Notes under the axis say when the limits are trial limits (fewer than 12 months) and
    how many months are left unplotted because their numbers are too small to show.
    """
    ax = spc_chart(spc, spc["date"], title=title, ylabel=ylabel, ax=ax)
    _dates(ax)
    notes = (
        ["Trial limits: fewer than 12 months, so they will move"]
        if spc.attrs.get("trial_limits")
        else []
    )
    hidden = int(spc["value"].isna().sum())
    if hidden:
        notes.append(f"{hidden} month(s) not plotted: too few people to show")
    if change is not None:
        # Named in the key under the chart, so no label sits on top of a point.
        ax.axvline(change, color="black", linestyle=":", linewidth=1.2, label="Change began")
    ax.set_xlabel("Month the referral was received" + ("\n" + "\n".join(notes) if notes else ""))
    ax.legend(frameon=False, fontsize=TEXT, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    return ax


def crude_and_standardised(table: pd.DataFrame, label: str = "label", *, title: str, ax=None):
    """Crude and age-standardised ratios side by side, with the standardised 95% interval.

    ``table`` has ``label``, ``crude``, ``standardised``, ``lower`` and ``upper``; a missing
    ratio (too few people to show) is marked ``*``.

    >>> t = pd.DataFrame({"label": ["A", "B"], "crude": [0.8, None],
    ...                   "standardised": [0.9, None], "lower": [0.7, None], "upper": [1.1, None]})
    >>> ax = crude_and_standardised(t, title="Example")
    """
    ax = _new(ax, height=max(2.4, _rows_height(table[label], 0.45, 1.4)))
    labels = table[label].astype(str).tolist()[::-1]
    y = np.arange(len(labels))

    def column(name):
        return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)[::-1]

    crude, std, lo, hi = (column(c) for c in ("crude", "standardised", "lower", "upper"))
    ok = ~np.isnan(std)
    ax.errorbar(
        std[ok], y[ok], xerr=[std[ok] - lo[ok], hi[ok] - std[ok]], fmt="none", ecolor="black",
        capsize=3,
    )  # fmt: skip
    ax.scatter(std[ok], y[ok], marker="s", s=40, color=OKABE_ITO[0], zorder=3,
               label="age-standardised (with 95% interval)")  # fmt: skip
    shown = ~np.isnan(crude)
    ax.scatter(crude[shown], y[shown] + 0.2, marker="o", s=36, facecolor="white",
               edgecolor=OKABE_ITO[1], linewidth=1.5, zorder=3, label="crude")  # fmt: skip
    for yi, v in zip(y, std, strict=True):
        ax.text(v if not np.isnan(v) else 1, yi - 0.35, f"{v:.2f}" if not np.isnan(v) else "*",
                fontsize=TEXT, ha="center")  # fmt: skip
    ax.axvline(1, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(y, _names(labels))
    # The key goes under the chart, where it cannot hide a point.
    if ax.figure.get_layout_engine() is not None:
        ax.figure.legend(loc="outside lower center", ncols=1, frameon=False, fontsize=TEXT)
    else:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False, fontsize=TEXT)
    _style(ax, title, "Representation ratio (1 = referred in line with the area's people)", None)
    return ax


def spc_gap(spc: pd.DataFrame, *, title: str, ylabel: str, change=None, ax=None):
    """An XmR chart of a gap (:func:`spc_with_change`) whose limits restart at the change.

    The mean and process limits are drawn segment by segment, so the step where the
    limits were worked out again shows as a break, not a slope. A line marks no gap (0).
    """
    blank = spc.assign(mean=np.nan, upper_process_limit=np.nan, lower_process_limit=np.nan)
    blank.attrs = spc.attrs
    ax = spc_with_change(blank, title=title, ylabel=ylabel, change=change, ax=ax)
    for _, seg in spc.groupby("segment"):
        ax.plot(seg["date"], seg["mean"], color="black", linewidth=1)
        for side in ("upper", "lower"):
            ax.plot(seg["date"], seg[f"{side}_process_limit"], color="black", linestyle="--",
                    linewidth=1)  # fmt: skip
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.annotate("No gap", (0.99, 0), xycoords=("axes fraction", "data"), ha="right",
                va="bottom", fontsize=TEXT, color="#555555")  # fmt: skip
    return ax


def draw(chart, ax=None):
    """Draw a step's chart (:class:`equity_helpers.steps.Chart`) with the function it names.

    Two options are applied after drawing: ``xlim`` (a pair) and ``legend_below`` (the
    number of legend columns, for a legend under the chart).
    """
    options = dict(chart.options)
    xlim = options.pop("xlim", None)
    legend_below = options.pop("legend_below", None)
    if chart.plot == "bar_ci" and ax is None:
        names = chart.data[options.get("group", "group")]
        ax = _new(None, height=max(2.2, _rows_height(names, 0.45, 1.2)))
    if chart.plot == "funnel_plot":
        ax = funnel_plot(chart.data, options.pop("limits"), ax=ax, **options)
    elif chart.plot == "funnel_plot_adjusted":
        limits, plain = options.pop("limits"), options.pop("plain")
        ax = funnel_plot_adjusted(chart.data, limits, plain, ax=ax, **options)
    elif chart.plot == "line_chart":
        ax = line_chart(chart.data, options.pop("x"), options.pop("y"), ax=ax, **options)
    elif chart.plot == "paired_bars":
        ax = paired_bars(chart.data, options.pop("a"), options.pop("b"), ax=ax, **options)
    else:
        ax = globals()[chart.plot](chart.data, ax=ax, **options)
    hidden = getattr(chart.data, "attrs", {}).get("hidden_points", 0)
    if hidden and chart.plot in (
        "line_chart",
        "funnel_plot",
        "funnel_plot_adjusted",
        "pathway_chart",
        "heatmap",
    ):
        ax.annotate(
            f"{hidden} point(s) not shown: too few people",
            (0, 0),
            xycoords="figure fraction",
            xytext=(4, 2),
            textcoords="offset points",
            fontsize=TEXT,
        )
    if xlim is not None:
        ax.set_xlim(*xlim)
    # A chart that already has its key under it (paired_bars) does not get a second one.
    if legend_below and not ax.figure.legends:
        ax.legend(
            frameon=False, fontsize=TEXT, loc="upper center", bbox_to_anchor=(0.5, -0.25),
            ncols=legend_below,
        )  # fmt: skip
    fit_width(ax.figure)
    return ax


def fit_width(fig) -> None:
    """Keep everything drawn on a chart within its width, so that it is saved
    :data:`WIDTH` wide and its text stays readable when a phone shrinks it to fit.

    The layout places the plot; a title then starts at the left edge of the labels beside
    the plot, not of the plot, and the plots are narrowed (their labels moving with them)
    until nothing reaches past either side: the numbers written after bars, a key.
    """
    # Laid out and measured without painting a picture: the sizes of the text are all
    # that is needed, and painting every pixel at the charts' resolution cost most of a
    # chart's time.
    fig.draw_without_rendering()
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")  # keep the places the layout found; adjust them here
    renderer = fig.canvas.get_renderer()
    for _ in range(8):
        for ax in fig.axes:
            _title_over_labels(ax, renderer)
        fig.draw_without_rendering()
        box = fig.get_tightbbox(renderer)
        width = fig.get_figwidth()
        left, right = max(0.0, -box.x0) / width, max(0.0, box.x1 - width) / width
        if left + right < 0.002 or left + right > 0.5:
            break  # it fits; or it never will by narrowing the plots (a key too wide)
        for ax in fig.axes:  # every plot (and a colour scale) squeezed into what is left
            pos = ax.get_position()
            x0 = left + pos.x0 * (1 - left - right)
            ax.set_position([x0, pos.y0, pos.width * (1 - left - right), pos.height])


def _title_over_labels(ax, renderer) -> None:
    """Start a plot's title (set on its left) where the labels beside the plot start, and
    above the highest of them."""
    title = getattr(ax, "_left_title", None)
    if title is None or not title.get_text():
        return
    plot = ax.get_window_extent(renderer)
    labels = ax.yaxis.get_tightbbox(renderer) if ax.yaxis.get_visible() else None
    left = min(plot.x0, labels.x0) if labels is not None else plot.x0
    above = max(0.0, labels.y1 - plot.y1) if labels is not None else 0.0
    ax.set_title(
        title.get_text(),
        loc="left",
        fontsize=TITLE,
        fontweight="bold",
        x=(left - plot.x0) / plot.width,
        pad=plt.rcParams["axes.titlepad"] + above * 72 / ax.figure.dpi + 1,
    )


# ----------------------------------------------------------------------------- data behind a chart

#: The word a chart's data table shows for a hidden figure.
HIDDEN_WORD = "hidden"

_HEADINGS = {
    "group": "Group",
    "lower": "95% lower",
    "upper": "95% upper",
    "ratio": "Representation ratio",
    "offered": "Appointments offered (rounded to the nearest 5)",
    "value": "Value",
    "funnel_position": "Against the funnel limits",
    "date": "Month",
    "month": "Month",
    "mean": "Mean",
    "lower_process_limit": "Lower process limit",
    "upper_process_limit": "Upper process limit",
    "point_type": "Variation",
    "label": "Group",
    "crude": "Crude ratio",
    "standardised": "Age-standardised ratio",
    "stage": "Stage",
    "people": "People",
    "referrals": "Referrals",
}


def _chart_columns(chart) -> list[str]:
    """The columns a chart draws, in reading order."""
    o, data = chart.options, chart.data
    plot = chart.plot
    if plot == "bar_ci":
        cols = ["group", o.get("value", "pct"), o.get("lower", "lower"), o.get("upper", "upper")]
    elif plot == "paired_bars":
        cols = ["group", o["a"], o["b"]]
    elif plot == "ratio_plot":
        cols = ["group", "ratio", "lower", "upper"]
    elif plot == "line_chart":
        cols = [o["x"], o.get("series"), o["y"]]
    elif plot in ("funnel_plot", "funnel_plot_adjusted"):
        cols = ["offered", "value", "funnel_position"]
    elif plot == "crude_and_standardised":
        cols = ["label", "crude", "standardised", "lower", "upper"]
    elif plot in ("spc_chart", "spc_with_change", "spc_gap"):
        cols = ["date", "value", "mean", "lower_process_limit", "upper_process_limit"]
        cols.append("point_type")
    elif plot == "pathway_chart":
        cols = ["group", "stage", "people", "% of referred"]
    elif plot == "heatmap":  # a grid: every column is a cell of the chart
        cols = list(data.columns)
    else:
        # Every chart names the columns its reader needs: working columns (segments,
        # rule flags) are never dumped into the data table.
        raise ValueError(f"No data table is defined for the chart type {plot!r}.")
    cols = [c for c in ["Field", *cols] if c is not None and c in data.columns]
    cols += [c for c in chart.counts if c in data.columns and c not in cols]
    return cols


def _cell(value, counts_column: bool, decimals: int = 1) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return HIDDEN_WORD
    if isinstance(value, pd.Timestamp):
        return value.strftime("%B %Y")
    if counts_column or isinstance(value, int | np.integer):
        from .privacy import format_count

        return format_count(value)
    if isinstance(value, float | np.floating):
        return f"{value:.{decimals}f}"
    return str(value).replace("_", " ")


def chart_table(chart) -> pd.DataFrame:
    """The data behind a chart as text, from the same controlled data the chart draws.

    Every figure the chart shows is here, with "hidden" where the chart leaves a point
    out; raw columns (names starting with ``_``) never appear.
    """
    data = chart.data
    if chart.plot == "heatmap":
        text = data.apply(lambda col: [_cell(v, False) for v in col]).astype(str)
        across = data.columns.name
        text.columns = [f"{across} {c}" if across else str(c) for c in data.columns]
        return text.reset_index(names=data.index.name or "Group")
    cols = _chart_columns(chart)
    o = chart.options
    names = {c: _HEADINGS.get(c, str(c)) for c in cols}
    if chart.plot == "bar_ci" and "xlabel" in o:
        names[o.get("value", "pct")] = o["xlabel"]
    if chart.plot in ("spc_chart", "spc_with_change", "spc_gap") and "ylabel" in o:
        names["value"] = o["ylabel"]
    if chart.plot in ("funnel_plot", "funnel_plot_adjusted"):
        names["value"] = "Missed appointments (%)"
    decimals = 2 if chart.plot in ("ratio_plot", "crude_and_standardised") else 1
    return pd.DataFrame(
        {names[c]: [_cell(v, c in chart.counts, decimals) for v in data[c].tolist()] for c in cols}
    )


def data_behind(chart):
    """A folded "Data behind this chart" table under a chart, for screen readers and print."""
    from IPython.display import HTML

    from .safe_html import html_text, safe_table

    title = chart.options.get("title", "this chart")
    table = (
        safe_table(chart_table(chart).style)
        .hide(axis="index")
        .set_caption(html_text(f"Data behind the chart: {title}"))
        .set_table_attributes('class="playbook-table chart-data"')
        .to_html()
    )
    return HTML(
        '<details class="chart-data"><summary>Data behind this chart</summary>\n'
        f"{table}\n</details>"
    )
