from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

import openpyxl  # type: ignore[import-untyped, unused-ignore]
import pytest

from services.registry.domain import sheet as sheets
from services.registry.domain.sheet import COLUMNS, REQUIRED_COLUMNS, SheetError, SheetRow
from services.registry.settings import RegistrySettings

ID = "410101199001011234"
ID_X = "41010119900101123X"
LIMITS = RegistrySettings().sheet_limits()  # the service's defaults


def parse_sheet(data: bytes, filename: str | None = None, content_type: str | None = None) -> list[SheetRow]:
    return sheets.parse_sheet(data, filename, content_type, limits=LIMITS)


def csv_bytes(*lines: str, encoding: str = "utf-8") -> bytes:
    return "\r\n".join(lines).encode(encoding)


def xlsx_bytes(*rows: list[Any], stored: dict[str, str] | None = None) -> bytes:
    """An XLSX file; ``stored`` replaces the text openpyxl wrote for a number by what another tool
    (Excel, WPS, pandas) would write, since openpyxl turns 410101199001011234 into 4.1e17 and 0.1+0.2
    into 0.3 on saving."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    if not stored:
        return buffer.getvalue()
    patched = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(patched, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                for written, wanted in stored.items():
                    assert f"<v>{written}</v>".encode() in content, written
                    content = content.replace(f"<v>{written}</v>".encode(), f"<v>{wanted}</v>".encode())
            target.writestr(item, content)
    return patched.getvalue()


def only_row(data: bytes, **kwargs: Any) -> SheetRow:
    rows = parse_sheet(data, **kwargs)
    assert len(rows) == 1, rows
    return rows[0]


def cell(header: str, value: str) -> SheetRow:
    """One CSV data row with the required columns and one more."""
    text = io.StringIO()
    csv.writer(text).writerows([["id_number", "name", header], [ID, "张三", value]])
    return only_row(text.getvalue().encode())


def cell_xlsx(header: str, value: Any, stored: dict[str, str] | None = None) -> SheetRow:
    return only_row(xlsx_bytes(["id_number", "name", header], [ID, "张三", value], stored=stored))


# --- formats and encodings -------------------------------------------------------------------


def test_utf8_csv_with_bom_and_english_headers() -> None:
    data = "\ufeff" + "id_number,name,village_code,poor_household,head_healthy\n"
    data += f"{ID_X.lower()}, 张三 ,410102001001,yes,no\n"
    assert parse_sheet(data.encode("utf-8")) == [
        SheetRow(
            number=2,
            values={
                "id_number": ID_X,
                "name": "张三",
                "village_code": "410102001001",
                "poor_household": True,
                "profile": {"head_healthy": False},
            },
            errors=[],
        )
    ]


def test_utf8_csv_without_bom() -> None:
    row = only_row(csv_bytes("身份证号,姓名", f"{ID},李四"))
    assert row.values == {"id_number": ID, "name": "李四"}


def test_gbk_csv_with_chinese_headers() -> None:
    data = csv_bytes(
        "户主身份证号,户主姓名,行政村代码,建档立卡贫困户,户主党员,自建房价值,证书,家庭成员",
        f'{ID},王五,410102001001,是,否,20万,林权证、宅基地,"[{{""name"": ""王小五""}}]"',
        encoding="gbk",
    )
    assert data.decode("gbk") and not data.startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    row = only_row(data, filename="采集表.csv", content_type="application/vnd.ms-excel")
    assert row.values == {
        "id_number": ID,
        "name": "王五",
        "village_code": "410102001001",
        "poor_household": True,
        "members": [{"name": "王小五"}],
        "profile": {
            "head_party_member": False,
            "homestead_house_value": "200000",
            "certificates": ["forest", "homestead"],
        },
    }
    assert row.errors == []


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_tab_and_semicolon_delimiters_are_detected(delimiter: str) -> None:
    data = csv_bytes(delimiter.join(["身份证号", "姓名", "宅基地房屋价值"]), delimiter.join([ID, "赵六", "200,000.00"]))
    assert only_row(data).values == {"id_number": ID, "name": "赵六", "profile": {"homestead_house_value": "200000"}}


def test_utf16_tab_separated_unicode_text_export() -> None:
    data = "身份证号\t姓名\n" + f"{ID}\t孙七\n"
    assert only_row(data.encode("utf-16")).values == {"id_number": ID, "name": "孙七"}


def test_quoted_cell_spanning_lines_counts_as_one_row() -> None:
    rows = parse_sheet(csv_bytes("身份证号,姓名", f'{ID},"张\n三"', f"{ID_X},李四"))
    assert [(row.number, row.values["name"]) for row in rows] == [(2, "张\n三"), (3, "李四")]


def test_xlsx_with_int_float_and_bool_cells() -> None:
    data = xlsx_bytes(
        ["身份证号", "姓名", "村代码", "贫困户", "党员", "宅基地房屋价值", "经营主体规模", "非法上访次数", "商业保险"],
        [410101199001011234, "张三", 410102001001, True, False, 200000.0, 1234.5, 2, 1],
        stored={"4.101011990010113e+17": ID, "200000": "200000.0"},
    )
    row = only_row(data, filename="sheet.xlsx")
    assert row.values == {
        "id_number": ID,
        "name": "张三",
        "village_code": "410102001001",
        "poor_household": True,
        "profile": {
            "head_party_member": False,
            "homestead_house_value": "200000",
            "business_entity_scale": "1234.5",
            "illegal_petitions_last_year": 2,
            "commercial_insurance": True,
        },
    }
    assert row.errors == []


def test_xlsx_is_recognised_by_its_bytes_whatever_the_name_says() -> None:
    data = xlsx_bytes(["身份证号", "姓名"], [ID, "张三"])
    assert only_row(data, filename="sheet.csv", content_type="text/csv").values == {"id_number": ID, "name": "张三"}


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("sheet.xlsx", None), (None, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")],
)
def test_declared_xlsx_that_is_not_a_zip_is_refused(filename: str | None, content_type: str | None) -> None:
    with pytest.raises(SheetError, match="not a readable XLSX file"):
        parse_sheet(csv_bytes("身份证号,姓名", f"{ID},张三"), filename=filename, content_type=content_type)


def test_xlsx_reads_the_first_worksheet() -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["身份证号", "姓名"])
    workbook.active.append([ID, "第一"])
    workbook.create_sheet("other").append(["unknown header"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert only_row(buffer.getvalue()).values["name"] == "第一"


def test_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(SheetError, match="not a readable XLSX file"):
        parse_sheet(buffer.getvalue())


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        bytes(range(256)),
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
    ],
)
def test_garbage_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(SheetError, match="not an XLSX file"):
        parse_sheet(data)


def test_legacy_xls_is_refused_with_advice() -> None:
    with pytest.raises(SheetError, match=r"\.xls.*save the sheet as \.xlsx or CSV"):
        parse_sheet(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, filename="sheet.xls")


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b",,,\r\n"])
def test_file_without_header_is_refused(data: bytes) -> None:
    with pytest.raises(SheetError, match="no header row"):
        parse_sheet(data)


# --- header ------------------------------------------------------------------------------------


def test_headers_match_case_and_spacing_insensitively() -> None:
    row = only_row(csv_bytes(" ID Number ,NAME,Poor_Household,ｈｅａｄ－ｈｅａｌｔｈｙ", f"{ID},张三,1,0"))
    assert row.values == {"id_number": ID, "name": "张三", "poor_household": True, "profile": {"head_healthy": False}}


def test_template_marks_on_headers_are_ignored() -> None:
    row = only_row(csv_bytes("身份证号（必填）,姓名*,自建房价值（元）, 身体 健康 ", f"{ID},张三,1000,是"))
    assert row.values == {
        "id_number": ID,
        "name": "张三",
        "profile": {"homestead_house_value": "1000", "head_healthy": True},
    }


def test_amount_in_wan_header_is_not_taken_for_yuan() -> None:
    with pytest.raises(SheetError, match="unknown column"):
        parse_sheet(csv_bytes("身份证号,姓名,自建房价值（万元）", f"{ID},张三,20"))


@pytest.mark.parametrize(
    ("key", "header"), [(key, header) for key, aliases in COLUMNS.items() for header in (key, *aliases)]
)
def test_every_column_key_and_alias_is_recognised(key: str, header: str) -> None:
    headers = {"id_number": "身份证号", "name": "姓名"} | {key: header}
    rows = parse_sheet(csv_bytes(",".join(headers.values())))
    assert rows == []
    assert set(REQUIRED_COLUMNS) == {"id_number", "name"}


def test_unknown_header_is_named() -> None:
    with pytest.raises(SheetError, match=r"unknown column\(s\): C '备注'"):
        parse_sheet(csv_bytes("身份证号,姓名,备注", f"{ID},张三,x"))


def test_duplicate_column_is_refused_even_under_another_alias() -> None:
    with pytest.raises(SheetError, match=r"duplicate column\(s\): B '姓名' and C '户主姓名' are both name"):
        parse_sheet(csv_bytes("身份证号,姓名,户主姓名", f"{ID},张三,张三"))


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("姓名,贫困户", "身份证号 (id_number)"),
        ("身份证号,贫困户", "姓名 (name)"),
        ("贫困户,党员", "身份证号 (id_number), 姓名 (name)"),
    ],
)
def test_missing_required_column_is_refused(header: str, missing: str) -> None:
    with pytest.raises(SheetError) as raised:
        parse_sheet(csv_bytes(header, "x,y"))
    assert str(raised.value) == f"missing required column(s): {missing}"


def test_village_code_column_is_optional() -> None:
    assert "village_code" not in only_row(csv_bytes("身份证号,姓名", f"{ID},张三")).values


def test_title_row_above_the_header_is_skipped() -> None:
    data = xlsx_bytes(["某某村农户信息采集表"], [], ["身份证号", "姓名"], [ID, "张三"])
    assert [(row.number, row.values) for row in parse_sheet(data)] == [(4, {"id_number": ID, "name": "张三"})]


def test_blank_rows_are_skipped_but_numbering_is_kept_in_csv() -> None:
    data = csv_bytes("", "身份证号,姓名,贫困户", f"{ID},张三,是", ",, ", "", f"{ID_X},李四,否", "")
    rows = parse_sheet(data)
    assert [(row.number, row.values["name"]) for row in rows] == [(3, "张三"), (6, "李四")]


def test_blank_rows_are_skipped_but_numbering_is_kept_in_xlsx() -> None:
    data = xlsx_bytes(["身份证号", "姓名"], [ID, "张三"], [], [None, "  "], [ID_X, "李四"])
    rows = parse_sheet(data)
    assert [(row.number, row.values["name"]) for row in rows] == [(2, "张三"), (5, "李四")]


def test_value_under_a_column_without_header_is_an_error_not_lost() -> None:
    row = only_row(csv_bytes("身份证号,姓名,,", f"{ID},张三,,note"))
    assert row.values == {"id_number": ID, "name": "张三"}
    assert row.errors == [("column D", "value in a column without a header")]


def test_short_rows_leave_the_missing_fields_out() -> None:
    row = only_row(csv_bytes("身份证号,姓名,贫困户,党员", f"{ID},张三"))
    assert row.values == {"id_number": ID, "name": "张三"}
    assert "profile" not in row.values


# --- cells ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        *[
            (word, True)
            for word in ["true", "TRUE", "yes", "Yes", "y", "Y", "1", "是", "有", "对", "√", " 是 ", "ＹＥＳ"]
        ],
        *[(word, False) for word in ["false", "False", "no", "NO", "n", "N", "0", "否", "无", "错", "×"]],
    ],
)
def test_boolean_spellings(spelling: str, expected: bool) -> None:
    row = cell("家庭和睦", spelling)
    assert row.values["profile"] == {"family_harmony": expected}
    assert row.errors == []


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (1, True), (0, False), (1.0, True)])
def test_boolean_from_excel_cells(value: Any, expected: bool) -> None:
    assert cell_xlsx("贫困户", value).values["poor_household"] is expected


@pytest.mark.parametrize("value", ["maybe", "2", "x", "不知道"])
def test_unreadable_boolean_is_an_error_for_that_field_only(value: str) -> None:
    row = only_row(csv_bytes("身份证号,姓名,贫困户,邻里和睦,正在被执行", f"{ID},张三,{value},是,否"))
    assert row.errors == [("poor_household", "expected yes/no (是/否)")]
    assert row.values == {
        "id_number": ID,
        "name": "张三",
        "profile": {"neighbour_harmony": True, "currently_under_enforcement": False},
    }


def test_every_profile_boolean_goes_under_profile() -> None:
    keys = [
        "head_party_member",
        "head_college_or_above",
        "head_healthy",
        "military_service_in_family",
        "income_project",
        "family_harmony",
        "neighbour_harmony",
        "commercial_insurance",
        "court_enforcement_within_3y",
        "currently_under_enforcement",
        "vice_record",
        "guarantee_currently_overdue",
    ]
    headers = [COLUMNS[key][-1] for key in keys]
    row = only_row(csv_bytes(",".join(["身份证号", "姓名", *headers]), ",".join([ID, "张三", *["是"] * len(keys)])))
    assert row.values["profile"] == dict.fromkeys(keys, True)
    assert row.errors == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200000", "200000"),
        ("200,000.00", "200000"),
        ("1,234,567.89", "1234567.89"),
        ("20万", "200000"),
        ("1.5万", "15000"),
        ("1.23456万", "12345.6"),
        ("20万元", "200000"),
        ("35000元", "35000"),
        ("１２０００", "12000"),
        ("1234.56", "1234.56"),
        ("0", "0"),
        ("-500", "-500"),
        ("1234.567", "1234.567"),
    ],
)
def test_money_text(text: str, expected: str) -> None:
    row = cell("对外担保总额", text)
    assert row.values["profile"] == {"guarantees_given_total": expected}
    assert row.errors == []


@pytest.mark.parametrize("text", ["abc", "1,5", "12,34", "二十万", "NaN", "Infinity", "1e5", "20万万", "万", "$100"])
def test_unparsable_money_is_an_error(text: str) -> None:
    row = cell("对外抵押总额", text)
    assert row.errors == [("mortgages_given_total", "expected an amount such as 200000, 200,000.00 or 20万")]
    assert row.values == {"id_number": ID, "name": "张三"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(300000, "300000"), (200000.0, "200000"), (1234.5, "1234.5"), (99.99, "99.99"), (1e16, "10000000000000000")],
)
def test_money_from_excel_numbers(value: int | float, expected: str) -> None:
    assert cell_xlsx("经营主体规模", value).values["profile"] == {"business_entity_scale": expected}


@pytest.mark.parametrize(
    ("value", "stored", "reason"),
    [
        (0.3, {"0.3": "0.30000000000000004"}, "amount has more than two decimal places; round it to the fen"),
        (1234.567, None, "amount has more than two decimal places; round it to the fen"),
        (True, None, "expected an amount such as 200000, 200,000.00 or 20万"),
    ],
)
def test_money_from_excel_numbers_that_cannot_be_exact_is_an_error(
    value: float | bool, stored: dict[str, str] | None, reason: str
) -> None:
    row = cell_xlsx("经营主体规模", value, stored=stored)
    assert row.errors == [("business_entity_scale", reason)]
    assert "profile" not in row.values


def test_id_number_stored_as_float_in_xlsx_is_an_error() -> None:
    row = only_row(xlsx_bytes(["身份证号", "姓名", "贫困户"], [4.101011990010112e17, "张三", "是"]))
    assert row.errors == [("id_number", "ID number stored as a number lost digits; format the column as text")]
    assert row.values == {"name": "张三", "poor_household": True}


def test_id_number_mangled_into_scientific_notation_in_csv_is_an_error() -> None:
    row = only_row(csv_bytes("身份证号,姓名", "4.10101E+17,张三"))
    assert row.errors == [("id_number", "ID number stored as a number lost digits; format the column as text")]


def test_id_number_keeps_digits_and_uppercases_x() -> None:
    rows = parse_sheet(csv_bytes("身份证号,姓名", f" {ID_X.lower()} ,张三", f"0{ID[1:]},李四"))
    assert [row.values["id_number"] for row in rows] == [ID_X, f"0{ID[1:]}"]


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("2", 2), ("3次", 3), ("2.0", 2), ("１", 1)])
def test_petition_count(text: str, expected: int) -> None:
    assert cell("非法上访次数", text).values["profile"] == {"illegal_petitions_last_year": expected}


@pytest.mark.parametrize("value", [2.5, "2.5", "两次", True])
def test_petition_count_that_is_not_a_whole_number_is_an_error(value: Any) -> None:
    row = cell_xlsx("非法上访次数", value)
    assert row.errors == [("illegal_petitions_last_year", "expected a whole number")]


def test_petition_count_from_excel_float() -> None:
    assert cell_xlsx("非法上访次数", 3.0).values["profile"] == {"illegal_petitions_last_year": 3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("区级", "district"),
        ("区级以上", "district"),
        ("县级", "district"),
        ("县级以上", "district"),
        ("市级", "district"),
        ("省级", "district"),
        ("国家级", "district"),
        ("乡级", "township"),
        ("镇级", "township"),
        ("乡镇级", "township"),
        ("村级", "village"),
        ("District", "district"),
        ("TOWNSHIP", "township"),
        ("village", "village"),
        ("优秀", "优秀"),
        ("county", "county"),
    ],
)
def test_honour_level(text: str, expected: str) -> None:
    assert cell("荣誉级别", text).values["profile"] == {"honour_level": expected}


def test_certificates_split_on_mixed_separators_and_map_names() -> None:
    row = cell(
        "权证",
        "林权证；土地承包经营权证、宅基地使用权证 forest,land_contract/homestead，林权 承包证;土地承包;宅基地证",
    )
    assert row.values["profile"]["certificates"] == [
        "forest",
        "land_contract",
        "homestead",
        "forest",
        "land_contract",
        "homestead",
        "forest",
        "land_contract",
        "land_contract",
        "homestead",
    ]


def test_unknown_certificate_is_passed_through_for_the_caller_to_reject() -> None:
    assert cell("证书", "林权证、房产证").values["profile"] == {"certificates": ["forest", "房产证"]}


def test_certificates_none_is_an_empty_list() -> None:
    assert cell("证书", "无").values["profile"] == {"certificates": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80000;30000", ["80000", "30000"]),
        ("8万、3.5万", ["80000", "35000"]),
        ("80,000;30,000.50", ["80000", "30000.5"]),
        ("80000,30000", ["80000", "30000"]),
        ("1,200,000， 5万", ["1200000", "50000"]),
        ("50000", ["50000"]),
    ],
)
def test_equipment_as_list_of_registered_values(text: str, expected: list[str]) -> None:
    assert cell("设备", text).values["profile"] == {"equipment": [{"registered": True, "value": v} for v in expected]}


def test_equipment_from_excel_number() -> None:
    assert cell_xlsx("设备", 80000).values["profile"] == {"equipment": [{"registered": True, "value": "80000"}]}


def test_equipment_json_is_passed_through_with_floats_kept_as_digits() -> None:
    items = '[{"registered": false, "value": "12000.00"}, {"registered": true, "value": 0.1}]'
    row = cell_xlsx("设备", items)
    assert row.values["profile"] == {
        "equipment": [{"registered": False, "value": "12000.00"}, {"registered": True, "value": "0.1"}]
    }


def test_equipment_with_unreadable_value_names_it() -> None:
    row = cell("设备", "80000;拖拉机")
    assert row.errors == [("equipment", "'拖拉机': expected an amount such as 200000, 200,000.00 or 20万")]


def test_urban_properties_json_is_passed_through() -> None:
    properties = [{"area_m2": 85.5, "certified": True, "mortgaged": False}]
    row = cell_xlsx("城镇房产", json.dumps(properties))
    assert row.values["profile"] == {"urban_properties": [{"area_m2": "85.5", "certified": True, "mortgaged": False}]}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('[{"area_m2": 85.5,}]', "invalid JSON: Expecting property name enclosed in double quotes at character 19"),
        ("[NaN]", "invalid JSON: NaN is not a number"),
        ("85.5平方米", "expected a JSON array such as [{...}]"),
        (85.5, "expected a JSON array such as [{...}]"),
    ],
)
def test_urban_properties_invalid_json_is_an_error(value: Any, reason: str) -> None:
    row = cell_xlsx("城镇房产", value)
    assert row.errors == [("urban_properties", reason)]
    assert row.values == {"id_number": ID, "name": "张三"}


def test_members_json_goes_next_to_profile() -> None:
    members = [{"name": "王小五", "relation": "子"}]
    row = cell_xlsx("家庭成员", json.dumps(members, ensure_ascii=False))
    assert row.values == {"id_number": ID, "name": "张三", "members": members}


def test_members_invalid_json_is_an_error() -> None:
    row = cell_xlsx("家庭成员", "[{name: 王小五}]")
    assert [field for field, _ in row.errors] == ["members"]
    assert "members" not in row.values


def test_several_bad_cells_are_all_listed_and_the_rest_kept() -> None:
    data = xlsx_bytes(
        ["身份证号", "姓名", "贫困户", "身体健康", "宅基地房屋价值", "非法上访次数", "荣誉"],
        [4.1e17, "张三", "maybe", "健康", "很多", "1", "村级"],
    )
    row = only_row(data)
    assert row.errors == [
        ("id_number", "ID number stored as a number lost digits; format the column as text"),
        ("poor_household", "expected yes/no (是/否)"),
        ("head_healthy", "expected yes/no (是/否)"),
        ("homestead_house_value", "expected an amount such as 200000, 200,000.00 or 20万"),
    ]
    assert row.values == {"name": "张三", "profile": {"illegal_petitions_last_year": 1, "honour_level": "village"}}


def test_village_code_from_a_date_cell_is_an_error() -> None:
    from datetime import datetime

    row = cell_xlsx("村代码", datetime(2024, 1, 1))
    assert row.errors == [("village_code", "expected text")]


@pytest.mark.parametrize(
    ("header", "cell", "reason"),
    [
        (
            "设备",
            '[{"registered": true, "value": "1", "value": "99999"}]',
            "invalid JSON: the key '0.value' appears more than once in one object",
        ),
        (
            "家庭成员",
            '[{"name": "李四"}, {"name": "王五", "id_number": "1", "id_number": "2"}]',
            "invalid JSON: the key '1.id_number' appears more than once in one object",
        ),
    ],
)
def test_a_json_cell_with_a_key_twice_is_refused_like_a_json_body(header: str, cell: str, reason: str) -> None:
    row = only_row(csv_bytes(f"身份证号,姓名,{header}", f'{ID},张三,"{cell.replace(chr(34), chr(34) * 2)}"'))
    assert row.errors == [("equipment" if header == "设备" else "members", reason)]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),
        ("\u300011010519491231002x", "11010519491231002X"),
        ("４.１０１０１Ｅ+１７", None),  # Excel's rendering of a long number, with full-width digits
        ("١١٠١٠٥١٩٤٩١٢٣١٠٠٢X", "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X"),  # left as it is, for the API's model to refuse
    ],
)
def test_id_cells_get_the_one_normalisation(cell: str, expected: str | None) -> None:
    row = only_row(csv_bytes("身份证号,姓名", f"{cell},张三"))
    if expected is None:
        assert row.errors == [("id_number", "ID number stored as a number lost digits; format the column as text")]
    else:
        assert row.values["id_number"] == expected


def test_the_sheet_guide_documents_every_column_by_all_its_names() -> None:
    """docs/household-sheet.md (the README links it for the import example) lists each column
    once, with every header the reader accepts and nothing it does not."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[3] / "docs" / "household-sheet.md").read_text(encoding="utf-8")
    documented = {}
    for line in guide.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[1].startswith("`"):
            documented[cells[1].strip("`")] = tuple(name.strip() for name in cells[0].split(","))
    assert documented == dict(COLUMNS)
