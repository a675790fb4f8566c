"""The Step Functions API over HTTP, driven by real boto3 against a real uvicorn server."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.http.sfn_server import next_token

JSON = Any
ROLE = "arn:aws:iam::123456789012:role/any"
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"v": 1}, "End": True}}}
ASK = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "Ask.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"},
            "HeartbeatSeconds": 60,
            "End": True,
        }
    },
}
WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
BOOM = {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "Boom", "End": True}}}


def create(sfn: Any, name: str, definition: JSON, **fields: JSON) -> str:
    made = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE, **fields
    )
    arn: str = made["stateMachineArn"]
    return arn


def wait_status(sfn: Any, arn: str, *, not_status: str = "RUNNING") -> dict[str, JSON]:
    for _ in range(500):
        described: dict[str, JSON] = sfn.describe_execution(executionArn=arn)
        if described["status"] != not_status:
            return described
        time.sleep(0.02)
    raise AssertionError(f"{arn} stayed {not_status}")


def code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    error: str = excinfo.value.response["Error"]["Code"]
    return error


def test_create_describe_update_and_list_state_machines(sfn: Any) -> None:
    arn = create(sfn, "Crud", PASS)
    assert arn == "arn:aws:states:us-east-1:123456789012:stateMachine:Crud"
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert json.loads(described["definition"]) == PASS
    assert described["status"] == "ACTIVE"
    assert described["type"] == "STANDARD"
    assert isinstance(described["creationDate"], dt.datetime)
    assert "revisionId" not in described  # AWS shows none before the first update

    changed = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"v": 2}, "End": True}}}
    updated = sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(changed))
    assert updated["revisionId"]
    again = sfn.describe_state_machine(stateMachineArn=arn)
    assert json.loads(again["definition"]) == changed
    assert again["revisionId"] == updated["revisionId"]
    # New executions run the updated definition.
    started = sfn.start_execution(stateMachineArn=arn)
    done = wait_status(sfn, started["executionArn"])
    assert json.loads(done["output"]) == {"v": 2}

    role_only = sfn.update_state_machine(stateMachineArn=arn, roleArn=ROLE)
    assert role_only["revisionId"] != updated["revisionId"]
    with pytest.raises(sfn.exceptions.MissingRequiredParameter):
        sfn.update_state_machine(stateMachineArn=arn)
    with pytest.raises(sfn.exceptions.InvalidDefinition, match="StartAt"):
        sfn.update_state_machine(stateMachineArn=arn, definition='{"States": {}}')

    names = []
    for index in range(3):
        create(sfn, f"Listed{index}", PASS)
    pages = sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 2})
    sizes = []
    for page in pages:
        sizes.append(len(page["stateMachines"]))
        names.extend(m["name"] for m in page["stateMachines"])
    assert {"Crud", "Listed0", "Listed1", "Listed2"} <= set(names)
    assert len(names) == len(set(names))
    assert max(sizes) == 2
    assert len(sizes) >= 2


def test_start_describe_list_and_history(sfn: Any) -> None:
    arn = create(sfn, "Runs", PASS)
    arns = [
        sfn.start_execution(stateMachineArn=arn, name=f"run-{i}", input='{"i": 1}')["executionArn"]
        for i in range(5)
    ]
    for execution in arns:
        done = wait_status(sfn, execution)
        assert done["status"] == "SUCCEEDED"
        assert json.loads(done["input"]) == {"i": 1}
        assert isinstance(done["stopDate"], dt.datetime)
    listed = sfn.list_executions(stateMachineArn=arn, maxResults=2)
    assert len(listed["executions"]) == 2
    assert "input" not in listed["executions"][0]
    seen = [e["executionArn"] for e in listed["executions"]]
    while "nextToken" in listed:
        listed = sfn.list_executions(
            stateMachineArn=arn, maxResults=2, nextToken=listed["nextToken"]
        )
        seen.extend(e["executionArn"] for e in listed["executions"])
    assert sorted(seen) == sorted(arns)
    none = sfn.list_executions(stateMachineArn=arn, statusFilter="FAILED")
    assert none["executions"] == []

    history = sfn.get_execution_history(executionArn=arns[0])["events"]
    types = [e["type"] for e in history]
    assert types == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert isinstance(history[0]["timestamp"], dt.datetime)
    first = sfn.get_execution_history(executionArn=arns[0], maxResults=3)
    assert [e["id"] for e in first["events"]] == [1, 2, 3]
    rest = sfn.get_execution_history(
        executionArn=arns[0], maxResults=3, nextToken=first["nextToken"]
    )
    assert [e["id"] for e in rest["events"]] == [4]
    assert "nextToken" not in rest
    backwards = sfn.get_execution_history(executionArn=arns[0], reverseOrder=True)["events"]
    assert [e["id"] for e in backwards] == [4, 3, 2, 1]
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.get_execution_history(executionArn=arns[0], nextToken=first["nextToken"] + "x")
    bare = sfn.get_execution_history(executionArn=arns[0], includeExecutionData=False)["events"]
    assert "input" not in bare[0]["executionStartedEventDetails"]
    assert "input" in history[0]["executionStartedEventDetails"]

    machine = sfn.describe_state_machine_for_execution(executionArn=arns[0])
    assert machine["stateMachineArn"] == arn
    assert json.loads(machine["definition"]) == PASS


def test_list_executions_pages_each_row_once_while_executions_start(sfn: Any) -> None:
    """``nextToken`` is the last row's sort key (issue 13): executions started between two
    pages are newer than it, so no row of a later page repeats one already listed."""
    arn = create(sfn, "Pages", PASS)
    first = [
        sfn.start_execution(stateMachineArn=arn, name=f"first-{i}")["executionArn"]
        for i in range(7)
    ]
    listed = sfn.list_executions(stateMachineArn=arn, maxResults=3)
    seen = [e["executionArn"] for e in listed["executions"]]
    later: list[str] = []
    while "nextToken" in listed:
        later += [
            sfn.start_execution(stateMachineArn=arn, name=f"later-{len(seen)}-{i}")["executionArn"]
            for i in range(2)
        ]
        listed = sfn.list_executions(
            stateMachineArn=arn, maxResults=3, nextToken=listed["nextToken"]
        )
        seen += [e["executionArn"] for e in listed["executions"]]
    assert seen == first[::-1]  # newest first, each once, none of those started meanwhile
    everything = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["executionArn"] for e in everything] == (first + later)[::-1]
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.list_executions(stateMachineArn=arn, nextToken="bm90IGEgdG9rZW4=")
    history = sfn.get_execution_history(executionArn=first[0], maxResults=1)
    with pytest.raises(sfn.exceptions.InvalidToken):  # another action's token
        sfn.list_executions(stateMachineArn=arn, nextToken=history["nextToken"])


def test_list_executions_redrive_filter_fills_each_page(sfn: Any) -> None:
    """``redriveFilter`` is applied before the page is cut: a page holds ``maxResults``
    executions whenever that many match, however they interleave with the others."""
    arn = create(sfn, "Redriven", BOOM)
    arns = [
        sfn.start_execution(stateMachineArn=arn, name=f"boom-{i}")["executionArn"] for i in range(6)
    ]
    for execution in arns:
        assert wait_status(sfn, execution)["status"] == "FAILED"
    for execution in arns[::2]:
        sfn.redrive_execution(executionArn=execution)
        assert wait_status(sfn, execution)["status"] == "FAILED"
    page = sfn.list_executions(stateMachineArn=arn, maxResults=2, redriveFilter="REDRIVEN")
    assert [e["executionArn"] for e in page["executions"]] == [arns[4], arns[2]]
    assert [e["redriveCount"] for e in page["executions"]] == [1, 1]
    rest = sfn.list_executions(
        stateMachineArn=arn, maxResults=2, redriveFilter="REDRIVEN", nextToken=page["nextToken"]
    )
    assert [e["executionArn"] for e in rest["executions"]] == [arns[0]]
    assert "nextToken" not in rest
    never = sfn.list_executions(stateMachineArn=arn, maxResults=3, redriveFilter="NOT_REDRIVEN")
    assert [e["executionArn"] for e in never["executions"]] == [arns[5], arns[3], arns[1]]
    assert "nextToken" not in never


def test_start_sync_execution_needs_an_express_machine(sfn: Any) -> None:
    express = create(sfn, "Quick", PASS, type="EXPRESS")
    done = sfn.start_sync_execution(stateMachineArn=express, input='{"a": 1}')
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"v": 1}
    assert ":express:Quick:" in done["executionArn"]
    assert done["billingDetails"]["billedDurationInMilliseconds"] >= 100
    failed = sfn.start_sync_execution(
        stateMachineArn=create(sfn, "QuickBoom", BOOM, type="EXPRESS")
    )
    assert failed["status"] == "FAILED"
    assert failed["error"] == "RuntimeError"
    standard = create(sfn, "Slow", PASS)
    with pytest.raises(sfn.exceptions.StateMachineTypeNotSupported):
        sfn.start_sync_execution(stateMachineArn=standard)


def test_stop_and_redrive(sfn: Any) -> None:
    arn = create(sfn, "Waits", WAIT)
    started = sfn.start_execution(stateMachineArn=arn, name="long")
    stopped = sfn.stop_execution(
        executionArn=started["executionArn"], error="Manual", cause="by a test"
    )
    assert isinstance(stopped["stopDate"], dt.datetime)
    described = sfn.describe_execution(executionArn=started["executionArn"])
    assert described["status"] == "ABORTED"
    assert described["error"] == "Manual"
    assert described["redriveStatus"] == "REDRIVABLE"
    redriven = sfn.redrive_execution(executionArn=started["executionArn"])
    assert isinstance(redriven["redriveDate"], dt.datetime)
    again = sfn.describe_execution(executionArn=started["executionArn"])
    assert again["status"] == "RUNNING"
    assert again["redriveCount"] == 1
    types = [
        e["type"] for e in sfn.get_execution_history(executionArn=again["executionArn"])["events"]
    ]
    assert "ExecutionRedriven" in types
    sfn.stop_execution(executionArn=started["executionArn"])
    succeeded = sfn.start_execution(stateMachineArn=create(sfn, "Fine", PASS))
    wait_status(sfn, succeeded["executionArn"])
    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable):
        sfn.redrive_execution(executionArn=succeeded["executionArn"])


def test_task_tokens(sfn: Any) -> None:
    arn = create(sfn, "Approval", ASK)
    first = sfn.start_execution(stateMachineArn=arn, name="yes")
    token = next_token(sfn, first["executionArn"])
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output='{"approved": true}')
    done = wait_status(sfn, first["executionArn"])
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"approved": True}
    with pytest.raises(sfn.exceptions.TaskDoesNotExist):
        sfn.send_task_success(taskToken=token, output="{}")

    second = sfn.start_execution(stateMachineArn=arn, name="no")
    token = next_token(sfn, second["executionArn"])
    with pytest.raises(sfn.exceptions.InvalidOutput):
        sfn.send_task_success(taskToken=token, output="not json")
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="too expensive")
    failed = wait_status(sfn, second["executionArn"])
    assert (failed["status"], failed["error"], failed["cause"]) == (
        "FAILED",
        "Rejected",
        "too expensive",
    )
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_heartbeat(taskToken="not-a-token")


def test_activities_with_a_long_polling_worker(sfn: Any) -> None:
    activity = sfn.create_activity(name="resize")
    activity_arn = activity["activityArn"]
    assert activity_arn == "arn:aws:states:us-east-1:123456789012:activity:resize"
    assert sfn.describe_activity(activityArn=activity_arn)["name"] == "resize"
    sfn.create_activity(name="crop")
    names = [a["name"] for a in sfn.list_activities(maxResults=1)["activities"]]
    assert len(names) == 1
    definition = {
        "StartAt": "Work",
        "States": {"Work": {"Type": "Task", "Resource": activity_arn, "End": True}},
    }
    arn = create(sfn, "Resizer", definition)
    answered: list[str] = []

    def worker() -> None:
        # GetActivityTask long-polls: the task arrives while this call waits.
        task = sfn.get_activity_task(activityArn=activity_arn, workerName="w1")
        answered.append(task["input"])
        sfn.send_task_success(taskToken=task["taskToken"], output='{"size": "small"}')

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.3)  # the worker is polling before any task exists
    started = sfn.start_execution(stateMachineArn=arn, input='{"image": "a.png"}')
    thread.join(30)
    assert not thread.is_alive()
    assert json.loads(answered[0]) == {"image": "a.png"}
    done = wait_status(sfn, started["executionArn"])
    assert json.loads(done["output"]) == {"size": "small"}
    sfn.delete_activity(activityArn=activity_arn)
    with pytest.raises(sfn.exceptions.ActivityDoesNotExist):
        sfn.describe_activity(activityArn=activity_arn)


def test_validate_state_machine_definition_both_types(sfn: Any) -> None:
    ok = sfn.validate_state_machine_definition(definition=json.dumps(PASS), type="STANDARD")
    assert (ok["result"], ok["diagnostics"]) == ("OK", [])
    bad = sfn.validate_state_machine_definition(
        definition='{"States": {"S": {"Type": "Pass", "End": true}}}', type="EXPRESS"
    )
    assert bad["result"] == "FAIL"
    assert bad["diagnostics"] == [
        {
            "severity": "ERROR",
            "code": "SCHEMA_VALIDATION_FAILED",
            "message": "These fields are required: [StartAt]",
            "location": "/",
        }
    ]
    sync = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync", "End": True}
        },
    }
    assert sfn.validate_state_machine_definition(definition=json.dumps(sync))["result"] == "OK"
    express = sfn.validate_state_machine_definition(definition=json.dumps(sync), type="EXPRESS")
    assert express["result"] == "FAIL"
    assert "sync" in express["diagnostics"][0]["message"]


def test_errors_are_botocore_exception_classes(sfn: Any) -> None:
    missing_execution = "arn:aws:states:us-east-1:123456789012:execution:Nope:nope"
    missing_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:Nope"
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist, match="Execution Does Not Exist"):
        sfn.describe_execution(executionArn=missing_execution)
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=missing_machine)
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=missing_machine)
    with pytest.raises(sfn.exceptions.InvalidArn, match="Invalid ARN prefix: nope"):
        sfn.describe_execution(executionArn="nope")
    with pytest.raises(sfn.exceptions.InvalidArn, match="Resource type not valid"):
        sfn.describe_execution(executionArn=missing_machine)
    with pytest.raises(sfn.exceptions.InvalidDefinition, match="SCHEMA_VALIDATION_FAILED"):
        sfn.create_state_machine(name="Bad", definition='{"StartAt": "X"}', roleArn=ROLE)
    arn = create(sfn, "Once", WAIT)
    sfn.start_execution(stateMachineArn=arn, name="same", input="{}")
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="same", input='{"other": 1}')
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input="{not json")
    with pytest.raises(sfn.exceptions.StateMachineAlreadyExists):
        create(sfn, "Once", PASS)
    with pytest.raises(sfn.exceptions.InvalidName):
        create(sfn, "bad name!", PASS)
    token = "AAAA" * 40
    with pytest.raises((sfn.exceptions.TaskDoesNotExist, sfn.exceptions.InvalidToken)):
        sfn.send_task_success(taskToken=token, output="{}")
    with pytest.raises(sfn.exceptions.ValidationException, match="length less than or equal to 80"):
        create(sfn, "n" * 81, PASS)
    with pytest.raises(sfn.exceptions.ValidationException, match="publish is true"):
        create(sfn, "Described", PASS, versionDescription="v1")


def test_a_task_token_of_an_ended_execution_is_task_does_not_exist(sfn: Any) -> None:
    arn = create(sfn, "AskStop", ASK)
    started = sfn.start_execution(stateMachineArn=arn)
    token = next_token(sfn, started["executionArn"])
    sfn.stop_execution(executionArn=started["executionArn"])
    with pytest.raises(sfn.exceptions.TaskDoesNotExist):
        sfn.send_task_success(taskToken=token, output="{}")


def test_deleting_a_state_machine_that_does_not_exist_succeeds(sfn: Any) -> None:
    gone = "arn:aws:states:us-east-1:123456789012:stateMachine:NeverMade"
    assert (
        sfn.delete_state_machine(stateMachineArn=gone)["ResponseMetadata"]["HTTPStatusCode"] == 200
    )


def test_delete_state_machine_stops_its_executions(sfn: Any) -> None:
    arn = create(sfn, "Doomed", ASK)
    started = sfn.start_execution(stateMachineArn=arn, name="waiting")
    next_token(sfn, started["executionArn"])
    assert (
        sfn.delete_state_machine(stateMachineArn=arn)["ResponseMetadata"]["HTTPStatusCode"] == 200
    )
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=arn)
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=arn)
    assert arn not in [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
    assert wait_status(sfn, started["executionArn"])["status"] == "ABORTED"
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.delete_state_machine(stateMachineArn="not-an-arn")


def test_update_keeps_running_executions_on_their_definition(sfn: Any) -> None:
    states: JSON = ASK["States"]

    def asking(tag: str) -> JSON:
        return {
            "StartAt": "Ask",
            "States": {
                "Ask": {**states["Ask"], "End": False, "Next": "Tag"},
                "Tag": {"Type": "Pass", "Result": tag, "End": True},
            },
        }

    arn = create(sfn, "Revised", asking("v1"))
    old = sfn.start_execution(stateMachineArn=arn, name="old")["executionArn"]
    old_token = next_token(sfn, old)
    revision = sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(asking("v2")))
    new = sfn.start_execution(stateMachineArn=arn, name="new")["executionArn"]
    ran = sfn.describe_state_machine_for_execution(executionArn=old)
    assert json.loads(ran["definition"]) == asking("v1")
    assert "revisionId" not in ran  # the first revision has none (AWS)
    runs = sfn.describe_state_machine_for_execution(executionArn=new)
    assert runs["revisionId"] == revision["revisionId"]
    sfn.send_task_success(taskToken=old_token, output="{}")
    sfn.send_task_success(taskToken=next_token(sfn, new), output="{}")
    assert json.loads(wait_status(sfn, old)["output"]) == "v1"
    assert json.loads(wait_status(sfn, new)["output"]) == "v2"


def test_test_state_runs_one_state(sfn: Any) -> None:
    state = {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "Next": "X"}
    result = sfn.test_state(
        definition=json.dumps(state), roleArn=ROLE, input='{"n": 21}', inspectionLevel="DEBUG"
    )
    assert result["status"] == "SUCCEEDED"
    assert result["nextState"] == "X"
    assert json.loads(result["output"]) == {"doubled": 42}
    assert json.loads(result["inspectionData"]["afterParameters"]) == {"doubled": 42}
    with pytest.raises(sfn.exceptions.ValidationException, match="inspectionLevel"):
        sfn.test_state(definition=json.dumps(state), roleArn=ROLE, inspectionLevel="LOUD")
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition='{"Type": "Nope"}', roleArn=ROLE)
