"""External systems identity talks to, each with a sandbox and a real HTTP implementation."""

from __future__ import annotations

from dataclasses import dataclass

from services.identity.adapters.enterprises import (
    EnterpriseRegistry,
    HttpEnterpriseRegistry,
    SandboxEnterpriseRegistry,
)
from services.identity.adapters.idcards import HttpIdCardCheck, IdCardCheck, SandboxIdCardCheck
from services.identity.adapters.registry import (
    FaceCheck,
    HttpCheck,
    PopulationRegistry,
    SandboxFaceCheck,
    SandboxRegistry,
)
from services.identity.adapters.sms import HttpSms, SandboxSms, SmsSender
from services.identity.adapters.wechat import HttpWeChat, SandboxWeChat, WeChatAuth
from services.identity.settings import Settings


@dataclass
class Adapters:
    sms: SmsSender
    wechat: WeChatAuth
    registry: PopulationRegistry
    face: FaceCheck
    enterprises: EnterpriseRegistry
    id_cards: IdCardCheck


def build_adapters(settings: Settings) -> Adapters:
    """Each adapter as its setting chooses; the choice does not depend on ``settings.sandbox``."""
    delay = settings.sandbox_delay_ms
    timeout = settings.adapter_timeout_seconds
    sms = (
        SandboxSms(delay_ms=delay, failure_rate=settings.sandbox_failure_rate)
        if settings.sms_adapter == "sandbox"
        else HttpSms(settings.sms_http_url, settings.sms_http_api_key.get_secret_value(), timeout)
    )
    wechat = (
        SandboxWeChat(delay)
        if settings.wechat_adapter == "sandbox"
        else HttpWeChat(
            settings.wechat_api_base, settings.wechat_app_id, settings.wechat_app_secret.get_secret_value(), timeout
        )
    )
    registry = (
        SandboxRegistry(delay)
        if settings.registry_adapter == "sandbox"
        else HttpCheck(settings.registry_http_url, settings.registry_http_api_key.get_secret_value(), timeout)
    )
    face = (
        SandboxFaceCheck(delay)
        if settings.face_adapter == "sandbox"
        else HttpCheck(settings.face_http_url, settings.face_http_api_key.get_secret_value(), timeout)
    )
    enterprises = (
        SandboxEnterpriseRegistry(
            delay_ms=delay,
            failure_rate=settings.sandbox_failure_rate,
            extra_file=settings.enterprise_registry_sandbox_file,
        )
        if settings.enterprise_registry_adapter == "sandbox"
        else HttpEnterpriseRegistry(
            settings.enterprise_registry_http_url,
            settings.enterprise_registry_http_api_key.get_secret_value(),
            settings.enterprise_registry_timeout_seconds,
        )
    )
    id_cards = (
        SandboxIdCardCheck(delay_ms=delay, failure_rate=settings.sandbox_failure_rate)
        if settings.id_card_adapter == "sandbox"
        else HttpIdCardCheck(settings.id_card_http_url, settings.id_card_http_api_key.get_secret_value(), timeout)
    )
    return Adapters(sms=sms, wechat=wechat, registry=registry, face=face, enterprises=enterprises, id_cards=id_cards)
