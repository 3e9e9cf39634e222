"""Secrets at rest: sealed under EXCHANGE_SECRETS_KEY, bound to their row, and no start without
the key outside a sandbox."""

from __future__ import annotations

import base64
import os

import pytest

from services.exchange.main import create_app
from services.exchange.secretbox import SecretBox, SecretsKeyMissing
from services.exchange.tests.conftest import TOKENS, settings_for


def test_a_sealed_secret_opens_only_under_its_key_and_for_its_row():
    key = base64.b64encode(os.urandom(32)).decode()
    box = SecretBox.from_setting(key, sandbox=False)
    sealed = box.seal("s3cret", context="partner_key:pk_1")
    assert "s3cret" not in sealed and box.open(sealed, context="partner_key:pk_1") == "s3cret"
    with pytest.raises(ValueError):
        box.open(sealed, context="partner_key:pk_2")  # copied onto another row
    with pytest.raises(ValueError):
        SecretBox.from_setting(base64.b64encode(os.urandom(32)).decode(), sandbox=False).open(
            sealed, context="partner_key:pk_1"
        )
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(key)).decode().rstrip("=")
    assert SecretBox.from_setting(urlsafe, sandbox=False).open(sealed, context="partner_key:pk_1") == "s3cret"


@pytest.mark.parametrize("value", ["", "   ", "not base64 at all!", base64.b64encode(b"too short").decode()])
def test_no_usable_key_outside_a_sandbox_is_refused(value):
    with pytest.raises(SecretsKeyMissing):
        SecretBox.from_setting(value, sandbox=False)


def test_a_sandbox_without_a_key_uses_the_fixed_development_key():
    one, two = SecretBox.from_setting("", sandbox=True), SecretBox.from_setting("", sandbox=True)
    assert two.open(one.seal("x", context="c"), context="c") == "x"


async def test_exchange_does_not_start_without_the_key(database_url, nats_server, tmp_path):
    app = create_app(settings_for(database_url, nats_server.url, str(tmp_path / "k.json"), secrets_key="",
                                  nats_enabled=False), key_fetcher=TOKENS.fetch_keys)  # fmt: skip
    with pytest.raises(SecretsKeyMissing):
        async with app.router.lifespan_context(app):
            pass
