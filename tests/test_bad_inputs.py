"""The bad-input corpus: every broken extract or config gives a clear message, never a traceback.

The cases are listed in ``tests/bad_inputs/cases.yml`` (one test id each); the broken files
sit beside it. Each case is run through the library (``load_config`` then ``prepare``) and
through the command line (``equity-workbook prepare --config ...``). For an error the code
and the user-facing lines are checked; for an extract that loads, the row account (which
must add up) and every data-quality issue with its rows and example.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from equity_helpers.cli import main
from equity_helpers.config import load_config
from equity_helpers.errors import CATALOGUE, PlaybookError
from equity_helpers.extract import prepare

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "bad_inputs"
CASES_FILE = CORPUS / "cases.yml"
#: The real ONS LSOA 2011 to 2021 lookup for Derby and Derbyshire, read in place (never copied).
REAL_LOOKUP = (
    ROOT.parent
    / "shared"
    / "reference"
    / "lookups"
    / "lsoa11_lsoa21_lad22_lookup_derby_derbyshire.csv"
)
#: Config settings that hold paths, read relative to the corpus folder.
PATH_SETTINGS = [
    ("extract", "path"),
    ("catchment", "lsoa_file"),
    ("reference", "imd_path"),
    ("reference", "population_ethnicity"),
    ("reference", "population_age"),
    ("reference", "population_sex"),
    ("reference", "lsoa_lookup"),
]
#: Files in the corpus folder that are not cases' inputs.
NOT_INPUTS = {"cases.yml", "base_config.yml", "make_files.py"}
#: What the brief asks the corpus to cover, at the least.
MUST_COVER = {
    "EXT001", "EXT002", "EXT003", "EXT004", "EXT005", "EXT006", "EXT007", "EXT010", "EXT014",
    "EXC001", "EXC002", "EXC003", "EXC004",
    "VAL001", "VAL002", "VAL004", "VAL005", "VAL006", "VAL007", "VAL008", "VAL011",
    "CFG001", "CFG002", "CFG003", "CFG005", "CFG006", "CFG007",
    "REF001",
}  # fmt: skip

SPEC = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
CASES: list[dict] = SPEC["cases"]


def _param(case: dict):
    marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
    return pytest.param(case, id=case["id"], marks=marks)


# ----------------------------------------------------------------------------- building a case


def _imd_from_lookup(tmp_path: Path) -> Path:
    """A small IMD 2025 file (tidy layout) holding the LSOA 2021 codes of the real lookup."""
    if not REAL_LOOKUP.is_file():
        pytest.fail(f"The real ONS lookup is missing: expected it at {REAL_LOOKUP}.")
    lookup = pd.read_csv(REAL_LOOKUP, dtype=str).drop_duplicates("lsoa21cd").reset_index(drop=True)
    imd = lookup[["lsoa21cd", "lsoa21nm", "lad22cd", "lad22nm"]].copy()
    imd["imd_rank"] = [str(1 + 50 * i) for i in range(len(imd))]
    imd["imd_decile"] = [str(1 + i % 10) for i in range(len(imd))]
    path = tmp_path / "imd2025_from_lookup.csv"
    imd.to_csv(path, index=False)
    return path


def _fill(value, tmp_path: Path):
    if value == "{imd_from_lookup}":
        return str(_imd_from_lookup(tmp_path))
    if value == "{real_lsoa_lookup}":
        if not REAL_LOOKUP.is_file():
            pytest.fail(f"The real ONS lookup is missing: expected it at {REAL_LOOKUP}.")
        return str(REAL_LOOKUP)
    return value


def build_config(case: dict, tmp_path: Path) -> Path:
    """The config a case runs: its own file as it is, or the base config for its extract."""
    if "config" in case:
        return CORPUS / case["config"]
    raw = yaml.safe_load((CORPUS / SPEC["base_config"]).read_text(encoding="utf-8"))
    raw["extract"]["path"] = case["extract"]
    for dotted, value in (case.get("overrides") or {}).items():
        section, key = dotted.split(".")
        raw.setdefault(section, {})[key] = _fill(value, tmp_path)
    for section, key in PATH_SETTINGS:
        value = (raw.get(section) or {}).get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            raw[section][key] = str(CORPUS / value)
    path = tmp_path / f"{case['id']}.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- checks


def _prepare(case: dict, config: Path):
    """Run the library; anything but a PlaybookError would reach a user as a traceback."""
    try:
        return prepare(load_config(config)), None
    except PlaybookError as exc:
        return None, exc
    except Exception as exc:  # whatever escapes would reach a user as a traceback
        pytest.fail(
            f"{case['id']}: a Python {type(exc).__name__} escaped instead of a playbook "
            f"message: {exc}"
        )


def _check_error(case: dict, config: Path) -> None:
    want = case["error"]
    prepared, error = _prepare(case, config)
    assert error is not None, (
        f"{case['id']}: expected {want['code']}, but the extract loaded: {prepared.account}"
    )
    message = str(error)
    assert error.code == want["code"], f"expected {want['code']}, got:\n{message}"
    if want["code"] == "CFG-MANY":
        assert [e.code for e in error.errors] == want["codes"], message
    else:
        entry = CATALOGUE[want["code"]]
        assert message.splitlines()[0] == f"{entry.title} [{want['code']}]", message
    for line in want["lines"]:
        assert line in message, f"{line!r} is not in the message:\n{message}"


def _match_issues(expected: list[dict], issues: list) -> list[tuple[dict, object]]:
    """Pair each expected issue with the one found (same column; same code unless '*')."""
    left = list(issues)
    pairs = []
    for want in expected:
        found = next(
            (i for i in left if i.column == want.get("column") and want["code"] in ("*", i.code)),
            None,
        )
        assert found is not None, (
            f"no {want['code']} issue on column {want.get('column')!r}; issues found: "
            + "; ".join(f"{i.code} on {i.column!r} rows {i.rows}" for i in issues)
        )
        left.remove(found)
        pairs.append((want, found))
    assert not left, "unexpected issues:\n" + "\n".join(i.message for i in left)
    return pairs


def _check_loads(case: dict, config: Path) -> None:
    prepared, error = _prepare(case, config)
    assert error is None, f"{case['id']}: expected the extract to load, got:\n{error}"
    acc = prepared.account
    want = case["account"]
    assert acc.adds_up(), f"the row account does not add up: {acc}"
    assert acc.rows_read == want["read"], acc
    assert acc.rows_used == want["used"], acc
    assert acc.excluded == want["excluded"], acc
    assert len(prepared.data) == acc.rows_used
    exclusions = {i.code: i.count for i in prepared.issues if i.kind == "exclusion"}
    assert exclusions == acc.excluded, "each exclusion in the account has its issue"

    for want_issue, issue in _match_issues(case.get("issues") or [], prepared.issues):
        assert issue.count == want_issue["count"], issue.message
        assert issue.rows == want_issue["rows"], issue.message
        if "example" in want_issue:
            assert issue.example == want_issue["example"], issue.message
        for line in want_issue.get("lines", []):
            assert line in issue.message, f"{line!r} is not in:\n{issue.message}"

    if "encoding" in case:
        assert prepared.encoding in case["encoding"]
    if "delimiter" in case:
        assert prepared.delimiter == case["delimiter"]
    if "dropped_identifiers" in case:
        assert prepared.dropped_identifiers == case["dropped_identifiers"]
        for name in case["dropped_identifiers"]:
            assert name not in prepared.data.columns
    for column, values in (case.get("data") or {}).items():
        shown = [_shown(v) for v in prepared.data[column]]
        assert shown == [str(v) for v in values], f"{column}: {shown}"


def _shown(value) -> str:
    """A prepared value as cases.yml writes it: dates as 2022-04-01, missing as <NA>."""
    if pd.isna(value):
        return "<NA>"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _check_cli(case: dict, config: Path, capsys) -> None:
    """The command a user runs: a plain message and status 2, or the report and status 0."""
    capsys.readouterr()
    try:
        status = main(["prepare", "--config", str(config)])
    except SystemExit as exc:  # argparse
        status = exc.code
    except Exception as exc:  # the same, through the command line
        pytest.fail(
            f"{case['id']}: `equity-workbook prepare` let a Python {type(exc).__name__} "
            f"through; the user would see a traceback: {exc}"
        )
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "Traceback" not in shown, shown
    if "error" in case:
        assert status == 2, shown
        for line in case["error"]["lines"]:
            assert line in captured.err, f"{line!r} is not printed:\n{captured.err}"
    else:
        assert status == 0, shown
        assert "Rows analysed" in captured.out
        for want in case.get("issues") or []:
            for line in want.get("lines", []):
                assert line in captured.out, f"{line!r} is not printed:\n{captured.out}"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: dict, tmp_path: Path, capsys) -> None:
    config = build_config(case, tmp_path)
    if "error" in case:
        _check_error(case, config)
    else:
        _check_loads(case, config)
    _check_cli(case, config, capsys)


# ----------------------------------------------------------------------------- the corpus itself


def _codes_of(case: dict) -> set[str]:
    if "error" in case:
        return set(case["error"].get("codes") or []) | {case["error"]["code"]}
    return {i["code"] for i in case.get("issues") or []} | set(case["account"]["excluded"])


def test_corpus_is_complete() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 30
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert ("extract" in case) != ("config" in case), case["id"]
        assert ("error" in case) != ("account" in case), case["id"]
        assert case.get("about"), f"{case['id']} says what it is about"
        for code in _codes_of(case) - {"*", "CFG-MANY"}:
            assert code in CATALOGUE, f"{case['id']}: {code} is not in the catalogue"
    covered = set().union(*(_codes_of(c) for c in CASES))
    assert MUST_COVER <= covered, f"not covered: {sorted(MUST_COVER - covered)}"


def test_corpus_files_are_all_used() -> None:
    """Every file in the folder serves a case, and every file a case names is there."""
    named = set()
    for case in CASES:
        name = case.get("extract") or case.get("config")
        missing_on_purpose = case.get("error", {}).get("code") in ("CFG001", "CFG006")
        assert (CORPUS / name).is_file() != missing_on_purpose, f"{case['id']}: {name}"
        named.add(name)
        for value in (case.get("overrides") or {}).values():
            if isinstance(value, str) and re.search(r"\.(csv|xlsx|txt|json|yml)$", value):
                named.add(value)
        if "config" in case and (CORPUS / name).is_file():
            text = (CORPUS / name).read_text(encoding="utf-8")
            named.update(re.findall(r"path: (\S+\.\w+)", text))
    base = (CORPUS / SPEC["base_config"]).read_text(encoding="utf-8")
    named.update(re.findall(r"path: (\S+\.\w+)", base))
    files = {p.name for p in CORPUS.iterdir() if p.is_file()} - NOT_INPUTS
    assert files <= named, f"files no case uses: {sorted(files - named)}"
    for name in named:
        if "/" in name:  # the reference files the configs point at
            assert (CORPUS / name).is_file(), name
