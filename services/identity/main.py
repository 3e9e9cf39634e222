"""Identity (一号): registration, sessions, real-name levels, mandates, officers, signing keys."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from kit.app import ServiceParts, create_service_app
from kit.logs import get_logger
from kit.secretbox import SecretBox, SecretsKeyMissing
from services.identity.adapters import build_adapters
from services.identity.api.routes import router, sandbox_router
from services.identity.context import Identity
from services.identity.keys import KeyRing
from services.identity.models import outbox
from services.identity.passwords import Passwords
from services.identity.settings import Settings

log = get_logger("identity")


def secret_box(settings: Settings) -> SecretBox | None:
    """The kiosks' secrets box; without IDENTITY_SECRETS_KEY outside a sandbox there is none (kiosk
    endpoints answer 503, said loudly here) — identity's logins do not depend on kiosks."""
    try:
        return SecretBox.from_setting(settings.secrets_key.get_secret_value(), sandbox=settings.sandbox,
                                      setting="IDENTITY_SECRETS_KEY", service="identity")  # fmt: skip
    except SecretsKeyMissing as exc:
        log.error("kiosks disabled: %s", exc)
        return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def start(app: FastAPI) -> None:
        keyring = KeyRing(
            app.state.sessionmaker,
            rotation=timedelta(seconds=settings.key_rotation_seconds),
            token_ttl=timedelta(seconds=settings.longest_token_ttl_seconds),
        )
        await keyring.rotate()
        app.state.key_rotation = asyncio.create_task(keyring.run_rotation(), name="key-rotation")
        app.state.identity = Identity(
            settings=settings,
            keyring=keyring,
            passwords=Passwords(settings.password_time_cost, settings.password_memory_kib),
            adapters=build_adapters(settings),
            box=secret_box(settings),
        )

    async def stop(app: FastAPI) -> None:
        app.state.key_rotation.cancel()

    def local_keys(app: FastAPI):
        async def fetch():
            return await app.state.identity.keyring.public_keys()

        return fetch

    routers = [router]
    if settings.sandbox:  # sandbox pages exist only in a sandbox deployment; 404 otherwise
        routers.append(
            sandbox_router(
                sms=settings.sms_adapter == "sandbox", enterprises=settings.enterprise_registry_adapter == "sandbox"
            )
        )
    return create_service_app(
        ServiceParts(
            settings=settings,
            title="yiwang identity (一号)",
            routers=routers,
            outbox=outbox,
            key_fetcher=local_keys,
            on_startup=[start],
            on_shutdown=[stop],
        )
    )
