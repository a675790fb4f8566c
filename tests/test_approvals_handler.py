"""The example approval handler (``handlers/approvals.py``) keeps its token files in its folder.

The order name comes from the execution input, so ``../x`` once wrote outside the folder
(issue 11). These run ``examples/approval.asl.json`` on a virtual-time runtime with the real
handler and look at the real files.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import anyio
import pytest

from handlers import approvals
from runtime import Runtime
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
ROOT = Path(__file__).resolve().parents[1]
APPROVAL = json.loads((ROOT / "examples" / "approval.asl.json").read_text())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    inside = tmp_path / "sandbox" / "approvals"
    monkeypatch.setenv("STATEMILL_APPROVALS", str(inside))
    return inside


def plant_symlink(link: Path, target: Path) -> Path:
    """A symlink at ``link`` to a file holding "keep me"; returns the file."""
    link.parent.mkdir(parents=True)
    target.write_text("keep me")
    link.symlink_to(target)
    return target


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


async def test_a_plain_order_writes_its_token_owner_only(folder: Path, tmp_path: Path) -> None:
    # Real time: on a virtual clock the idle wait would jump past the Task's TimeoutSeconds.
    async with Runtime("memory", handlers=approvals.registry) as rt:
        machine = await rt.create_state_machine("approval", json.dumps(APPROVAL))
        started = await rt.start_execution(machine.arn, {"order": "A-1", "amount": 5})
        token_file = folder / "A-1.token"
        for _ in range(1000):
            if token_file.exists():
                break
            await anyio.sleep(0.01)
        await rt.send_task_success(token_file.read_text(), {"by": "ada"})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED", done.cause
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert files_under(tmp_path) == {"sandbox/approvals/A-1.token"}


@pytest.mark.parametrize(
    "order",
    ["../x", "../../escaped", "{tmp}/absolute", "a/b", "..", ".hidden", "", "x\x00y", "x" * 129],
)
async def test_an_order_that_is_not_a_file_name_fails_and_writes_nothing(
    folder: Path, tmp_path: Path, order: str
) -> None:
    order = order.format(tmp=tmp_path)  # an absolute path, inside this test's folder
    async with virtual_runtime(approvals.registry) as rt:
        done = await rt.run(APPROVAL, {"order": order, "amount": 5}, timeout=10)
    assert done.status == "FAILED"
    assert done.error == "InvalidOrder"
    assert repr(order) in (done.cause or "")
    assert files_under(tmp_path) == set()


async def test_a_symlink_planted_as_the_token_file_is_replaced_not_followed(
    folder: Path, tmp_path: Path
) -> None:
    target = plant_symlink(folder / "B-2.token", tmp_path / "victim.txt")
    async with virtual_runtime(approvals.registry) as rt:
        await rt.run(APPROVAL, {"order": "B-2", "amount": 5}, timeout=10)
    assert target.read_text() == "keep me"
    token_file = folder / "B-2.token"
    assert not token_file.is_symlink()
    assert token_file.read_text().strip() != ""
    assert files_under(folder) == {"B-2.token"}  # no temporary file left behind


@pytest.mark.parametrize(("order", "name"), [("A-1", "A-1.token"), (7, "7.token")])
def test_token_path_stays_in_its_folder(tmp_path: Path, order: JSON, name: str) -> None:
    assert approvals.token_path(tmp_path, order) == tmp_path / name
