import json
import logging

from kit.logs import configure_logging, get_logger
from kit.masking import mask_id_number, mask_phone, mask_text

ID = "11010519491231002X"
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMTAxMDUxOTQ5MTIzMTAwMlgifQ.c2lnbmF0dXJl"


def test_mask_functions():
    assert mask_id_number(ID) == "1101**********002X"
    assert mask_phone("13800138000") == "138****8000"
    text = mask_text(f"user {ID} phone 13800138000 auth Bearer {TOKEN}")
    assert ID not in text and "13800138000" not in text and TOKEN not in text
    assert "1101**********002X" in text and "138****8000" in text


def test_logs_never_carry_full_numbers_or_tokens(capsys):
    configure_logging("test", "INFO", json=True)
    get_logger("t").info("login", id_number=ID, mobile="13800138000", password="hunter2", note=f"for {ID}")
    logging.getLogger("uvicorn.access").info("GET /x?token=%s from %s", TOKEN, "13800138000")
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    text = json.dumps(lines, ensure_ascii=False)
    for secret in (ID, "13800138000", TOKEN, "hunter2"):
        assert secret not in text
    assert lines[0]["id_number"] == "1101**********002X" and lines[0]["password"] == "[masked]"
