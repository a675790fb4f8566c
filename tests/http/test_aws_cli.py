"""The real AWS CLI (the ``awscli`` package's ``aws``) against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.http.sfn_server import Server

JSON = Any
AWS = Path(sys.executable).parent / "aws"
DEFINITION = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "done", "End": True}}}

pytestmark = pytest.mark.skipif(not AWS.exists(), reason=f"the AWS CLI is not installed ({AWS})")


def aws(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``aws stepfunctions ARGS --endpoint-url`` the server, with dummy credentials."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # StartSyncExecution goes to a "sync-" host prefix otherwise (sync-127.0.0.1).
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }
    command = [str(AWS), "stepfunctions", *args, "--endpoint-url", server.url, "--output", "json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def out(done: subprocess.CompletedProcess[str]) -> JSON:
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_the_aws_cli_runs_a_state_machine(server: Server) -> None:
    text = json.dumps(DEFINITION)
    created = out(
        aws(server, "create-state-machine", "--name", "Cli", "--definition", text,
            "--role-arn", "arn:aws:iam::123456789012:role/r")
    )  # fmt: skip
    arn = created["stateMachineArn"]
    assert abs(created["creationDate"] - time.time()) < 600  # epoch seconds, as AWS sends
    listed = out(aws(server, "list-state-machines"))
    assert arn in [m["stateMachineArn"] for m in listed["stateMachines"]]
    started = out(aws(server, "start-execution", "--state-machine-arn", arn, "--name", "one"))
    execution = started["executionArn"]
    described = out(aws(server, "describe-execution", "--execution-arn", execution))
    assert described["executionArn"] == execution
    history = out(
        aws(server, "get-execution-history", "--execution-arn", execution, "--reverse-order")
    )
    assert history["events"][-1]["type"] == "ExecutionStarted"
    validated = out(aws(server, "validate-state-machine-definition", "--definition", "{}"))
    assert validated["result"] == "FAIL"


def test_the_aws_cli_starts_sync_executions(server: Server) -> None:
    created = out(
        aws(server, "create-state-machine", "--name", "CliSync", "--type", "EXPRESS",
            "--definition", json.dumps(DEFINITION), "--role-arn", "arn:aws:iam::1:role/r")
    )  # fmt: skip
    done = out(
        aws(server, "start-sync-execution", "--state-machine-arn", created["stateMachineArn"])
    )
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == "done"


def test_the_aws_cli_reports_aws_errors(server: Server) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:execution:Nope:nope"
    failed = aws(server, "describe-execution", "--execution-arn", missing, check=False)
    assert failed.returncode != 0
    assert "(ExecutionDoesNotExist)" in failed.stderr
    bad = aws(server, "describe-state-machine", "--state-machine-arn", "nope", check=False)
    assert "(InvalidArn)" in bad.stderr
