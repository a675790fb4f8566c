"""``statemill serve``: the runtime and the API in one process, loopback unless told otherwise."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.http.serve import is_loopback
from tests.http.sfn_server import Server, client_for

ECHO = {"StartAt": "E", "States": {"E": {"Type": "Task", "Resource": "Echo", "End": True}}}


def test_statemill_serve_runs_executions_for_boto3_and_keeps_them(tmp_path: Path) -> None:
    store = str(tmp_path / "served.db")
    server = Server(store=store)
    server.start()
    try:
        sfn = client_for(server.url)
        arn = sfn.create_state_machine(
            name="Served", definition=json.dumps(ECHO), roleArn="arn:aws:iam::1:role/r"
        )["stateMachineArn"]
        started = sfn.start_execution(stateMachineArn=arn, input='{"n": 1}')
        for _ in range(500):
            described = sfn.describe_execution(executionArn=started["executionArn"])
            if described["status"] != "RUNNING":
                break
            time.sleep(0.02)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {"n": 1}
    finally:
        server.stop()
    again = Server(store=store)  # a new process on the same file
    again.start()
    try:
        kept = client_for(again.url).describe_execution(executionArn=started["executionArn"])
    finally:
        again.stop()
    assert kept["status"] == "SUCCEEDED"


def test_serve_refuses_a_non_loopback_address_without_the_opt_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--store", "memory", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "not authenticated" in err
    assert "--allow-unauthenticated-remote-access" in err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
