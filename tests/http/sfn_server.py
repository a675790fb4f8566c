"""A real API server for the HTTP tests: ``statemill serve`` on a free loopback port.

It runs in a child process (``python -m runtime serve --store memory``, uvicorn on uvloop),
so the tests drive it exactly as a user's boto3 and AWS CLI would, and it shares no thread or
event loop with them. It is stopped with SIGINT (Ctrl-C) at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

JSON = Any
ROOT = Path(__file__).resolve().parents[2]
HANDLERS = Path(__file__).with_name("served_handlers.py")


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Server:
    """A ``statemill serve`` child process and its URL."""

    def __init__(
        self,
        store: str = "memory",
        *,
        handlers: tuple[str, ...] = (str(HANDLERS),),
        options: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = store
        self.handlers = handlers
        self.options = options
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.log: Any = None

    def start(self) -> None:
        """Start the server; a port taken meanwhile by another process is traded for another."""
        for _ in range(3):
            if self._start():
                return
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        raise AssertionError("statemill serve found no free port")

    def _start(self) -> bool:
        command = [sys.executable, "-m", "runtime", "serve", "--store", self.store,
                   "--port", str(self.port), *self.options]  # fmt: skip
        for module in self.handlers:
            command += ["--handlers", module]
        # stderr to a file, not a pipe: a pipe nobody reads would block the server once full.
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            text=True,
            env=None if self.env is None else {**os.environ, **self.env},
        )
        probe = client_for(self.url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self._stderr()
                if "address already in use" in err.lower():
                    return False
                raise AssertionError(f"statemill serve exited {self.process.returncode}: {err}")
            try:
                probe.list_activities()
                return True
            except EndpointConnectionError:
                time.sleep(0.05)
        raise AssertionError("statemill serve did not start within 120 s")

    def stop(self) -> str:
        """Stop the server (Ctrl-C); returns its stderr."""
        if self.process is None:
            return ""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        err = self._stderr()
        self.log.close()
        assert self.process.returncode == 0, err
        return err

    def _stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()


def client_for(url: str, **config: Any) -> Any:
    """A real boto3 Step Functions client for the server at ``url`` (dummy credentials)."""
    return boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}, **config),
    )


def next_token(sfn: Any, execution_arn: str, seen: int = 0, timeout: float = 10.0) -> str:
    """The task token of the ``seen``-th Task the execution scheduled, from its history (the
    ``Ask`` Tasks pass ``$$.Task.Token`` in their parameters)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]
        scheduled = [e for e in events if e["type"] == "TaskScheduled"]
        if len(scheduled) > seen:
            parameters = json.loads(scheduled[seen]["taskScheduledEventDetails"]["parameters"])
            token: str = parameters["token"]
            return token
        time.sleep(0.02)
    raise AssertionError(f"no task token in the history of {execution_arn}")
