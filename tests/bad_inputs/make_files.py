"""Write the broken extracts of the bad-input corpus (run once; the files are kept).

    .venv/bin/python tests/bad_inputs/make_files.py

Each file is a few sample-like rows with the column names of ``base_config.yml``,
broken in one way. The cases that use them, and what each must give, are listed in
``cases.yml``. The files are written byte for byte here (encodings, delimiters, line
endings) because an editor would "fix" them; the Excel files are made with openpyxl.
Running it again rewrites the same files (the .xlsx only differ in their timestamps).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import openpyxl
import yaml

HERE = Path(__file__).resolve().parent

# The columns base_config.yml maps, in its order: the config is where they are named.
HEADER = list(yaml.safe_load((HERE / "base_config.yml").read_text())["columns"].values())
# Sample-like rows that are correct; every file below changes a few cells.
GOOD = [
    "LC100000,01/04/2022,38,1,A,E01900109,Y,22/04/2022,10,7,2,14/08/2022,Completed",
    "LC100001,01/04/2022,61,2,A,E01900043,Y,06/05/2022,13,9,1,17/09/2022,Completed",
    "LC100002,02/04/2022,53,2,99,E01900078,Y,03/05/2022,7,7,0,23/08/2022,Completed",
    "LC100003,03/04/2022,65,1,A,E01900086,Y,08/05/2022,4,4,0,08/12/2022,Disengaged",
]


def rows(*changes: dict) -> list[list[str]]:
    """The good rows, each updated with {column name: new value} (one dict per row)."""
    out = []
    for line, change in zip(GOOD, changes, strict=False):
        cells = dict(zip(HEADER, line.split(","), strict=True))
        cells.update(change)
        out.append([cells[h] for h in HEADER])
    return out


def text(table: list[list[str]], sep: str = ",", header: list[str] = HEADER, nl="\n") -> str:
    lines = [sep.join(header)] + [sep.join(r) for r in table]
    return nl.join(lines) + nl


def write(name: str, content: str | bytes, encoding: str = "utf-8") -> None:
    data = content if isinstance(content, bytes) else content.encode(encoding)
    (HERE / name).write_bytes(data)


def csv_files() -> None:
    three = rows({}, {}, {})
    write("ok.csv", text(three))
    write("empty.csv", b"")
    write("whitespace_only.csv", b"\r\n   \r\n\r\n")
    write("header_only.csv", text([]))
    write("semicolon.csv", text(three, ";"))
    write(
        "semicolon_commas.csv",
        text(rows({}, {}, {"Discharge Reason": "Completed, goals met"}), ";"),
    )
    write("tab.tsv", text(three, "\t"))
    write("pipe.txt", text(three, "|"))
    write("crlf.csv", text(three, nl="\r\n"))
    write("colon.csv", text(three, ":"))
    write("title_line.csv", "Long COVID referrals report\n" + text(three))
    write(
        "footer_lines.csv",
        "Long COVID referrals report\n"
        + text(three)
        + "Total records: 3\nReport run 01/12/2026 by the information team\n\nNotes: none\n",
    )
    ragged = text(three).splitlines()
    ragged[2] = ",".join(ragged[2].split(",")[:4])
    write("ragged.csv", "\n".join(ragged) + "\n")
    accented = rows({}, {"Ethnic Category": "Européen"}, {})
    write("latin1.csv", text(accented), "latin-1")
    write("utf8_bom.csv", text(accented), "utf-8-sig")
    write(
        "cp1252.csv", text(rows({}, {}, {"Discharge Reason": "Patient’s choice – moved"})), "cp1252"
    )
    # Excel's "Unicode Text" export: UTF-16 little-endian with a byte-order mark, tab-delimited.
    write("utf16_unicode_text.txt", text(accented, "\t", nl="\r\n"), "utf-16")
    blank = text(rows({}, {}, {"Age at Referral": "130"})).splitlines()
    blank.insert(2, "")
    write("blank_line.csv", "\n".join(blank) + "\n")
    write("referal_typo.csv", text(three, header=["Referal Ref", *HEADER[1:]]))
    no_gender = [r[:3] + r[4:] for r in three]
    write("no_gender.csv", text(no_gender, header=HEADER[:3] + HEADER[4:]))
    dup = rows({}, {}, {"Referral Ref": "LC100000"}, {"Referral Ref": "LC100001"})
    write("dup_ids.csv", text(dup))
    write("dup_column.csv", text([r + [r[3]] for r in three], header=[*HEADER, "Gender"]))
    write("blank_ids.csv", text(rows({}, {"Referral Ref": ""}, {}, {"Referral Ref": "  "})))
    write(
        "bad_dates.csv",
        text(
            rows(
                {},
                {"Date Referral Received": "not a date"},
                {"Date Referral Received": "31/02/2024"},
                {"Date Referral Received": ""},
            )
        ),
    )
    write(
        "future_dates.csv",
        text(
            rows(
                {},
                {"Date Referral Received": "01/04/2099"},
                {},
                {"Date Referral Received": "2099-12-31"},
            )
        ),
    )
    write(
        "outside_period.csv",
        text(
            rows(
                {"Date Referral Received": "31/03/2022"},
                {},
                {"Date Referral Received": "01/04/2025"},
            )
        ),
    )
    write(
        "all_excluded.csv",
        text(
            rows(
                {"Date Referral Received": "31/02/2024"},
                {"Date Referral Received": "2024-13-01"},
                {"Date Referral Received": "01/04/2099"},
            )
        ),
    )
    write(
        "discharge_before_referral.csv",
        text(
            rows(
                {},
                {"Discharge Date": "01/03/2022"},
                {"First Contact Date": "01/04/2022", "Discharge Date": "01/01/2022"},
            )
        ),
    )
    # Sentinel dates that systems export for "no date": outside the range a table holds.
    write(
        "sentinel_dates.csv",
        text(
            rows(
                {},
                {"Date Referral Received": "31/12/9999"},
                {"Date Referral Received": "01/01/0001"},
                {"First Contact Date": "9999-12-31", "Discharge Date": "31/12/9999"},
            )
        ),
    )
    write("bad_ages.csv", text(rows({"Age at Referral": "-3"}, {}, {"Age at Referral": "130"})))
    write(
        "text_numbers.csv", text(rows({}, {"Age at Referral": "forty"}, {"Appts Offered": "ten"}))
    )
    write(
        "unknown_codes.csv",
        text(rows({"Gender": "Q"}, {}, {"Ethnic Category": "ZZ"}, {"Gender": "Q"})),
    )
    write("bad_yes_no.csv", text(rows({}, {"Referral Accepted": "Maybe"}, {})))
    write("unreadable_contact_date.csv", text(rows({}, {}, {"First Contact Date": "soon"})))
    write("lsoa_format.csv", text(rows({"LSOA": "DE1 2AB"}, {}, {"LSOA": "E0190010"})))
    write("outside_catchment.csv", text(rows({}, {"LSOA": "E01950009"}, {})))
    write(
        "counts_do_not_add_up.csv",
        text(rows({"Appts Attended": "9"}, {}, {"Appts DNA": "-1"})),
    )
    # LSOA 2011 codes of the real ONS lookup (Derby and Derbyshire): E01013453 is unchanged
    # in 2021; E01013479 and E01019494 were split (first new areas E01034256, E01034644).
    lsoa11 = rows({"LSOA": "E01013453"}, {"LSOA": "E01013479"}, {"LSOA": "E01019494"})
    write("lsoa2011.csv", text(lsoa11))
    excluded = rows(
        {"LSOA": "E01013453"},
        {"LSOA": "E01013479"},
        {"LSOA": "E01019494"},
        {"LSOA": "E01019512", "Date Referral Received": "01/04/2099"},
    )
    write("lsoa2011_excluded_row.csv", text(excluded))
    ident_header = ["NHS Number", "Patient Name", *HEADER]
    ident = [["999 000 0018", "Planted Person A", *three[0]]]
    ident += [["999 000 0026", "Planted Person B", *three[1]]]
    ident += [["999 000 0034", "Planted Person C", *three[2]]]
    write("identifiers.csv", text(ident, header=ident_header))
    write(
        "imd_unknown_layout.csv",
        "Area code,Area name,Deprivation score\nE01900109,North East Derbyshire 901A,12.3\n",
    )


def other_files() -> None:
    write(
        "extract.json", '[{"Referral Ref": "LC100000", "Date Referral Received": "01/04/2022"}]\n'
    )
    # A minimal Word document: a zip with the parts Word needs to open it.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/word/document.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
            'document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        z.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
            'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Referral '
            "Ref, Date Referral Received</w:t></w:r></w:p></w:body></w:document>",
        )
    write("extract.docx", buffer.getvalue())


def _typed(row: list[str]) -> list:
    """Cells as Excel holds them: dates as dates, numbers as numbers."""
    out = []
    for value in row:
        if value.count("/") == 2:
            d, m, y = (int(x) for x in value.split("/"))
            out.append(dt.datetime(y, m, d))
        elif value.lstrip("-").isdigit() and not value.startswith("E"):
            out.append(int(value))
        else:
            out.append(value)
    return out


def _sheet(name: str, lines: list[list]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Referrals"
    for number, line in enumerate(lines, start=1):
        for column, value in enumerate(line, start=1):
            if value is not None and value != "":
                sheet.cell(row=number, column=column, value=value)
    book.save(HERE / name)


def excel_files() -> None:
    data = [_typed(r) for r in rows({}, {}, {"Age at Referral": "130"})]
    title = [["Long COVID Rehabilitation Service: referrals"], ["Exported 01/04/2025"]]
    # Title rows above the header: the header is found on row 3, data on rows 4 to 6.
    _sheet("title_rows.xlsx", [*title, HEADER, *data])
    # A blank row inside the data: Excel rows 4, 5 (blank), 6, 7.
    _sheet("blank_row.xlsx", [*title, HEADER, data[0], [], data[1], data[2]])
    # No row holds the mapped column names.
    _sheet(
        "no_header.xlsx",
        [*title, ["Ref", "Received", "Age"], ["LC100000", dt.datetime(2022, 4, 1), 38]],
    )
    # Excel holds 31/12/9999 as a real date cell; so do some exports for "still open".
    sentinel = [_typed(r) for r in rows({}, {}, {"Discharge Date": "31/12/9999"})]
    sentinel[1][1] = dt.datetime(9999, 12, 31)
    _sheet("sentinel_dates.xlsx", [HEADER, *sentinel])
    _sheet("empty.xlsx", [])
    _sheet("header_only.xlsx", [HEADER])


if __name__ == "__main__":
    csv_files()
    other_files()
    excel_files()
    print("Wrote the bad-input files to", HERE)
