"""Join the two issue-14 branches: the hall's channels and fees (0010_hall) and 秒批 (0010_instant).

Revision ID: 0011
Revises: 0010_hall, 0010_instant
"""

from __future__ import annotations

revision = "0011"
down_revision = ("0010_hall", "0010_instant")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch different tables and columns."""


def downgrade() -> None:
    """Nothing to undo."""
