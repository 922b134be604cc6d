"""Exceptions shared by DAG authors, the loader, the scheduler and the executors.

Pure Python on purpose: DAG files import these, so they must not pull in the DB layer.
"""

from __future__ import annotations


class MinischedError(Exception):
    """Base class of every error minisched raises on purpose."""


class DagDefinitionError(MinischedError, ValueError):
    """A DAG file describes something invalid (bad id, cycle, naive date, bad cron, ...).

    Raised while the file is imported, so the loader can record it as an import error
    naming the file; the message says what is wrong, where, and how to fix it.
    """


class SkipTask(MinischedError):
    """Raise inside a task to end the current try as ``skipped`` instead of failed.

    The equivalent of Airflow's ``AirflowSkipException``.
    """


class TaskFailure(MinischedError):
    """A task failed in a way its operator detected (e.g. a non-zero exit code)."""


class TaskTimeout(TaskFailure):
    """A try ran longer than its ``execution_timeout``."""
