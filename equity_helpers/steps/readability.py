"""Step 10 and the case study: the reading age of the service's letters, before and after."""

from __future__ import annotations

import pandas as pd

from .. import readability
from ..safe_html import md_text
from ..wording import number
from .base import Chart, StepResult, Table, cached, headline

#: This step reads letters, not the extract's rows.
READS: tuple[str, ...] = ()

HEADLINES = {
    "reading_age_before": "Letters' reading age before",
    "reading_age_after": "Letters' reading age after",
}
HOW_TO_ADD = (
    "To score your letters, put them in two folders, one for the letters you send now and one "
    "for the rewritten versions, and add this to your config:\n\n"
    "```yaml\nreadability:\n  before: letters/before\n  after: letters/after\n```\n\n"
    "Paths are read from the folder that holds the config. The rest of this page is left "
    "empty until then."
)
RENAME = {
    "document": "Document",
    "before_reading_age": "Reading age before",
    "after_reading_age": "Reading age after",
    "change": "Change (years)",
    "before_reading_ease": "Reading ease before",
    "after_reading_ease": "Reading ease after",
}


def _scores(before_dir, after_dir) -> pd.DataFrame:
    if after_dir is not None and after_dir.is_dir():
        return readability.compare(before_dir, after_dir)
    one = readability.score_folder(before_dir)
    return pd.DataFrame(
        {
            "document": one["document"].map(lambda n: n.rsplit(".", 1)[0]),
            "before_reading_age": one["uk_reading_age"].astype("Int64"),
            "before_reading_ease": one["flesch_reading_ease"],
        }
    )


@cached
def run(service) -> StepResult:
    """Reading ages of each document, the longest sentences and the hardest words."""
    before_dir, after_dir = service.cfg.readability_before, service.cfg.readability_after
    result = StepResult("readability")
    scores, problem = None, None
    try:
        if before_dir is None:
            problem = "Your config has no `readability` section, so there are no letters to score."
        else:
            scores = _scores(before_dir, after_dir)
    except readability.ReadabilityInputError as exc:
        problem = f"{exc.detail} [{exc.code}]"
    result.values["n_documents"] = 0 if scores is None else len(scores)
    if problem or scores is None:
        note = f"**There are no letters to score yet.** {md_text(problem)}\n\n{HOW_TO_ADD}"
        result.texts["notice"] = note
        result.findings = ["There are no letters to score yet."]
        result.values["step_status"] = "not run: needs letters to score (see the step's page)"
        for view in ("scores", "pairs", "longest", "words"):
            result.notes[view] = "*No letters to score: see the note at the top of this page.*"
        return result

    has_after = "after_reading_age" in scores
    headline(
        result,
        "reading_age_before",
        round(float(scores["before_reading_age"].mean()), 1),
        "No letter could be scored.",
    )
    shown = scores.rename(columns=RENAME).drop(
        columns=["before_fk_grade", "after_fk_grade"], errors="ignore"
    )
    result.tables["scores_export"] = Table(
        shown.astype({c: "Float64" for c in shown.columns[1:]}),
        "Reading age of the service's letters",
        export="readability",
        shown=False,
    )
    result.tables["scores"] = Table(
        shown.astype(object).where(shown.notna(), "not in this folder"),
        "Approximate UK reading age of each document",
        numbers=("Reading ease before", "Reading ease after"),
    )
    if has_after:
        headline(
            result,
            "reading_age_after",
            round(float(scores["after_reading_age"].mean()), 1),
            "No rewritten letter could be scored.",
        )
        b, a = scores["before_reading_age"].mean(), scores["after_reading_age"].mean()
        result.texts["summary"] = (
            f"Across the documents, the average reading age was **{b:.1f}** before the rewrite "
            f"and **{a:.1f}** after it: {abs(b - a):.1f} years {'lower' if a < b else 'higher'}."
        )
        result.texts["case_study"] = (
            f"Your documents went from an average reading age of {b:.1f} to {a:.1f}. "
            "The case study went from 17 to 10."
        )
        pairs = scores.rename(
            columns={
                "document": "group",
                "before_reading_age": "Before",
                "after_reading_age": "After",
            }
        )
        result.charts["pairs"] = Chart(
            "paired_bars",
            pairs,
            {
                "a": "Before",
                "b": "After",
                "title": "Reading age of each document",
                "xlabel": "Approximate UK reading age (years)",
                "legend_below": 2,
            },
            exact=True,  # reading ages of documents, not figures about people
        )
        result.findings = [result.texts["case_study"]]
    else:
        result.texts["summary"] = (
            "There is no folder of rewritten letters yet, so only the current reading ages are "
            "shown."
        )
        result.notes["pairs"] = "*No chart: it needs letters both before and after a rewrite.*"
        result.findings = [
            f"The current documents have an average reading age of {number(result.values['reading_age_before'])}."
        ]

    texts = readability.read_folder(before_dir)
    longest = [readability.longest_sentences(t, n=3).assign(Document=n) for n, t in texts]
    if longest:
        longest = pd.concat(longest, ignore_index=True)
        # Escaping table cells for HTML is left to equity_helpers.display.
        result.tables["longest"] = Table(
            longest[["Document", "sentence", "words"]].rename(
                columns={"sentence": "Sentence", "words": "Words"}
            ),
            "The three longest sentences in each document",
        )
        words = readability.hardest_words("\n\n".join(t for _, t in texts), n=12)
        result.tables["words"] = Table(
            words.rename(columns={"word": "Word", "syllables": "Syllables", "letters": "Letters"}),
            "The words with the most syllables in the current documents",
        )
    return result
