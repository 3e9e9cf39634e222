"""identity at the hall (issue 14): walk-in persons without login, kiosks and their nonces

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A person made known at the counter or a kiosk has no mobile and no password (ADR 0025).
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.alter_column("mobile", existing_type=sa.String(length=20), nullable=True)
        batch_op.alter_column("password_hash", existing_type=sa.String(length=200), nullable=True)
    op.create_table(
        "kiosks",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("hall_code", sa.String(length=40), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("device_id"),
    )
    with op.batch_alter_table("kiosks", schema=None) as batch_op:
        batch_op.create_index("ix_kiosks_hall_code", ["hall_code"], unique=False)
    op.create_table(
        "kiosk_nonces",
        sa.Column("key", sa.String(length=140), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("kiosk_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_kiosk_nonces_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kiosk_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_kiosk_nonces_expires_at")
    op.drop_table("kiosk_nonces")
    with op.batch_alter_table("kiosks", schema=None) as batch_op:
        batch_op.drop_index("ix_kiosks_hall_code")
    op.drop_table("kiosks")
    # Walk-ins (no mobile, no password) cannot stay in the older schema.
    op.execute("DELETE FROM persons WHERE mobile IS NULL OR password_hash IS NULL")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.String(length=200), nullable=False)
        batch_op.alter_column("mobile", existing_type=sa.String(length=20), nullable=False)
