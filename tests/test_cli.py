"""The ``statemill`` command: in process through ``main(argv)``, and once as a subprocess."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import main

ROOT = Path(__file__).resolve().parent.parent
ORDER = ROOT / "examples" / "order.asl.json"

PASS_MACHINE = {
    "StartAt": "Greet",
    "States": {
        "Greet": {
            "Type": "Pass",
            "Parameters": {"greeting": "hello", "name.$": "$.name"},
            "End": True,
        }
    },
}
FAIL_MACHINE = {"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "E", "Cause": "C"}}}
BAD_NEXT = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}


def write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return str(path)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """(exit code, stdout parsed as JSON or None when empty, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


# -- validate -------------------------------------------------------------------------------------


def test_validate_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "validate", str(ORDER)) == (0, {"valid": True}, "")


def test_validate_accepts_at_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "validate", f"@{ORDER}")[:2] == (0, {"valid": True})


def test_validate_invalid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "validate", write(tmp_path, "bad.json", BAD_NEXT))

    assert code == 1
    assert out["valid"] is False
    assert out["error"] == "InvalidDefinition"
    assert out["message"].startswith("Invalid State Machine Definition: '")
    assert "/States/A/Next" in out["message"]


def test_validate_text_that_is_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "validate", write(tmp_path, "bad.json", "{not json"))

    assert code == 1
    assert out["valid"] is False
    assert out["message"].startswith("Invalid State Machine Definition: '")


def test_validate_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "validate", str(tmp_path / "nope.json"))

    assert (code, out) == (2, None)
    assert "cannot read definition" in err


# -- run ------------------------------------------------------------------------------------------


def test_run_pass_machine(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    code, out, err = run_cli(
        capsys, "run", definition, "--input", '{"name": "Ada"}', "--store", "memory"
    )

    assert (code, err) == (0, "")
    assert out["status"] == "SUCCEEDED"
    assert out["output"] == {"greeting": "hello", "name": "Ada"}
    assert out["error"] is None
    assert out["cause"] is None
    assert "history" not in out


def test_run_with_history(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    code, out, _ = run_cli(
        capsys, "run", definition, "--input", '{"name": "Ada"}', "--store", "memory", "--history"
    )

    assert code == 0
    types = [event["type"] for event in out["history"]]
    assert types == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert [event["id"] for event in out["history"]] == [1, 2, 3, 4]
    assert out["history"][1]["stateEnteredEventDetails"]["name"] == "Greet"


def test_run_failed_execution_exits_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition = write(tmp_path, "fail.json", FAIL_MACHINE)
    code, out, _ = run_cli(capsys, "run", definition, "--store", "memory")

    assert code == 0
    assert out["status"] == "FAILED"
    assert (out["output"], out["error"], out["cause"]) == (None, "E", "C")


def test_run_defaults_to_a_sqlite_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    code, out, _ = run_cli(capsys, "run", definition, "--input", '{"name": "Grace"}')

    assert code == 0
    assert out["output"]["name"] == "Grace"
    assert (tmp_path / "statemill.db").is_file()


def test_run_with_handlers_module(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    order = {
        "orderId": "7",
        "customer": {"id": "C-1", "email": "ada@example.com", "card": "4111111111111111"},
        "items": [{"sku": "BOOK-42", "quantity": 1}],
    }
    input_file = write(tmp_path, "order.json", order)
    code, out, err = run_cli(
        capsys,
        "run",
        str(ORDER),
        "--input",
        f"@{input_file}",
        "--handlers",
        "handlers.orders",
        "--store",
        str(tmp_path / "orders.db"),
        "--virtual-time",
    )

    assert (code, err) == (0, "")
    assert out["status"] == "SUCCEEDED"
    assert out["output"]["status"] == "CONFIRMED"
    assert out["output"]["confirmation"]["sent"] is True
    assert out["output"]["invoice"]["amountCents"] == 1999


def test_run_with_handlers_file_and_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = write(
        tmp_path,
        "my_handlers.py",
        "async def double(value, context):\n"
        "    return value * 2\n"
        "\n"
        "HANDLERS = {'Double': double}\n",
    )
    definition = write(
        tmp_path,
        "double.json",
        {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": "Double", "End": True}}},
    )
    code, out, _ = run_cli(
        capsys, "run", definition, "--input", "21", "--handlers", module, "--store", "memory"
    )

    assert code == 0
    assert (out["status"], out["output"]) == ("SUCCEEDED", 42)


def test_run_bad_input_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    code, out, err = run_cli(capsys, "run", definition, "--input", "{oops", "--store", "memory")

    assert (code, out) == (2, None)
    assert err.startswith("statemill run: error: input is not valid JSON")
    assert err.count("\n") == 1


def test_run_input_over_the_limit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    big = write(tmp_path, "big.json", {"blob": "a" * 300_000})
    code, out, err = run_cli(capsys, "run", definition, "--input", f"@{big}", "--store", "memory")

    assert (code, out) == (2, None)
    assert err.startswith("statemill run: error: InvalidExecutionInput: ")
    assert err.count("\n") == 1


def test_run_invalid_definition(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    definition = write(tmp_path, "bad.json", BAD_NEXT)
    code, out, err = run_cli(capsys, "run", definition, "--store", "memory")

    assert (code, out) == (2, None)
    assert "Invalid State Machine Definition: '" in err


def test_run_handlers_module_without_handlers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    code, _, err = run_cli(capsys, "run", definition, "--handlers", "json", "--store", "memory")

    assert code == 2
    assert "json: no HandlerRegistry instance and no HANDLERS dict" in err


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["run"]) == 2
    assert main(["frobnicate"]) == 2
    assert "usage: statemill" in capsys.readouterr().err


# -- as a program ------------------------------------------------------------------------------


def test_python_dash_m_runtime(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "runtime", "validate", str(ORDER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"valid": True}


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    # A history far larger than a pipe's buffer, read by a reader that stops after one byte.
    definition = tmp_path / "map.asl.json"
    definition.write_text(
        json.dumps(
            {
                "StartAt": "M",
                "States": {
                    "M": {
                        "Type": "Map",
                        "ItemProcessor": {
                            "StartAt": "P",
                            "States": {"P": {"Type": "Pass", "End": True}},
                        },
                        "End": True,
                    }
                },
            }
        )
    )
    items = json.dumps(list(range(2000)))
    done = subprocess.run(
        f'"{sys.executable}" -m runtime run "{definition}" --store memory --history '
        f"--input '{items}' | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert "BrokenPipeError" not in done.stderr
    assert done.stdout == "{"


# -- plumbing that must not touch sys.path (issue 10) ---------------------------------------------


def test_handlers_package_from_the_working_directory_leaves_sys_path_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "cwd_handlers_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(
        "from cwd_handlers_pkg import shared\n"
        "\n"
        "async def triple(value, context):\n"
        "    return value * shared.FACTOR\n"
        "\n"
        "HANDLERS = {'Triple': triple}\n"
    )
    (package / "shared.py").write_text("FACTOR = 3\n")
    definition = write(
        tmp_path,
        "triple.json",
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "Triple", "End": True}}},
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    try:
        code, out, err = run_cli(
            capsys,
            *("run", definition, "--input", "5", "--handlers", "cwd_handlers_pkg.tasks"),
            *("--store", "memory"),
        )
    finally:
        for name in [m for m in sys.modules if m.partition(".")[0] == "cwd_handlers_pkg"]:
            del sys.modules[name]

    assert (code, err) == (0, "")
    assert (out["status"], out["output"]) == ("SUCCEEDED", 15)
    assert sys.path == before


def test_a_handlers_module_that_fails_to_import_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = write(tmp_path, "broken_handlers.py", "raise RuntimeError('boom')\n")
    definition = write(tmp_path, "pass.json", PASS_MACHINE)

    code, _, err = run_cli(capsys, "run", definition, "--handlers", module, "--store", "memory")

    assert code == 2
    assert "cannot import handlers" in err
    assert "RuntimeError: boom" in err
    assert "statemill_handlers_broken_handlers" not in sys.modules  # no half-run module stays


def test_bench_outside_a_checkout_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)

    code, out, err = run_cli(capsys, "bench", "--quick")

    assert (code, out) == (2, None)
    assert err.startswith(f"statemill bench: error: no benchmarks/ in {tmp_path}")
    assert "run `statemill bench` from the root of a Statemill checkout" in err
    assert sys.path == before


def test_bench_runs_the_checkouts_suite_in_a_child_process(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    for name in ("benchmarks", "benchmarks.suite"):  # restored after the test
        monkeypatch.delitem(sys.modules, name, raising=False)
    before = list(sys.path)

    code = main(["bench", "nosuch"])

    assert code == 2  # the suite's own usage error, from `python -m benchmarks`
    assert "unknown scenario(s): nosuch" in capfd.readouterr().err
    assert sys.path == before
    assert "benchmarks.suite" not in sys.modules  # it ran in the child, not here


# -- a command line that finds things (issue 16, part 5) ------------------------------------------

WAIT_FOR_TOKEN = {
    "StartAt": "Approve",
    "States": {
        "Approve": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}},
            "End": True,
        }
    },
}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--version"])
    out = capsys.readouterr().out
    assert code == 0
    assert out == f"statemill {importlib.metadata.version('statemill')}\n"


def test_validate_type_express_refuses_a_token_task(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "token.asl.json", WAIT_FOR_TOKEN)

    assert run_cli(capsys, "validate", path)[:2] == (0, {"valid": True})
    code, out, _ = run_cli(capsys, "validate", path, "--type", "EXPRESS")
    assert code == 1
    assert out["valid"] is False
    assert "Express state machine does not support '.waitForTaskToken'" in out["message"]


def _run_named(capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str) -> tuple[str, str]:
    db = str(tmp_path / "s.db")
    definition = write(tmp_path, "greet.asl.json", PASS_MACHINE)
    code, out, _ = run_cli(
        capsys, "run", definition, "--name", "greeter", "--store", db, "--input", '{"name": "a"}'
    )
    assert code == 0
    return db, out["executionArn"]


def test_run_name_names_the_state_machine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, arn = _run_named(capsys, tmp_path)
    assert ":execution:greeter:" in arn


def test_list_is_a_table_by_default_and_json_when_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, arn = _run_named(capsys, tmp_path)

    assert main(["list", "--store", db]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["STATUS", "STARTED", "DURATION"]
    status, started, duration, name, machine, shown = row.split()
    assert (status, machine, shown, name) == ("SUCCEEDED", "greeter", arn, arn.rsplit(":", 1)[1])
    assert started[4] == "-"
    assert "T" in started
    assert duration.endswith("s")
    code, out, _ = run_cli(capsys, "list", "--store", db, "--format", "json")
    assert code == 0
    assert [e["executionArn"] for e in out["executions"]] == [arn]
    assert isinstance(out["executions"][0]["startDate"], float)


def test_machines_list_describe_update(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db, _ = _run_named(capsys, tmp_path)
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:greeter"

    assert main(["machines", "list", "--store", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CREATED", "STATE", "MACHINE", "ARN"]
    assert lines[1].split()[0::3] == ["greeter", machine]
    code, described, _ = run_cli(capsys, "machines", "describe", machine, "--store", db)
    assert code == 0
    assert described["executions"] == {"SUCCEEDED": 1}
    assert json.loads(described["definition"]) == PASS_MACHINE
    changed = {**PASS_MACHINE, "Comment": "v2"}
    new = write(tmp_path, "v2.asl.json", changed)
    code, updated, _ = run_cli(
        capsys, "machines", "update", machine, "--definition", new, "--store", db
    )
    assert code == 0
    assert updated["revisionId"] != described["revisionId"]
    _, again, _ = run_cli(capsys, "machines", "describe", machine, "--store", db)
    assert json.loads(again["definition"]) == changed


def test_machines_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db, _ = _run_named(capsys, tmp_path)
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:nope"
    bad = write(tmp_path, "bad.asl.json", BAD_NEXT)
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:greeter"

    assert run_cli(capsys, "machines", "describe", missing, "--store", db) == (
        2,
        None,
        f"statemill machines: error: StateMachineDoesNotExist: State Machine Does Not Exist: "
        f"'{missing}'\n",
    )
    code, _, err = run_cli(
        capsys, "machines", "update", machine, "--definition", bad, "--store", db
    )
    assert code == 2
    assert err.startswith("statemill machines: error: Invalid State Machine Definition")
    assert run_cli(capsys, "machines", "describe", "--store", db) == (
        2,
        None,
        "statemill machines: error: machines describe needs a STATE_MACHINE_ARN\n",
    )


def test_import_skip_existing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db, _ = _run_named(capsys, tmp_path)
    exported = str(tmp_path / "x.jsonl")
    assert main(["export", "--store", db, "-o", exported]) == 0
    other = str(tmp_path / "other.db")
    assert run_cli(capsys, "import", exported, "--store", other)[:2] == (
        0,
        {"stateMachines": 1, "executions": 1},
    )

    code, _, err = run_cli(capsys, "import", exported, "--store", other)
    assert code == 2
    assert "ExecutionAlreadyExists" in err
    assert "already exists" in err
    assert run_cli(capsys, "import", exported, "--store", other, "--skip-existing") == (
        0,
        {"stateMachines": 0, "executions": 0, "skipped": 1},
        "",
    )


def test_replay_at_out_of_range_and_in_range(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, arn = _run_named(capsys, tmp_path)
    replay = ["replay", "--store", db, "--execution", arn, "--at"]

    for wrong in ("0", "99"):
        assert run_cli(capsys, *replay, wrong) == (
            2,
            None,
            f"statemill replay: error: --at {wrong} is out of range: the execution has events "
            "1 to 4\n",
        )
    code, out, _ = run_cli(capsys, *replay, "2")
    assert code == 0
    assert out["event"]["type"] == "PassStateEntered"
    assert out["execution"]["status"] == "RUNNING"
    assert out["execution"]["input"] == {"name": "a"}
    [current] = out["execution"]["currentStates"]
    assert current["state"] == "Greet"
    assert current["input"] == {"name": "a"}


def test_replay_check_prints_the_cause(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db, arn = _run_named(capsys, tmp_path)
    broken = {
        "StartAt": "Greet",
        "States": {
            "Greet": {"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": True},
        },
    }
    new = write(tmp_path, "broken.asl.json", broken)

    code = main(["replay", "--store", db, "--execution", arn, "--check", new])
    out = capsys.readouterr().out
    assert code == 1
    assert "DIVERGES at event" in out
    assert "error States.Runtime" in out
    assert "(cause: " in out
    assert "$.missing" in out


# -- requests that can be followed (issue 16, part 4) ---------------------------------------------


def _start_request(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[str, str, int]:
    db = str(tmp_path / "ops.db")
    definition = write(tmp_path, "approve.asl.json", WAIT_FOR_TOKEN)
    code, out, _ = run_cli(
        capsys, "start", "--store", db, "--definition", definition, "--name", "A-1"
    )
    assert code == 0
    return db, out["executionArn"], out["requestId"]


def test_describe_of_a_pending_start_names_the_request(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, arn, request_id = _start_request(capsys, tmp_path)

    assert run_cli(capsys, "describe", arn, "--store", db) == (
        2,
        None,
        f"statemill describe: error: ExecutionDoesNotExist: Execution Does Not Exist: '{arn}'; "
        f"its StartExecution is request {request_id}, still PENDING: a runtime on the file "
        "applies it (statemill worker)\n",
    )


def test_requests_lists_pending_and_failed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, _arn, _ = _start_request(capsys, tmp_path)
    assert main(["send-task-success", "--store", db, "--task-token", "forged"]) == 0
    capsys.readouterr()
    assert main(["requests", "--store", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "STATUS", "DETAIL"]
    assert lines[1].split()[:3] == ["1", "start", "PENDING"]
    assert lines[2].split()[:3] == ["2", "send-task-success", "PENDING"]

    import asyncio

    from runtime import Runtime

    async def apply() -> None:
        async with Runtime(db) as runtime:
            await runtime.apply_requests()

    asyncio.run(apply())
    code, out, _ = run_cli(capsys, "requests", "--store", db, "--format", "json")
    assert code == 0
    [failed] = out["requests"]  # the start is DONE: only the failed answer is left
    assert (failed["requestId"], failed["status"]) == (2, "FAILED")
    assert failed["result"]["error"] in ("InvalidToken", "TaskDoesNotExist")


def test_a_failed_request_waited_for_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db, _, _ = _start_request(capsys, tmp_path)
    worker = subprocess.Popen(
        [sys.executable, "-m", "runtime", "worker", "--store", db, "--poll", "0.1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        code = main(["send-task-success", "--store", db, "--task-token", "forged", "--wait", "60"])
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["status"] == "FAILED"
    assert err.startswith("statemill send-task-success: request 2 FAILED: ")
    assert err.count("\n") == 1
