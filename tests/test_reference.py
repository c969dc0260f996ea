"""The reference loaders read the real official files (kept beside the repo) correctly."""

import io
import zipfile

import pandas as pd
import pytest

from equity_helpers.errors import ReferenceDataError
from equity_helpers.reference import (
    catchment_lsoas,
    download_reference,
    load_imd,
    load_lsoa_lookup,
    load_population_age,
    load_population_ethnicity,
    load_population_sex,
)

DD_LADS = ["E06000015"] + [f"E0700003{i}" for i in range(2, 10)]


def test_imd2019_file1_official_layout(reference_dir):
    imd = load_imd(
        reference_dir / "imd2019" / "File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv.gz"
    )
    assert len(imd) == 32_844
    assert imd.attrs["edition"] == 2019
    # Thousands separators are read as numbers: ranks run 1 to 32,844.
    assert imd["imd_rank"].min() == 1 and imd["imd_rank"].max() == 32_844
    sizes = imd["imd_decile"].value_counts()
    assert set(sizes) <= {3284, 3285} and sizes.sum() == 32_844
    # 26 pairs of LSOAs share a rank.
    assert imd["imd_rank"].duplicated().sum() == 26
    assert imd.loc[imd["lsoa_code"] == "E01000001", "imd_rank"].item() == 29_199


def test_imd2019_derby_and_derbyshire_facts(reference_dir):
    imd = load_imd(reference_dir / "imd2019" / "imd2019_lsoa11_england.csv.gz")
    dd = catchment_lsoas(imd, DD_LADS)
    assert len(dd) == 642
    assert (dd["lad_code"] == "E06000015").sum() == 151
    counts = dd["imd_decile"].value_counts().sort_index().tolist()
    assert counts == [46, 69, 62, 57, 77, 57, 57, 69, 78, 70]
    # Core20 is deciles 1 and 2; quintiles pair the deciles.
    assert dd["core20"].sum() == 46 + 69
    assert (dd["imd_quintile"] == 1).sum() == 46 + 69


def test_imd2025_facts(reference_dir):
    imd = load_imd(reference_dir / "imd2025" / "imd2025_lsoa21_england.csv.gz")
    assert len(imd) == 33_755
    assert imd.attrs["edition"] == 2025
    assert set(imd["imd_decile"].value_counts()) <= {3375, 3376}
    dd = catchment_lsoas(imd, DD_LADS)
    assert len(dd) == 651
    assert (dd["lad_code"] == "E06000015").sum() == 152
    assert dd["imd_decile"].value_counts().sort_index().tolist() == [
        56,
        71,
        66,
        67,
        67,
        58,
        67,
        68,
        65,
        66,
    ]


def test_census_ethnicity_adds_up(reference_dir):
    pop = load_population_ethnicity(
        reference_dir / "census2021" / "ts021_ethnic_group_5cat_lsoa21_derby_derbyshire.csv"
    )
    assert len(pop) == 651
    groups = pop[["Asian", "Black", "Mixed", "White", "Other"]].sum(axis=1)
    assert (groups == pop["total"]).all()


def test_census_age_tidy_layout(reference_dir):
    pop = load_population_age(
        reference_dir / "census2021" / "age6_usual_residents_lsoa21_derby_derbyshire.csv"
    )
    raw = pd.read_csv(
        reference_dir / "census2021" / "age6_usual_residents_lsoa21_derby_derbyshire.csv"
    )
    assert len(pop) == 651
    assert pop.iloc[:, 1:].sum(axis=1).tolist() == raw["total_usual_residents"].tolist()


def test_nomis_five_year_bands_are_shared_into_census_groups(tmp_path):
    # Nomis TS007A layout: 15 to 19 straddles the 0-15 / 16-24 boundary (1 year in, 4 out).
    cols = [
        "4 years and under",
        "5 to 9 years",
        "10 to 14 years",
        "15 to 19 years",
        "20 to 24 years",
        "25 to 29 years",
        "30 to 34 years",
        "35 to 39 years",
        "40 to 44 years",
        "45 to 49 years",
        "50 to 54 years",
        "55 to 59 years",
        "60 to 64 years",
        "65 to 69 years",
        "70 to 74 years",
        "75 to 79 years",
        "80 to 84 years",
        "85 years and over",
    ]
    row = {"date": 2021, "geography": "X", "geography code": "E01000001", "Age: Total": 1800}
    row |= {f"Age: Aged {c}": 100 for c in cols}
    path = tmp_path / "ts007a.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    pop = load_population_age(path).iloc[0]
    assert pop["0-15"] == 320  # 300 + 1/5 of 100
    assert pop["16-24"] == 180  # 4/5 of 100 + 100
    assert pop["65+"] == 500
    assert pop.iloc[1:].sum() == 1800


def test_nomis_ethnicity_and_sex_layouts(tmp_path):
    eth = tmp_path / "ts021.csv"
    pd.DataFrame(
        [
            {
                "date": 2021,
                "geography": "A",
                "geography code": "E01000001",
                "Ethnic group: Total: All usual residents": 10,
                "Ethnic group: Asian, Asian British or Asian Welsh": 1,
                "Ethnic group: Asian, Asian British or Asian Welsh: Indian": 1,
                "Ethnic group: Black, Black British, Black Welsh, Caribbean or African": 2,
                "Ethnic group: Black, Black British, Black Welsh, Caribbean or African: African": 2,
                "Ethnic group: Mixed or Multiple ethnic groups": 3,
                "Ethnic group: White": 3,
                "Ethnic group: Other ethnic group": 1,
            }
        ]
    ).to_csv(eth, index=False)
    got = load_population_ethnicity(eth).iloc[0]
    assert (got["Asian"], got["Black"], got["Mixed"], got["White"], got["Other"]) == (1, 2, 3, 3, 1)
    sex = tmp_path / "ts008.csv"
    pd.DataFrame(
        [
            {
                "date": 2021,
                "geography": "A",
                "geography code": "E01000001",
                "Sex: All persons": 9,
                "Sex: Female": 5,
                "Sex: Male": 4,
            }
        ]
    ).to_csv(sex, index=False)
    s = load_population_sex(sex).iloc[0]
    assert (s["Female"], s["Male"]) == (5, 4)


def test_lookup_2011_to_2021(reference_dir):
    lk = load_lsoa_lookup(
        reference_dir / "lookups" / "lsoa11_lsoa21_lad22_lookup_derby_derbyshire.csv"
    )
    assert lk["lsoa11"].nunique() == 642
    assert lk["lsoa21"].nunique() == 651
    assert (lk.drop_duplicates("lsoa11")["change"] == "U").sum() == 633


def test_unknown_layout_is_a_clear_error(tmp_path):
    bad = tmp_path / "imd.csv"
    bad.write_text("code,score\nE01000001,3\n")
    with pytest.raises(ReferenceDataError) as err:
        load_imd(bad)
    assert err.value.code == "REF001"
    assert "Columns found: code, score" in str(err.value)


def test_download_parses_what_it_fetches_offline(tmp_path, reference_dir):
    """The download command is tested with a fake opener serving the official formats."""
    file1 = reference_dir / "imd2019" / "File_1_-_IMD2019_Index_of_Multiple_Deprivation.csv.gz"
    import gzip

    imd_bytes = gzip.decompress(file1.read_bytes())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "census2021-ts008-lsoa.csv",
            "date,geography,geography code,Sex: All persons,Sex: Female,Sex: Male\n2021,A,E01000001,9,5,4\n",
        )
    zipped = buf.getvalue()

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def opener(url):
        return Response(zipped if url.endswith(".zip") else imd_bytes)

    done = download_reference(tmp_path, which=("imd2019", "ts008"), opener=opener)
    assert len(load_imd(done["imd2019"])) == 32_844
    assert load_population_sex(done["ts008"])["Female"].tolist() == [5]


def test_download_failure_is_plain(tmp_path):
    def opener(url):
        raise OSError("no route to host")

    with pytest.raises(ReferenceDataError) as err:
        download_reference(tmp_path, which=("imd2019",), opener=opener)
    assert err.value.code == "REF003"
    assert "no route to host" in str(err.value)
