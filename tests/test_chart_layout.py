"""Charts read cleanly: text big enough, nothing printed over anything else, nothing cut off,
and drawn as SVG with the text kept as text."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from equity_helpers import plots as P  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig) -> list[Text]:
    # Laid out and measured as a draw does, without painting the pixels (the boxes of the
    # text are the same either way).
    fig.draw_without_rendering()
    return [
        t
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_window_extent().width > 0
    ]


def _drawn_texts(fig) -> list[Text]:
    """:func:`_texts` less the tick labels outside an axis's range, which are not drawn."""
    unseen = set()
    for ax in fig.axes:
        for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = min(low, high), max(low, high)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    unseen |= {id(tick.label1), id(tick.label2)}
    return [t for t in _texts(fig) if id(t) not in unseen]


def _overlapping(texts: list[Text]) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes share more than a pixel each way."""
    # Each box is measured once (laying a text out again for every pair is slow).
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
    found = []
    for (text_a, box_a), (text_b, box_b) in itertools.combinations(boxes, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > 1 and height > 1:
            found.append((text_a, text_b))
    return found


def _gaps_table() -> pd.DataFrame:
    # Values close to the overall rate, with wide intervals: the case that clashed.
    return pd.DataFrame(
        {
            "group": ["Asian", "Black", "Mixed", "White", "Other", "Not stated", "Invalid"],
            "pct": [15.9, 9.8, 10.3, 8.6, 10.0, 8.8, None],
            "lower": [13.6, 6.4, 7.8, 8.2, 6.2, 7.8, None],
            "upper": [18.6, 14.6, 13.7, 9.0, 15.8, 9.8, None],
        }
    )


def test_bar_values_never_overprint_each_other_or_the_average_line():
    ax = P.bar_ci(_gaps_table(), title="Missed", xlabel="%", reference=8.9)
    fig = ax.figure
    texts = _texts(fig)
    assert _overlapping(texts) == []
    line = next(ln for ln in ax.get_lines() if ln.get_linestyle() == "--")
    line_x = ax.transData.transform((8.9, 0))[0]
    numbers = [t for t in ax.texts if re.fullmatch(r"\d+\.\d", t.get_text())]
    assert len(numbers) == 6
    for t in numbers:
        box = t.get_window_extent()
        if box.x0 <= line_x <= box.x1:
            # Where the line passes a number, the number is on an opaque box above it.
            patch = t.get_bbox_patch()
            assert patch is not None and patch.get_facecolor()[3] == 1, t.get_text()
            assert t.get_zorder() > line.get_zorder(), t.get_text()


def test_bar_intervals_are_never_cut_off():
    table = pd.DataFrame(
        {"group": ["A", "B"], "pct": [10.0, 20.0], "lower": [2.0, 18.0], "upper": [45.0, 22.0]}
    )
    ax = P.bar_ci(table, title="Wide interval", xlabel="%")
    assert ax.get_xlim()[1] >= 45.0
    # And the number after the longest interval stays inside the chart's area.
    ax.figure.canvas.draw()
    right = ax.get_window_extent().x1
    label = next(t for t in _texts(ax.figure) if t.get_text() == "10.0")
    assert label.get_window_extent().x1 <= right + 1


def _spc(months: int = 30, change_at: int = 20) -> pd.DataFrame:
    dates = pd.date_range("2022-04-01", periods=months, freq="MS")
    rng = np.random.default_rng(1)
    values = np.r_[rng.normal(15, 3, change_at), rng.normal(8, 1.5, months - change_at)]
    # The lowest point straight after the change, where the old label sat.
    values[change_at + 1] = values.min() - 1
    kinds = ["common_cause"] * change_at + ["special_cause_improvement"] * (months - change_at)
    spc = pd.DataFrame(
        {
            "date": dates,
            "value": values,
            "mean": 15.0,
            "upper_process_limit": 24.0,
            "lower_process_limit": 6.0,
            "point_type": kinds,
        }
    )
    spc.attrs["trial_limits"] = False
    return spc


def test_change_began_hides_no_point_and_no_label():
    spc = _spc()
    ax = P.spc_with_change(spc, title="Missed", ylabel="%", change=spc["date"].iloc[20])
    fig = ax.figure
    texts = _texts(fig)
    assert _overlapping(texts) == []
    # The change is still named on the chart.
    assert any(t.get_text() == "Change began" for t in texts)
    points = np.vstack(
        [c.get_offset_transform().transform(c.get_offsets()) for c in ax.collections
         if isinstance(c, PathCollection)]
    )  # fmt: skip
    inside = [t for t in texts if ax.get_window_extent().overlaps(t.get_window_extent())]
    for t in inside:
        box = t.get_window_extent().expanded(1.0, 1.0)
        hidden = [p for p in points if box.contains(*p)]
        assert not hidden, f"{t.get_text()!r} is drawn over a point"


def test_month_labels_never_run_together():
    ax = P.spc_with_change(_spc(40, 30), title="Missed", ylabel="%")
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    ax.figure.canvas.draw()
    assert 2 <= len(labels) <= 7
    assert _overlapping(labels) == []


def test_line_end_names_do_not_overprint_when_groups_end_close_together():
    stages = ["Referred", "Accepted", "First seen", "Completed"]
    ends = {"Asian": 63.0, "Black": 57.0, "Mixed": 67.0, "White": 68.0, "Other": 75.0}
    path = pd.DataFrame(
        [
            {"stage": s, "group": g, "% of referred": 100 if s == "Referred" else e + (3 - i)}
            for g, e in ends.items()
            for i, s in enumerate(stages)
        ]
    )
    ax = P.pathway_chart(path, title="Share still in the pathway")
    assert _overlapping(_texts(ax.figure)) == []


def test_keys_sit_under_the_chart_not_over_the_points():
    rng = np.random.default_rng(2)
    n = np.arange(50, 450, 5)
    base = 0.089
    limits = pd.DataFrame({"n": n, "baseline": base * 100})
    for key, z in (("95_0", 1.96), ("99_8", 3.09)):
        half = z * np.sqrt(base * (1 - base) / n) * 100
        limits[f"lower{key}cl"] = base * 100 - half
        limits[f"upper{key}cl"] = base * 100 + half
    offered = rng.integers(100, 400, 60)
    points = pd.DataFrame(
        {
            "offered": offered,
            "value": rng.normal(9, 3, 60),
            "funnel_position": ["within"] * 60,
        }
    )
    ax = P.funnel_plot(points, limits, title="Missed, by area")
    fig = ax.figure
    fig.canvas.draw()
    legends = [*fig.legends, *([ax.get_legend()] if ax.get_legend() else [])]
    assert legends
    plot_area = ax.get_window_extent()
    for legend in legends:
        assert legend.get_window_extent().y1 <= plot_area.y0 + 1, "the key is on the plot"


def _all_charts():
    table = _gaps_table()
    yield P.bar_ci(table, title="T", xlabel="%", reference=9.0)
    yield P.paired_bars(
        pd.DataFrame({"group": ["A", "B"], "x": [1.0, 2.0], "y": [3.0, None]}),
        "x",
        "y",
        title="T",
        xlabel="%",
    )
    yield P.ratio_plot(
        pd.DataFrame({"group": ["A", "B"], "ratio": [0.5, 1.2], "lower": [0.4, 1.1], "upper": [0.7, 1.3]}),
        title="T",
    )  # fmt: skip
    spc = _spc()
    yield P.spc_with_change(spc, title="T", ylabel="%", change=spc["date"].iloc[20])
    wide = pd.DataFrame([[1.0, 2.0], [np.nan, 4.0]], index=["a", "b"], columns=["c", "d"])
    yield P.heatmap(wide, title="T", value_label="%")


def test_every_word_on_a_chart_is_at_least_the_chart_text_size():
    # 11 points is 14.7 CSS pixels at the chart's own size: at least the book's small print.
    assert P.TEXT >= 11
    small = []
    for ax in _all_charts():
        for t in _texts(ax.figure):
            if t.get_fontsize() < P.TEXT:
                small.append((t.get_text(), t.get_fontsize()))
    assert small == []


def test_charts_are_svg_with_their_text_kept_as_text():
    ax = P.bar_ci(_gaps_table(), title="Missed appointments", xlabel="%", reference=8.9)
    buffer = io.StringIO()
    ax.figure.savefig(buffer, format="svg", bbox_inches="tight")
    svg = buffer.getvalue()
    words = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "Missed appointments" in words
    sizes = [float(s) for s in re.findall(r"font-size: ([\d.]+)px", svg)]
    # The SVG's units are points: every size is at least the chart text size.
    assert sizes and min(sizes) >= P.TEXT


def test_notebooks_show_charts_as_svg():
    """In a notebook kernel, use_style() switches the inline backend from PNG to SVG."""
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    shell = InteractiveShell.instance()
    shell.kernel = object()  # what the shell has inside a Jupyter kernel
    try:
        P.use_style()
        formatters = shell.display_formatter.formatters
        assert formatters["image/svg+xml"].lookup_by_type(Figure) is not None
        with pytest.raises(KeyError):
            formatters["image/png"].lookup_by_type(Figure)
    finally:
        del shell.kernel
        InteractiveShell.clear_instance()


def test_pixels_inside_an_svg_chart_are_print_resolution():
    """A heatmap's shaded cells are an image inside the SVG: at least 200 pixels an inch."""
    import base64
    import struct

    wide = pd.DataFrame(np.arange(20.0).reshape(4, 5), index=list("abcd"), columns=list("vwxyz"))
    ax = P.heatmap(wide, title="T", value_label="%")
    buffer = io.StringIO()
    ax.figure.savefig(buffer, format="svg", dpi=ax.figure.dpi)  # as the notebook's display does
    images = re.findall(
        r'<image xlink:href="data:image/png;base64,([^"]+)"[^>]*?width="([\d.]+)"',
        buffer.getvalue(),
    )
    assert images
    for data, width_pt in images:
        png = base64.b64decode(data)
        pixels = struct.unpack(">I", png[16:20])[0]
        assert pixels / (float(width_pt) / 72) >= 200


@pytest.fixture(scope="module")
def step_charts(sample_service):
    """Every chart the steps draw for the sample service, with its name."""
    from equity_helpers.steps import STEPS

    return [
        (f"{name} {key}", chart)
        for name, step in STEPS.items()
        for key, chart in step.run(sample_service).charts.items()
    ]


def _saved(fig) -> tuple[float, list[float]]:
    """A chart saved as a notebook shows it (cut to what is drawn): its width in points
    and the size of every piece of its text, in points."""
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    svg = out.getvalue()
    width = float(re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', svg).group(1))
    return width, [float(s) for s in re.findall(r"font-size: ?([\d.]+)px", svg)]


def test_chart_text_is_readable_on_a_phone(step_charts):
    """On a phone 390 pixels wide a chart is shrunk to the column: its smallest text is
    still 9 CSS pixels or more. Worked out from the saved chart's width and font sizes
    (points; a CSS pixel is 3/4 of a point), as the browser scales them."""
    assert len(step_charts) >= 20
    smallest = {}
    for name, chart in step_charts:
        ax = P.draw(chart)
        width_pt, sizes = _saved(ax.figure)
        assert sizes, f"{name}: no text kept as text"
        shown_px = width_pt * 4 / 3  # its own width in CSS pixels
        scale = min(1.0, P.PHONE_COLUMN / shown_px)
        smallest[name] = min(sizes) * 4 / 3 * scale
        # Nothing reaches past the chart's width: it is saved no wider than that.
        assert width_pt <= (P.WIDTH + 2 * P.PAD) * 72 + 1, f"{name}: {width_pt / 72:.2f} in wide"
        assert _overlapping(_drawn_texts(ax.figure)) == [], name
        plt.close(ax.figure)
    small = {k: round(v, 2) for k, v in smallest.items() if v < P.PHONE_TEXT}
    assert small == {}, f"text under {P.PHONE_TEXT} px on a phone: {small}"


def test_the_phone_check_would_catch_a_chart_too_wide():
    """The same sum for a chart drawn wider than the page: its text would be too small."""
    fig, ax = plt.subplots(figsize=(P.WIDTH * 1.4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("A chart drawn too wide", fontsize=P.TEXT)
    width_pt, sizes = _saved(fig)
    assert min(sizes) * 4 / 3 * min(1.0, P.PHONE_COLUMN / (width_pt * 4 / 3)) < P.PHONE_TEXT
