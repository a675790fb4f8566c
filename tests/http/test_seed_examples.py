"""The seed's examples end to end through boto3 alone against ``statemill serve`` (issue 13):
the online order (in stock and out of stock), the monthly billing (a distributed Map over the
month's customer CSV, each customer's invoice a nested execution, the results written by
ResultWriter) and the manual approval, released through the console's Approve form."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.billing_year import write_customer_files
from examples.run_examples import ORDER_IN_STOCK, ORDER_OUT_OF_STOCK
from runtime.console.app import CSRF_COOKIE
from tests.http.sfn_server import ROOT, Server, client_for

JSON = Any
EXAMPLES = ROOT / "examples"
ROLE = "arn:aws:iam::123456789012:role/examples"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    folder = tmp_path_factory.mktemp("seed")
    objects = folder / "objects"
    write_customer_files(objects, ["2024-06"])
    server = Server(
        str(folder / "examples.db"),
        handlers=("handlers.orders", "handlers.billing", "handlers.approvals"),
        options=("--objects", str(objects)),
        env={"STATEMILL_APPROVALS": str(folder / "approvals")},
    )
    server.start()
    try:
        yield server, objects
    finally:
        server.stop()


def create(sfn: Any, name: str, example: str) -> str:
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    arn: str = sfn.create_state_machine(name=name, definition=text, roleArn=ROLE)["stateMachineArn"]
    return arn


def finished(sfn: Any, arn: str, timeout: float = 120) -> dict[str, JSON]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described: dict[str, JSON] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise AssertionError(f"{arn} still running after {timeout} s")


def test_the_online_order_in_and_out_of_stock(served: tuple[Server, Path]) -> None:
    sfn = client_for(served[0].url)
    arn = create(sfn, "online-order", "order.asl.json")
    in_stock = sfn.start_execution(stateMachineArn=arn, input=json.dumps(ORDER_IN_STOCK))
    out_of_stock = sfn.start_execution(stateMachineArn=arn, input=json.dumps(ORDER_OUT_OF_STOCK))
    done = finished(sfn, in_stock["executionArn"])
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["status"] == "CONFIRMED"
    short = finished(sfn, out_of_stock["executionArn"])
    assert short["status"] == "SUCCEEDED", short
    assert json.loads(short["output"])["status"] == "OUT_OF_STOCK"
    events = sfn.get_execution_history(executionArn=in_stock["executionArn"])["events"]
    assert events[0]["type"] == "ExecutionStarted"
    assert events[-1]["type"] == "ExecutionSucceeded"


def test_the_monthly_billing_with_nested_invoices(served: tuple[Server, Path]) -> None:
    server, objects = served
    sfn = client_for(server.url)
    create(sfn, "monthly-invoice", "invoice.asl.json")
    arn = create(sfn, "monthly-billing", "billing.asl.json")
    started = sfn.start_execution(
        stateMachineArn=arn, name="june", input=json.dumps({"billingMonth": "2024-06"})
    )
    done = finished(sfn, started["executionArn"])
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    (map_run,) = sfn.list_map_runs(executionArn=started["executionArn"])["mapRuns"]
    described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
    assert described["status"] == "SUCCEEDED"
    counts = described["executionCounts"]
    assert counts["total"] >= 8
    assert counts["succeeded"] + counts["failed"] == counts["total"]
    children = sfn.list_executions(mapRunArn=map_run["mapRunArn"], maxResults=1000)["executions"]
    assert len(children) == counts["total"]
    # Every customer that succeeded got its invoice from a nested monthly-invoice execution.
    invoice_arn = arn.replace(":monthly-billing", ":monthly-invoice")
    invoices = sfn.list_executions(stateMachineArn=invoice_arn, maxResults=1000)["executions"]
    assert len(invoices) >= counts["succeeded"]
    assert {i["status"] for i in invoices} == {"SUCCEEDED"}
    # ResultWriter wrote the results into the object store folder.
    output = json.loads(done["output"])
    manifest = objects / output["results"]["Bucket"] / output["results"]["Key"]
    assert json.loads(manifest.read_text())["ResultFiles"]["SUCCEEDED"]


def test_the_approval_is_released_through_the_console(served: tuple[Server, Path]) -> None:
    server, _ = served
    sfn = client_for(server.url)
    arn = create(sfn, "order-approval", "approval.asl.json")
    started = sfn.start_execution(
        stateMachineArn=arn, name="big-order", input=json.dumps({"order": "A-77", "amount": 9000})
    )
    execution = started["executionArn"]
    with httpx.Client(base_url=server.url, follow_redirects=False) as console:
        deadline = time.monotonic() + 60
        frames: list[str] = []
        while not frames and time.monotonic() < deadline:
            page = console.get("/console/tasks")
            assert page.status_code == 200
            if "big-order" in page.text:
                frames = re.findall(r'name="frame" value="([^"]*)"', page.text)
            else:
                time.sleep(0.1)
        assert frames, "the approval never showed on the console's waiting tasks"
        csrf = console.cookies.get(CSRF_COOKIE)
        assert csrf is not None
        approved = console.post(
            "/console/approve",
            data={
                "csrf": csrf,
                "execution": execution,
                "frame": frames[0],
                "output": '{"by": "grace"}',
            },
        )
        assert approved.status_code == 303, approved.text
    done = finished(sfn, execution)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == {"order": "A-77", "releasedBy": "grace"}
