"""Add dag_callback_request: DAG-level callbacks owed for ended runs, durable across a scheduler crash.

Revision ID: 0009_dag_callback_request
Revises: 0008_task_instance_map_index
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minisched.models.types import UtcDateTime

revision = "0009_dag_callback_request"
down_revision = "0008_task_instance_map_index"
branch_labels = None
depends_on = None

ID_LEN = 250


def upgrade() -> None:
    op.create_table(
        "dag_callback_request",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_at", UtcDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_dag_callback_request_dag_id_run_id_dag_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dag_callback_request"),
    )


def downgrade() -> None:
    op.drop_table("dag_callback_request")
