"""trust: the agent's verified name on a case, longer verified names, query-code attempts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_name", sa.String(length=200), nullable=True))
        batch_op.alter_column("applicant_name", existing_type=sa.String(length=100), type_=sa.String(length=200),
                              existing_nullable=True)  # fmt: skip
    op.create_table(
        "query_code_attempts",
        sa.Column("case_no", sa.String(length=21), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("case_no"),
    )


def downgrade() -> None:
    op.drop_table("query_code_attempts")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("applicant_name", existing_type=sa.String(length=200), type_=sa.String(length=100),
                              existing_nullable=True)  # fmt: skip
        batch_op.drop_column("agent_name")
