"""HTTP for subscriptions and deliveries (admin). Owned by the outbound work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
