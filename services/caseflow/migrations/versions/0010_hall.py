"""the hall (ADR 0026): cases.channel / helped_by / helper_name / fees_status, and case_fees

Revision ID: 0010_hall
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_hall"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=12), server_default="online", nullable=False))
        batch_op.add_column(sa.Column("helped_by", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("helper_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("fees_status", sa.String(length=10), nullable=True))
        batch_op.create_index("ix_cases_helped_by", ["helped_by"])
    # Cases mirrored from a department's own system were applied for there.
    op.execute("UPDATE cases SET channel = 'department' WHERE origin = 'department'")
    op.create_table(
        "case_fees",
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("due_before", sa.String(length=12), nullable=False),
        sa.Column("refund_on", sa.String(length=60), nullable=False),
        sa.Column("assessed_by", sa.String(length=80), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("receipt_no", sa.String(length=64), nullable=True),
        sa.Column("paid_fen", sa.BigInteger(), nullable=True),
        sa.Column("paid_items", sa.Text(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_fees_status", "case_fees", ["status"])


def downgrade() -> None:
    op.drop_index("ix_case_fees_status", table_name="case_fees")
    op.drop_table("case_fees")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_helped_by")
        batch_op.drop_column("fees_status")
        batch_op.drop_column("helper_name")
        batch_op.drop_column("helped_by")
        batch_op.drop_column("channel")
