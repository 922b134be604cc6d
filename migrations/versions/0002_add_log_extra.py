"""Add log.extra: the arguments of a state-changing command, as JSON with secrets masked.

Revision ID: 0002_log_extra
Revises: 0001_core_tables
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_log_extra"
down_revision = "0001_core_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("log") as batch_op:
        batch_op.add_column(sa.Column("extra", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log") as batch_op:
        batch_op.drop_column("extra")
