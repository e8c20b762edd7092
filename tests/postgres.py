"""A PostgreSQL server for the tests (the `postgres` fixture): started as the postgres user in a
temporary folder, one database `gradebook`, stopped afterwards. It skips, saying why, where the
server binaries, psycopg2 or the postgres user are missing."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install -e .[hub])")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries: install Debian's `postgresql` package to run this test")
    # Not under pytest's temporary folder: the server's user must be able to reach its files.
    base = Path(tempfile.mkdtemp(prefix="seqcourse-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to start the server as")
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    port = free_port()

    def run(*cmd, timeout=60):
        return subprocess.run(prefix + list(cmd), capture_output=True, text=True, timeout=timeout)

    made = run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    if made.returncode:
        pytest.skip(f"initdb failed, so no server could be started: {made.stderr.strip()[-300:]}")
    started = run(pg_ctl, "-D", str(data), "-w", "-l", str(base / "server.log"), "-o",
                  f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    if started.returncode:
        pytest.skip(f"the PostgreSQL server did not start: {started.stderr.strip()[-300:]}")
    try:
        import psycopg2

        for _ in range(50):
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE gradebook")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/gradebook"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)
