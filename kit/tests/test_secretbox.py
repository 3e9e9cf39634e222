"""kit.secretbox: each service's sandbox key is its own; a sealed secret opens only for its row."""

import base64
import os

import pytest

from kit.secretbox import SecretBox, SecretsKeyMissing, sandbox_key


def test_sandbox_keys_differ_per_service_and_a_deployment_needs_a_key():
    assert sandbox_key("identity") != sandbox_key("exchange") and len(sandbox_key("identity")) == 32
    identity = SecretBox.from_setting("", sandbox=True, setting="IDENTITY_SECRETS_KEY", service="identity")
    exchange = SecretBox.from_setting("", sandbox=True, setting="EXCHANGE_SECRETS_KEY", service="exchange")
    sealed = identity.seal("kiosk-secret", context="kiosk:K-1")
    with pytest.raises(ValueError):
        exchange.open(sealed, context="kiosk:K-1")
    with pytest.raises(SecretsKeyMissing, match="IDENTITY_SECRETS_KEY"):
        SecretBox.from_setting("", sandbox=False, setting="IDENTITY_SECRETS_KEY", service="identity")


def test_a_configured_key_seals_for_one_row():
    box = SecretBox.from_setting(base64.b64encode(os.urandom(32)).decode(), sandbox=False, setting="K", service="x")
    sealed = box.seal("s", context="kiosk:K-1")
    assert box.open(sealed, context="kiosk:K-1") == "s"
    with pytest.raises(ValueError):
        box.open(sealed, context="kiosk:K-2")
