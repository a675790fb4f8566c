"""A state's and a Catcher's ``Output`` and ``Assign`` read as compiled values (issue 10): the
core evaluates ``output_value``/``assign_value`` over the state's bindings (``$states.result``
after work, ``$states.errorOutput`` in a Catcher), Assign and Output over the same variables,
and never reads a raw template."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from runtime.core.effects import RunTask
from runtime.core.events import HistoryEvent
from runtime.definition.model import Pass, StateMachine
from runtime.definition.values import Constant, PayloadTemplate
from runtime.lang.payload import Payload
from tests.core.core_support import Driver, Outcome, machine_of

JSON = Any


def _jsonata(states: dict[str, JSON]) -> StateMachine:
    return machine_of({"QueryLanguage": "JSONata", "StartAt": "S", "States": states})


def _exited(history: list[HistoryEvent], kind: str) -> dict[str, JSON]:
    (event,) = (event for event in history if event.type == kind)
    return dict(event.details)


def _assigned(details: dict[str, JSON]) -> dict[str, JSON]:
    return {name: json.loads(text) for name, text in details["assignedVariables"].items()}


def test_a_task_output_and_assign_see_the_result_and_the_old_variables() -> None:
    machine = _jsonata(
        {
            "S": {
                "Type": "Pass",
                "Assign": {"x": 1},
                "Next": "T",
            },
            "T": {
                "Type": "Task",
                "Resource": "h",
                "Assign": {"x": "{% $x + 10 %}", "got": "{% $states.result.v %}"},
                "Output": {"sum": "{% $states.result.v + $x %}"},
                "End": True,
            },
        }
    )
    history, _ = Driver(machine, lambda task: ("succeeded", {"v": 5})).run({})
    exited = _exited(history, "TaskStateExited")
    # Output reads $x as the state was entered (1), not the 11 its Assign gives.
    assert json.loads(exited["output"]) == {"sum": 6}
    assert _assigned(exited) == {"x": 11, "got": 5}


def test_a_task_without_output_passes_its_result() -> None:
    machine = _jsonata({"S": {"Type": "Task", "Resource": "h", "End": True}})
    history, _ = Driver(machine, lambda task: ("succeeded", [1, 2])).run({"in": 0})
    exited = _exited(history, "TaskStateExited")
    assert json.loads(exited["output"]) == [1, 2]
    assert "assignedVariables" not in exited


def _fails(task: RunTask) -> Outcome:
    return ("failed", "Boom", "it broke")


def test_a_catcher_output_and_assign_see_the_error_output() -> None:
    machine = _jsonata(
        {
            "S": {
                "Type": "Task",
                "Resource": "h",
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"error": "{% $states.errorOutput.Error %}"},
                        "Output": "{% $states.errorOutput.Cause & '!' %}",
                        "Next": "Done",
                    }
                ],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        }
    )
    history, state = Driver(machine, _fails).run({})
    exited = _exited(history, "TaskStateExited")
    assert json.loads(exited["output"]) == "it broke!"
    assert _assigned(exited) == {"error": "Boom"}
    assert state.status == "SUCCEEDED"


def test_a_catcher_without_output_passes_the_error_output() -> None:
    machine = _jsonata(
        {
            "S": {
                "Type": "Task",
                "Resource": "h",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        }
    )
    history, _ = Driver(machine, _fails).run({})
    exited = _exited(history, "TaskStateExited")
    assert json.loads(exited["output"]) == {"Error": "Boom", "Cause": "it broke"}


def test_the_core_reads_the_compiled_values() -> None:
    """The model's values decide, whichever template the definition's source held."""
    machine = _jsonata({"S": {"Type": "Pass", "Output": "{% 'from source' %}", "End": True}})
    state = machine.states["S"]
    assert isinstance(state, Pass)
    replaced = msgspec.structs.replace(
        state,
        output_value=Constant(field="Output", value="compiled"),
        assign_value=PayloadTemplate(field="Assign", payload=Payload.compile({"k": 3}, "/")),
    )
    machine = msgspec.structs.replace(machine, states={"S": replaced})
    history, _ = Driver(machine).run({})
    exited = _exited(history, "PassStateExited")
    assert json.loads(exited["output"]) == "compiled"
    assert _assigned(exited) == {"k": 3}


def test_a_jsonata_wait_and_succeed_leave_through_their_compiled_values() -> None:
    machine = _jsonata(
        {
            "S": {
                "Type": "Wait",
                "Seconds": 0,
                "Assign": {"seen": "{% $states.input.n %}"},
                "Output": {"n": "{% $states.input.n * 2 %}"},
                "Next": "Done",
            },
            "Done": {"Type": "Succeed", "Output": "{% [$seen, $states.input.n] %}"},
        }
    )
    history, state = Driver(machine).run({"n": 4})
    exited = _exited(history, "WaitStateExited")
    assert json.loads(exited["output"]) == {"n": 8}
    assert _assigned(exited) == {"seen": 4}
    assert json.loads(_exited(history, "SucceedStateExited")["output"]) == [4, 8]
    assert state.status == "SUCCEEDED"


def test_a_jsonpath_catcher_assign_reads_the_error_output() -> None:
    machine = machine_of(
        {
            "StartAt": "S",
            "States": {
                "S": {
                    "Type": "Task",
                    "Resource": "h",
                    "Catch": [
                        {
                            "ErrorEquals": ["States.ALL"],
                            "Assign": {"error.$": "$.Error"},
                            "ResultPath": "$.caught",
                            "Next": "Done",
                        }
                    ],
                    "End": True,
                },
                "Done": {"Type": "Succeed"},
            },
        }
    )
    history, _ = Driver(machine, _fails).run({"in": 1})
    exited = _exited(history, "TaskStateExited")
    assert json.loads(exited["output"]) == {
        "in": 1,
        "caught": {"Error": "Boom", "Cause": "it broke"},
    }
    assert _assigned(exited) == {"error": "Boom"}
