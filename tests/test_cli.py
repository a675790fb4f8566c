"""The ``statemill`` command: in process through ``main(argv)``, and once as a subprocess."""

from __future__ import annotations

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
