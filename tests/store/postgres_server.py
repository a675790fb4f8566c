"""A throwaway PostgreSQL server for the tests: one per test session, gone at its end.

Uses the system's server binaries (Debian's ``postgresql`` package: ``/usr/lib/postgresql/<N>/bin``,
or ``initdb``/``pg_ctl`` on ``PATH``). ``initdb`` writes a fresh cluster into a temporary folder
with a random password (SCRAM), and the server listens on a free port of 127.0.0.1 only, with no
Unix socket. PostgreSQL refuses to run as root, and CI runs as root: then the folder is given to
the ``postgres`` user and every server command runs as that user (``runuser``). Durability is
off (``fsync=off``): a test server loses nothing that matters when the machine crashes. A
watchdog process stops the server and removes its folder if the session dies without its
teardown.

When the binaries are missing the tests that need a server skip, saying what to install.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

__all__ = ["INSTALL_HINT", "PostgresServer", "find_bin_dir", "postgres_server"]

INSTALL_HINT: Final = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install them with "
    "`apt-get install postgresql` (Debian/Ubuntu) to run the PostgreSQL store tests"
)

#: The unprivileged user a server runs as when the tests run as root.
SERVER_USER: Final = "postgres"


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or ``None``."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.isdigit()]
        candidates.extend(p / "bin" for p in sorted(versions, key=lambda p: -int(p.name)))
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """A running server: ``dsn(database)`` connects to it as its superuser."""

    def __init__(self, bin_dir: Path, root: Path, *, durable: bool = False) -> None:
        """``durable=True`` keeps PostgreSQL's defaults (fsync on every commit), for
        measurements; the tests run without it."""
        self.bin_dir = bin_dir
        self.durable = durable
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.user = "statemill"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self._as_user: list[str] = []
        self._owner: pwd.struct_passwd | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            self._owner = pwd.getpwnam(SERVER_USER)
            self._as_user = ["runuser", "-u", SERVER_USER, "--"]

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as_user, *args], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{log}"
            )

    def start(self) -> None:
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        self.root.chmod(0o700)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._owner is not None:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        options = "-c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        options += "-c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for _attempt in range(3):  # the free port may be taken before the server binds it
            self.port = _free_port()
            try:
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    f"{options} -p {self.port}",
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            except RuntimeError:
                if _attempt == 2:
                    raise
            else:
                return

    def watch(self, pid: int) -> None:
        """Stop the server and remove its folder once process ``pid`` is gone, even if it dies
        without running its teardown (pytest-timeout ends a hung session with ``os._exit``)."""
        pg_ctl = shlex.join([*self._as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data)])
        script = (
            f"while kill -0 {pid} 2>/dev/null; do sleep 1; done; "
            f"{pg_ctl} -m immediate stop >/dev/null 2>&1; rm -rf {shlex.quote(str(self.root))}"
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self._watchdog is not None:  # the teardown runs: the watchdog is not needed
            self._watchdog.kill()
            self._watchdog.wait()
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session (skips when none is installed)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(INSTALL_HINT)
    root = Path(tempfile.mkdtemp(prefix="statemill-pg-"))
    server = PostgresServer(bin_dir, root)
    try:
        server.start()
        server.watch(os.getpid())
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
