"""widgets

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("widgets", sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("name", sa.String(50)))


def downgrade() -> None:
    op.drop_table("widgets")
