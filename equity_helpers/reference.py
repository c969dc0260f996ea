"""Loaders for the public reference data: deprivation, Census 2021 population, lookups.

They read the official files as published, quirks included:

* MHCLG's IoD CSVs (2019 File 1 and File 7, 2025 File 7): UTF-8 with a byte-order
  mark, thousands separators in numbers ("29,199") and long column names such as
  ``Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)``.
  Tidy versions with snake_case names (``lsoa21cd``, ``imd_decile``) are read too.
* Nomis bulk Census 2021 CSVs (``census2021-ts021-lsoa.csv`` and friends): ``geography
  code`` plus one column per category named like ``Ethnic group: Asian, Asian British or
  Asian Welsh``; tidy versions (``lsoa21cd, asian, black, ...``) are read too.
* The ONS LSOA 2011 to 2021 lookup (``LSOA11CD, LSOA21CD, CHGIND``).

Every loader returns a DataFrame with the playbook's own column names.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .codes import CENSUS_AGE_GROUPS
from .config import file_problem
from .errors import ReferenceDataError

log = logging.getLogger("equity_helpers")

#: Official sources, for `equity-workbook reference download` and the book's manual links.
OFFICIAL_SOURCES = {
    "imd2019": {
        "title": "English Indices of Deprivation 2019, File 7 (all ranks, deciles, scores, denominators)",
        "page": "https://www.gov.uk/government/statistics/english-indices-of-deprivation-2019",
        "url": "https://assets.publishing.service.gov.uk/media/5dc407b440f0b6379a7acc8d/"
        "File_7_-_All_IoD2019_Scores__Ranks__Deciles_and_Population_Denominators_3.csv",
        "filename": "imd2019_file7.csv",
    },
    "imd2025": {
        "title": "English Indices of Deprivation 2025, File 7 (all ranks, deciles and scores)",
        "page": "https://www.gov.uk/government/statistics/english-indices-of-deprivation-2025",
        "url": None,  # the page lists the file; see download_reference()
        "filename": "imd2025_file7.csv",
    },
    "ts021": {
        "title": "Census 2021 TS021 Ethnic group, Nomis bulk download",
        "page": "https://www.nomisweb.co.uk/sources/census_2021_bulk",
        "url": "https://www.nomisweb.co.uk/output/census/2021/census2021-ts021.zip",
        "member": "census2021-ts021-lsoa.csv",
        "filename": "census2021-ts021-lsoa.csv",
    },
    "ts007a": {
        "title": "Census 2021 TS007A Age by five-year age bands, Nomis bulk download",
        "page": "https://www.nomisweb.co.uk/sources/census_2021_bulk",
        "url": "https://www.nomisweb.co.uk/output/census/2021/census2021-ts007a.zip",
        "member": "census2021-ts007a-lsoa.csv",
        "filename": "census2021-ts007a-lsoa.csv",
    },
    "ts008": {
        "title": "Census 2021 TS008 Sex, Nomis bulk download",
        "page": "https://www.nomisweb.co.uk/sources/census_2021_bulk",
        "url": "https://www.nomisweb.co.uk/output/census/2021/census2021-ts008.zip",
        "member": "census2021-ts008-lsoa.csv",
        "filename": "census2021-ts008-lsoa.csv",
    },
}


def _decode(raw: bytes) -> str | None:
    """The text of a CSV file: UTF-16 by its mark, else UTF-8, cp1252 or Latin-1.

    None when the bytes are not text at all (a spreadsheet, a zip, random bytes).
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in raw:
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _read_csv(path: Path, what: str = "reference file") -> pd.DataFrame:
    """Read a reference CSV as text; any problem is a catalogue message naming the file."""
    path = Path(path)
    problem = file_problem(path, "reference file", ReferenceDataError)
    if problem is not None:
        raise problem

    def fail(detail: str) -> ReferenceDataError:
        return ReferenceDataError("REF005", path=str(path), what=what, detail=detail)

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    try:
        if raw.startswith(b"\x1f\x8b"):  # gzip, as some official files are kept
            raw = gzip.decompress(raw)
        elif raw.startswith(b"PK\x03\x04") and path.suffix.lower() == ".zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if len(members) != 1:
                    raise fail("the zip file does not hold exactly one CSV file")
                raw = zf.read(members[0])
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise fail(f"the compressed file is damaged ({exc})") from None
    if not raw.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe"):
        raise fail("the file is empty")
    text = _decode(raw)
    if text is None:
        raise fail("it is not a CSV text file (it holds binary data, as a spreadsheet or zip does)")
    try:
        out = pd.read_csv(io.StringIO(text.lstrip("\ufeff")), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise fail("the file is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "not a CSV table"
        raise fail(detail) from None
    if out.empty:
        raise fail("it has column names but no rows")
    out.columns = [str(c).strip() for c in out.columns]
    return out


def _number(series: pd.Series) -> pd.Series:
    """Numbers written with thousands separators, as MHCLG publishes them."""
    out = pd.to_numeric(
        series.astype("string").str.replace(",", "", regex=False).str.strip(), errors="coerce"
    ).astype("float64")
    return out.where(np.isfinite(out))  # "inf" is no count


def _whole(series: pd.Series) -> pd.Series:
    """Whole numbers (ranks, deciles); anything else, such as 2.5, is missing."""
    n = _number(series)
    return n.where(n == n.round()).astype("Int64")


def _find(columns, patterns) -> str | None:
    for pattern in patterns:
        rx = re.compile(pattern, re.IGNORECASE)
        for c in columns:
            if rx.search(c):
                return c
    return None


_IMD_COLUMNS = {
    "lsoa_code": [r"^lsoa(11|21)?cd$", r"^LSOA code"],
    "lsoa_name": [r"^lsoa(11|21)?nm$", r"^LSOA name"],
    "lad_code": [r"^lad\d\dcd$", r"^Local Authority District code"],
    "lad_name": [r"^lad\d\dnm$", r"^Local Authority District name"],
    "imd_rank": [r"^imd_rank$", r"^Index of Multiple Deprivation \(IMD\) Rank"],
    "imd_decile": [r"^imd_decile$", r"^Index of Multiple Deprivation \(IMD\) Decile"],
    "imd_score": [r"^imd_score$", r"^Index of Multiple Deprivation \(IMD\) Score"],
    "population": [r"^pop_total", r"^Total population"],
}


def load_imd(path: str | Path, edition: int | None = None) -> pd.DataFrame:
    """Read an English Indices of Deprivation file (2019 or 2025) at LSOA level.

    Returns one row per LSOA with ``lsoa_code, lsoa_name, lad_code, lad_name, imd_rank,
    imd_decile`` (1 = most deprived 10% nationally), ``imd_quintile``, ``core20``
    (deciles 1 and 2) and, where the file has them, ``imd_score`` and ``population``.

    >>> imd = load_imd("sample_data/reference/imd2025_file7_synthetic.csv")  # doctest: +SKIP
    """
    path = Path(path)
    raw = _read_csv(path, "deprivation (IMD) file")
    cols = {key: _find(raw.columns, pats) for key, pats in _IMD_COLUMNS.items()}
    missing = [k for k in ("lsoa_code", "imd_rank", "imd_decile") if cols[k] is None]
    if missing:
        raise ReferenceDataError(
            "REF001", path=str(path), missing=", ".join(missing), found=", ".join(raw.columns[:12])
        )
    if edition is None and cols["lsoa_code"]:
        edition = 2019 if "2011" in cols["lsoa_code"] or "11" in cols["lsoa_code"] else 2025
    out = pd.DataFrame({"lsoa_code": raw[cols["lsoa_code"]].str.strip()})
    for key in ("lsoa_name", "lad_code", "lad_name"):
        out[key] = raw[cols[key]].str.strip() if cols[key] else pd.NA
    out["imd_rank"] = _whole(raw[cols["imd_rank"]])
    decile = _whole(raw[cols["imd_decile"]])
    out["imd_decile"] = decile.where(decile.between(1, 10))
    for key in ("imd_score", "population"):
        if cols[key]:
            out[key] = _number(raw[cols[key]])
    out["imd_quintile"] = ((out["imd_decile"] + 1) // 2).astype("Int64")
    out["core20"] = out["imd_decile"] <= 2
    out.attrs["edition"] = edition
    out.attrs["path"] = str(path)
    return out


_ETHNIC_NOMIS = {
    "total": [r"^total_usual_residents$", r"Ethnic group: Total"],
    "Asian": [r"^asian$", r"Ethnic group: Asian, Asian British or Asian Welsh$"],
    "Black": [
        r"^black$",
        r"Ethnic group: Black, Black British, Black Welsh, Caribbean or African$",
    ],
    "Mixed": [r"^mixed$", r"Ethnic group: Mixed or Multiple ethnic groups$"],
    "White": [r"^white$", r"Ethnic group: White$"],
    "Other": [r"^other$", r"Ethnic group: Other ethnic group$"],
}
_GEO = [r"^lsoa21cd$", r"^geography code$", r"^lsoa_code$"]


def _population(path: Path, spec: dict, what: str) -> pd.DataFrame:
    raw = _read_csv(path, f"census {what} file")
    geo = _find(raw.columns, _GEO)
    cols = {key: _find(raw.columns, pats) for key, pats in spec.items()}
    missing = [k for k, v in cols.items() if v is None]
    if geo is None or missing:
        raise ReferenceDataError(
            "REF002",
            path=str(path),
            missing=", ".join((["LSOA code"] if geo is None else []) + missing),
            found=", ".join(raw.columns[:12]),
        )
    out = pd.DataFrame({"lsoa_code": raw[geo].str.strip()})
    for key, col in cols.items():
        out[key] = _number(raw[col]).fillna(0).astype("int64")
    out.attrs["path"] = str(path)
    out.attrs["what"] = what
    return out


def load_population_ethnicity(path: str | Path) -> pd.DataFrame:
    """Census 2021 usual residents by broad ethnic group (TS021) for each LSOA 2021.

    Columns: ``lsoa_code, total, Asian, Black, Mixed, White, Other``.
    """
    return _population(Path(path), _ETHNIC_NOMIS, "ethnic group")


_AGE_TIDY = {
    "0-15": [r"^age_0_15$"],
    "16-24": [r"^age_16_24$"],
    "25-34": [r"^age_25_34$"],
    "35-49": [r"^age_35_49$"],
    "50-64": [r"^age_50_64$"],
    "65+": [r"^age_65plus$"],
}
_GROUP_BOUNDS = [(0, 15), (16, 24), (25, 34), (35, 49), (50, 64), (65, 120)]
_BAND_RX = re.compile(
    r"(?:Aged )?(?:(\d+) to (\d+) years|(\d+) years and over|(\d+) years and under|(\d+) years?)$"
)


def _band_bounds(column: str) -> tuple[int, int] | None:
    m = _BAND_RX.search(column)
    if not m or "Total" in column:
        return None
    a, b, over, under, single = m.groups()
    if a is not None:
        return int(a), int(b)
    if over is not None:
        return int(over), 120
    if under is not None:
        return 0, int(under)
    return int(single), int(single)


def load_population_age(path: str | Path) -> pd.DataFrame:
    """Census 2021 usual residents in six age groups for each LSOA 2021.

    Reads the tidy six-band layout (``age_0_15`` ...) or a Nomis bulk age table whose
    columns name bands like ``Age: Aged 5 to 9 years`` (TS007A five-year bands, TS007
    single years, or custom bands). Bands that straddle a group boundary (15 to 19
    years) are shared out in proportion to the single years they cover. Columns:
    ``lsoa_code, 0-15, 16-24, 25-34, 35-49, 50-64, 65+``.
    """
    path = Path(path)
    raw = _read_csv(path, "census age file")
    if _find(raw.columns, [r"^age_0_15$"]):
        return _population(path, _AGE_TIDY, "age")
    geo = _find(raw.columns, _GEO)
    bands = {c: _band_bounds(c) for c in raw.columns}
    bands = {c: b for c, b in bands.items() if b is not None}
    if geo is None or not bands:
        raise ReferenceDataError(
            "REF002",
            path=str(path),
            missing="LSOA code and age bands",
            found=", ".join(raw.columns[:12]),
        )
    out = pd.DataFrame({"lsoa_code": raw[geo].str.strip()})
    for group in CENSUS_AGE_GROUPS:
        out[group] = 0.0
    for col, (lo, hi) in bands.items():
        values = _number(raw[col]).fillna(0)
        width = hi - lo + 1
        for group, (glo, ghi) in zip(CENSUS_AGE_GROUPS, _GROUP_BOUNDS, strict=True):
            overlap = min(hi, ghi) - max(lo, glo) + 1
            if overlap > 0:
                out[group] += values * overlap / width
    for group in CENSUS_AGE_GROUPS:
        out[group] = out[group].round().astype("int64")
    out.attrs["path"] = str(path)
    return out


_SEX = {
    "Female": [r"^female$", r"Sex: Female"],
    "Male": [r"^male$", r"Sex: Male"],
}


def load_population_sex(path: str | Path) -> pd.DataFrame:
    """Census 2021 usual residents by sex (TS008) for each LSOA 2021: ``Female, Male``."""
    return _population(Path(path), _SEX, "sex")


def load_lsoa_lookup(path: str | Path) -> pd.DataFrame:
    """ONS LSOA 2011 to LSOA 2021 lookup: ``lsoa11, lsoa21, change`` (U, S, M, X)."""
    path = Path(path)
    raw = _read_csv(path, "LSOA 2011 to 2021 lookup")
    c11 = _find(raw.columns, [r"^lsoa11cd$"])
    c21 = _find(raw.columns, [r"^lsoa21cd$"])
    chg = _find(raw.columns, [r"^chgind$"])
    if not (c11 and c21):
        raise ReferenceDataError(
            "REF002",
            path=str(path),
            missing="LSOA11CD and LSOA21CD",
            found=", ".join(raw.columns[:12]),
        )
    out = pd.DataFrame({"lsoa11": raw[c11].str.strip(), "lsoa21": raw[c21].str.strip()})
    out["change"] = raw[chg].str.strip() if chg else pd.NA
    return out


def load_lsoa_list(path: str | Path) -> pd.Series:
    """The LSOA codes of a catchment file: its first column, under a header line."""
    raw = _read_csv(Path(path), "catchment LSOA file")
    return raw.iloc[:, 0].str.strip()


def check_files(cfg) -> list:
    """Read every reference file a config names, as a step would; return the problems.

    ``equity-workbook check`` calls this, so a file a step would fail on is named before
    the run, not halfway through it.
    """
    loaders = [
        (cfg.imd_path, lambda p: load_imd(p, cfg.imd_edition)),
        (cfg.population_ethnicity, load_population_ethnicity),
        (cfg.population_age, load_population_age),
        (cfg.population_sex, load_population_sex),
        (cfg.lsoa_lookup, load_lsoa_lookup),
        (cfg.catchment_lsoa_file, load_lsoa_list),
    ]
    problems = []
    for path, loader in loaders:
        if path is None:
            continue
        try:
            loader(path)
        except ReferenceDataError as exc:
            problems.append(exc)
    return problems


def catchment_lsoas(imd: pd.DataFrame, lads: list[str]) -> pd.DataFrame:
    """The deprivation rows of the LSOAs in the given local authorities."""
    if not lads:
        return imd
    out = imd[imd["lad_code"].isin(lads)]
    if out.empty:
        raise ReferenceDataError("REF004", codes=", ".join(lads), path=imd.attrs.get("path", "?"))
    return out


def download_reference(
    dest: str | Path, which=("imd2019", "ts021", "ts007a", "ts008"), opener=urllib.request.urlopen
) -> dict[str, Path]:
    """Download official files into ``dest`` and check that each one parses.

    ``opener`` is the function that fetches a URL (``urllib.request.urlopen``); the
    tests pass one that serves local bytes, so the parsing is checked offline.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    done = {}
    for key in which:
        src = OFFICIAL_SOURCES[key]
        if not src.get("url"):
            log.warning(
                "No direct link is known for %s; download it from %s", src["title"], src["page"]
            )
            continue
        try:
            with opener(src["url"]) as response:
                data = response.read()
        except Exception as exc:  # network errors come in many types
            raise ReferenceDataError("REF003", url=src["url"], detail=str(exc)) from None
        if src["url"].endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                data = zf.read(src["member"])
        target = dest / src["filename"]
        target.write_bytes(data)
        loader = {
            "imd2019": load_imd,
            "ts021": load_population_ethnicity,
            "ts007a": load_population_age,
            "ts008": load_population_sex,
        }[key]
        loader(target)
        done[key] = target
        log.info("Downloaded %s to %s", src["title"], target)
    return done
