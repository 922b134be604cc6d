"""Add task_log: the logs of tries that ran on remote (Celery) workers, readable from any machine.

Revision ID: 0007_task_log
Revises: 0006_api_token
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minisched.models.types import UtcDateTime

revision = "0007_task_log"
down_revision = "0006_api_token"
branch_labels = None
depends_on = None

ID_LEN = 250


def upgrade() -> None:
    op.create_table(
        "task_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("task_id", sa.String(ID_LEN), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("chunk_offset", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("hostname", sa.String(1000), nullable=False),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_task_log_dag_id_run_id_dag_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_task_log"),
        sa.UniqueConstraint(
            "dag_id",
            "run_id",
            "task_id",
            "try_number",
            "chunk_offset",
            name="uq_task_log_dag_id_run_id_task_id_try_number_chunk_offset",
        ),
    )


def downgrade() -> None:
    op.drop_table("task_log")
