"""access_log: prints (action, channel, device) beside reads

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
    with op.batch_alter_table("access_log") as batch:
        batch.add_column(sa.Column("action", sa.String(length=10), nullable=False, server_default="read"))
        batch.add_column(sa.Column("channel", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("device", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("device")
        batch.drop_column("channel")
        batch.drop_column("action")
