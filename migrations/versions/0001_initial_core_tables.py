"""Initial core tables: dag, serialized_dag, dag_run, task_instance, slot_pool, log.

Revision ID: 0001_core_tables
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minisched.models.types import UtcDateTime

revision = "0001_core_tables"
down_revision = None
branch_labels = None
depends_on = None

ID_LEN = 250


def upgrade() -> None:
    op.create_table(
        "dag",
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("fileloc", sa.String(2000), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.String(100), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("max_active_runs", sa.Integer(), nullable=False),
        sa.Column("max_active_tasks", sa.Integer(), nullable=False),
        sa.Column("next_dagrun", UtcDateTime(), nullable=True),
        sa.Column("next_dagrun_data_interval_start", UtcDateTime(), nullable=True),
        sa.Column("next_dagrun_data_interval_end", UtcDateTime(), nullable=True),
        sa.Column("next_dagrun_create_after", UtcDateTime(), nullable=True),
        sa.Column("last_parsed_time", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("dag_id", name="pk_dag"),
    )
    op.create_index(
        "ix_dag_is_active_is_paused_next_dagrun_create_after",
        "dag",
        ["is_active", "is_paused", "next_dagrun_create_after"],
    )
    op.create_table(
        "serialized_dag",
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("fileloc", sa.String(2000), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("dag_hash", sa.String(64), nullable=False),
        sa.Column("last_updated", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_id"], ["dag.dag_id"], name="fk_serialized_dag_dag_id_dag", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("dag_id", name="pk_serialized_dag"),
    )
    op.create_table(
        "dag_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_type", sa.String(16), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("logical_date", UtcDateTime(), nullable=False),
        sa.Column("data_interval_start", UtcDateTime(), nullable=True),
        sa.Column("data_interval_end", UtcDateTime(), nullable=True),
        sa.Column("queued_at", UtcDateTime(), nullable=True),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("conf", sa.JSON(), nullable=True),
        sa.Column("creating_job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["dag_id"], ["dag.dag_id"], name="fk_dag_run_dag_id_dag", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_dag_run"),
        sa.UniqueConstraint("dag_id", "run_id", name="uq_dag_run_dag_id_run_id"),
        sa.UniqueConstraint("dag_id", "logical_date", name="uq_dag_run_dag_id_logical_date"),
    )
    op.create_index("ix_dag_run_state_dag_id", "dag_run", ["state", "dag_id"])
    op.create_table(
        "task_instance",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
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
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_task_instance_dag_id_run_id_dag_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_task_instance"),
        sa.UniqueConstraint("dag_id", "run_id", "task_id", name="uq_task_instance_dag_id_run_id_task_id"),
    )
    op.create_index("ix_task_instance_state_pool", "task_instance", ["state", "pool"])
    op.create_index("ix_task_instance_dag_id_state", "task_instance", ["dag_id", "state"])
    op.create_table(
        "slot_pool",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pool", sa.String(256), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_slot_pool"),
        sa.UniqueConstraint("pool", name="uq_slot_pool_pool"),
    )
    op.create_table(
        "log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dttm", UtcDateTime(), nullable=False),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=True),
        sa.Column("task_id", sa.String(ID_LEN), nullable=True),
        sa.Column("run_id", sa.String(ID_LEN), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_log"),
    )


def downgrade() -> None:
    op.drop_table("log")
    op.drop_table("slot_pool")
    op.drop_index("ix_task_instance_dag_id_state", table_name="task_instance")
    op.drop_index("ix_task_instance_state_pool", table_name="task_instance")
    op.drop_table("task_instance")
    op.drop_index("ix_dag_run_state_dag_id", table_name="dag_run")
    op.drop_table("dag_run")
    op.drop_table("serialized_dag")
    op.drop_index("ix_dag_is_active_is_paused_next_dagrun_create_after", table_name="dag")
    op.drop_table("dag")
