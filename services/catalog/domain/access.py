"""Who may write the catalog: an officer with the admin role of the matter's department."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import Problem

# Identity's platform administrator (seeded with department ADMIN) maintains every department.
PLATFORM_DEPARTMENT = "ADMIN"


def may_administer(principal: Principal, department: str) -> bool:
    if principal.kind != "officer" or "admin" not in principal.roles:
        return False
    return principal.department in (department, PLATFORM_DEPARTMENT)


def require_admin_of(principal: Principal, department: str) -> None:
    if not may_administer(principal, department):
        raise Problem(
            403,
            "forbidden",
            "Not allowed",
            f"requires an officer with the admin role of department {department}",
        )


def require_some_admin(principal: Principal) -> None:
    """Checked before the body is read: whoever is no admin anywhere learns nothing about it."""
    if principal.kind != "officer" or "admin" not in principal.roles:
        raise Problem(403, "forbidden", "Not allowed", "catalog writes need an officer with the admin role")
