"""Add job (scheduler heartbeats) and import_error, the queueing job of a task instance, and log indexes.

Revision ID: 0003_job_import_error
Revises: 0002_log_extra
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minisched.models.types import UtcDateTime

revision = "0003_job_import_error"
down_revision = "0002_log_extra"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_type", sa.String(30), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("hostname", sa.String(500), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("start_date", UtcDateTime(), nullable=False),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("latest_heartbeat", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
    )
    op.create_index(
        "ix_job_job_type_state_latest_heartbeat", "job", ["job_type", "state", "latest_heartbeat"]
    )
    op.create_table(
        "import_error",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("filename", sa.String(1024), nullable=False),
        sa.Column("stacktrace", sa.Text(), nullable=False),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_import_error"),
    )
    op.create_index("ix_import_error_filename", "import_error", ["filename"])
    with op.batch_alter_table("task_instance") as batch_op:
        batch_op.add_column(sa.Column("queued_by_job_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_task_instance_queued_by_job_id_state", ["queued_by_job_id", "state"])
    op.create_index("ix_log_dttm", "log", ["dttm"])
    op.create_index("ix_log_dag_id_run_id_task_id", "log", ["dag_id", "run_id", "task_id"])


def downgrade() -> None:
    op.drop_index("ix_log_dag_id_run_id_task_id", table_name="log")
    op.drop_index("ix_log_dttm", table_name="log")
    with op.batch_alter_table("task_instance") as batch_op:
        batch_op.drop_index("ix_task_instance_queued_by_job_id_state")
        batch_op.drop_column("queued_by_job_id")
    op.drop_index("ix_import_error_filename", table_name="import_error")
    op.drop_table("import_error")
    op.drop_index("ix_job_job_type_state_latest_heartbeat", table_name="job")
    op.drop_table("job")
