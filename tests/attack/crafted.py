"""Crafted extracts: small services built to tempt a workbook into disclosing someone.

Each builder writes an extract (CSV) and a service config into a folder and returns the
config's path. They start from the synthetic sample (its columns, codes and fictional
home areas with reference data) and change a few rows so that one small group sits where a
careless table, percentage or sentence would give it away.

The planted values are listed in :data:`PLANTED` so tests can say what each case is for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
SAMPLE_CONFIG = SAMPLE / "sample_service.yml"
SAMPLE_EXTRACT = SAMPLE / "long_covid_service_extract.csv"

#: The free-text label planted in the one-person category case.
LONE_LABEL = "Lone Religion 485 777 3456"
#: The religion of the one person with many appointments.
JEDI = "Jedi"


def sample_rows(n: int = 400, seed: int = 2024) -> pd.DataFrame:
    """``n`` rows of the sample extract, read as text, in their original order."""
    data = pd.read_csv(SAMPLE_EXTRACT, dtype=str, keep_default_na=False)
    return data.sample(n=n, random_state=seed).sort_index().reset_index(drop=True)


def write_case(folder: Path, name: str, data: pd.DataFrame) -> Path:
    """Write ``data`` and a config naming it (reference files from the sample) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text())
    cfg["service"]["name"] = f"Crafted {name} service"
    extract = folder / f"{name}.csv"
    data.to_csv(extract, index=False)
    cfg["extract"]["path"] = extract.name
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        cfg["reference"][key] = str(SAMPLE / cfg["reference"][key])
    for key in ("before", "after"):
        cfg["readability"][key] = str(SAMPLE / cfg["readability"][key])
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _first_clean_row(data: pd.DataFrame) -> int:
    """A row with a readable referral date, an accepted referral and a catchment home area."""
    dates = pd.to_datetime(data["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    ok = (
        dates.between("2022-04-01", "2025-03-31")
        & data["Referral Accepted"].eq("Y")
        & data["LSOA"].str.fullmatch(r"E019\d{5}")
        & data["Age at Referral"].str.fullmatch(r"\d{2}")
        & data["First Contact Date"].ne("")
    )
    return int(ok.to_numpy().nonzero()[0][0])


def build_small_service(folder: Path) -> Path:
    """(a) A 400-row service: every group is small and rounding matters everywhere."""
    return write_case(folder, "small", sample_rows())


def build_lone_category(folder: Path) -> Path:
    """(b) One person whose religion is a free-text label seen nowhere else."""
    data = sample_rows()
    data.loc[_first_clean_row(data), "Religion"] = LONE_LABEL
    return write_case(folder, "lone-category", data)


def build_jedi(folder: Path) -> Path:
    """(c) One person in a group of their own, offered 20 appointments and missing 15."""
    data = sample_rows()
    i = _first_clean_row(data)
    data.loc[i, "Religion"] = JEDI
    data.loc[i, ["Appts Offered", "Appts Attended", "Appts DNA"]] = ["20", "5", "15"]
    return write_case(folder, "many-appointments", data)


def build_one_hidden_group(folder: Path) -> Path:
    """(d) A field where only one group is hidden: everyone else shares one answer.

    Sexual orientation is recorded for everyone; one person is bisexual and everyone else
    is heterosexual, so the hidden group is exactly the total minus the one visible group.
    """
    data = sample_rows()
    data["Sexual Orientation"] = "Heterosexual or straight"
    data.loc[_first_clean_row(data), "Sexual Orientation"] = "Bisexual"
    return write_case(folder, "one-hidden-group", data)


def build_lone_month(folder: Path) -> Path:
    """(e) A month with one referral: the others of that month are moved a month earlier."""
    data = sample_rows()
    dates = pd.to_datetime(data["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    month = dates.dt.to_period("M") == pd.Period("2023-06", "M")
    keep = month[month].index[0]
    move = month & (data.index != keep)
    data.loc[move, "Date Referral Received"] = (dates[move] - pd.Timedelta(days=30)).dt.strftime(
        "%d/%m/%Y"
    )
    return write_case(folder, "lone-month", data)


def build_one_area(folder: Path) -> Path:
    """(f) Every person in a small group lives in the same home area.

    Small groups: each religion, sexual orientation, marital status and ethnic category
    value held by 1 to 7 people. Moving them all to one area makes that area's row a
    list of small groups.
    """
    data = sample_rows()
    small = pd.Series(False, index=data.index)
    for column in ("Religion", "Sexual Orientation", "Marital Status", "Ethnic Category"):
        counts = data[column].map(data[column].value_counts())
        small |= counts.between(1, 7) & data[column].ne("")
    area = data.loc[_first_clean_row(data), "LSOA"]
    data.loc[small, "LSOA"] = area
    return write_case(folder, "one-area", data)


#: The improvement in the outcome score of the one person in a group of their own.
LONE_SCORE = 50


def build_lone_score(folder: Path) -> Path:
    """(g) Few outcome scores, and one of them is the only Black person's, far from the rest.

    Only 30 people have a start and an end score. The one Black person in the extract is
    among them, with an improvement of :data:`LONE_SCORE` points; the other 29 are White.
    The table of mean improvement hides the Black group, so a mean for everyone beside it
    would give that one person's score away.
    """
    return write_case(folder, "lone-score", _plant_lone_score(sample_rows()))


def _plant_lone_score(data: pd.DataFrame) -> pd.DataFrame:
    """Plant the lone score of :func:`build_lone_score` in ``data`` (changed in place)."""
    black = data["Ethnic Category"].isin(["M", "N", "P"])
    data.loc[black, "Ethnic Category"] = "A"
    start = pd.to_numeric(data["C19-YRS Start"], errors="coerce")
    end = pd.to_numeric(data["C19-YRS End"], errors="coerce")
    scored = data.index[start.notna() & end.notna()]
    lone = _first_clean_row(data)
    keep = [lone, *[i for i in scored if i != lone][:29]]
    data.loc[~data.index.isin(keep), "C19-YRS End"] = ""
    data.loc[keep, "Ethnic Category"] = "A"
    data.loc[lone, "Ethnic Category"] = "N"
    data.loc[lone, ["C19-YRS Start", "C19-YRS End"]] = ["60", str(60 - LONE_SCORE)]
    return data


#: The wait in days of the one Black person in the lone-wait case: shorter than anyone's.
LONE_WAIT = 1


def build_lone_wait(folder: Path) -> Path:
    """(h) One Black person's wait, beside a field whose one group is everyone.

    Everyone lives in the same home area, so the deprivation field has one group: its
    median wait is everyone's. Everyone but one person is White; the one Black person
    waited :data:`LONE_WAIT` days and every other wait is a different number of days, so
    the White median (everyone but them) differs from everyone's and would tell on which
    side the Black person lies. The gaps step's table of waits is attacked on its own
    (``test_crafted.py``); the whole workbook is attacked as part of the lone-score case
    (:func:`build_lone_score_and_wait`), which plants the same wait.
    """
    return write_case(folder, "lone-wait", _plant_lone_wait(sample_rows()))


def _plant_lone_wait(data: pd.DataFrame) -> pd.DataFrame:
    """Plant the lone wait of :func:`build_lone_wait` in ``data`` (changed in place)."""
    lone = _first_clean_row(data)
    data["LSOA"] = data.loc[lone, "LSOA"]
    data["Ethnic Category"] = "A"
    data.loc[lone, "Ethnic Category"] = "N"
    referred = pd.to_datetime(data["Date Referral Received"], format="%d/%m/%Y", errors="coerce")
    seen = data["First Contact Date"].ne("") & referred.notna()
    days = pd.Series(range(len(data)), index=data.index) + LONE_WAIT + 1
    days[lone] = LONE_WAIT
    first = referred + pd.to_timedelta(days, unit="D")
    data.loc[seen, "First Contact Date"] = first[seen].dt.strftime("%d/%m/%Y")
    return data


def build_lone_score_and_wait(folder: Path) -> Path:
    """(g) and (h) in one extract: the one Black person's outcome score and wait.

    The lone score (:func:`build_lone_score`) and the lone wait (:func:`build_lone_wait`)
    are planted on the same person, so one workbook is attacked for both; with everyone
    in one home area, the deprivation field's one group also gives everyone's mean score.
    """
    return write_case(folder, "lone-score", _plant_lone_wait(_plant_lone_score(sample_rows())))


def build_sample(folder: Path) -> Path:
    """The sample service itself (its own config and extract)."""
    return SAMPLE_CONFIG


#: Every crafted case: name -> (builder, what it tempts the workbook to leak).
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "small": (build_small_service, "a 400-row service"),
    "lone-category": (build_lone_category, f"a one-person category {LONE_LABEL!r}"),
    # The case's name must not contain the planted label, or the service's own name (on
    # every page and in every path) would look like a leak.
    "many-appointments": (build_jedi, "a one-person group offered 20 appointments, missing 15"),
    "one-hidden-group": (build_one_hidden_group, "a field where only one group is hidden"),
    "lone-month": (build_lone_month, "a month with one referral"),
    "one-area": (build_one_area, "every small group in one home area"),
    "lone-score": (
        build_lone_score_and_wait,
        "one person's outcome score and wait beside figures for everyone",
    ),
    "sample": (build_sample, "the synthetic sample service"),
}


def build_workbook(name: str, folder: Path, steps: list[str] | None = None) -> tuple[Path, Path]:
    """Write case ``name`` into ``folder`` and build its workbook there.

    Returns the published workbook folder (``<out>/<slug>``) and the case's config.
    """
    from equity_helpers.workbook import run_workbook

    folder = Path(folder)
    config = CASES[name][0](folder / "input")
    result = run_workbook(config, folder / "workbooks", steps=steps, jobs=2, force=True)
    return result.out_dir, config


def build_workbooks(names: list[str], folder: Path, runs: int = 2) -> dict[str, tuple[Path, Path]]:
    """Write the cases ``names`` into ``folder`` and build all their workbooks at once.

    The cases are shared out between ``runs`` runs of ``equity-workbook run`` started side
    by side, each building its services in turn, so a second core builds while the first
    waits. Returns ``{name: (published workbook folder, config)}``; a case whose workbook
    was not built has no ``manifest.json`` there, and the runs' output says why.
    """
    import subprocess
    import sys

    from equity_helpers.config import load_config
    from equity_helpers.workbook import slugify

    folder = Path(folder)
    out = folder / "workbooks"
    configs = {name: CASES[name][0](folder / "input" / name) for name in names}
    cli = Path(sys.executable).with_name("equity-workbook")
    procs = []
    for i in range(runs):
        share = [str(configs[name]) for name in names[i::runs]]
        if not share:
            continue
        cmd = [str(cli), "run", "--out", str(out), "--jobs", "2", "--force"]
        for config in share:
            cmd += ["--config", config]
        log = (folder / f"run-{i}.log").open("w")
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), log))
    for proc, log in procs:
        proc.wait()
        log.close()
    return {
        name: (out / slugify(load_config(config).service_name), config)
        for name, config in configs.items()
    }
