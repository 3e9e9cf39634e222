"""Demo licence catalogue: the issuing departments of the demo catalog and the licence types its
matters ask for as materials or give as results (services/catalog/seed_data.py).

Issuer codes are valid GB 32100 credit codes (organ ``11``, division, a GB 11714 organisation code
and the check character) made up for the demo departments; national type codes follow GB/T 36904
(the defining ministry's credit code + a 3-digit number) with made-up ministry codes — a
deployment loads the national licence catalogue's real codes instead.
"""

from __future__ import annotations

from typing import Any

# department → (name, credit code, division)
ISSUERS: list[dict[str, str]] = [
    {"department": "SCJGJ", "name": "德州市市场监督管理局", "issuer_code": "11371400MB00000190", "division_code": "371400"},
    {"department": "BDCDJ", "name": "德州市不动产登记中心", "issuer_code": "11371400MB0000027T", "division_code": "371400"},
    {"department": "SWJ", "name": "国家税务总局德州市税务局", "issuer_code": "11371400MB0000035M", "division_code": "371400"},
    {"department": "RSJ", "name": "德州市人力资源和社会保障局", "issuer_code": "11371400MB0000043G", "division_code": "371400"},
    {"department": "GAJ", "name": "德州市公安局", "issuer_code": "11371400MB0000051B", "division_code": "371400"},
    {"department": "WJW", "name": "德州市卫生健康委员会", "issuer_code": "11371400MB000006X3", "division_code": "371400"},
    {"department": "MZJ", "name": "德州市民政局", "issuer_code": "11371400MB00000783", "division_code": "371400"},
    {"department": "YBJ", "name": "德州市医疗保障局", "issuer_code": "11371400MB0000086X", "division_code": "371400"},
    {"department": "GAJ-DC", "name": "德城区公安分局", "issuer_code": "11371402MB0000094M", "division_code": "371402"},
]  # fmt: skip

# Made-up credit codes of the defining ministries (valid check characters).
_SAMR, _MNR, _MOHRSS = "11100000000000019F", "11100000000000027A", "111000000000000355"
_MPS, _NHC, _MCA = "111000000000000430", "11100000000000051T", "1110000000000006XJ"


def _schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


def _text(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


_DATE = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}

LICENCE_TYPES: list[dict[str, Any]] = [
    {
        "code": "business_licence", "name": "营业执照", "national_type_code": _SAMR + "001",
        "validity_years": None, "number_rule": "holder_code", "holder_kinds": ["enterprise", "person"],
        "issuers": ["SCJGJ"], "default_issuer": "SCJGJ", "satisfies": ["营业执照"],
        "data_schema": _schema({
            "enterprise_name": _text(100), "legal_representative": _text(50), "address": _text(200),
            "business_scope": _text(500), "registered_capital": {"type": "number", "minimum": 0, "maximum": 10_000_000},
        }),
    },
    {
        "code": "individual_business_licence", "name": "个体工商户营业执照", "national_type_code": _SAMR + "002",
        "validity_years": None, "number_rule": "serial", "holder_kinds": ["person"],
        "issuers": ["SCJGJ"], "default_issuer": "SCJGJ", "satisfies": ["营业执照"],
        "data_schema": _schema({"trade_name": _text(100), "address": _text(200), "business_scope": _text(500)}),
    },
    {
        "code": "food_business_licence", "name": "食品经营许可证", "national_type_code": _SAMR + "003",
        "validity_years": 5, "number_rule": "serial", "holder_kinds": ["enterprise", "person"],
        "issuers": ["SCJGJ"], "default_issuer": "SCJGJ", "satisfies": ["食品经营许可证"],
        "data_schema": _schema(
            {"enterprise_name": _text(100), "legal_representative": _text(50), "address": _text(200),
             "business_items": _text(500), "registered_capital": {"type": "number", "minimum": 0}},
            ["address"],
        ),
    },
    {
        "code": "real_estate_certificate", "name": "不动产权证书", "national_type_code": _MNR + "001",
        "validity_years": None, "number_rule": "serial", "holder_kinds": ["person", "enterprise"],
        "issuers": ["BDCDJ"], "default_issuer": "BDCDJ",
        "satisfies": ["不动产权证书", "经营场所使用证明（房产证明或租赁合同）"],
        "data_schema": _schema({
            "location": _text(200), "unit_number": _text(60), "right_type": _text(60), "usage": _text(60),
            "area": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000}, "land_term_until": _DATE,
        }),
    },
    {
        "code": "real_estate_registration_proof", "name": "不动产登记证明", "national_type_code": _MNR + "002",
        "validity_years": None, "number_rule": "serial", "holder_kinds": ["person", "enterprise"],
        "issuers": ["BDCDJ"], "default_issuer": "BDCDJ", "satisfies": ["不动产登记证明"],
        "data_schema": _schema({"matter": _text(100), "location": _text(200), "obligor": _text(100)}),
    },
    {
        "code": "social_security_card", "name": "社会保障卡", "national_type_code": _MOHRSS + "001",
        "validity_years": 10, "number_rule": "serial", "holder_kinds": ["person"],
        "issuers": ["RSJ"], "default_issuer": "RSJ", "satisfies": ["社会保障卡"],
        "data_schema": _schema({"card_number": _text(20), "bank": _text(60)}),
    },
    {
        "code": "resident_id_card", "name": "居民身份证", "national_type_code": _MPS + "001",
        # GB 11643 cards run 5, 10 or 20 years by age (or long-term from 46): the demo issues 20.
        "validity_years": 20, "number_rule": "serial", "holder_kinds": ["person"],
        "issuers": ["GAJ", "GAJ-DC"], "default_issuer": "GAJ",
        "satisfies": ["居民身份证", "申请人居民身份证", "法定代表人居民身份证", "父母居民身份证", "职工居民身份证", "原居民身份证"],
        "data_schema": _schema({"address": _text(200), "ethnicity": _text(20)}),
    },
    {
        "code": "household_register", "name": "居民户口簿", "national_type_code": _MPS + "002",
        "validity_years": None, "number_rule": "serial", "holder_kinds": ["person"],
        "issuers": ["GAJ-DC", "GAJ"], "default_issuer": "GAJ-DC", "satisfies": ["居民户口簿"],
        "data_schema": _schema({"household_head": _text(50), "address": _text(200), "household_type": _text(20)}),
    },
    {
        "code": "birth_medical_certificate", "name": "出生医学证明", "national_type_code": _NHC + "001",
        "validity_years": None, "number_rule": "serial", "holder_kinds": ["person"],
        "issuers": ["WJW"], "default_issuer": "WJW", "satisfies": ["出生医学证明"],
        "data_schema": _schema({"born_on": _DATE, "birthplace": _text(200), "mother_name": _text(50),
                                "father_name": _text(50)}),
    },
    {
        "code": "marriage_certificate", "name": "结婚证", "national_type_code": _MCA + "001",
        "validity_years": None, "number_rule": "serial", "holder_kinds": ["person"],
        "issuers": ["MZJ"], "default_issuer": "MZJ", "satisfies": ["结婚证", "父母结婚证", "婚姻关系证明"],
        "data_schema": _schema({"spouse_name": _text(50), "spouse_id_masked": _text(18), "registered_on": _DATE}),
    },
]  # fmt: skip
