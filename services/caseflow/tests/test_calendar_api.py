"""The public working-day calendar through the API: a year's days off and make-up days, the due-date
preview of a matter, bounds that answer 422 problems, and writes for the platform administrator only."""

from __future__ import annotations

from datetime import date

import pytest

from services.caseflow.tests.conftest import act, add_matter, matter_definition, officer, submit

ACCEPTOR = officer("acceptor")
PLATFORM_ADMIN = officer("admin", "ADMIN")


async def test_a_year_beyond_the_official_calendar_shows_the_statutory_holidays_as_provisional(caseflow):
    response = await caseflow.get("/calendar/2027")  # no token: front-ends show it before login
    assert response.status_code == 200, response.text
    year = response.json()
    assert year["official"] is False and year["workdays"] == []
    days_off = {d["date"]: d for d in year["days_off"]}
    for day, name in [("2027-01-01", "元旦"), ("2027-02-05", "春节"), ("2027-02-08", "春节"), ("2027-04-05", "清明节"),
                      ("2027-06-09", "端午节"), ("2027-09-15", "中秋节"), ("2027-10-01", "国庆节"),
                      ("2027-10-04", "国庆节补假")]:  # fmt: skip
        assert days_off[day]["name"] == name and days_off[day]["workday"] is False
        assert days_off[day]["official"] is False and "全国年节及纪念日放假办法" in days_off[day]["source"]
    assert "2027-01-04" not in days_off
    official = (await caseflow.get("/calendar/2026")).json()
    assert official["official"] is True
    make_up = {d["date"]: d for d in official["workdays"]}
    assert set(make_up) >= {"2026-02-14", "2026-02-28", "2026-10-10"}
    assert all(d["official"] and d["source"].startswith("chinesecalendar") for d in make_up.values())


@pytest.mark.parametrize("year", ["2003", "2101", "-1", "0", "99999999999999999999999999", "twenty"])
async def test_a_year_out_of_range_is_a_problem(caseflow, year):
    response = await caseflow.get(f"/calendar/{year}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"].endswith("year")


async def test_the_due_date_preview_names_the_statutory_and_promised_dates_and_the_rule(caseflow):
    # SCJG-001's guide: statutory 20, promised 3 working days. Accepted Mon 21 Dec 2026.
    response = await caseflow.get("/calendar/due", params={"matter_code": "SCJG-001", "from": "2026-12-21"})
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["matter_version"] == 1 and preview["statutory_source"] == "guide"
    # 22–31 Dec (8); 元旦 off; 4–8 Jan (13), 11–15 (18), 18 (19), Tue 19 Jan (20): into 2027, provisional.
    assert preview["statutory"] == {"limit_days": 20, "due": "2027-01-19", "provisional": True}
    assert preview["promised"] == {"limit_days": 3, "due": "2026-12-24", "provisional": False}
    governing = preview["governing"]
    assert governing["due"] == "2026-12-24" and governing["rule"].startswith("promised limit 3")
    # A guide saying 60 gives 60, not Art. 42's 20.
    await add_matter(caseflow, matter_definition("GAJ-60", statutory_limit_days=60, promised_limit_days=None,
                                                 materials=[]))  # fmt: skip
    sixty = (await caseflow.get("/calendar/due", params={"matter_code": "GAJ-60", "from": "2026-11-02"})).json()
    assert sixty["statutory"]["limit_days"] == 60 and sixty["promised"] is None
    assert sixty["governing"]["limit_days"] == 60
    assert sixty["governing"]["rule"].startswith("statutory limit 60 working days; from the guide")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"matter_code": "NO-SUCH", "from": "2026-11-02"}, "matter_code"),
        ({"matter_code": "SCJG-001", "from": "1900-01-01"}, "query.from"),
        ({"matter_code": "SCJG-001", "from": "2026-02-30"}, "query.from"),
        ({"matter_code": "SCJG-001", "from": "2026-11-02", "matter_version": str(2**70)}, "query.matter_version"),
        ("matter_code=SCJG%ED%A0%80&from=2026-11-02", "query.matter_code"),  # a lone surrogate, UTF-8 encoded
        ("matter_code=SCJG%00-001&from=2026-11-02", "query.matter_code"),
        ({"matter_code": "SCJG-001"}, "query.from"),
    ],
)
async def test_a_bad_preview_request_is_a_problem_naming_the_field(caseflow, params, field):
    if isinstance(params, str):
        response = await caseflow.get(f"/calendar/due?{params}")
    else:
        response = await caseflow.get("/calendar/due", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == field


async def test_a_department_admin_cannot_rewrite_the_platform_calendar(caseflow):
    before = (await caseflow.get("/calendar/2027")).json()
    body = {"holidays": ["2027-01-04"], "workdays": ["2027-01-02"]}
    department_admin = officer("admin", "SCJGJ")  # roles [admin], department SCJGJ
    refused = await caseflow.put("/calendar/overrides/2027", json=body, headers=department_admin)
    assert (
        refused.status_code == 403 and refused.json()["rule"] == "relation"
    )  # the access table: calendar.write is the platform admin's
    assert (await caseflow.put("/calendar/overrides/2027", json=body, headers=officer("supervisor", "ADMIN"))
            ).status_code == 403  # fmt: skip
    assert (await caseflow.get("/calendar/2027")).json() == before  # unchanged
    loaded = await caseflow.put("/calendar/overrides/2027", json=body, headers=PLATFORM_ADMIN)
    assert loaded.status_code == 200, loaded.text
    after = (await caseflow.get("/calendar/2027")).json()
    assert after["official"] is True
    assert [d["date"] for d in after["workdays"]] == ["2027-01-02"]
    assert [d["date"] for d in after["days_off"]] == ["2027-01-04"]


async def test_a_case_clock_into_2027_skips_spring_festival_and_its_补假(caseflow):
    caseflow.clock.set(date(2027, 2, 4))
    case = await submit(caseflow)  # SCJG-001: promised 3 working days
    accepted = (await act(caseflow, case, ACCEPTOR, "accept")).json()
    # Thu 4 Feb 2027: 除夕 Fri 5, weekend 6–7 (初一, 初二), 初三 Mon 8, 补假 Tue 9 and Wed 10 (the festival's
    # Saturday and Sunday given back); Thu 11 (1), Fri 12 (2), Mon 15 (3).
    assert accepted["due_on"] == "2027-02-15" and accepted["due_provisional"] is True
    decision = accepted["deadlines"]["decision"]
    assert decision["statutory_days"] == 20 and decision["promised_days"] == 3
