"""The service config: every setting validated up front, every problem reported at once."""

from pathlib import Path

import pytest
import yaml

from equity_helpers.config import load_config, resolve_path
from equity_helpers.errors import CATALOGUE, ConfigError, ConfigErrors

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"


def write(tmp_path, raw) -> Path:
    p = tmp_path / "cfg.yml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False) if isinstance(raw, dict) else raw)
    return p


def sample_raw() -> dict:
    raw = yaml.safe_load(SAMPLE_CFG.read_text())
    raw["extract"]["path"] = str(ROOT / "sample_data" / raw["extract"]["path"])
    for k in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        raw["reference"][k] = str(ROOT / "sample_data" / raw["reference"][k])
    raw.pop("readability")
    return raw


def test_sample_config_loads():
    cfg = load_config(SAMPLE_CFG)
    assert cfg.service_name.startswith("Derbyshire Long COVID")
    assert cfg.imd_edition == 2025
    assert len(cfg.catchment_lads) == 9
    assert cfg.disclosure.threshold == 7 and cfg.disclosure.rounding == 5
    assert cfg.extract_path.is_file() and cfg.imd_path.is_file()
    assert cfg.outcome_higher_is_better is False


def test_typo_in_a_key_suggests_the_right_one(tmp_path):
    raw = sample_raw()
    raw["colums"] = raw.pop("columns")
    with pytest.raises(ConfigErrors) as err:
        load_config(write(tmp_path, raw))
    text = str(err.value)
    assert "Unknown key 'colums' in the top level. Did you mean 'columns'?" in text
    # The missing columns are reported in the same message, not one at a time.
    assert "columns.referral_id" in text and "columns.ethnicity" in text


def test_typo_inside_a_section(tmp_path):
    raw = sample_raw()
    raw["disclosure"]["treshold"] = 7
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert "Did you mean 'threshold'?" in str(err.value)


@pytest.mark.parametrize("value", [-1, "seven", 101])
def test_invalid_threshold_names_the_key(tmp_path, value):
    raw = sample_raw()
    raw["disclosure"]["threshold"] = value
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert err.value.code == "CFG005"
    assert "disclosure.threshold" in str(err.value)


def test_missing_file_and_missing_config(tmp_path):
    raw = sample_raw()
    raw["extract"]["path"] = "nowhere.csv"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert err.value.code == "CFG006" and "extract.path" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "absent.yml")
    assert err.value.code == "CFG001"


def test_bad_yaml(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "service:\n  name: [unclosed\n"))
    assert err.value.code == "CFG002"


def test_todo_marks_are_listed(tmp_path):
    raw = sample_raw()
    raw["columns"]["ethnicity"] = "TODO"
    raw["values"]["sex"] = {"M": "TODO"}
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert err.value.code == "CFG007"
    assert "columns.ethnicity" in str(err.value) and "values.sex.M" in str(err.value)


def test_dates_and_period(tmp_path):
    raw = sample_raw()
    raw["period"] = {"start": "01/04/2025", "end": "2022-04-01"}
    raw["evaluation"]["change_date"] = "2030-01-01"
    with pytest.raises(ConfigErrors) as err:
        load_config(write(tmp_path, raw))
    codes = [e.code for e in err.value.errors]
    assert codes.count("CFG005") == 2
    assert "a start before the end" in str(err.value)


def test_bad_local_authority_code(tmp_path):
    raw = sample_raw()
    raw["catchment"]["local_authorities"] = ["Derby"]
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert "E06000015" in str(err.value)


def test_every_message_has_a_title_and_what_to_do():
    for code, m in CATALOGUE.items():
        assert m.kind in ("error", "warning", "exclusion"), code
        assert m.title and m.what_to_do.strip(), code


def test_resolve_path_looks_upwards(tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "cfg.yml").write_text("x: 1")
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert resolve_path("cfg.yml") == (tmp_path / "cfg.yml")


def test_a_disclosure_typo_is_reported_once(tmp_path):
    raw = sample_raw()
    raw["disclosure"]["roundng"] = 5
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert not isinstance(err.value, ConfigErrors)
    assert err.value.code == "CFG003" and "Did you mean 'rounding'?" in str(err.value)


def test_an_appointments_section_is_checked_whole(tmp_path):
    raw = sample_raw()
    raw["appointments"] = {
        "path": "no_such_file.csv",
        "columns": {"referral_id": "Ref", "when": "Date"},
        "values": {"attendance": "attended"},
    }
    with pytest.raises(ConfigErrors) as err:
        load_config(write(tmp_path, raw))
    found = {(e.code, e.fields.get("key")) for e in err.value.errors}
    assert ("CFG006", "appointments.path") in found
    assert ("CFG004", "appointments.columns.appointment_date") in found
    assert ("CFG004", "appointments.columns.attendance") in found
    assert ("CFG005", "appointments.values") in found
    assert any(e.code == "CFG003" and "'when'" in str(e) for e in err.value.errors)


def test_an_appointments_file_stands_in_for_the_counts(tmp_path):
    raw = sample_raw()
    for key in ("appointments_offered", "first_appointment_date"):
        raw["columns"].pop(key)
    raw["appointments"] = {
        "path": raw["extract"]["path"],
        "columns": {"referral_id": "Ref", "appointment_date": "Date", "attendance": "Status"},
        "values": {"attendance": {"Rebooked": "cancelled", "Gone": "TODO"}},
    }
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert "appointments.values.attendance.Gone" in str(err.value)
    raw["appointments"]["values"]["attendance"].pop("Gone")
    cfg = load_config(write(tmp_path, raw))
    assert cfg.has("appointments_offered") and cfg.has("first_appointment_date")
    assert cfg.appointments_values == {"Rebooked": "cancelled"}


def _appointments_raw(**changes) -> dict:
    raw = sample_raw()
    raw["appointments"] = {
        "path": str(ROOT / "sample_data" / "appointments_example" / "appointments.csv"),
        "columns": {
            "referral_id": "Referral Ref",
            "appointment_date": "Appointment Date",
            "attendance": "Attendance",
        },
    }
    raw["appointments"].update(changes)
    return raw


@pytest.mark.parametrize("where", ["extract", "appointments"])
def test_the_extract_and_appointments_columns_are_checked_alike(tmp_path, where):
    """The two column sections give the same messages, each naming its own file and keys."""
    raw = _appointments_raw()
    columns = raw["columns"] if where == "extract" else raw["appointments"]["columns"]
    section = "columns" if where == "extract" else "appointments.columns"
    file_words = "your extract" if where == "extract" else "the appointments file"
    columns["referral_date" if where == "extract" else "appointment_date"] = ""  # required
    columns["referral_id"] = "TODO: the referral column"
    columns["colour"] = "Colour"  # not a column the playbook knows
    with pytest.raises(ConfigErrors) as err:
        load_config(write(tmp_path, raw))
    found = {(e.code, e.fields.get("key")): str(e) for e in err.value.errors}
    missing = f"{section}.{'referral_date' if where == 'extract' else 'appointment_date'}"
    assert f"Name the column of {file_words} that holds the" in found[("CFG004", missing)]
    assert f"{section}.referral_id" in found[("CFG007", None)]
    assert ("CFG004", f"{section}.referral_id") not in found  # a TODO is said once
    assert any(e.code == "CFG003" and "'colour'" in str(e) for e in err.value.errors)

    # A section that is not a set of lines, and a header row that is not a row number.
    raw = _appointments_raw()
    if where == "extract":
        raw["columns"] = "Referral Ref"
        raw["extract"]["header_row"] = 0
    else:
        raw["appointments"]["columns"] = "Referral Ref"
        raw["appointments"]["header_row"] = 0
    with pytest.raises(ConfigErrors) as err:
        load_config(write(tmp_path, raw))
    found = {(e.code, e.fields.get("key")): str(e) for e in err.value.errors}
    assert "lines like" in found[("CFG005", section)]
    assert "a row number, 1 or more" in found[("CFG005", f"{where}.header_row")]


def test_a_values_heading_left_with_no_lines_maps_nothing(tmp_path):
    """init's notes say to delete a TODO line to count its value as invalid: deleting a
    field's only line leaves its heading with nothing under it, which must still load."""
    raw = sample_raw()
    text = yaml.safe_dump(raw, sort_keys=False)
    text = text.replace("values:\n", "values:\n  sex:\n", 1)
    cfg = load_config(write(tmp_path, text))
    assert "sex" not in cfg.values
    # A heading with something other than lines under it is still an error.
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text.replace("  sex:\n", "  sex: male\n", 1)))
    assert err.value.code == "CFG005" and "values.sex" in str(err.value)
