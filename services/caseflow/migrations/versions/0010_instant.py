"""case_instant: 秒批 verdicts, payment-pending verdicts and sampled reviews (ADR 0027)

Revision ID: 0010_instant
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_instant"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_instant",
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("case_no", sa.String(length=21), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sampled", sa.Boolean(), nullable=False),
        sa.Column("review", sa.String(length=10), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=80), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_case_instant_department_sampled", "case_instant", ["department", "sampled"])


def downgrade() -> None:
    op.drop_index("ix_case_instant_department_sampled", table_name="case_instant")
    op.drop_table("case_instant")
