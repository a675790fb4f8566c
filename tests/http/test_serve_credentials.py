"""The API with access keys: real boto3 and the real AWS CLI sign, the server verifies (SigV4).

Servers listen on 127.0.0.1 only: the acceptance of a non-loopback ``--host`` is tested
through :func:`runtime.http.serve.listen_mode`, the function that decides it, without binding.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from runtime import Runtime
from runtime.cli import main
from runtime.cli_serve import read_credentials_file
from runtime.cli_table import UsageError
from runtime.http import create_app
from runtime.http.serve import listen_mode
from tests.http.served_handlers import HANDLERS as SERVED_HANDLERS
from tests.http.sfn_server import HANDLERS, ROOT, free_port

KEYS = {"AKIDSTATEMILL": "first/secret+key", "AKIDSECOND": "second%secret"}
ROLE = "arn:aws:iam::123456789012:role/r"
ECHO = {"StartAt": "E", "States": {"E": {"Type": "Task", "Resource": "Echo", "End": True}}}
AWS = Path(sys.executable).parent / "aws"


class InProcessServer:
    """``create_app(runtime, credentials=...)`` on uvicorn, 127.0.0.1, in a thread of its own."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        async with Runtime("memory", handlers=SERVED_HANDLERS) as runtime:
            app = create_app(runtime, credentials=KEYS, clock=self.clock)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
            )
            self.server = uvicorn.Server(config)
            await self.server.serve()

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while self.server is None or not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            assert self.thread.is_alive(), "the server stopped"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(timeout=30)


def client(url: str, key: str = "AKIDSTATEMILL", secret: str | None = None) -> Any:
    """A real boto3 client signing with ``key`` (its configured secret unless ``secret``)."""
    return boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=KEYS.get(key, "x") if secret is None else secret,
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}, read_timeout=70),
    )


def error_of(call: Callable[[], object]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


@pytest.fixture(scope="module")
def served() -> Iterator[InProcessServer]:
    with InProcessServer() as running:
        yield running


def test_boto3_with_a_configured_key_runs_the_api(served: InProcessServer) -> None:
    sfn = client(served.url)
    arn = sfn.create_state_machine(name="Signed", definition=json.dumps(ECHO), roleArn=ROLE)[
        "stateMachineArn"
    ]
    assert arn in [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]]
    started = sfn.start_execution(stateMachineArn=arn, input='{"n": 1}')
    for _ in range(500):
        described = sfn.describe_execution(executionArn=started["executionArn"])
        if described["status"] != "RUNNING":
            break
        time.sleep(0.02)
    assert described["status"] == "SUCCEEDED"
    # The second key works as well.
    other = client(served.url, "AKIDSECOND")
    assert other.describe_state_machine(stateMachineArn=arn)["name"] == "Signed"


def test_start_sync_execution_is_signed_and_verified(served: InProcessServer) -> None:
    sfn = client(served.url)
    arn = sfn.create_state_machine(
        name="SignedExpress", definition=json.dumps(ECHO), roleArn=ROLE, type="EXPRESS"
    )["stateMachineArn"]
    done = sfn.start_sync_execution(stateMachineArn=arn, input='{"sync": true}')
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"sync": True}


def test_an_activity_worker_gets_its_task_with_signed_requests(served: InProcessServer) -> None:
    sfn = client(served.url)
    activity = sfn.create_activity(name="SignedWork")["activityArn"]
    task = {"Type": "Task", "Resource": activity, "End": True}
    definition = {"StartAt": "A", "States": {"A": task}}
    arn = sfn.create_state_machine(
        name="SignedActivity", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input='{"job": 7}')["executionArn"]
    work = sfn.get_activity_task(activityArn=activity, workerName="w1")
    assert json.loads(work["input"]) == {"job": 7}
    sfn.send_task_success(taskToken=work["taskToken"], output='{"done": 7}')
    for _ in range(500):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.02)
    assert json.loads(described["output"]) == {"done": 7}


def test_a_wrong_secret_is_invalid_signature_exception(served: InProcessServer) -> None:
    code, message, status = error_of(client(served.url, secret="wrong").list_activities)
    assert code == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match")
    assert status == 400


def test_an_unknown_key_is_unrecognized_client_exception(served: InProcessServer) -> None:
    code, message, _ = error_of(client(served.url, "AKIDUNKNOWN").list_activities)
    assert (code, message) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_an_unsigned_request_is_missing_authentication_token(served: InProcessServer) -> None:
    answer = httpx.post(
        served.url + "/",
        content=b"{}",
        headers={
            "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    assert answer.status_code == 403
    assert answer.json() == {
        "__type": "MissingAuthenticationTokenException",
        "message": "Missing Authentication Token",
    }
    assert "x-amzn-requestid" in answer.headers


def test_a_body_changed_after_signing_is_invalid_signature(served: InProcessServer) -> None:
    sfn = client(served.url)

    def tamper(request: Any, **_: Any) -> None:
        # After botocore signed it, on its way out: same length, another name.
        request.body = request.body.replace(b"Original", b"Replaced")

    sfn.meta.events.register("before-send.sfn.CreateActivity", tamper)
    code, _, _ = error_of(lambda: sfn.create_activity(name="Original"))
    assert code == "InvalidSignatureException"
    names = [a["name"] for a in client(served.url).list_activities()["activities"]]
    assert "Replaced" not in names
    assert "Original" not in names


def test_a_request_signed_more_than_15_minutes_ago_has_expired() -> None:
    # The server's clock runs 20 minutes ahead of the client's: botocore's X-Amz-Date is old.
    with InProcessServer(clock=lambda: time.time() + 20 * 60) as ahead:
        code, message, status = error_of(client(ahead.url).list_activities)
    assert code == "InvalidSignatureException"
    assert message.startswith("Signature expired: ")
    assert "is now earlier than" in message
    assert status == 400


def test_the_console_asks_for_a_sign_in_on_a_server_with_keys(served: InProcessServer) -> None:
    answer = httpx.get(served.url + "/console/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/signin")


# -- the listening decision and the CLI -----------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "example.com"])
def test_a_non_loopback_host_is_allowed_with_keys_and_refused_without(host: str) -> None:
    assert listen_mode(host, credentials=KEYS) == "authenticated"
    assert listen_mode(host, allow_unauthenticated_remote=True) == "unauthenticated"
    assert listen_mode(host, credentials=KEYS, allow_unauthenticated_remote=True) == (
        "authenticated"
    )
    with pytest.raises(ValueError, match="not authenticated"):
        listen_mode(host)


def test_loopback_is_allowed_with_or_without_keys_and_empty_keys_are_refused() -> None:
    assert listen_mode("127.0.0.1") == "loopback"
    assert listen_mode("127.0.0.1", credentials=KEYS) == "loopback"
    with pytest.raises(ValueError, match="no access key"):
        listen_mode("127.0.0.1", credentials={})


def write_credentials(folder: Path) -> Path:
    path = folder / "credentials"
    path.write_text(
        "[default]\naws_access_key_id = AKIDSTATEMILL\naws_secret_access_key = first/secret+key\n"
        "\n[ops]\naws_access_key_id=AKIDSECOND\naws_secret_access_key=second%secret\n"
        "aws_session_token = ignored\n\n[config-only]\nregion = us-east-1\n"
    )
    return path


def test_a_credentials_file_gives_every_sections_pair(tmp_path: Path) -> None:
    assert read_credentials_file(str(write_credentials(tmp_path))) == KEYS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot read the credentials file"),
        ("[default]\nregion = us-east-1\n", "holds no aws_access_key_id"),
        ("aws_access_key_id = A\n", "cannot read the credentials file"),
        ("", "holds no aws_access_key_id"),
    ],
)
def test_an_unusable_credentials_file_is_a_one_line_usage_error(
    tmp_path: Path, text: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "credentials"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_credentials_file(str(path))
    assert main(["serve", "--store", "memory", "--credentials-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_serve_refuses_a_non_loopback_host_before_opening_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--store", "memory", "--host", "10.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert "--credentials-file" in err
    assert "--allow-unauthenticated-remote-access" in err


# -- statemill serve --credentials-file, with boto3 and the AWS CLI -------------------------------


@pytest.fixture(scope="module")
def serve_with_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``statemill serve --credentials-file`` in a child process on a free loopback port."""
    credentials = write_credentials(tmp_path_factory.mktemp("keys"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "runtime", "serve", "--store", "memory",
               "--handlers", str(HANDLERS), "--port", str(port),
               "--credentials-file", str(credentials)]  # fmt: skip
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        try:
            probe = client(url)
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, f"statemill serve exited {process.returncode}"
                try:
                    probe.list_activities()
                    break
                except EndpointConnectionError:
                    assert time.monotonic() < deadline, "statemill serve did not start"
                    time.sleep(0.05)
            yield url, credentials
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        log.seek(0)
        assert process.returncode == 0, log.read()


def test_statemill_serve_verifies_the_keys_of_its_credentials_file(
    serve_with_file: tuple[str, Path],
) -> None:
    url, _ = serve_with_file
    assert "activities" in client(url, "AKIDSECOND").list_activities()
    code, _, _ = error_of(client(url, secret="wrong").list_activities)
    assert code == "InvalidSignatureException"


def aws_cli(url: str, credentials: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                        "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    }  # fmt: skip
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_CONFIG_FILE=os.devnull,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_DISABLE_HOST_PREFIX_INJECTION="true",
    )
    command = [str(AWS), "stepfunctions", *args, "--endpoint-url", url, "--output", "json"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.skipif(not AWS.exists(), reason=f"the AWS CLI is not installed ({AWS})")
def test_the_aws_cli_signs_with_a_shared_credentials_file(
    serve_with_file: tuple[str, Path], tmp_path: Path
) -> None:
    url, credentials = serve_with_file
    listed = aws_cli(url, credentials, "list-state-machines")
    assert listed.returncode == 0, listed.stderr
    assert "stateMachines" in json.loads(listed.stdout)
    ops = aws_cli(url, credentials, "list-activities", "--profile", "ops")
    assert ops.returncode == 0, ops.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("[default]\naws_access_key_id = AKIDSTATEMILL\naws_secret_access_key = no\n")
    refused = aws_cli(url, wrong, "list-state-machines")
    assert refused.returncode != 0
    assert "InvalidSignatureException" in refused.stderr
