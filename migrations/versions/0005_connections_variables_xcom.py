"""Add connection, variable and xcom: what DAGs read (encrypted at rest) and what their tasks pass on.

Revision ID: 0005_connections_variables_xcom
Revises: 0004_dag_file
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minisched.models.types import UtcDateTime

revision = "0005_connections_variables_xcom"
down_revision = "0004_dag_file"
branch_labels = None
depends_on = None

ID_LEN = 250


def upgrade() -> None:
    op.create_table(
        "connection",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conn_id", sa.String(ID_LEN), nullable=False),
        sa.Column("conn_type", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("host", sa.String(500), nullable=True),
        sa.Column("schema", sa.String(500), nullable=True),
        sa.Column("login", sa.Text(), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_connection"),
        sa.UniqueConstraint("conn_id", name="uq_connection_conn_id"),
    )
    op.create_table(
        "variable",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(ID_LEN), nullable=False),
        sa.Column("val", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_variable"),
        sa.UniqueConstraint("key", name="uq_variable_key"),
    )
    op.create_table(
        "xcom",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("task_id", sa.String(ID_LEN), nullable=False),
        sa.Column("map_index", sa.Integer(), server_default="-1", nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_xcom_dag_id_run_id_dag_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_xcom"),
        sa.UniqueConstraint(
            "dag_id",
            "run_id",
            "task_id",
            "map_index",
            "key",
            name="uq_xcom_dag_id_run_id_task_id_map_index_key",
        ),
    )


def downgrade() -> None:
    op.drop_table("xcom")
    op.drop_table("variable")
    op.drop_table("connection")
