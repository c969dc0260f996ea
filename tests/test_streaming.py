"""A big extract is prepared in batches of rows: the result must be what one whole read gives.

Each extract here is prepared both ways, whole (:func:`prepare`) and in batches
(:func:`prepare_in_batches`, forced to small batches so that every rule meets rows in more
than one batch), and the prepared data, the row account and every issue must be identical;
an extract that cannot be used must stop with the same message both ways.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_bad_inputs import CASES, build_config

from equity_helpers.batches import _RowNumbers, _scan, prepare_in_batches
from equity_helpers.config import load_config
from equity_helpers.errors import PlaybookError
from equity_helpers.extract import _row_numbers, prepare, read_prepared, write_prepared

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "sample_service.yml"


def _whole(cfg, out: Path):
    try:
        write_prepared(prepare(cfg), out)
    except PlaybookError as exc:
        return exc
    return read_prepared(out)


def _batches(cfg, out: Path, rows: int):
    try:
        prepare_in_batches(cfg, out, batch_rows=rows)
    except PlaybookError as exc:
        return exc
    return read_prepared(out)


def assert_same(
    cfg, tmp_path: Path, rows: int | None = None, *, whole=None, batched=None, made=None
):
    """Prepared whole and in batches: the same data, account and issues, or the same stop.

    The batches are of ``rows`` rows, prepared here; or ``made`` is a file already prepared
    in batches some other way (by the runner's preparation, or the command line); or
    ``batched`` is the error a test's own batched run into ``tmp_path / "batches.parquet"``
    stopped with. Returns the whole read, so that a test comparing several batch sizes reads
    it once (``whole``: what an earlier call returned for the same ``cfg``).
    """
    if whole is None:
        whole = _whole(cfg, tmp_path / "whole.parquet")
    if batched is None:
        batched = read_prepared(made) if made else _batches(cfg, tmp_path / "batches.parquet", rows)
    if isinstance(whole, PlaybookError):
        assert isinstance(batched, PlaybookError), f"only the whole read stopped: {whole}"
        assert (batched.code, str(batched)) == (whole.code, str(whole))
        assert not (tmp_path / "batches.parquet").exists()
        return whole
    assert not isinstance(batched, PlaybookError), f"only the batches stopped: {batched}"
    data, meta = batched
    pd.testing.assert_frame_equal(data, whole[0])
    meta = {k: v for k, v in meta.items() if k != "fingerprint"}  # a run's file carries one
    assert meta["account"] == whole[1]["account"]
    assert meta["issues"] == whole[1]["issues"]
    assert meta == whole[1]
    return whole


@pytest.fixture(scope="module")
def sample_whole(tmp_path_factory):
    """The sample prepared whole, once for the module (every test only reads it)."""
    return _whole(load_config(SAMPLE), tmp_path_factory.mktemp("sample") / "whole.parquet")


@pytest.mark.parametrize("rows", [1000, 777])
def test_sample_prepared_in_batches_is_the_whole_read(tmp_path, rows, sample_whole):
    assert_same(load_config(SAMPLE), tmp_path, rows, whole=sample_whole)


CSV_CASES = [
    c
    for c in CASES
    if str(c.get("extract", "")).endswith((".csv", ".txt", ".tsv"))
    and not str((c.get("error") or {}).get("code", "")).startswith("CFG")  # config, not extract
]


@pytest.mark.parametrize("case", CSV_CASES, ids=[c["id"] for c in CSV_CASES])
def test_bad_input_prepared_in_batches_is_the_whole_read(tmp_path, case):
    cfg = load_config(build_config(case, tmp_path))
    whole = assert_same(cfg, tmp_path, 1000)
    assert_same(cfg, tmp_path, 2, whole=whole)


def _sample_copy(tmp_path: Path, text: str, encoding: str = "utf-8") -> object:
    """A config for the sample service reading ``text`` as its extract."""
    raw = yaml.safe_load(SAMPLE.read_text())
    for key, value in raw["reference"].items():
        if isinstance(value, str) and value.startswith("reference/"):
            raw["reference"][key] = str(SAMPLE.parent / value)
    raw["readability"] = {k: str(SAMPLE.parent / v) for k, v in raw["readability"].items()}
    (tmp_path / "extract.csv").write_bytes(text.encode(encoding))
    raw["extract"]["path"] = str(tmp_path / "extract.csv")
    config = tmp_path / "service.yml"
    config.write_text(yaml.safe_dump(raw))
    return load_config(config)


SAMPLE_TEXT = (ROOT / "sample_data" / "long_covid_service_extract.csv").read_text()


def test_repeated_referral_ids_far_apart_stop_both_ways(tmp_path):
    lines = SAMPLE_TEXT.splitlines()
    first_id = lines[1].split(",")[0]
    lines[4500] = first_id + lines[4500][lines[4500].index(",") :]
    cfg = _sample_copy(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(PlaybookError) as caught:
        prepare_in_batches(cfg, tmp_path / "batches.parquet", batch_rows=1000)
    assert caught.value.code == "EXT007"
    assert "2, 4501" in str(caught.value)
    assert_same(cfg, tmp_path, 1000, batched=caught.value)


def test_blank_lines_titles_and_a_footer_both_ways(tmp_path):
    lines = SAMPLE_TEXT.splitlines()
    lines[3000:3000] = ["", "\r"]
    lines[1200:1200] = [""]
    text = "Long COVID referrals\nRun on 01/04/2025\n" + "\n".join(lines)
    text += "\n\nTotal records: 6000\nReport run by the system\n"
    cfg = _sample_copy(tmp_path, text)
    assert_same(cfg, tmp_path, 1000)
    data, meta = read_prepared(tmp_path / "batches.parquet")
    assert meta["account"]["outside_table"] == {
        "titles above the column names": 2,
        "totals, run details and notes below the data": 2,
    }


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252", "utf-8-sig"])
def test_encodings_both_ways(tmp_path, encoding):
    text = SAMPLE_TEXT.replace("Synthetic Patient", "Synthétic Patiënt", 50)
    text = text.replace("\n", "\r\n")
    cfg = _sample_copy(tmp_path, text, encoding)
    assert_same(cfg, tmp_path, 1000)
    _, meta = read_prepared(tmp_path / "batches.parquet")
    assert meta["encoding"] == {"utf-8-sig": "utf-8-sig", "cp1252": "cp1252"}.get(
        encoding, "utf-16"
    )


def test_a_stray_byte_far_down_decides_the_encoding(tmp_path):
    """A byte that is not UTF-8 near the end makes the whole file cp1252, as when read whole."""
    lines = SAMPLE_TEXT.splitlines()
    lines[5900] = lines[5900].replace("Synthetic", "Synth\u00e9tic")
    path = tmp_path / "extract.csv"
    cfg = _sample_copy(tmp_path, "\n".join(lines) + "\n")
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    assert _scan(path).encoding == "cp1252"
    assert_same(cfg, tmp_path, 1000)


def test_ragged_rows_in_a_late_batch_are_named_both_ways(tmp_path):
    lines = SAMPLE_TEXT.splitlines()
    lines[5000] = lines[5000] + ",extra"
    cfg = _sample_copy(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(PlaybookError) as caught:
        prepare_in_batches(cfg, tmp_path / "batches.parquet", batch_rows=1000)
    assert caught.value.code == "EXT013"
    assert "5001" in str(caught.value)
    assert_same(cfg, tmp_path, 1000, batched=caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "h\na\nb\nc\n",
        "h\na\nb\nc",
        "h\na\n\nb\n  \nc\n",
        "h\r\na\r\n\r\nb\r\n\r\n\r\nc\r\n",
        "t\n\nh\na\n\n\nb\nc\n\n",
        "h\na\n\nb\n\t\nc",
    ],
)
def test_row_numbers_of_batches_are_those_of_the_whole_text(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text(text, newline="")
    scan = _scan(path)
    header_idx = 1 if text.startswith("t") else 0
    numbers = _RowNumbers(header_idx + 2, scan.blanks, scan.newlines, cut=False)
    whole = _row_numbers(text, header_idx, 3)
    assert np.concatenate([numbers(0, 2), numbers(2, 1)]).tolist() == whole.tolist()


def test_the_prepared_file_is_made_whole_or_not_at_all(tmp_path):
    """A run stopped by a repeated ID leaves no prepared file and no half-written one."""
    lines = SAMPLE_TEXT.splitlines()
    lines[10] = lines[2]
    cfg = _sample_copy(tmp_path, "\n".join(lines) + "\n")
    out = tmp_path / "out" / "prepared.parquet"
    with pytest.raises(PlaybookError):
        prepare_in_batches(cfg, out, batch_rows=1000)
    assert list(out.parent.iterdir()) == []


def test_sample_copy_is_the_sample(tmp_path):
    """The helper above reads the sample's own extract as the sample does."""
    cfg = _sample_copy(tmp_path, SAMPLE_TEXT)
    assert prepare(cfg).account == prepare(load_config(SAMPLE)).account


def test_hashing_an_extract_reads_it_a_piece_at_a_time(tmp_path):
    """The fingerprint hashes a big extract without holding it in memory."""
    import hashlib
    import tracemalloc

    from equity_helpers.preparation import file_digest

    path = tmp_path / "big.csv"
    piece = b"LC1,01/04/2022,38,1,A,E01900109\n" * 32_000
    with open(path, "wb") as fh:
        for _ in range(40):  # about 40 MB
            fh.write(piece)
    tracemalloc.start()
    digest = file_digest(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert digest == hashlib.sha256(piece * 40).hexdigest()
    assert peak < 4 * 2**20, f"hashing held {peak / 2**20:.0f} MB"


def test_preparing_to_a_file_uses_batches_for_a_big_csv(tmp_path, monkeypatch, sample_whole):
    """prepare_to_file prepares a CSV over the size limit in batches, with the same result."""
    from equity_helpers import batches, preparation

    cfg = load_config(SAMPLE)
    called = []
    real = batches.prepare_in_batches

    def spy(*args, **kwargs):
        called.append(kwargs)
        return real(*args, **kwargs, batch_rows=1000)

    monkeypatch.setattr(batches, "STREAM_BYTES", 1000)
    monkeypatch.setattr(preparation, "prepare_in_batches", spy)
    batched, meta = preparation.prepare_to_file(cfg, tmp_path / "batched.parquet")
    assert called, "the big file was not prepared in batches"
    assert meta == read_prepared(batched)[1] and meta["fingerprint"]
    assert_same(cfg, tmp_path, made=batched, whole=sample_whole)


def test_the_prepare_command_prepares_a_big_csv_in_batches(
    tmp_path, monkeypatch, capsys, sample_whole
):
    """`equity-workbook prepare` takes the runner's path: a big CSV in batches, same result."""
    from equity_helpers import batches
    from equity_helpers.cli import main

    called = []
    real = batches.prepare_in_batches

    def spy(*args, **kwargs):
        called.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(batches, "STREAM_BYTES", 1000)
    monkeypatch.setattr(batches, "BATCH_ROWS", 777)
    monkeypatch.setattr("equity_helpers.preparation.prepare_in_batches", spy)
    out = tmp_path / "cli.parquet"
    capsys.readouterr()
    assert main(["prepare", "--config", str(SAMPLE), "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert called, "the big file was not prepared in batches"
    assert_same(load_config(SAMPLE), tmp_path, made=out, whole=sample_whole)
    report = prepare(load_config(SAMPLE)).report()
    assert shown == report + f"\n\nPrepared data written to {out}\n"
    # Without --out the report is the same, and no prepared file is left behind.
    monkeypatch.setenv("EQUITY_CACHE", str(tmp_path / "cache"))
    assert main(["prepare", "--config", str(SAMPLE)]) == 0
    assert capsys.readouterr().out == report + "\n"
    assert len(called) == 2
    assert list((tmp_path / "cache").iterdir()) == []
