"""Add dag_file: what the loader last saw of each DAG file, so unchanged files are not re-imported.

Revision ID: 0004_dag_file
Revises: 0003_job_import_error
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minisched.models.types import UtcDateTime

revision = "0004_dag_file"
down_revision = "0003_job_import_error"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dag_file",
        sa.Column("fileloc", sa.String(2000), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("dag_ids", sa.JSON(), nullable=False),
        sa.Column("last_parsed_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fileloc", name="pk_dag_file"),
    )


def downgrade() -> None:
    op.drop_table("dag_file")
