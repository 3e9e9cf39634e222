"""cases.origin and cases.department_case_id: cases a department handles in its own system, mirrored (ADR 0021)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=12), server_default="platform", nullable=False))
        batch_op.add_column(sa.Column("department_case_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_cases_department_case_id", ["department", "department_case_id"])


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint("uq_cases_department_case_id", type_="unique")
        batch_op.drop_column("department_case_id")
        batch_op.drop_column("origin")
