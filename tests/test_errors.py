"""One catalogue, one error hierarchy: every code is raised or reported somewhere, and every
error the package raises for a person to fix is a PlaybookError with a catalogue code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

import equity_helpers
from equity_helpers.errors import CATALOGUE, PlaybookError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "equity_helpers"
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"


def _package_source_without_the_catalogue() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted(PACKAGE.rglob("*.py"))
        if p != PACKAGE / "errors.py"
    )


def test_every_catalogue_code_is_used_by_the_package():
    """A code that nothing raises or reports is documented for a situation that never comes."""
    source = _package_source_without_the_catalogue()
    unused = [code for code in CATALOGUE if not re.search(rf"\b{code}\b", source)]
    assert not unused, f"catalogue codes nothing raises or reports: {unused}"


def _package_exceptions() -> list[type]:
    found = {}
    for info in pkgutil.walk_packages(equity_helpers.__path__, "equity_helpers."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("equity_helpers"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_every_error_of_the_package_is_a_playbook_error():
    classes = _package_exceptions()
    names = {c.__name__ for c in classes}
    # The guard: the walk does find the errors defined outside errors.py.
    assert {"DisclosureError", "DisclosureLeakError", "ReadabilityInputError"} <= names
    strays = [c.__name__ for c in classes if not issubclass(c, PlaybookError)]
    assert not strays, f"errors outside the PlaybookError hierarchy: {strays}"


def _check_message(error: PlaybookError, code: str) -> None:
    assert error.code == code
    assert str(error).startswith(f"{CATALOGUE[code].title} [{code}]"), str(error)
    assert "What to do:" in str(error)


def test_disclosure_errors_carry_catalogue_codes(tmp_path):
    from equity_helpers.privacy import (
        DisclosureConfigError,
        DisclosureInputError,
        DisclosureLeakError,
        DisclosureRule,
        control_counts,
        export_table,
    )

    with pytest.raises(DisclosureConfigError) as err:
        DisclosureRule.from_config({"rounding": 0})
    _check_message(err.value, "CFG005")
    assert (err.value.key, err.value.value) == ("disclosure.rounding", 0)
    assert "'disclosure.rounding' is 0, which is not allowed." in str(err.value)

    with pytest.raises(DisclosureInputError) as err:
        control_counts([-1, 3], DisclosureRule())
    _check_message(err.value, "DSC001")
    assert "negative" in err.value.detail and err.value.detail in str(err.value)

    raw = pd.DataFrame({"quintile": [1, 2], "n": [3, 40]})
    with pytest.raises(DisclosureLeakError) as err:
        export_table(
            raw,
            tmp_path / "a.csv",
            tmp_path / "a.xlsx",
            DisclosureRule(),
            "Raw",
            small_counts="raise",
        )
    _check_message(err.value, "DSC002")
    assert "Raw still holds" in err.value.detail
    # Still the kinds of error callers caught before.
    assert isinstance(err.value, equity_helpers.privacy.DisclosureError)


def test_a_folder_of_letters_that_cannot_be_read_is_rdb001(tmp_path):
    from equity_helpers.readability import ReadabilityInputError, read_folder

    with pytest.raises(ReadabilityInputError) as err:
        read_folder(tmp_path / "nowhere")
    _check_message(err.value, "RDB001")
    assert "The folder of letters" in err.value.detail and "nowhere" in err.value.detail
    assert isinstance(err.value, ValueError)


def test_the_readability_step_names_the_code_when_letters_cannot_be_read(tmp_path):
    from equity_helpers import open_service
    from equity_helpers.steps import readability

    raw = yaml.safe_load(SAMPLE_CFG.read_text(encoding="utf-8"))
    base = SAMPLE_CFG.parent
    raw["extract"]["path"] = str(base / raw["extract"]["path"])
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        raw["reference"][key] = str(base / raw["reference"][key])
    (tmp_path / "empty").mkdir()
    raw["readability"] = {"before": str(tmp_path / "empty")}
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    result = readability.run(open_service(str(path)))
    notice = result.texts["notice"]
    assert "There are no letters to score yet." in notice
    assert "has no documents to score" in notice and "RDB001" in notice
    # The page gets the detail and the code, not the whole multi-line message.
    assert "What to do:" not in notice


def _config(tmp_path, disclosure: dict | None) -> Path:
    raw = yaml.safe_load(SAMPLE_CFG.read_text(encoding="utf-8"))
    base = SAMPLE_CFG.parent
    raw["extract"]["path"] = str(base / raw["extract"]["path"])
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        raw["reference"][key] = str(base / raw["reference"][key])
    raw.pop("readability")
    if disclosure is not None:
        raw["disclosure"] = disclosure
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _check(config: Path, capsys) -> tuple[int, str]:
    """`equity-workbook check CONFIG`: its exit status and what it prints."""
    from equity_helpers.cli import main

    status = main(["check", str(config)])
    return status, capsys.readouterr().out


@pytest.mark.parametrize(
    ("disclosure", "words"),
    [
        ({"threshold": 3, "rounding": 5}, "weaker than NHS England's rule"),
        ({"enabled": False}, "disclosure control is OFF"),
    ],
    ids=["relaxed", "off"],
)
def test_check_warns_when_disclosure_is_relaxed_or_off(tmp_path, capsys, disclosure, words):
    status, report = _check(_config(tmp_path, disclosure), capsys)
    assert status == 0  # a warning: it does not stop the run
    assert report.startswith("Ready to run.")
    assert f"{CATALOGUE['CFG008'].title} [CFG008]" in report and words in report


def test_check_is_quiet_about_the_nhs_rule(tmp_path, capsys):
    status, report = _check(_config(tmp_path, None), capsys)
    assert status == 0 and report.startswith("Ready to run.")
    assert "CFG008" not in report
