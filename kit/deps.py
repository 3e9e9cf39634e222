"""Annotated dependencies routers use: ``session: DbSession``, ``caller: Caller``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal, current_principal
from kit.db import request_session

DbSession = Annotated[AsyncSession, Depends(request_session, scope="function")]
Caller = Annotated[Principal, Depends(current_principal)]
