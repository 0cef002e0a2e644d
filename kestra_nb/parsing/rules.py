"""Flow-wide rules of Kestra's FlowValidator that read several sections of a flow at once.

`check_references`: an input or a task whose id contains `-` cannot be read as `{{ inputs.my-id }}` or
`{{ outputs.my-id.value }}` (the expression reads a subtraction); Kestra refuses such references, naming the
offending tasks and flow outputs, and so does this: one violation per rule, listing the offenders, at the
first offending property. `check_schedule_inputs`: a Schedule trigger should supply every required input
that has no default, or each of its executions fails on the missing input. Recent Kestra refuses such a
flow at save; the Kestra releases this project follows accept it (their own test flows `switch` and
`task-flow` do it), so here it is a warning, as the validate endpoint reports warnings.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

from ..model.flow import Input, Output, TaskSpec
from .checker import Checker, child
from .triggers import SCHEDULE

_BRACKETS = "keys with dashes require bracket notation"
INPUT_REFERENCE = f"Invalid input reference: use inputs[key-name] instead of inputs.key-name — {_BRACKETS}"
OUTPUT_REFERENCE = f"Invalid output reference: use outputs[key-name] instead of outputs.key-name — {_BRACKETS}"


def check_references(ck: Checker, tasks: list[TaskSpec], inputs: list[Input], outputs: list[Output]) -> None:
    """Refuse `inputs.a-b` and `outputs.a-b.x` written as a whole expression, as Kestra's FlowValidator does."""
    every = list(_walk(tasks))
    input_patterns = [re.compile(r"\{\{\s*inputs\." + re.escape(x.id) + r"\s*\}\}")
                      for x in inputs if isinstance(x, Input) and "-" in x.id]
    output_patterns = [re.compile(r"\{\{\s*outputs\." + re.escape(t.id) + r"\.[^}]+\s*\}\}")
                       for t in every if "-" in t.id]
    if input_patterns:
        _report(ck, f"{INPUT_REFERENCE}, offending tasks:", _offending_tasks(every, input_patterns))
    if output_patterns:
        _report(ck, f"{OUTPUT_REFERENCE}, offending tasks:", _offending_tasks(every, output_patterns))
        offending_outputs = []
        for output in outputs:
            for name, value in (("value", output.value), ("description", output.description),
                                ("displayName", output.display_name)):
                if _matches(value, output_patterns):
                    offending_outputs.append((output.id, child(output.path, name)))
                    break
        _report(ck, f"{OUTPUT_REFERENCE}, offending outputs:", offending_outputs)


def check_schedule_inputs(ck: Checker, inputs: list[Input], triggers: list[tuple[str, dict[str, Any]]]) -> None:
    """Warn about a Schedule trigger leaving a required input without a value (no default, not in its `inputs`)."""
    required = [x.id for x in inputs if isinstance(x, Input) and x.required and x.defaults is None]
    if not required:
        return
    for path, trigger in triggers:
        if trigger.get("type") != SCHEDULE:
            continue
        given = trigger.get("inputs") if isinstance(trigger.get("inputs"), dict) else {}
        missing = [ident for ident in required if not _supplies(given, ident)]
        if missing:
            names = ", ".join(f"'{ident}'" for ident in missing)
            ck.warnings.append(f"Missing inputs for Schedule Trigger '{trigger.get('id')}', missing inputs: {names}")


def _walk(tasks: Iterable[TaskSpec]) -> Iterator[TaskSpec]:
    for task in tasks:
        yield task
        yield from _walk(task.all_children())


def _offending_tasks(tasks: list[TaskSpec], patterns: list[re.Pattern[str]]) -> list[tuple[str, str]]:
    """(task id, property path) of each task whose own properties (not its children) hold a reference."""
    found = []
    for task in tasks:
        for name, value in task.props.items():
            if _matches(value, patterns):
                found.append((task.id, child(task.path, name)))
                break
    return found


def _matches(value: Any, patterns: list[re.Pattern[str]]) -> bool:
    if isinstance(value, str):
        return any(p.search(value) for p in patterns)
    if isinstance(value, dict):
        return any(_matches(v, patterns) for v in value.values())
    if isinstance(value, list):
        return any(_matches(v, patterns) for v in value)
    return False


def _report(ck: Checker, message: str, offenders: list[tuple[str, str]]) -> None:
    if offenders:
        ck.error(offenders[0][1], f"{message} [{', '.join(ident for ident, _ in offenders)}]")


def _supplies(given: dict[str, Any], ident: str) -> bool:
    """Whether trigger inputs name an input id, flat (`a.b: 1`) or nested (`a: {b: 1}`)."""
    if ident in given:
        return True
    head, dot, rest = ident.partition(".")
    return bool(dot) and isinstance(given.get(head), dict) and _supplies(given[head], rest)
