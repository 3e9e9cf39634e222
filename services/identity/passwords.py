"""Password hashing with argon2id, off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kit.errors import RuleViolation


class Passwords:
    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 1) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        # Verified against when the login names no account, so both paths cost the same.
        self._dummy = self.hasher.hash("not-a-real-password-0")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(password_hash or self._dummy, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)


def check_password_rules(password: str) -> str:
    if len(password) < 8:
        raise RuleViolation("min_length", "at least 8 characters")
    if len(password) > 128:
        raise RuleViolation("max_length", "at most 128 characters")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise RuleViolation("letters_and_digits", "needs both letters and digits")
    return password
