"""Form values against the matter's form fields: every rule, and every problem at once."""

from __future__ import annotations

import pytest

from services.caseflow.domain.form import (
    DEFAULT_MAX_LENGTH,
    FormInvalid,
    check_changes,
    check_form,
    valid_division_code,
    valid_id_number,
    valid_uscc,
)

FIELDS = [
    {"name": "applicant_name", "label": "申请人姓名", "kind": "text", "required": True},
    {"name": "applicant_id", "label": "证件号码", "kind": "subject_id", "required": True},
    {"name": "mobile", "label": "联系电话", "kind": "text", "required": True, "format": "mobile"},
    {"name": "scope", "label": "经营范围", "kind": "text", "required": True, "max_length": 20},
    {"name": "capital", "label": "注册资本", "kind": "number", "required": False, "minimum": 1, "maximum": 100000},
    {"name": "opened", "label": "开业日期", "kind": "date", "required": False},
    {"name": "invoice", "label": "发票种类", "kind": "choice", "required": False, "options": ["普通发票", "专用发票"]},
    {"name": "address", "label": "住所", "kind": "address", "required": False},
    {"name": "division", "label": "区划", "kind": "text", "required": False, "format": "division_code"},
    {"name": "uscc", "label": "信用代码", "kind": "text", "required": False, "format": "uscc"},
    {"name": "legal_id", "label": "法定代表人身份证", "kind": "text", "required": False, "format": "id_number"},
]
GOOD = {"mobile": "13800138000", "scope": "餐饮服务", "capital": "100", "opened": "2026-12-01", "invoice": "普通发票",
        "division": "320802", "uscc": "91350100m000100y43", "legal_id": "11010519491231002x"}  # fmt: skip


def problems(form, **kwargs):
    with pytest.raises(FormInvalid) as caught:
        check_form(FIELDS, form, verified_name=kwargs.get("name", "张三"))
    return {(e["field"], e["rule"]) for e in caught.value.errors}


def test_a_good_form_is_stored_normalised_with_the_verified_name():
    stored = check_form(FIELDS, GOOD, verified_name="张三")
    assert stored["applicant_name"] == "张三"
    assert stored["uscc"] == "91350100M000100Y43" and stored["legal_id"] == "11010519491231002X"


def test_every_problem_is_listed_at_once():
    form = {"mobile": "not-a-phone", "scope": "x" * 21, "capital": 10**30, "opened": "2026-13-01",
            "invoice": "收据", "division": "990000", "uscc": "91350100M000100Y44", "legal_id": "110105194912310021",
            "extra": "?", "address": {"nested": 1}, "applicant_name": "张伟"}  # fmt: skip
    assert problems(form) == {
        ("form.applicant_name", "verified_name"), ("form.mobile", "mobile"), ("form.scope", "max_length"),
        ("form.capital", "maximum"), ("form.opened", "date"), ("form.invoice", "choice"),
        ("form.division", "division_code"), ("form.uscc", "uscc"), ("form.legal_id", "id_number"),
        ("form.extra", "unknown_field"), ("form.address", "scalar"),
    }  # fmt: skip


def test_required_fields_but_not_the_ones_caseflow_fills():
    assert problems({}) == {("form.mobile", "required"), ("form.scope", "required")}


@pytest.mark.parametrize(
    "value,rule",
    [("\ud800", "no_surrogates"), ("a\x00b", "no_control_characters"), ("a\nb", "single_line"),
     ("\u202egpj.exe", "no_control_characters"), ("x" * (DEFAULT_MAX_LENGTH + 1), "max_length"),
     (["a"], "scalar"), (12, "string"), (True, "string")],
)  # fmt: skip
def test_hostile_text(value, rule):
    assert ("form.address", rule) in problems({**GOOD, "address": value})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "1e5", "１２", 0, -5, 100001])
def test_numbers_in_range(value):
    assert {rule for field, rule in problems({**GOOD, "capital": value}) if field == "form.capital"}


def test_an_unknown_key_that_is_not_even_text_is_not_echoed():
    assert ("form.?", "unknown_field") in problems({**GOOD, "\ud800": "x"})


def test_subject_id_takes_an_id_number_or_a_credit_code():
    assert check_form(FIELDS, {**GOOD, "applicant_id": "91350100M000100Y43"}, verified_name="张三")
    assert ("form.applicant_id", "subject_id") in problems({**GOOD, "applicant_id": "123"})


def test_the_name_field_stays_empty_for_an_old_token_and_no_body_name_is_taken():
    assert "applicant_name" not in check_form(FIELDS, GOOD, verified_name=None)
    assert ("form.applicant_name", "verified_name") in problems({**GOOD, "applicant_name": "张伟"}, name=None)


def test_a_resubmission_checks_the_whole_form_again():
    stored = check_form(FIELDS, GOOD, verified_name="张三")
    assert check_changes(FIELDS, stored, {"scope": "零售"}, verified_name=None)["applicant_name"] == "张三"
    with pytest.raises(FormInvalid):
        check_changes(FIELDS, stored, {"mobile": "1"}, verified_name="张三")


def test_formats_mind_the_library_pitfalls():
    # 港澳台 residence permits (830000…) and re-coded counties pass on the check digit alone.
    assert valid_id_number("11010519491231002X") and not valid_id_number("110105194913310021")
    assert valid_id_number("830000199001010012")  # stdnum's cn.ric.validate refuses it (InvalidComponent)
    assert not valid_id_number("830000199001010013")
    assert valid_uscc("91350100M000100Y43") and not valid_uscc("91350100m000100Y43")  # upper-cased by the caller
    assert valid_division_code("320802") and not valid_division_code("990000") and not valid_division_code("32080")
