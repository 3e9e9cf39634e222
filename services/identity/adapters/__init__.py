"""External systems identity talks to, each with a sandbox and a real HTTP implementation."""

from __future__ import annotations

from dataclasses import dataclass

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


def build_adapters(settings: Settings) -> Adapters:
    delay = settings.sandbox_delay_ms
    timeout = settings.adapter_timeout_seconds
    sms = (
        SandboxSms(delay_ms=delay, failure_rate=settings.sandbox_failure_rate)
        if settings.sms_adapter == "sandbox"
        else HttpSms(settings.sms_http_url, settings.sms_http_api_key, timeout)
    )
    wechat = (
        SandboxWeChat(delay)
        if settings.wechat_adapter == "sandbox"
        else HttpWeChat(settings.wechat_api_base, settings.wechat_app_id, settings.wechat_app_secret, timeout)
    )
    registry = (
        SandboxRegistry(delay)
        if settings.registry_adapter == "sandbox"
        else HttpCheck(settings.registry_http_url, settings.registry_http_api_key, timeout)
    )
    face = (
        SandboxFaceCheck(delay)
        if settings.face_adapter == "sandbox"
        else HttpCheck(settings.face_http_url, settings.face_http_api_key, timeout)
    )
    return Adapters(sms=sms, wechat=wechat, registry=registry, face=face)
