"""case_shipments: EMS shipments of a case (results delivered, originals collected); originals received

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("originals_received_on", sa.Date(), nullable=True))
    op.create_table(
        "case_shipments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("shipment_id", sa.String(length=64), nullable=True),
        sa.Column("pickup_id", sa.String(length=64), nullable=True),
        sa.Column("carrier", sa.String(length=20), nullable=True),
        sa.Column("waybill", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("requested_by", sa.String(length=80), nullable=True),
        sa.Column("sender", sa.String(length=50), nullable=True),
        sa.Column("phone", sa.String(length=11), nullable=True),
        sa.Column("division_code", sa.String(length=6), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("items", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_id"),
        sa.UniqueConstraint("pickup_id"),
        sa.UniqueConstraint("case_id", "idempotency_key", name="uq_case_shipments_case_idempotency_key"),
    )
    op.create_index(op.f("ix_case_shipments_case_id"), "case_shipments", ["case_id"], unique=False)
    op.create_index(op.f("ix_case_shipments_status"), "case_shipments", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_case_shipments_status"), table_name="case_shipments")
    op.drop_index(op.f("ix_case_shipments_case_id"), table_name="case_shipments")
    op.drop_table("case_shipments")
    op.drop_column("cases", "originals_received_on")
