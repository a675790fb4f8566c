"""Store files are owner-only (issue 11): the database and the ``-wal``/``-shm`` files beside it.

Real files on disk, a real execution through a ``Runtime`` on the SQLite store, whatever the
umask of the process.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import Runtime
from runtime.store import SqliteStore

pytestmark = pytest.mark.anyio

PASS_MACHINE = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Each file's mode, by name."""
    return {path.name: mode(path) for path in folder.iterdir()}


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under a permissive umask (a process umask of 0 would make 0644 files 0666)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


async def test_a_new_store_and_its_wal_and_shm_files_are_0600(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "statemill.db"
    async with Runtime(str(db)) as runtime:
        done = await runtime.run(PASS_MACHINE, {"secret": "token"}, timeout=30)
        assert done.status == "SUCCEEDED"
        # While the runtime has the file open, SQLite keeps its WAL and shared-memory files;
        # the runtime's one-writer lock (runtime.store.holder) stands beside them.
        found = modes(tmp_path)
    assert found == {
        "statemill.db": 0o600,
        "statemill.db-wal": 0o600,
        "statemill.db-shm": 0o600,
        "statemill.db.lock": 0o600,
    }


async def test_the_store_alone_creates_0600_files(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "store.db"
    async with SqliteStore.open(db) as store:
        await store.migrate()
        found = modes(tmp_path)
    assert found == {"store.db": 0o600, "store.db-wal": 0o600, "store.db-shm": 0o600}


async def test_an_existing_file_keeps_its_mode_and_a_shared_one_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "shared.db"
    db.touch()
    os.chmod(db, 0o640)
    with caplog.at_level(logging.WARNING, logger="statemill.store"):
        async with SqliteStore.open(db) as store:
            await store.migrate()
            # SQLite's journal files follow the database's mode (and go away on close).
            assert mode(Path(f"{db}-wal")) == mode(Path(f"{db}-shm")) == 0o640
    assert mode(db) == 0o640
    (record,) = [r for r in caplog.records if r.name == "statemill.store"]
    assert "0640" in record.getMessage()
    assert str(db) in record.getMessage()


async def test_an_existing_owner_only_file_opens_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "private.db"
    async with SqliteStore.open(db):
        pass
    with caplog.at_level(logging.WARNING, logger="statemill.store"):
        async with SqliteStore.open(db):
            pass
    assert [r for r in caplog.records if r.name == "statemill.store"] == []
    assert mode(db) == 0o600


async def test_a_symlink_to_a_new_file_creates_its_target_0600(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    link = tmp_path / "store.db"
    link.symlink_to(target)
    async with SqliteStore.open(link):
        pass
    assert mode(target) == 0o600
