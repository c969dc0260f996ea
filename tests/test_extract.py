"""The loader: every format and encoding, the row account, and each class of bad value."""

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from equity_helpers.config import load_config
from equity_helpers.errors import ExtractError
from equity_helpers.extract import parse_dates, prepare, read_extract, read_prepared, write_prepared

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="module")
def sample_raw():
    return pd.read_csv(SAMPLE / "long_covid_service_extract.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def sample():
    return prepare(load_config(SAMPLE / "sample_service.yml"))


def config_for(tmp_path: Path, extract: Path, **changes) -> Path:
    """A copy of the sample config pointing at another extract, with absolute paths."""
    raw = yaml.safe_load((SAMPLE / "sample_service.yml").read_text())
    raw["extract"] = {"path": str(extract)}
    for key in ("imd_path", "population_ethnicity", "population_age", "population_sex"):
        raw["reference"][key] = str(SAMPLE / raw["reference"][key])
    raw.pop("readability", None)
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            raw.setdefault(section, {})[key] = value
        else:
            raw[section] = value
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_sample_row_account_adds_up(sample, sample_raw):
    acc = sample.account
    assert acc.rows_read == len(sample_raw)
    assert acc.adds_up()
    assert acc.rows_used == len(sample.data)
    table = acc.table()
    assert table["Rows"].iloc[0] == acc.rows_read and table["Rows"].iloc[-1] == acc.rows_used


def _uk_dates(s):
    return pd.to_datetime(s, format="%d/%m/%Y", errors="coerce")


def test_each_class_of_bad_value_in_the_sample_is_reported(sample, sample_raw):
    """Counts are recomputed here from the raw CSV, independently of the loader."""
    raw = sample_raw
    ref = _uk_dates(raw["Date Referral Received"])
    blank_id = raw["Referral Ref"].eq("")
    bad_date = ~blank_id & ref.isna()
    future = ~blank_id & ~bad_date & (ref > pd.Timestamp(dt.date.today()))
    outside = ~blank_id & ~bad_date & ~future & ((ref < "2022-04-01") | (ref > "2025-03-31"))
    kept = ~(blank_id | bad_date | future | outside)
    expected_excluded = {
        "EXC001": blank_id.sum(),
        "EXC002": bad_date.sum(),
        "EXC003": future.sum(),
        "EXC004": outside.sum(),
    }
    assert sample.account.excluded == {k: int(v) for k, v in expected_excluded.items() if v}

    age = pd.to_numeric(raw["Age at Referral"], errors="coerce")
    assert sample.issue("VAL002").count == int((kept & ((age < 0) | (age > 120))).sum())
    valid_eth = set("ABCDEFGHJKLMNPRS") | {"Z", "99", ""}
    assert sample.issue("VAL001", "Ethnic Category").count == int(
        (kept & ~raw["Ethnic Category"].isin(valid_eth)).sum()
    )
    assert sample.issue("VAL001", "Gender").count == int(
        (kept & ~raw["Gender"].isin(["1", "2", "9", "X", ""])).sum()
    )
    first = _uk_dates(raw["First Contact Date"])
    assert sample.issue("VAL004", "First Contact Date").count == int((kept & (first < ref)).sum())
    dis = _uk_dates(raw["Discharge Date"])
    assert sample.issue("VAL004", "Discharge Date").count == int((kept & (dis < ref)).sum())
    off, att, dna = (
        pd.to_numeric(raw[c]) for c in ("Appts Offered", "Appts Attended", "Appts DNA")
    )
    assert sample.issue("VAL008").count == int((kept & (att + dna > off)).sum())
    lsoa = raw["LSOA"]
    fmt_ok = lsoa.str.fullmatch(r"E01\d{6}")
    assert sample.issue("VAL005").count == int((kept & ~fmt_ok & lsoa.ne("")).sum())
    imd = pd.read_csv(
        SAMPLE / "reference" / "imd2025_file7_synthetic.csv", dtype=str, encoding="utf-8-sig"
    )
    inside = imd.loc[imd.iloc[:, 2].str.match(r"E0(6000015|700003[2-9])"), imd.columns[0]]
    outside_area = fmt_ok & ~lsoa.isin(inside) & lsoa.isin(imd.iloc[:, 0])
    assert sample.issue("VAL006").count == int((kept & outside_area).sum())
    # Every issue names its column, rows as a spreadsheet counts them, and an example.
    for issue in sample.issues:
        assert issue.rows and min(issue.rows) >= 2
        assert "rows" in issue.message and "What to do" in issue.message


def test_identifiers_are_dropped_and_never_carried(sample):
    assert set(sample.dropped_identifiers) == {
        "NHS Number",
        "Patient Name",
        "Date of Birth",
        "Postcode",
    }
    text = " ".join(sample.data.columns)
    assert "referral_id" not in sample.data.columns
    for word in ("nhs", "name", "birth", "postcode"):
        assert word not in text.lower()


def test_derived_columns(sample):
    d = sample.data
    assert set(d["ethnic_group"].dropna()) <= {
        "Asian",
        "Black",
        "Mixed",
        "White",
        "Other",
        "Not stated",
        "Not known",
        "Invalid",
    }
    assert (
        d["core20"]
        .fillna(False)
        .astype(bool)
        .eq(d["imd_decile"].le(2).fillna(False).astype(bool))
        .all()
    )
    ok = d["wait_days"].notna()
    assert (d.loc[ok, "wait_days"] >= 0).all()
    assert d["dropped_out"].sum() > 0 and d["completed"].sum() > 0


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_csv_encodings_and_delimiters(tmp_path, sample_raw, encoding, sep):
    small = sample_raw.head(40).copy()
    small.loc[small.index[0], "Religion"] = "Café Église"  # accented text survives every encoding
    path = tmp_path / "extract.csv"
    small.to_csv(path, index=False, sep=sep, encoding=encoding)
    got, info = read_extract(path)
    assert list(got.columns) == list(small.columns)
    assert got["Religion"].iloc[0] == "Café Église"
    assert info["delimiter"] == sep
    assert len(got) == 40


def test_excel_with_title_rows(tmp_path, sample_raw):
    small = sample_raw.head(30)
    path = tmp_path / "extract.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame([["Long COVID service referrals"], ["Exported 01/04/2025"], [""]]).to_excel(
            xl, index=False, header=False
        )
        small.to_excel(xl, index=False, startrow=3)
    cfg = load_config(config_for(tmp_path, path))
    prepared = prepare(cfg)
    assert prepared.account.rows_read == 30
    # Row numbers follow the sheet: the header is on row 4, so the first data row is 5.
    assert all(r >= 5 for i in prepared.issues for r in i.rows)


def test_parquet_extract(tmp_path, sample_raw):
    path = tmp_path / "extract.parquet"
    sample_raw.head(50).to_parquet(path)
    prepared = prepare(load_config(config_for(tmp_path, path)))
    assert prepared.account.rows_read == 50 and prepared.account.adds_up()


def test_prepared_file_round_trip(tmp_path, sample):
    path = write_prepared(sample, tmp_path / "p.parquet", extra={"fingerprint": "abc"})
    data, meta = read_prepared(path, columns=["age_band", "imd_decile", "not_a_column"])
    assert list(data.columns) == ["age_band", "imd_decile"]
    assert meta["account"]["rows_used"] == len(sample.data)
    assert meta["fingerprint"] == "abc"
    assert not list(tmp_path.glob("*.tmp"))


def test_duplicate_ids_stop_the_run(tmp_path, sample_raw):
    small = sample_raw.head(10).copy()
    small.loc[small.index[7], "Referral Ref"] = small["Referral Ref"].iloc[2]
    path = tmp_path / "dups.csv"
    small.to_csv(path, index=False)
    with pytest.raises(ExtractError) as err:
        prepare(load_config(config_for(tmp_path, path)))
    assert err.value.code == "EXT007"
    assert err.value.rows == [4, 9]
    assert "Referral Ref" in str(err.value) and "rows 4, 9" in str(err.value)


def test_missing_column_lists_found_and_closest(tmp_path, sample_raw):
    path = tmp_path / "renamed.csv"
    sample_raw.head(5).rename(columns={"Ethnic Category": "Ethnic Categry"}).to_csv(
        path, index=False
    )
    with pytest.raises(ExtractError) as err:
        prepare(load_config(config_for(tmp_path, path)))
    msg = str(err.value)
    assert err.value.code == "EXT004"
    assert "'Ethnic Category' (for ethnicity) might be 'Ethnic Categry'" in msg
    assert "Columns found:" in msg and "'Referral Ref'" in msg


def test_lsoa_2011_codes_are_matched_through_the_lookup(tmp_path, reference_dir, sample_raw):
    lookup = reference_dir / "lookups" / "lsoa11_lsoa21_lad22_lookup_derby_derbyshire.csv"
    lk = pd.read_csv(lookup, dtype=str)
    split = lk[lk["chgind"] == "S"].drop_duplicates("lsoa11cd").head(2)
    same = lk[lk["chgind"] == "U"].head(3)
    # A small IMD 2025 file holding the 2021 codes of these areas.
    imd = tmp_path / "imd.csv"
    codes21 = (
        pd.concat([split, same])["lsoa21cd"].tolist()
        + lk[lk["lsoa11cd"].isin(split["lsoa11cd"])]["lsoa21cd"].tolist()
    )
    pd.DataFrame(
        {"lsoa21cd": sorted(set(codes21)), "lad24cd": "E06000015", "imd_rank": 100, "imd_decile": 1}
    ).to_csv(imd, index=False)
    small = sample_raw.head(5).copy()
    small["LSOA"] = pd.concat([split, same])["lsoa11cd"].tolist()
    small["Date Referral Received"] = "01/06/2023"
    path = tmp_path / "lsoa11.csv"
    small.to_csv(path, index=False)
    no_lookup = prepare(load_config(config_for(tmp_path, path, reference__imd_path=str(imd))))
    unmatched = no_lookup.issue("VAL007")
    assert unmatched is not None and unmatched.count == 2
    assert "reference.lsoa_lookup" in unmatched.message
    cfg = config_for(
        tmp_path, path, reference__imd_path=str(imd), reference__lsoa_lookup=str(lookup)
    )
    converted = prepare(load_config(cfg))
    assert converted.issue("VAL007") is None
    assert converted.issue("VAL011").count == 2
    assert "2 of them are in areas that were split" in converted.issue("VAL011").message
    assert converted.data["imd_decile"].eq(1).all()


def test_parse_dates_uk_and_iso():
    got = parse_dates(
        pd.Series(["31/01/2024", "2024-02-01", "31/02/2024", "", None, "2024-03-05 00:00:00"])
    )
    assert got.iloc[0] == pd.Timestamp("2024-01-31")
    assert got.iloc[1] == pd.Timestamp("2024-02-01")
    assert got.iloc[2:5].isna().all()
    assert got.iloc[5] == pd.Timestamp("2024-03-05")


def test_no_rows_left_is_an_error(tmp_path, sample_raw):
    small = sample_raw.head(5).copy()
    small["Date Referral Received"] = "01/01/2019"
    path = tmp_path / "old.csv"
    small.to_csv(path, index=False)
    with pytest.raises(ExtractError) as err:
        prepare(load_config(config_for(tmp_path, path)))
    assert err.value.code == "EXT010"
    assert "outside the analysis period" in str(err.value)


def test_sample_file_is_copied_not_modified(tmp_path):
    # The loader never writes beside the extract.
    before = sorted(p.name for p in SAMPLE.iterdir())
    shutil.copy(SAMPLE / "long_covid_service_extract.csv", tmp_path / "x.csv")
    prepare(load_config(config_for(tmp_path, tmp_path / "x.csv")))
    assert sorted(p.name for p in SAMPLE.iterdir()) == before
    assert np.array_equal(sorted(p.name for p in tmp_path.iterdir()), ["service.yml", "x.csv"])


# ----------------------------------------------------------------------------- appointments

EXAMPLE = SAMPLE / "appointments_example"


def test_the_appointments_example_agrees_with_the_sample(sample_raw, sample):
    """The worked example's counts, derived from its appointments, are the sample's own."""
    import sys

    sys.path.insert(0, str(SAMPLE))
    import make_appointments

    for name, table in make_appointments.build().items():  # the stored files are current
        stored = pd.read_csv(EXAMPLE / name, dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(stored, table.reset_index(drop=True).astype(str))
    prepared = prepare(load_config(EXAMPLE / "service.yml"))
    assert prepared.appointments["rows_read"] == prepared.appointments["rows_used"]
    head = sample_raw.head(make_appointments.N_REFERRALS)
    counts = head[["Appts Offered", "Appts Attended", "Appts DNA"]].apply(pd.to_numeric)
    ok = counts["Appts Offered"] >= counts["Appts Attended"] + counts["Appts DNA"]
    for column, source in (
        ("appointments_offered", "Appts Offered"),
        ("appointments_attended", "Appts Attended"),
        ("appointments_dna", "Appts DNA"),
    ):
        assert prepared.data[column].sum() == counts.loc[ok, source].sum(), column
    # Each referral's columns are those the sample's referral file gives it.
    own = sample.data.head(len(prepared.data))  # the sample prepared once for the module
    assert prepared.account.rows_used == make_appointments.N_REFERRALS
    whole = own["appointments_offered"].notna().to_numpy()
    for column in (
        "appointments_offered",
        "appointments_attended",
        "appointments_dna",
        "first_appointment_date",
        "wait_days",
    ):
        pd.testing.assert_series_equal(
            prepared.data[column][whole], own[column][whole], check_dtype=False
        )
    # The DNA rate the steps read is the sample's own.
    data = prepared.data
    rate = data["appointments_dna"].sum() / data["appointments_offered"].sum()
    assert rate == counts.loc[ok, "Appts DNA"].sum() / counts.loc[ok, "Appts Offered"].sum()


def _appointments_config(tmp_path: Path, rows: list[tuple], **values) -> Path:
    referrals = tmp_path / "referrals.csv"
    pd.DataFrame(
        {
            "Referral Ref": ["R1", "R2"],
            "Date Referral Received": ["01/06/2023", "02/06/2023"],
            "Age at Referral": ["40", "50"],
            "Gender": ["1", "2"],
            "Ethnic Category": ["A", "H"],
        }
    ).to_csv(referrals, index=False)
    appts = tmp_path / "appts.csv"
    pd.DataFrame(rows, columns=["Ref", "When", "Status"]).to_csv(appts, index=False)
    cfg = config_for(
        tmp_path,
        referrals,
        columns={
            "referral_id": "Referral Ref",
            "referral_date": "Date Referral Received",
            "age": "Age at Referral",
            "sex": "Gender",
            "ethnicity": "Ethnic Category",
        },
        appointments={
            "path": str(appts),
            "columns": {"referral_id": "Ref", "appointment_date": "When", "attendance": "Status"},
            **({"values": {"attendance": values}} if values else {}),
        },
    )
    return cfg


def test_every_appointment_row_is_accounted_for(tmp_path):
    cfg = _appointments_config(
        tmp_path,
        [
            ("R1", "05/06/2023 09:30", "5 - Attended on time"),
            ("R1", "12/06/2023 09:30", "Did not attend"),
            ("R1", "12/06/2023 09:30", "Did not attend"),  # the same row twice
            ("R2", "not a date", "Seen"),
            ("R2", "45090", "Rebooked"),  # 2023-06-12 as an Excel serial day
            ("R3", "05/06/2023", "5"),  # no such referral
            ("", "05/06/2023", "5"),  # no referral ID
        ],
    )
    prepared = prepare(load_config(cfg))
    a = prepared.appointments
    assert a["rows_read"] == 7 and a["rows_used"] == 3
    assert a["excluded"] == {"APP001": 2, "APP002": 1, "APP003": 1}
    assert prepared.issue("APP001").rows == [7, 8]
    assert prepared.issue("APP002").example == "Rebooked"
    assert "'Status' in appts.csv" in prepared.issue("APP002").message
    assert prepared.issue("APP003").rows == [4]
    assert prepared.issue("APP004").rows == [5] and prepared.issue("APP004").example == "not a date"
    data = prepared.data
    assert data["appointments_offered"].tolist() == [2, 1]
    assert data["appointments_attended"].tolist() == [1, 1]
    assert data["appointments_dna"].tolist() == [1, 0]
    # R2's only attended appointment has no readable date: no first contact.
    assert data["first_appointment_date"].iloc[0] == pd.Timestamp("2023-06-05")
    assert pd.isna(data["first_appointment_date"].iloc[1])


def test_a_mapped_attendance_value_is_counted(tmp_path):
    rows = [("R1", "05/06/2023", "Rebooked"), ("R2", "05/06/2023", "Rebooked")]
    prepared = prepare(load_config(_appointments_config(tmp_path, rows, Rebooked="cancelled")))
    assert prepared.issue("APP002") is None
    assert prepared.data["appointments_offered"].tolist() == [1, 1]
    assert prepared.data["appointments_attended"].tolist() == [0, 0]


def test_an_attendance_mapping_must_name_an_outcome(tmp_path):
    from equity_helpers.errors import ConfigError

    rows = [("R1", "05/06/2023", "Rebooked")]
    with pytest.raises(ConfigError) as err:
        load_config(_appointments_config(tmp_path, rows, Rebooked="moved"))
    assert "appointments.values.attendance.Rebooked" in str(err.value)
    assert "attended, cancelled, missed" in str(err.value)


# ----------------------------------------------------------------------------- value shapes


def test_footer_lines_are_told_from_data():
    from equity_helpers.extract import footer_count

    data = [["R1", "01/02/2024", "A", "E01000001"], ["R2", "02/02/2024", "B", ""]]
    assert footer_count(data, 4) == 0
    assert footer_count(data + [["Total records: 2"]], 4) == 1
    footer = [["Total", "2", "", ""], ["Report run 01/12/2026 by someone"], [], ["Notes, see"]]
    assert footer_count(data + footer, 4) == 4
    # A last row with only an ID is data, not a footer.
    assert footer_count(data + [["R3", "", "", ""]], 4) == 0


def test_dates_in_the_shapes_systems_write_them():
    got = parse_dates(
        pd.Series(["27/11/2024 14:32", "2024-11-27T14:32:00", "45623", "45623.5", "12345678"])
    )
    assert got.iloc[0] == pd.Timestamp("2024-11-27 14:32")
    assert got.iloc[1] == pd.Timestamp("2024-11-27 14:32")
    assert got.iloc[2] == pd.Timestamp("2024-11-27")
    assert got.iloc[3] == pd.Timestamp("2024-11-27 12:00")
    assert pd.isna(got.iloc[4])


def test_nhs_numbers_are_known_by_their_values(tmp_path, sample_raw):
    from equity_helpers.extract import holds_nhs_numbers

    assert holds_nhs_numbers(pd.Series(["943 476 5919", "9434765870", "943-476-5919"]))
    assert not holds_nhs_numbers(pd.Series(["LC100000", "45623", "E01000001"]))
    small = sample_raw.head(5).rename(columns={"NHS Number": "Ref 2"})
    small["Free Text Comments"] = "seen at home"
    path = tmp_path / "renamed.csv"
    small.to_csv(path, index=False)
    prepared = prepare(load_config(config_for(tmp_path, path)))
    assert "Ref 2" in prepared.dropped_identifiers
    assert prepared.free_text == ["Free Text Comments"]


def test_a_last_value_with_a_line_break_is_not_taken_for_a_footer(tmp_path, sample_raw):
    small = sample_raw.head(3).copy()
    small["Discharge Reason"] = ["Completed", "Completed", "Other"]
    small["Religion"] = ["", "", "first line\nsecond line"]
    small = small[[c for c in small.columns if c != "Religion"] + ["Religion"]]  # last
    path = tmp_path / "quoted.csv"
    small.to_csv(path, index=False)
    text = path.read_text()
    path.write_text(text + "Total records: 3\n")
    prepared = prepare(load_config(config_for(tmp_path, path)))
    assert prepared.account.rows_read == 3
    assert prepared.data["religion"].iloc[2] == "first line\nsecond line"
    assert prepared.issue("EXT014").rows == [6]
