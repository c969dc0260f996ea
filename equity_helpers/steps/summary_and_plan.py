"""Parts 1 to 4: the suggested focus, the key questions, and the action and evaluation plans."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from .. import analysis
from ..measures import MEASURES
from ..privacy import control_counts, format_count
from ..safe_html import md_text
from ..wording import first_upper, group_label, group_phrase
from . import access_and_outcome_gaps, evaluation
from .base import StepResult, Table, cached

#: The prepared columns this step reads: those of the steps it builds on, when it works
#: them out itself (their results are usually handed over, and then it reads none).
READS = tuple(dict.fromkeys((*access_and_outcome_gaps.READS, *evaluation.READS)))
config_columns = evaluation.config_columns

HEADLINES = {"top_focus_text": "Suggested focus"}
NO_GAP = (
    "No clear gap that is not a small number was found; use the insights from Part 2 to "
    "choose a focus."
)


def markdown_table(headers, rows) -> str:
    """A markdown table; empty strings leave cells for the team to fill in.

    Cells are Markdown: text from the extract must go in through ``md_text`` first.
    """

    def cell(v) -> str:
        return str(v).replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def _same_focus(row, f: dict) -> bool:
    """Whether a gap is about the evaluation's focus group and measure (Core20 = quintile 1)."""
    field, group = f["field"], str(f["group"])
    if field == "core20":
        field, group = "imd_quintile", "1"
    return row["measure"] == f["measure"] and row["field"] == field and str(row["group"]) == group


def _why_chosen(top, ranked: pd.DataFrame, rule) -> str:
    people = format_count(control_counts(int(top["_people"]), rule))
    text = (
        "It is suggested because it ranks first on strength of evidence and people affected: "
        f"even the end of its 95% interval nearest zero is a gap of {top['nearest']:.1f} "
        f"points, and it concerns about {people} people."
    )
    largest = ranked.loc[ranked["difference"].abs().idxmax()]
    if largest.name != top.name:
        text += (
            f" The largest gap, for {group_phrase(largest['field'], largest['group'])}, is "
            f"{abs(largest['difference']):.1f} points, but its 95% interval reaches down to "
            f"{largest['nearest']:.1f} points and it concerns about "
            f"{format_count(control_counts(int(largest['_people']), rule))} people, so the "
            "evidence and the numbers weigh less."
        )
    return text


def _against_evaluation(top, ranked: pd.DataFrame, f: dict) -> str:
    eval_words = (
        f"{MEASURES[f['measure']].short.lower()} for {f['phrase']}"
        if f["measure"] in MEASURES
        else "the measure in your config"
    )
    if not f["ok"]:
        return (
            "Your config names no focus group for the evaluation yet. Once your team has chosen a "
            "focus, set it under `evaluation:` so the evaluation page follows it."
        )
    if top is not None and _same_focus(top, f):
        return (
            f"This is also the evaluation's focus, set in your config: {eval_words}. The "
            "evaluation page measures whether this gap closes."
        )
    matches = [i for i, r in enumerate(ranked.to_dict("records")) if _same_focus(r, f)]
    rank = (
        f"On this list it ranks {matches[0] + 1} of {len(ranked)}."
        if matches
        else "It is not among the clear gaps listed here."
    )
    return (
        f"The evaluation page follows a different focus, set in your config: {eval_words}. "
        f"{rank} The suggestion here ranks every gap in this extract by the data alone, while "
        "the config's focus was chosen by your team, often for local priorities such as "
        "Core20PLUS5. Both matter: keep evaluating the change you made, and look at the "
        "suggested focus when you choose what to do next."
    )


@cached
def run(service) -> StepResult:
    """The clearest gaps, a suggested focus with the reason, and the two plans."""
    result = StepResult("summary-and-plan")
    gaps_step = access_and_outcome_gaps.run(service)
    gaps = gaps_step.data["gaps"]
    ranked = analysis.rank_for_focus(gaps) if len(gaps) else gaps
    top = ranked.iloc[0] if len(ranked) else None
    f = evaluation.focus(service)
    v = result.values
    v["n_credible_gaps"] = gaps_step.values["n_credible_gaps"]
    v["n_credible_gaps_all"] = int(len(ranked))
    v["top_focus_text"] = analysis.gap_sentence(top) if top is not None else NO_GAP
    v["focus_reason"] = (
        _why_chosen(top, ranked, service.rule)
        if top is not None
        else "With no clear gap, there is nothing to rank."
    )
    v["focus_and_evaluation"] = _against_evaluation(top, ranked, f)

    shown = ranked.head(10)
    shown = pd.DataFrame(
        {
            "Measure": [MEASURES[m].short for m in shown["measure"]],
            "Group": [
                group_label(a, b) for a, b in zip(shown["field"], shown["group"], strict=True)
            ],
            "Number": shown["n"],
            "%": shown["pct"],
            "Everyone else %": shown["rest pct"],
            "Gap (points)": shown["difference"],
            "Lower limit": shown["lower"],
            "Upper limit": shown["upper"],
        }
    )
    result.tables["largest_gaps"] = Table(
        shown,
        "The ten clearest gaps, ranked by strength of evidence and people affected (Number is "
        "people, or appointments for missed appointments)",
        counts=("Number",),
        percents=("%", "Everyone else %", "Gap (points)", "Lower limit", "Upper limit"),
        export="largest_gaps",
    )
    result.lists["top_three"] = [analysis.gap_sentence(r) for _, r in ranked.head(3).iterrows()]

    run_date = dt.date.today()
    reviews = {d: (run_date + dt.timedelta(days=d)).strftime("%d %B %Y") for d in (30, 60, 90)}
    for days, when in reviews.items():
        v[f"review_{days}"] = when
    v["run_date"] = run_date.strftime("%d %B %Y")
    # The group's label comes from the extract: escaped once, it reads as written.
    who = (
        md_text(group_phrase(top["field"], top["group"]))
        if top is not None
        else "(your focus group)"
    )
    what = MEASURES[top["measure"]].short.lower() if top is not None else "(your measure)"
    result.texts["action_plan"] = markdown_table(
        ["What we will do", "Who with", "Lead", "By when", "Done?"],
        [
            [
                f"Agree the focus: {what} for {who}",
                "Staff, and people from the focus group",
                "",
                reviews[30],
                "",
            ],
            [
                "Map the pathway and find where this group is lost (Step 9)",
                "People from the focus group",
                "",
                reviews[30],
                "",
            ],
            ["Choose one change and plan it with people (Steps 8 to 10)", "", "", reviews[60], ""],
            [
                "Make the change and record its date as `evaluation.change_date` in the config",
                "",
                "",
                reviews[60],
                "",
            ],
            [
                "Review the numbers and stories; keep, adapt or stop the change (Steps 11 to 13)",
                "",
                "",
                reviews[90],
                "",
            ],
        ],
    )
    cfg = service.cfg
    period = f"{cfg.period_start:%d %B %Y} to {cfg.period_end:%d %B %Y}"
    baseline = (
        f"{top['pct']:.1f}% against {top['rest pct']:.1f}% for everyone else ({period})"
        if top is not None
        else ""
    )
    gap = (
        f"{top['difference']:+.1f} points (95% interval {top['lower']:.1f} to {top['upper']:.1f})"
        if top is not None
        else ""
    )
    result.texts["evaluation_plan"] = markdown_table(
        [
            "What we will measure",
            "For whom",
            "Baseline",
            "Where the data comes from",
            "When we check",
            "Notes",
        ],
        [
            [
                first_upper(what),
                f"{who}, and everyone else",
                baseline,
                "Service extract, in this playbook",
                f"Monthly; in full on {reviews[90]}",
                "",
            ],
            ["The gap between them", who, gap, "The evaluation notebook", reviews[90], ""],
            [
                "Views and stories of people from the focus group (Step 12)",
                who,
                "",
                "Interviews, focus groups",
                reviews[60],
                "",
            ],
            [
                "Staff views and wellbeing (Step 12)",
                "Staff",
                "",
                "NHS Staff Survey, team check-ins",
                reviews[90],
                "",
            ],
            ["Staff training needs (Part 5)", "Staff", "", "", reviews[30], ""],
        ],
    )
    result.findings = [
        f"{v['n_credible_gaps']} gaps are bigger than chance; in {v['n_credible_gaps_all']} of "
        "them a group fares worse than everyone else.",
        f"Suggested focus: {v['top_focus_text']}",
        v["focus_reason"],
        v["focus_and_evaluation"],
    ]
    return result
