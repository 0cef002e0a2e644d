"""The exception tree of kestra_nb: every user mistake is a `KestraNbError` carrying where and what.

KestraNbError                       base of everything we raise on purpose
├── FlowValidationError             the flow's YAML is invalid; `.violations` lists each with path and line:column
├── InputValidationError            execution inputs are missing or invalid; `.errors` holds Kestra's messages
├── ExpressionError                 a template failed to render (undefined variable, syntax, sandbox)
├── TaskFailure                     a task failed on purpose or on bad data (its message is logged as ERROR)
├── NotFoundError                   a flow, revision or execution does not exist
├── IllegalArgumentError            an argument is not acceptable (a system label from a client…)
├── IllegalStateError               the operation does not fit the current state (kill a finished execution…)
├── ExecutionTimeoutError           run(..., timeout=) ran out before the execution ended
├── StoreError                      the store cannot be opened, migrated or written
└── ConfigurationError              the home's config.yml cannot be read or is not what it should be

HTTP maps these to Kestra's status codes; the CLI and the magic print `str(err)`, never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .model.execution import Execution


class KestraNbError(Exception):
    """Base of every error kestra_nb raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem in a flow: its path (`tasks[1].format`), what is wrong, and where in the YAML."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line is not None else ""
        return f"{self.path}: {self.message}{where}" if self.path else f"{self.message}{where}"


class FlowValidationError(KestraNbError):
    """The flow is invalid; every violation found is listed at once."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = list(violations)
        super().__init__("Invalid flow:\n" + "\n".join(f"- {v}" for v in self.violations))


class InputValidationError(KestraNbError):
    """Inputs are missing or invalid; `errors` are Kestra's messages, one per failing input."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class ExpressionError(KestraNbError):
    """A template could not be rendered."""

    def __init__(self, message: str, expression: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.expression = expression
        self.line = line


class TaskFailure(KestraNbError):
    """A task failed; the message is what the task run's ERROR log says.

    `outputs`, when given, are stored on the failed task run (a script's `vars` emitted before it failed).
    `state` is the state it ends in when not FAILED: KILLED or WARNING (a Subflow transmitting its child's).
    """

    def __init__(self, message: str, outputs: dict[str, Any] | None = None, state: str = "FAILED") -> None:
        super().__init__(message)
        self.outputs = outputs
        self.state = state


class NotFoundError(KestraNbError):
    """The flow, revision or execution does not exist."""


class IllegalArgumentError(KestraNbError):
    """An argument is not acceptable (Kestra's IllegalArgumentException, HTTP 422)."""


class IllegalStateError(KestraNbError):
    """The operation does not fit the current state."""


class ExecutionTimeoutError(KestraNbError):
    """The execution did not end in time; it was killed and `.execution` holds it as it ended."""

    def __init__(self, message: str, execution: Execution | None = None) -> None:
        super().__init__(message)
        self.execution = execution


class StoreError(KestraNbError):
    """The store cannot be opened, migrated or written; `public` says so without the server's paths."""

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or "the store could not be read or written"


class ConfigurationError(KestraNbError):
    """The home's configuration file is unreadable or malformed (the message names the key)."""


def describe(value: Any) -> str:
    """Name a YAML/JSON value's type the way our messages do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def error_record(exc: KestraNbError) -> dict[str, Any]:
    """An error as JSON, to be raised again in another process (`raise_recorded`): a command refused by the
    process driving an execution answers its sender as it would have been answered there."""
    record: dict[str, Any] = {"type": type(exc).__name__, "message": exc.message}
    if isinstance(exc, InputValidationError):
        record["errors"] = exc.errors
    return record


def recorded_error(record: dict[str, Any]) -> KestraNbError:
    """The error an `error_record` describes (a plain KestraNbError for a kind not carried across)."""
    kind, message = record.get("type"), str(record.get("message", ""))
    if kind == "InputValidationError":
        return InputValidationError([str(e) for e in record.get("errors") or [message]])
    cls = {"NotFoundError": NotFoundError, "IllegalArgumentError": IllegalArgumentError,
           "IllegalStateError": IllegalStateError}.get(str(kind), KestraNbError)
    return cls(message)
