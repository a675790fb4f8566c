"""Logging (issue 16, part 2): structlog configured by the entry points only, events on stderr.

Through the real command line: a handler that logs through ``context.logger`` leaves stdout to
the result (it parses as JSON), and its lines on stderr carry the execution, state and attempt.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from runtime import observability
from runtime.cli import main

ROOT = Path(__file__).resolve().parent.parent

MACHINE = {
    "StartAt": "Charge",
    "States": {
        "Charge": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:charge",
            "End": True,
        }
    },
}
HANDLERS = '''
"""Handlers that log."""

from runtime import HandlerRegistry

HANDLERS = HandlerRegistry()


@HANDLERS.handler("charge")
async def charge(payload, context):
    context.logger.info("charging", amount=payload["amount"])
    context.logger.warning("card.expires_soon")
    return {"charged": payload["amount"]}
'''


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test starts with structlog as an application finds it: not configured."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _files(tmp_path: Path) -> tuple[str, str]:
    definition = tmp_path / "charge.asl.json"
    definition.write_text(json.dumps(MACHINE), encoding="utf-8")
    module = tmp_path / "mod_with_logging.py"
    module.write_text(HANDLERS, encoding="utf-8")
    return str(definition), str(module)


def _statemill(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STATEMILL_LOG")}
    return subprocess.run(
        [sys.executable, "-m", "runtime", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={**environment, **env},
    )


def test_handler_logs_go_to_stderr_as_json_and_stdout_stays_json(tmp_path: Path) -> None:
    definition, module = _files(tmp_path)

    done = _statemill(
        tmp_path,
        "run",
        definition,
        "--input",
        '{"amount": 12}',
        "--handlers",
        module,
        "--store",
        "memory",
        "--log-level",
        "info",
        "--log-format",
        "json",
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is only the result
    assert (result["status"], result["output"]) == ("SUCCEEDED", {"charged": 12})
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    charging = next(line for line in lines if line["event"] == "charging")
    assert charging["level"] == "info"
    assert charging["amount"] == 12
    assert charging["state"] == "Charge"
    assert charging["attempt"] == 0
    assert charging["execution_arn"] == result["executionArn"]


def test_the_default_is_quiet_and_the_environment_chooses(tmp_path: Path) -> None:
    definition, module = _files(tmp_path)
    argv = ("run", definition, "--input", '{"amount": 1}', "--handlers", module)

    quiet = _statemill(tmp_path, *argv, "--store", "memory")
    chosen = _statemill(
        tmp_path,
        *argv,
        "--store",
        "memory",
        STATEMILL_LOG_LEVEL="info",
        STATEMILL_LOG_FORMAT="json",
    )

    assert json.loads(quiet.stdout)["status"] == "SUCCEEDED"
    assert "charging" not in quiet.stderr  # info is below the default (warning)
    assert "card.expires_soon" in quiet.stderr
    events = [json.loads(line)["event"] for line in chosen.stderr.splitlines()]
    assert "charging" in events


def test_a_bad_level_in_the_environment_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    definition, _ = _files(tmp_path)
    monkeypatch.setenv("STATEMILL_LOG_LEVEL", "loud")

    code = main(["run", definition, "--store", "memory"])

    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "statemill run: error: STATEMILL_LOG_LEVEL='loud' is not one of "
        "debug, info, warning, error, critical\n"
    )


def test_an_option_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition, module = _files(tmp_path)
    argv = ["run", definition, "--input", '{"amount": 3}', "--handlers", module]

    for options in (["--log-level", "info", *argv], [*argv, "--log-level", "info"]):
        code = main([*options, "--store", "memory", "--log-format", "json"])
        out, err = capsys.readouterr()
        assert code == 0
        assert json.loads(out)["status"] == "SUCCEEDED"
        assert any(json.loads(line)["event"] == "charging" for line in err.splitlines())


def test_importing_the_runtime_configures_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import runtime.cli, structlog; print(structlog.is_configured())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.strip() == "False"


def test_an_application_that_configured_structlog_keeps_its_configuration() -> None:
    stream = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(stream))
    before = structlog.get_config()

    assert observability.configure_logging("debug", "json") is False

    assert structlog.get_config() == before
    structlog.get_logger().info("mine")
    assert "mine" in stream.getvalue()


def test_configuring_again_replaces_our_own_configuration() -> None:
    first, second = io.StringIO(), io.StringIO()

    assert observability.configure_logging("error", "json", stream=first) is True
    structlog.get_logger().warning("dropped")
    assert observability.configure_logging("warning", "json", stream=second) is True
    structlog.get_logger().warning("kept", n=1)

    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["event"] == "kept"
