"""worklist index of open cases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_open_by_deadline",
            ["department", "due_on", "id"],
            unique=False,
            postgresql_where=sa.text("state NOT IN ('completed', 'denied', 'rejected', 'withdrawn')"),
            sqlite_where=sa.text("state NOT IN ('completed', 'denied', 'rejected', 'withdrawn')"),
        )


def downgrade() -> None:

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_cases_open_by_deadline",
            postgresql_where=sa.text("state NOT IN ('completed', 'denied', 'rejected', 'withdrawn')"),
            sqlite_where=sa.text("state NOT IN ('completed', 'denied', 'rejected', 'withdrawn')"),
        )
