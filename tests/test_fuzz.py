"""Property-based tests: whatever the input, a result or a catalogue message, never a crash.

Hypothesis writes extracts (random bytes; five encodings; four delimiters; headers moved,
renamed, repeated or missing; blank lines; dates of every shape including sentinels such
as 31/12/9999; numbers written as text), config files (random values for the known keys,
and random YAML) and extract headers for `init` (line breaks, quotes, colons, #, any
Unicode). The property each test checks:

* every call ends in a result or a :class:`PlaybookError` whose code is in the catalogue
  (any other exception would reach a user as a traceback), and
* when the extract loads, the row account adds up: rows used + rows excluded by reason
  = rows read, and each exclusion in the account has its message.

The default budget is small and derandomised, so every run (CI included) tries the same
examples. For a bigger, random search run, for example::

    EQUITY_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz.py -q

(``EQUITY_FUZZ_SHRINK=0`` shows the first failing example as found, without shrinking.)

Hypothesis prints the failing example; add it to ``tests/bad_inputs`` once fixed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from equity_helpers.config import CANONICAL_COLUMNS, load_config
from equity_helpers.errors import CATALOGUE, PlaybookError
from equity_helpers.extract import prepare
from equity_helpers.starter import _read as read_starter_extract
from equity_helpers.starter import check, write_starter_config

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "bad_inputs"
IMD = ROOT / "sample_data" / "reference" / "imd2025_file7_synthetic.csv"
BASE = yaml.safe_load((CORPUS / "base_config.yml").read_text(encoding="utf-8"))
HEADER = list(BASE["columns"].values())

EXAMPLES = int(os.environ.get("EQUITY_FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 30,  # the default run is the same every time
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # EQUITY_FUZZ_SHRINK=0 reports the first failure found as it is, without shrinking it.
    phases=[p for p in Phase if os.environ.get("EQUITY_FUZZ_SHRINK") != "0" or p != Phase.shrink],
)


def catalogued(exc: PlaybookError) -> None:
    """A message a user can act on: a catalogue code, and plain text with no traceback."""
    for error in getattr(exc, "errors", [exc]):
        assert error.code in CATALOGUE, f"{error.code} is not in the catalogue: {error}"
        assert str(error).startswith(CATALOGUE[error.code].title), str(error)


def prepare_or_message(config: Path):
    """Run load_config and prepare; check the property; return the result or None."""
    try:
        prepared = prepare(load_config(config))
    except PlaybookError as exc:
        catalogued(exc)
        return None
    acc = prepared.account
    assert acc.adds_up(), acc
    assert len(prepared.data) == acc.rows_used
    exclusions = {i.code: i.count for i in prepared.issues if i.kind == "exclusion"}
    assert exclusions == acc.excluded, (exclusions, acc)
    return prepared


def config_for(folder: Path, extract: Path, **changes) -> Path:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    raw["extract"]["path"] = str(extract)
    raw["reference"]["imd_path"] = str(IMD)
    raw.update(changes)
    path = folder / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- values

SENTINELS = [
    "31/12/9999", "01/01/0001", "9999-12-31", "0001-01-01", "1900-01-01", "00/00/0000",
    "31/02/2024", "29/02/2023", "2024-13-01", "01/01/1677", "12/04/2262", "1677-09-21",
    "9999-12-31 23:59:59", "31/12/99", "45000", "0", "-1", "NULL", "N/A", "TBC",
]  # fmt: skip
DATE_FORMATS = [
    "%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y",
    "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y", "%d %b %Y", "%Y%m%d",
]  # fmt: skip
dates = st.one_of(
    st.builds(
        lambda d, f: d.strftime(f),
        st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
        st.sampled_from(DATE_FORMATS),
    ),
    st.builds(
        lambda d, f: d.strftime(f),
        st.dates(min_value=dt.date(2022, 4, 1), max_value=dt.date(2025, 3, 31)),
        st.sampled_from(DATE_FORMATS[:3]),
    ),
    st.sampled_from(SENTINELS),
    st.integers(-(10**7), 10**7).map(str),  # Excel serial numbers as text
    st.text(max_size=12),
)
numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats().map(str),
    st.sampled_from(["1,000", "ten", "", " 7 ", "1e400", "-0", "NaN", "inf", "0x1F", "٣"]),
    st.text(max_size=6),
)
codes = st.one_of(
    st.sampled_from(["1", "2", "9", "X", "M", "F", "Male", "A", "B", "99", "Z", "", "Y", "N"]),
    st.text(max_size=6),
)
lsoas = st.one_of(
    st.sampled_from(["E01900109", "E01900043", "E01013453", "W01000001", "", "DE1 2AB"]),
    st.from_regex(r"E01\d{6}", fullmatch=True),
    st.text(max_size=10),
)
ids = st.one_of(st.integers(0, 30).map(lambda i: f"LC{i}"), st.just(""), st.text(max_size=8))
COLUMN_VALUES = {
    "Referral Ref": ids,
    "Date Referral Received": dates,
    "Age at Referral": numbers,
    "Gender": codes,
    "Ethnic Category": codes,
    "LSOA": lsoas,
    "Referral Accepted": codes,
    "First Contact Date": dates,
    "Appts Offered": numbers,
    "Appts Attended": numbers,
    "Appts DNA": numbers,
    "Discharge Date": dates,
    "Discharge Reason": st.one_of(st.sampled_from(["Completed", "Disengaged", ""]), st.text()),
}
rows = st.lists(st.fixed_dictionaries(COLUMN_VALUES), max_size=12)


@st.composite
def extracts(draw) -> tuple[bytes, str, int | None]:
    """An extract's bytes, its file ending, and how many data rows it holds (None: unknown)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=3000)), draw(st.sampled_from([".csv", ".txt"])), None
    table = draw(rows)
    header = list(HEADER)
    shape = draw(
        st.sampled_from(["plain", "title", "upper", "spaces", "missing", "extra", "repeat"])
    )
    if shape == "upper":
        header = [h.upper() for h in header]
    elif shape == "spaces":
        header = [f" {h} " for h in header]
    elif shape == "missing":
        drop = draw(st.sampled_from(header))
        header.remove(drop)
    elif shape == "extra":
        header.append(draw(st.text(max_size=10)))
    elif shape == "repeat":
        header.append(draw(st.sampled_from(header)))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoted = draw(st.booleans())
    out = io.StringIO()
    if shape == "title":
        out.write("Long COVID referrals report" + draw(st.text(max_size=10)) + "\n\n")
    lines = []
    for row in table:
        values = [row.get(h.strip(), "") for h in header]
        if quoted:
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(values)
            lines.append(buffer.getvalue().rstrip("\n"))
        else:
            lines.append(delimiter.join(values))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(header)
    body = [buffer.getvalue().rstrip("\n"), *lines]
    blank_after = draw(st.lists(st.integers(0, max(0, len(body) - 1)), max_size=3))
    for i in sorted(blank_after, reverse=True):
        body.insert(i + 1, "")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    out.write(newline.join(body) + newline)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    data = out.getvalue().encode(encoding, errors="replace")
    suffix = ".tsv" if delimiter == "\t" and draw(st.booleans()) else ".csv"
    well_formed = shape in ("plain", "upper", "spaces", "extra") and quoted and table
    return data, suffix, len(table) if well_formed else None


@FUZZ
@given(extracts())
def test_any_extract_gives_a_result_or_a_catalogue_message(extract):
    data, suffix, n_rows = extract
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"extract{suffix}"
        path.write_bytes(data)
        prepared = prepare_or_message(config_for(Path(folder), path))
        if prepared is not None and n_rows is not None:
            assert prepared.account.rows_read == n_rows, prepared.report()


# ----------------------------------------------------------------------------- config

KNOWN_KEYS = {
    "service": ["name", "organisation", "description"],
    "extract": ["path", "sheet", "header_row", "date_format"],
    "columns": list(CANONICAL_COLUMNS),
    "values": ["sex", "ethnicity", "discharge_reason", "accepted"],
    "catchment": ["local_authorities", "lsoa_file", "name"],
    "reference": ["imd_edition", "imd_path", "population_ethnicity", "lsoa_lookup"],
    "period": ["start", "end"],
    "evaluation": ["change_date", "focus_field", "focus_group", "measure"],
    "outcome": ["name", "higher_is_better"],
    "disclosure": ["threshold", "rounding", "enabled"],
}
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(),
    st.text(max_size=12),
    st.dates(),
    st.sampled_from(["TODO", "", ".", "..", "ok.csv", "E06000015", "%d/%m/%Y", "%Q", "%"]),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
changes = st.lists(
    st.sampled_from([(s, k) for s, keys in KNOWN_KEYS.items() for k in keys]).flatmap(
        lambda sk: st.tuples(st.just(sk), yaml_values)
    ),
    min_size=1,
    max_size=4,
)


def check_or_message(config: Path) -> None:
    """`equity-workbook check`: a list of catalogue messages or 'ready', never a crash."""
    problems, report = check(config)
    assert isinstance(report, str) and report
    for problem in problems:
        catalogued(problem)


@FUZZ
@given(changes)
def test_any_config_value_gives_a_result_or_a_catalogue_message(edits):
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "ok.csv").write_bytes((CORPUS / "ok.csv").read_bytes())
        raw = yaml.safe_load(yaml.safe_dump(BASE))
        raw["extract"]["path"] = "ok.csv"
        raw["reference"]["imd_path"] = str(IMD)
        for (section, key), value in edits:
            if not isinstance(raw.get(section), dict):
                raw[section] = {}
            raw[section][key] = value
        path = folder / "service.yml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        prepare_or_message(path)
        check_or_message(path)


@FUZZ
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_config_text_gives_a_result_or_a_catalogue_message(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "service.yml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path)
        except PlaybookError as exc:
            catalogued(exc)
        check_or_message(path)


# ----------------------------------------------------------------------------- init

header_names = st.one_of(
    st.text(min_size=1, max_size=20),
    st.sampled_from(HEADER + ["Ethnic\nCategory", 'Say "hi"', "a: b", "# note", "x #y", "é"]),
    st.builds(
        lambda a, s, b: a + s + b,
        st.sampled_from(HEADER),
        st.sampled_from(["\n", "\r\n", ": ", " #", "'", '"', "\u2028", "\x85", "\t", "{", "- "]),
        st.text(max_size=5),
    ),
)


@FUZZ
@given(
    st.lists(header_names, min_size=1, max_size=8),
    st.lists(st.lists(st.one_of(dates, codes, numbers), min_size=8, max_size=8), max_size=8),
)
def test_init_writes_a_config_that_loads_as_written(header, values):
    with tempfile.TemporaryDirectory() as folder:
        extract = Path(folder) / "extract.csv"
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in values:
            writer.writerow(row[: len(header)])
        extract.write_text(buffer.getvalue(), encoding="utf-8")
        try:
            path, _ = write_starter_config(extract)
        except PlaybookError as exc:
            catalogued(exc)
            return
        written = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert set(written) == {
            "service", "extract", "columns", "values", "catchment", "reference", "period",
            "evaluation", "outcome", "disclosure",
        }  # fmt: skip
        found = set(read_starter_extract(extract)[0].columns)  # as init read it
        for canonical, source in written["columns"].items():
            assert canonical in CANONICAL_COLUMNS, canonical
            assert source == "TODO" or source in found, (source, found)
        for mapping in (written["values"] or {}).values():
            assert isinstance(mapping, dict), written["values"]
        try:
            load_config(path)
        except PlaybookError as exc:
            catalogued(exc)
            codes_found = [e.code for e in getattr(exc, "errors", [exc])]
            assert "CFG003" not in codes_found, str(exc)  # no key made up from a header
