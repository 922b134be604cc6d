"""Add task_instance.map_index: one row per mapped instance, -1 for a task that is not mapped.

The unique key of a task instance becomes (dag_id, run_id, task_id, map_index); a shipped log piece
(task_log) gets the map_index of its try too, in its unique key.

Revision ID: 0008_task_instance_map_index
Revises: 0007_task_log
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from minisched.models.types import UtcDateTime

revision = "0008_task_instance_map_index"
down_revision = "0007_task_log"
branch_labels = None
depends_on = None

OLD_KEY = "uq_task_instance_dag_id_run_id_task_id"
NEW_KEY = "uq_task_instance_dag_id_run_id_task_id_map_index"
LOG_OLD_KEY = "uq_task_log_dag_id_run_id_task_id_try_number_chunk_offset"
LOG_NEW_KEY = "uq_task_log_try_piece"
ID_LEN = 250


def _table_at_0007() -> sa.Table:
    """task_instance as 0007 left it: `--show-sql-only` cannot reflect it to copy it in batch mode."""
    return sa.Table(
        "task_instance",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("task_id", sa.String(ID_LEN), nullable=False),
        sa.Column("state", sa.String(20), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("pool", sa.String(256), nullable=False),
        sa.Column("pool_slots", sa.Integer(), nullable=False),
        sa.Column("priority_weight", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(100), nullable=True),
        sa.Column("hostname", sa.String(1000), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("queued_dttm", UtcDateTime(), nullable=True),
        sa.Column("next_retry_at", UtcDateTime(), nullable=True),
        sa.Column("queued_by_job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_task_instance_dag_id_run_id_dag_run",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("dag_id", "run_id", "task_id", name=OLD_KEY),
        sa.Index("ix_task_instance_state_pool", "state", "pool"),
        sa.Index("ix_task_instance_dag_id_state", "dag_id", "state"),
        sa.Index("ix_task_instance_queued_by_job_id_state", "queued_by_job_id", "state"),
    )


def _task_log_at_0007() -> sa.Table:
    return sa.Table(
        "task_log",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True, nullable=False),
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
        sa.UniqueConstraint("dag_id", "run_id", "task_id", "try_number", "chunk_offset", name=LOG_OLD_KEY),
    )


def upgrade() -> None:
    copy_from = _table_at_0007() if context.is_offline_mode() else None
    with op.batch_alter_table("task_instance", copy_from=copy_from) as batch_op:
        batch_op.add_column(sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False))
        batch_op.drop_constraint(OLD_KEY, type_="unique")
        batch_op.create_unique_constraint(NEW_KEY, ["dag_id", "run_id", "task_id", "map_index"])
    copy_from = _task_log_at_0007() if context.is_offline_mode() else None
    with op.batch_alter_table("task_log", copy_from=copy_from) as batch_op:
        batch_op.add_column(sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False))
        batch_op.drop_constraint(LOG_OLD_KEY, type_="unique")
        batch_op.create_unique_constraint(
            LOG_NEW_KEY, ["dag_id", "run_id", "task_id", "map_index", "try_number", "chunk_offset"]
        )


def downgrade() -> None:
    # Before this revision a task has one row per run: a mapped task keeps its first instance.
    op.execute("DELETE FROM task_instance WHERE map_index > 0")
    op.execute("DELETE FROM task_log WHERE map_index > 0")
    with op.batch_alter_table("task_log") as batch_op:
        batch_op.drop_constraint(LOG_NEW_KEY, type_="unique")
        batch_op.create_unique_constraint(
            LOG_OLD_KEY, ["dag_id", "run_id", "task_id", "try_number", "chunk_offset"]
        )
        batch_op.drop_column("map_index")
    with op.batch_alter_table("task_instance") as batch_op:
        batch_op.drop_constraint(NEW_KEY, type_="unique")
        batch_op.create_unique_constraint(OLD_KEY, ["dag_id", "run_id", "task_id"])
        batch_op.drop_column("map_index")
