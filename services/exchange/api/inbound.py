"""HTTP for partners (admin), signed pushes and receipts' keys. Owned by the inbound work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
