"""A real PostgreSQL for the test session: ``initdb`` + ``pg_ctl`` in a temp dir, on loopback.

Registered as a plugin by tests/conftest.py, so any suite can ask for ``pg_url`` (a fresh,
empty database per test) or ``pg_server`` (the running cluster). The server starts once per
session, on 127.0.0.1 and a free port, with its socket in its own directory, and stops at the
end. PostgreSQL refuses to run as root, and the tests run as root here and in CI, so when we
are root the cluster belongs to an unprivileged system user (``wxtest``, created if missing)
and every server command runs through ``runuser``. ``fsync=off``: the test data is disposable
and the conformance suite asserts semantics, not durability.

Tests skip only when the PostgreSQL binaries are absent (``apt-get install postgresql``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_ROOT = Path("/usr/lib/postgresql")
TEST_USER = "wxtest"
SUPERUSER = "postgres"  # the cluster's bootstrap role (initdb -U); trust auth on loopback only


@dataclass(frozen=True)
class PgServer:
    """A running test cluster: connect as ``SUPERUSER`` over TCP on ``port``."""

    bin_dir: Path
    data_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        """Run ``pg_ctl`` on this cluster as its owner (restart, stop…)."""
        _as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args])


def find_bin_dir() -> Path | None:
    """The newest installed server's bin directory (``/usr/lib/postgresql/<ver>/bin``)."""
    candidates = [p / "bin" for p in PG_ROOT.glob("*") if (p / "bin" / "initdb").is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: _version_key(p.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


def _ensure_test_user() -> None:
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=True,
            capture_output=True,
        )


def _as_owner(argv: list[str]) -> None:
    """Run a server command as the cluster's owner: ``wxtest`` under root, else ourselves."""
    command = ["runuser", "-u", TEST_USER, "--", *argv] if _is_root() else argv
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr.strip()}")


def start_server(bin_dir: Path, base: Path) -> PgServer:
    """initdb a cluster under ``base`` and start it on a free loopback port."""
    data_dir, socket_dir = base / "data", base / "socket"
    socket_dir.mkdir()
    if _is_root():
        _ensure_test_user()
        shutil.chown(base, TEST_USER)
        shutil.chown(socket_dir, TEST_USER)
    _as_owner(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync"]
    )
    port = free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {socket_dir} -c fsync=off"
    server = PgServer(bin_dir, data_dir, port)
    log = base / "server.log"
    try:
        server.pg_ctl("start", "-w", "-t", "60", "-l", str(log), "-o", options)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"{exc}\n{tail}") from None
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL cluster; skips the test when PostgreSQL is not installed."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL server binaries not found under {PG_ROOT}/*/bin (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="wx-pg-"))  # not under pytest's 0700 tmp root: wxtest must enter it
    base.chmod(0o755)
    try:
        server = start_server(bin_dir, base)
        try:
            yield server
        finally:
            server.pg_ctl("stop", "-m", "fast", "-w")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards (even with connections left)."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.url(name)
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
