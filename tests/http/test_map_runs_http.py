"""Map Runs over HTTP (issues 13 and 14): DescribeMapRun, ListMapRuns, ListExecutions by
``mapRunArn`` and a child's ``mapRunArn``, driven by real boto3 and the real AWS CLI against a
real ``statemill serve``."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from runtime.http.actions_map_runs import BOTH_LISTING_TARGETS
from tests.http.sfn_server import Server, next_token
from tests.http.test_aws_cli import AWS, aws, out

JSON = Any
ROLE = "arn:aws:iam::123456789012:role/any"
UNKNOWN_RUN = (
    "arn:aws:states:us-east-1:123456789012:mapRun:Nope/Bill:0e6d52a1-7c0e-4b8f-9d1e-1f2a3b4c5d6e"
)


def billing(processor: dict[str, JSON], **map_fields: JSON) -> dict[str, JSON]:
    """A distributed Map labelled ``Bill`` over ``$.customers``."""
    return {
        "StartAt": "Invoices",
        "States": {
            "Invoices": {
                "Type": "Map",
                "Label": "Bill",
                "ItemsPath": "$.customers",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    **processor,
                },
                "End": True,
                **map_fields,
            }
        },
    }


#: Customers above 4 have no address: their child executions fail.
PICKY = {
    "StartAt": "Known",
    "States": {
        "Known": {
            "Type": "Choice",
            "Choices": [{"Variable": "$", "NumericGreaterThan": 4, "Next": "Refuse"}],
            "Default": "Invoice",
        },
        "Invoice": {"Type": "Task", "Resource": "Echo", "End": True},
        "Refuse": {"Type": "Fail", "Error": "Billing.Refused", "Cause": "no address"},
    },
}
ASKING = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "Ask.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"},
            "End": True,
        }
    },
}


def create(sfn: Any, name: str, definition: JSON) -> str:
    made = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    arn: str = made["stateMachineArn"]
    return arn


def finished(sfn: Any, arn: str) -> dict[str, JSON]:
    for _ in range(500):
        described: dict[str, JSON] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError(f"{arn} stayed RUNNING")


def code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    error: str = excinfo.value.response["Error"]["Code"]
    return error


def status_code(excinfo: pytest.ExceptionInfo[ClientError]) -> int:
    status: int = excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return status


@pytest.fixture(scope="module")
def picky_run(sfn: Any) -> dict[str, str]:
    """A finished Map Run over six customers, MaxConcurrency 2, two of them failing (within
    the tolerated failure count): its parent, its state machine and its ARN."""
    machine = create(sfn, "HttpBilling", billing(PICKY, MaxConcurrency=2, ToleratedFailureCount=3))
    started = sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"customers": [1, 2, 3, 4, 5, 6]})
    )
    parent = started["executionArn"]
    assert finished(sfn, parent)["status"] == "SUCCEEDED"
    (run,) = sfn.list_map_runs(executionArn=parent)["mapRuns"]
    return {"machine": machine, "parent": parent, "run": run["mapRunArn"]}


def test_list_map_runs_names_the_run_of_an_execution(sfn: Any, picky_run: dict[str, str]) -> None:
    listed = sfn.list_map_runs(executionArn=picky_run["parent"])
    assert "nextToken" not in listed
    (run,) = listed["mapRuns"]
    assert run["executionArn"] == picky_run["parent"]
    assert ":mapRun:HttpBilling/Bill:" in run["mapRunArn"]
    assert run["stateMachineArn"] == picky_run["machine"] + "/Bill"
    assert isinstance(run["startDate"], dt.datetime)  # epoch seconds on the wire
    assert run["stopDate"] >= run["startDate"]


def test_describe_map_run_counts_the_children(sfn: Any, picky_run: dict[str, str]) -> None:
    described = sfn.describe_map_run(mapRunArn=picky_run["run"])
    assert described["mapRunArn"] == picky_run["run"]
    assert described["executionArn"] == picky_run["parent"]
    assert described["status"] == "SUCCEEDED"
    assert described["maxConcurrency"] == 2
    assert described["toleratedFailureCount"] == 3
    assert described["toleratedFailurePercentage"] == 0.0
    assert described["stopDate"] >= described["startDate"]
    expected = {
        "pending": 0,
        "running": 0,
        "succeeded": 4,
        "failed": 2,
        "timedOut": 0,
        "aborted": 0,
        "total": 6,
        "resultsWritten": 4,  # a succeeded child's result counts as written (AWS)
        "failuresNotRedrivable": 0,
        "pendingRedrive": 0,
    }
    assert described["executionCounts"] == expected
    assert described["itemCounts"] == expected
    assert "redriveCount" not in described  # never redriven
    assert "redriveDate" not in described


def test_list_executions_of_a_map_run_pages_and_filters(
    sfn: Any, picky_run: dict[str, str]
) -> None:
    run = picky_run["run"]
    seen: list[dict[str, JSON]] = []
    token = None
    pages = 0
    while True:
        page = sfn.list_executions(
            mapRunArn=run, maxResults=2, **({"nextToken": token} if token else {})
        )
        pages += 1
        assert len(page["executions"]) <= 2
        seen.extend(page["executions"])
        token = page.get("nextToken")
        if token is None:
            break
    assert pages == 3
    assert len({e["executionArn"] for e in seen}) == 6
    assert {e["mapRunArn"] for e in seen} == {run}
    assert {e["stateMachineArn"] for e in seen} == {picky_run["machine"] + "/Bill"}
    assert sorted(e["status"] for e in seen) == ["FAILED"] * 2 + ["SUCCEEDED"] * 4
    starts = [e["startDate"] for e in seen]
    assert starts == sorted(starts, reverse=True)  # newest first

    failed = sfn.list_executions(mapRunArn=run, statusFilter="FAILED")["executions"]
    assert len(failed) == 2
    assert {e["status"] for e in failed} == {"FAILED"}
    assert sfn.list_executions(mapRunArn=run, statusFilter="RUNNING")["executions"] == []
    # Listing the parent's state machine shows the parent only, without mapRunArn.
    (parent,) = sfn.list_executions(stateMachineArn=picky_run["machine"])["executions"]
    assert parent["executionArn"] == picky_run["parent"]
    assert "mapRunArn" not in parent


def test_describe_execution_of_a_child_names_its_map_run(
    sfn: Any, picky_run: dict[str, str]
) -> None:
    failed = sfn.list_executions(mapRunArn=picky_run["run"], statusFilter="FAILED")["executions"]
    child = sfn.describe_execution(executionArn=failed[0]["executionArn"])
    assert child["mapRunArn"] == picky_run["run"]
    assert child["status"] == "FAILED"
    assert child["error"] == "Billing.Refused"
    assert json.loads(child["input"]) in (5, 6)
    assert "mapRunArn" not in sfn.describe_execution(executionArn=picky_run["parent"])


def test_a_running_map_run_counts_running_and_pending_children(sfn: Any) -> None:
    machine = create(sfn, "HttpAsking", billing(ASKING, MaxConcurrency=2))
    started = sfn.start_execution(stateMachineArn=machine, input='{"customers": [1, 2, 3]}')
    parent = started["executionArn"]
    for _ in range(500):
        runs = sfn.list_map_runs(executionArn=parent)["mapRuns"]
        if runs:
            children = sfn.list_executions(mapRunArn=runs[0]["mapRunArn"])["executions"]
            if len(children) == 2:
                break
        time.sleep(0.02)
    else:
        raise AssertionError("the Map Run did not start two children")
    run = runs[0]["mapRunArn"]
    assert "stopDate" not in runs[0]
    for child in children:
        next_token(sfn, child["executionArn"])  # each child waits for its task token
    described = sfn.describe_map_run(mapRunArn=run)
    assert described["status"] == "RUNNING"
    assert "stopDate" not in described
    counts = described["executionCounts"]
    assert (counts["running"], counts["pending"], counts["total"]) == (2, 1, 3)
    running = sfn.list_executions(mapRunArn=run, statusFilter="RUNNING")["executions"]
    assert len(running) == 2

    sfn.stop_execution(executionArn=parent)
    for _ in range(500):
        described = sfn.describe_map_run(mapRunArn=run)
        if described["executionCounts"]["aborted"] == 2:
            break
        time.sleep(0.02)
    assert described["status"] == "ABORTED"
    assert described["executionCounts"]["aborted"] == 2
    assert described["executionCounts"]["pending"] == 0


def test_map_run_errors_are_aws_errors(sfn: Any, picky_run: dict[str, str]) -> None:
    with pytest.raises(sfn.exceptions.InvalidArn) as excinfo:
        sfn.describe_map_run(mapRunArn="not-an-arn")
    assert status_code(excinfo) == 400
    assert excinfo.value.response["Error"]["Message"] == (
        "Invalid Arn: 'Invalid ARN prefix: not-an-arn'"
    )
    with pytest.raises(sfn.exceptions.InvalidArn, match="Resource type not valid"):
        sfn.describe_map_run(mapRunArn=picky_run["parent"])  # an execution ARN
    with pytest.raises(sfn.exceptions.ResourceNotFound) as missing:
        sfn.describe_map_run(mapRunArn=UNKNOWN_RUN)
    assert status_code(missing) == 400
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.list_executions(mapRunArn=UNKNOWN_RUN)
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.list_executions(mapRunArn=picky_run["machine"])  # a state machine ARN

    gone = "arn:aws:states:us-east-1:123456789012:execution:Nope:nope"
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.list_map_runs(executionArn=gone)
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.list_map_runs(executionArn="nope")
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.list_map_runs(executionArn=picky_run["parent"], nextToken="bogus")

    with pytest.raises(sfn.exceptions.ValidationException) as both:
        sfn.list_executions(stateMachineArn=picky_run["machine"], mapRunArn=picky_run["run"])
    assert status_code(both) == 400
    assert both.value.response["Error"]["Message"] == BOTH_LISTING_TARGETS
    with pytest.raises(sfn.exceptions.ValidationException, match="Must provide"):
        sfn.list_executions()

    # UpdateMapRun: an ended Map Run is left as it was; out-of-range values are refused by
    # the model's shapes; a malformed or unknown ARN as for DescribeMapRun.
    assert sfn.update_map_run(mapRunArn=picky_run["run"], maxConcurrency=5)["ResponseMetadata"]
    with pytest.raises(sfn.exceptions.ValidationException):
        sfn.update_map_run(mapRunArn=picky_run["run"], toleratedFailurePercentage=101)
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.update_map_run(mapRunArn=picky_run["machine"], maxConcurrency=5)
    unknown = picky_run["run"].rsplit(":", 1)[0] + ":00000000-0000-4000-8000-000000000000"
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.update_map_run(mapRunArn=unknown, maxConcurrency=5)


def test_list_map_runs_pages_by_max_results(sfn: Any) -> None:
    """An execution whose two distributed Maps each start a Map Run, listed one per page."""
    first = billing({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    second = billing({"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": True}}})
    first, second = first["States"]["Invoices"], second["States"]["Invoices"]
    del first["End"]
    second["Label"] = "Again"
    twice = {
        "StartAt": "Invoices",
        "States": {"Invoices": {**first, "ResultPath": None, "Next": "Again"}, "Again": second},
    }
    machine = create(sfn, "HttpTwice", twice)
    started = sfn.start_execution(stateMachineArn=machine, input='{"customers": [1, 2]}')
    assert finished(sfn, started["executionArn"])["status"] == "SUCCEEDED"

    page = sfn.list_map_runs(executionArn=started["executionArn"], maxResults=1)
    (one,) = page["mapRuns"]
    rest = sfn.list_map_runs(
        executionArn=started["executionArn"], maxResults=1, nextToken=page["nextToken"]
    )
    (two,) = rest["mapRuns"]
    assert "nextToken" not in rest
    assert ":mapRun:HttpTwice/Bill:" in one["mapRunArn"]  # oldest first
    assert ":mapRun:HttpTwice/Again:" in two["mapRunArn"]


@pytest.mark.skipif(not AWS.exists(), reason=f"the AWS CLI is not installed ({AWS})")
def test_the_aws_cli_describes_map_runs(server: Server, picky_run: dict[str, str]) -> None:
    runs = out(aws(server, "list-map-runs", "--execution-arn", picky_run["parent"]))
    (run,) = runs["mapRuns"]
    assert run["mapRunArn"] == picky_run["run"]
    described = out(aws(server, "describe-map-run", "--map-run-arn", picky_run["run"]))
    assert described["status"] == "SUCCEEDED"
    assert described["executionCounts"]["failed"] == 2
    assert described["itemCounts"]["succeeded"] == 4
    # The CLI pages on its own (--page-size is maxResults): all six children come back.
    children = out(
        aws(server, "list-executions", "--map-run-arn", picky_run["run"], "--page-size", "2")
    )
    assert len(children["executions"]) == 6
    failed = out(
        aws(server, "list-executions", "--map-run-arn", picky_run["run"],
            "--status-filter", "FAILED")
    )  # fmt: skip
    assert len(failed["executions"]) == 2
    missing = aws(server, "describe-map-run", "--map-run-arn", UNKNOWN_RUN, check=False)
    assert missing.returncode != 0
    assert "(ResourceNotFound)" in missing.stderr
