"""Errors of the licence rules. Each names the field and the rule it broke, so the service can answer
with an RFC 9457 problem (``problem()``) and the offline verifier can say plainly what failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kit.errors import Problem


class LicenceRuleError(ValueError):
    """A broken rule: ``field`` is where, ``rule`` is a short stable slug, ``message`` is for people."""

    status = 422

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule
        self.message = message

    def problem(self) -> Problem:
        """The RFC 9457 problem the service answers with."""
        # Imported here so the offline verifier does not load the web stack.
        from kit.errors import field_problem

        return field_problem(self.field, self.rule, self.message, status=self.status)


class InvalidIdentifier(LicenceRuleError):
    """An e-licence identifier (GB/T 36904) that is malformed or fails its check character."""


class CredentialError(LicenceRuleError):
    """A QR credential that cannot be trusted. Subclasses say why."""


class BadEncoding(CredentialError):
    """Wrong prefix, not Base45, not deflate, not CBOR, not a COSE_Sign1 or missing claims."""


class UnknownKey(CredentialError):
    """Signed under a key id the verifier's key set does not hold."""


class UnsupportedAlgorithm(CredentialError):
    """Signed with an algorithm this build cannot verify (e.g. SM2)."""


class BadSignature(CredentialError):
    """The signature does not match: the payload was altered or signed by another key."""


class Expired(CredentialError):
    """The licence's validity ended before the verification date."""


class NotYetValid(CredentialError):
    """The licence's issue date is after the verification date."""


class StaleStatusList(CredentialError):
    """A status list past its next_update: the verifier must fetch a fresh one before trusting it."""


class InvalidKeySet(LicenceRuleError):
    """A key set (JWKS) that cannot be read: wrong shape, unknown key type, duplicate kid."""
