"""NHS code normalisation, checked against the data dictionary's own lists."""

import pandas as pd

from equity_helpers import codes


def test_every_ethnic_category_code_and_label_maps_to_itself():
    s = pd.Series(list(codes.ETHNIC_CATEGORIES))
    assert codes.normalise_ethnicity(s).tolist() == list(codes.ETHNIC_CATEGORIES)
    labels = pd.Series(list(codes.ETHNIC_CATEGORIES.values()))
    assert codes.normalise_ethnicity(labels).tolist() == list(codes.ETHNIC_CATEGORIES)


def test_ethnicity_letters_not_on_the_list_are_invalid():
    # I, O and Q are not NHS ethnic category codes.
    assert codes.normalise_ethnicity(pd.Series(["I", "O", "Q", "W"])).eq("Invalid").all()


def test_service_mapping_wins_over_built_in_labels():
    got = codes.normalise_ethnicity(pd.Series(["Other", "WB"]), {"Other": "Z", "WB": "A"})
    assert got.tolist() == ["Z", "A"]


def test_broad_groups_follow_the_census():
    got = codes.broad_ethnic_group(pd.Series(["A", "D", "H", "M", "R", "Z", "99"]))
    assert got.tolist() == ["White", "Mixed", "Asian", "Black", "Other", "Not stated", "Not known"]


def test_sex_codes():
    got = codes.normalise_sex(pd.Series(["1", "2", "9", "X", "Male", "F", "", "7"]))
    assert got.tolist() == ["1", "2", "9", "X", "1", "2", "X", "Invalid"]


def test_age_bands_boundaries():
    ages = pd.Series([0, 4, 5, 15, 16, 24, 25, 64, 65, 89, 90, 120, None])
    assert codes.age_to_band(ages).tolist()[:4] == ["0-4", "0-4", "5-9", "15-19"]
    assert codes.age_to_census_group(ages).tolist() == [
        "0-15",
        "0-15",
        "0-15",
        "0-15",
        "16-24",
        "16-24",
        "25-34",
        "50-64",
        "65+",
        "65+",
        "65+",
        "65+",
        "Unknown",
    ]
    assert codes.band_to_census_group(pd.Series(["35-39", "Unknown"])).tolist() == [
        "35-49",
        "Unknown",
    ]


def test_yes_no_and_discharge_reasons():
    assert codes.normalise_yes_no(pd.Series(["Y", "no", "TRUE", "", "maybe"])).tolist()[:3] == [
        "Yes",
        "No",
        "Yes",
    ]
    reasons = codes.normalise_discharge_reason(
        pd.Series(["Completed", "Did not attend", "", "lost"])
    )
    assert reasons.tolist()[:2] == ["completed", "dna_discharge"]
    assert reasons.isna().iloc[2] and reasons.iloc[3] == "Invalid"


def test_lsoa_format():
    got = codes.lsoa_format_ok(pd.Series(["E01013453", "e01013453", "E0101345", "W01000001", None]))
    assert got.tolist() == [True, True, False, False, False]


def test_ethnicity_written_as_code_and_label():
    values = pd.Series(
        [
            "A - White - British",
            "White - British (A)",
            "H - Asian or Asian British - Indian",
            "(J) Pakistani",
            "99 - Not known",
            "Asian",  # a word starting with a code letter is not a code
            "African",
        ]
    )
    got = codes.normalise_ethnicity(values).tolist()
    assert got == ["A", "A", "H", "J", "99", "Invalid", "N"]


def test_a_service_mapping_wins_over_a_combined_code():
    got = codes.normalise_ethnicity(pd.Series(["A - Other"]), {"A - Other": "S"})
    assert got.tolist() == ["S"]


def test_gender_identity_in_words():
    values = pd.Series(
        ["Non-binary", "Not stated", "Female (including trans woman)", "Prefer not to say"]
    )
    assert codes.normalise_sex(values).tolist() == ["9", "X", "2", "X"]


def test_attendance_codes_and_words():
    values = pd.Series(["5", "6", "2", "4", "3", "7", "Seen", "DNA", "Patient cancelled", "1", ""])
    got = codes.normalise_attendance(values).tolist()
    assert got[:9] == ["attended", "attended", "cancelled", "cancelled", "missed", "missed",
                       "attended", "missed", "cancelled"]  # fmt: skip
    assert got[9] == codes.INVALID and pd.isna(got[10])
