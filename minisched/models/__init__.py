"""Typed ORM models of the metadata database (the tables listed in README.md, "How it works")."""

from typing import cast

from sqlalchemy import Table

from minisched.models.api_token import ApiToken
from minisched.models.base import Base
from minisched.models.connection import Connection
from minisched.models.dag import DagModel, SerializedDagModel
from minisched.models.dag_callback_request import DagCallbackRequest
from minisched.models.dag_file import DagFile
from minisched.models.dag_run import DagRun, RunKey
from minisched.models.import_error import ImportError_
from minisched.models.job import Job
from minisched.models.log import Log
from minisched.models.pool import DEFAULT_POOL_NAME, DEFAULT_POOL_SLOTS, Pool
from minisched.models.state import DagRunState, DagRunType, JobState, TaskInstanceState
from minisched.models.task_instance import TaskInstance
from minisched.models.task_log import TaskLog
from minisched.models.variable import Variable
from minisched.models.xcom import XCom


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, for executemany statements with custom WHERE clauses (hot paths)."""
    return cast(Table, model.__table__)


__all__ = [
    "DEFAULT_POOL_NAME",
    "DEFAULT_POOL_SLOTS",
    "ApiToken",
    "Base",
    "Connection",
    "DagCallbackRequest",
    "DagFile",
    "DagModel",
    "DagRun",
    "DagRunState",
    "DagRunType",
    "ImportError_",
    "Job",
    "JobState",
    "Log",
    "Pool",
    "RunKey",
    "SerializedDagModel",
    "TaskInstance",
    "TaskInstanceState",
    "TaskLog",
    "Variable",
    "XCom",
    "table_of",
]
