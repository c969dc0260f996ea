"""Readability scores, the documents they are read from, and the sample letters."""

from __future__ import annotations

import importlib
import logging
import math
import re
import socket
import sys
from pathlib import Path

import docx
import pytest
import textstat
from textstat.textstat import textstatistics

import equity_helpers
from equity_helpers import readability
from equity_helpers.readability import (
    ReadabilityInputError,
    compare,
    hardest_words,
    longest_sentences,
    prepare_text,
    read_document,
    read_folder,
    score_folder,
    score_text,
)

ROOT = Path(__file__).resolve().parents[1]
LETTERS = ROOT / "sample_data" / "letters"
SAMPLE_NAMES = ["appointment-letter.txt", "service-leaflet.txt"]

# Hand-counted: 10 words, 2 sentences; syllables 1+1+1+2+2 and 1+1+1+1+3 = 14.
HAND_TEXT = "Please phone the clinic today. We can change your appointment."


def flesch(words: int, sentences: int, syllables: int) -> float:
    return 206.835 - 1.015 * (words / sentences) - 84.6 * (syllables / words)


def kincaid(words: int, sentences: int, syllables: int) -> float:
    return 0.39 * (words / sentences) + 11.8 * (syllables / words) - 15.59


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------
def test_hand_checked_text():
    # textstat's own counters agree with counting by hand ...
    assert textstat.lexicon_count(HAND_TEXT) == 10
    assert textstat.sentence_count(HAND_TEXT) == 2
    assert textstat.syllable_count(HAND_TEXT) == 14
    # ... so the formulas can be worked by hand: 206.835 - 1.015 x 5 - 84.6 x 1.4 = 83.32,
    # and 0.39 x 5 + 11.8 x 1.4 - 15.59 = 2.88.
    score = score_text(HAND_TEXT)
    assert (score.words, score.sentences, score.syllables) == (10, 2, 14)
    assert score.flesch_reading_ease == 83.3
    assert score.flesch_kincaid_grade == 2.9
    assert score.uk_reading_age == 8  # 2.9 + 5 = 7.9, rounded
    assert math.isnan(score.smog_index)  # fewer than 3 sentences


@pytest.mark.parametrize("name", SAMPLE_NAMES)
@pytest.mark.parametrize("side", ["before", "after"])
def test_formulas_match_textstat_counters_on_real_documents(side, name):
    text = read_document(LETTERS / side / name)
    prepared = prepare_text(text)
    words = textstat.lexicon_count(prepared)
    sentences = textstat.sentence_count(prepared)
    syllables = textstat.syllable_count(prepared)
    score = score_text(text)
    assert (score.words, score.sentences, score.syllables) == (words, sentences, syllables)
    assert score.flesch_reading_ease == pytest.approx(flesch(words, sentences, syllables), abs=0.05)
    assert score.flesch_kincaid_grade == pytest.approx(
        kincaid(words, sentences, syllables), abs=0.05
    )
    assert score.uk_reading_age == math.floor(score.flesch_kincaid_grade + 5 + 0.5)
    # A second route: textstat's own formulas, with its rounding of the averages turned off.
    unrounded = textstatistics()
    unrounded.set_rounding(False)
    assert score.flesch_reading_ease == pytest.approx(
        unrounded.flesch_reading_ease(prepared), abs=0.05
    )
    assert score.smog_index == pytest.approx(unrounded.smog_index(prepared), abs=0.05)


def test_smog_is_flagged_below_thirty_sentences():
    short = score_text("The cat sat on the mat. " * 29)
    assert not short.smog_valid
    assert any("30 sentences" in note and "29" in note for note in short.notes)
    long = score_text("The cat sat on the mat. " * 30)
    assert long.smog_valid
    assert long.smog_index == 3.1  # no polysyllables: 1.043 x 0 + 3.1291
    assert not any("SMOG" in note for note in long.notes)
    assert any("approximate" in note for note in long.notes)


def test_empty_text_is_refused():
    with pytest.raises(ReadabilityInputError, match="no words"):
        score_text("  \n\n ")


def test_prepare_text_counts_headings_bullets_and_wrapped_lines_sensibly():
    text = (
        "# About your visit\n\n"
        "Please come at 10.30am and bring\nyour letter with you.\n\n"
        "- a list of your medicines\n- your reading glasses if you use them\n"
    )
    assert prepare_text(text) == (
        "About your visit.\n"
        "Please come at 10,30am and bring your letter with you.\n"
        "a list of your medicines.\n"
        "your reading glasses if you use them."
    )
    assert score_text(text).sentences == 4
    # Without preparation the heading, the time and the bullets blur the sentences.
    assert score_text(text, prepare=False).sentences != 4


# --------------------------------------------------------------------------------------------
# What drives a score
# --------------------------------------------------------------------------------------------
def test_longest_sentences():
    text = "Come in. Please bring your letter. Sit down here please. We will call you very soon."
    out = longest_sentences(text, n=3)
    assert out["words"].tolist() == [6, 4, 4]
    assert out["sentence"].tolist() == [
        "We will call you very soon.",
        "Please bring your letter.",  # ties keep document order
        "Sit down here please.",
    ]


def test_hardest_words():
    text = "Rehabilitation helps. An assessment, in 2024, then rehabilitation again: physio."
    out = hardest_words(text, n=4)
    assert out["word"].tolist() == ["rehabilitation", "assessment", "physio", "again"]
    assert out["syllables"].tolist()[0] == textstat.syllable_count("rehabilitation")
    assert "2024" not in out["word"].tolist()
    assert out["word"].is_unique


# --------------------------------------------------------------------------------------------
# The sample letters
# --------------------------------------------------------------------------------------------
def test_sample_before_letters_are_hard_and_after_letters_are_plain():
    before = score_folder(LETTERS / "before")
    after = score_folder(LETTERS / "after")
    assert before["document"].tolist() == SAMPLE_NAMES
    assert after["document"].tolist() == SAMPLE_NAMES
    assert before["uk_reading_age"].between(15, 19).all(), before
    assert after["uk_reading_age"].between(8, 11).all(), after
    assert before["words"].between(250, 450).all()
    assert after["words"].between(250, 450).all()


def test_sample_letters_are_fictional():
    for path in sorted(LETTERS.glob("*/*.txt")):
        text = path.read_text(encoding="utf-8")
        assert "Derbyshire Long COVID Rehabilitation Service (synthetic example)" in text
        assert "01632 960" in text  # Ofcom's range for drama
        phones = re.findall(r"\b0\d{3,4} ?\d{3} ?\d{3,4}\b", text)
        assert all(p.startswith("01632 960") for p in phones), phones
        assert not re.search(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b", text), "no postcodes"


def test_compare_matches_documents_by_name():
    table = compare(LETTERS / "before", LETTERS / "after")
    assert table["document"].tolist() == ["appointment-letter", "service-leaflet"]
    assert (table["change"] == table["after_reading_age"] - table["before_reading_age"]).all()
    assert (table["change"] <= -5).all()
    assert (table["after_reading_ease"] > table["before_reading_ease"]).all()


def test_compare_keeps_unmatched_documents_and_says_so(tmp_path, caplog):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "letter.txt").write_text(HAND_TEXT)
    (tmp_path / "b" / "old-only.md").write_text(HAND_TEXT)
    (tmp_path / "a" / "letter.docx").write_bytes(_docx_bytes(tmp_path, [HAND_TEXT]))
    with caplog.at_level(logging.WARNING, logger="equity_helpers"):
        table = compare(tmp_path / "b", tmp_path / "a")
    assert table["document"].tolist() == ["letter", "old-only"]
    assert table.loc[0, "change"] == 0  # same text in .txt and .docx
    assert table["after_reading_age"].isna().tolist() == [False, True]
    assert "old-only" in caplog.text


def test_compare_refuses_two_documents_with_one_name(tmp_path):
    (tmp_path / "letter.txt").write_text(HAND_TEXT)
    (tmp_path / "letter.md").write_text(HAND_TEXT)
    with pytest.raises(ReadabilityInputError, match="more than one document called 'letter'"):
        compare(tmp_path, tmp_path)


# --------------------------------------------------------------------------------------------
# Reading documents
# --------------------------------------------------------------------------------------------
def _docx_bytes(tmp_path: Path, paragraphs: list[str]) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
        document.add_paragraph("")  # empty paragraphs are skipped
    path = tmp_path / "made.docx"
    document.save(str(path))
    return path.read_bytes()


def test_docx_reads_the_same_as_its_text(tmp_path):
    source = LETTERS / "before" / "appointment-letter.txt"
    text = source.read_text(encoding="utf-8").strip()
    paragraphs = text.split("\n\n")
    target = tmp_path / "appointment-letter.docx"
    target.write_bytes(_docx_bytes(tmp_path, paragraphs))
    assert read_document(target) == text
    assert score_text(read_document(target)) == score_text(read_document(source))


def test_read_folder_sorts_and_skips_what_it_cannot_read(tmp_path):
    (tmp_path / "b.md").write_text("Second.")
    (tmp_path / "A.TXT").write_text("\ufeffFirst.")  # byte-order mark removed
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / "~$lock.docx").write_bytes(b"lock")
    (tmp_path / ".hidden.txt").write_text("hidden")
    assert read_folder(tmp_path) == [("A.TXT", "First."), ("b.md", "Second.")]


def test_missing_folder(tmp_path):
    with pytest.raises(ReadabilityInputError, match="cannot be found") as caught:
        read_folder(tmp_path / "nowhere")
    assert "nowhere" in str(caught.value)


def test_empty_folder(tmp_path):
    with pytest.raises(ReadabilityInputError, match=r"found: nothing"):
        score_folder(tmp_path)


def test_folder_without_documents_names_what_it_found(tmp_path):
    (tmp_path / "scan.pdf").write_bytes(b"%PDF")
    (tmp_path / "photo.png").write_bytes(b"png")
    (tmp_path / "old").mkdir()
    with pytest.raises(ReadabilityInputError) as caught:
        read_folder(tmp_path)
    assert "found: old/, photo.png, scan.pdf" in str(caught.value)
    assert ".docx" in caught.value.detail


def test_unreadable_docx(tmp_path):
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"this is not a zip file")
    with pytest.raises(ReadabilityInputError, match="broken.docx could not be read as a Word"):
        read_folder(tmp_path)


def test_other_unreadable_files(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9".encode("latin-1"))
    with pytest.raises(ReadabilityInputError, match="UTF-8"):
        read_document(tmp_path / "latin1.txt")
    with pytest.raises(ReadabilityInputError, match="ending '.pdf'"):
        (tmp_path / "x.pdf").write_bytes(b"%PDF")
        read_document(tmp_path / "x.pdf")
    with pytest.raises(ReadabilityInputError, match="no file"):
        read_document(tmp_path / "missing.txt")


# --------------------------------------------------------------------------------------------
# Offline
# --------------------------------------------------------------------------------------------
def test_scoring_never_needs_the_network(monkeypatch):
    expected = score_text(HAND_TEXT)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise RuntimeError("the network is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(RuntimeError, match="blocked"):
        socket.create_connection(("127.0.0.1", 9))  # the block is in place
    attempts.clear()

    # Import textstat, pyphen and this module afresh with the network blocked (monkeypatch
    # puts the original modules back afterwards).
    original_module = readability
    monkeypatch.setattr(equity_helpers, "readability", original_module)
    for name in list(sys.modules):
        if name.split(".")[0] in {"textstat", "pyphen"} or name == "equity_helpers.readability":
            monkeypatch.delitem(sys.modules, name)
    fresh_textstat = importlib.import_module("textstat")
    fresh = importlib.import_module("equity_helpers.readability")
    assert fresh_textstat is not textstat
    assert fresh is not original_module

    score = fresh.score_text(HAND_TEXT)
    assert type(score) is not type(expected)  # really the freshly imported code
    fields = ["words", "sentences", "syllables", "flesch_reading_ease", "uk_reading_age"]
    assert [getattr(score, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert fresh_textstat.flesch_reading_ease("The cat sat on the mat.") > 100
    assert len(fresh.score_folder(LETTERS / "after")) == 2
    assert attempts == []
