"""Exceptions shared by DAG authors, the loader, the scheduler and the executors.

Pure Python on purpose: DAG files import these, so they must not pull in the DB layer.
"""

from __future__ import annotations


class MinischedError(Exception):
    """Base class of every error minisched raises on purpose."""


class InputError(MinischedError):
    """A refused input, its message naming each input by its API field name (`logical_date`).

    Shared by the API, the UI and the CLI; each says the name its user typed (`for_cli` gives the flags).
    """

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields

    def for_cli(self) -> str:
        """The message with each field name as the command-line flag (`--logical-date`)."""
        text = str(self)
        for field in self.fields:
            text = text.replace(field, "--" + field.replace("_", "-"))
        return text


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


class ConnectionNotFound(MinischedError, LookupError):
    """No connection with that id, in the environment or the database (Airflow's AirflowNotFoundException)."""


class VariableNotFound(MinischedError, KeyError):
    """No variable with that key and no default was given (Airflow raises KeyError too)."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0]) if self.args else ""


class SecretsError(MinischedError):
    """A secret cannot be encrypted or decrypted: no Fernet key, or not the key it was written with."""


class InvalidConnection(MinischedError, ValueError):
    """A connection's URI, JSON or a field is invalid; the message names the connection and the field."""


class FailTask(MinischedError):
    """Raise inside a task to fail the current try at once, without retries.

    The equivalent of Airflow's ``AirflowFailException``.
    """


class ParamValidationError(MinischedError, ValueError):
    """A DAG param's value (its default, or a run's conf) breaks the param's schema."""


class XComError(TaskFailure):
    """A value pushed to XCom cannot be stored: not JSON-serializable, or over the size cap."""
