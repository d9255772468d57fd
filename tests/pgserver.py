"""Throwaway PostgreSQL server for the test session (standard library only).

``PgServer().start()`` runs ``initdb`` into a fresh temporary directory and starts a
server that listens only on 127.0.0.1 on a free port, with durability switched off
(fsync, synchronous_commit, full_page_writes) because the data is discarded anyway.
``stop()`` shuts it down and deletes the directory.

``initdb`` refuses to run as root, so when the effective uid is 0 the server binaries
run as the ``postgres`` OS user through ``runuser``.

If ``QUORUM_TEST_PG_URL`` is set, no server is started: that existing server is used
instead and ``create_database``/``drop_database`` run CREATE/DROP DATABASE on it. The
account in that URL needs the CREATEDB privilege.

Only ``create_database``/``drop_database`` need a driver; they import psycopg (a
dependency of the project) when they are called.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_URL = "QUORUM_TEST_PG_URL"
SERVER_USER = "postgres"  # OS account used when running as root
DB_SUPERUSER = "postgres"  # database superuser created by initdb
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_bindir() -> Path | None:
    """Directory holding initdb, pg_ctl and postgres, or None if there is none."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            # libpq-dev's pg_config alone reports /usr/bin, which has no initdb: checked below.
            candidates.append(out)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    candidates.extend(
        sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    )
    for candidate in candidates:
        path = Path(candidate)
        if all(os.access(path / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return path
    return None


def unavailable_reason() -> str | None:
    """Why no test server can be had here, or None if one can."""
    if os.environ.get(ENV_URL):
        return None
    if find_bindir() is None:
        return (
            "no PostgreSQL server binaries found (looked at `pg_config --bindir`, PATH and "
            f"/usr/lib/postgresql/*/bin); install e.g. the `postgresql` package or set {ENV_URL}"
        )
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root but `runuser` is missing, so initdb cannot be run"
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root but there is no `{SERVER_USER}` OS user to run initdb as"
    return None


def available() -> bool:
    """True if a test server can be started here, or ``QUORUM_TEST_PG_URL`` is set."""
    return unavailable_reason() is None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _libpq_url(url: str) -> str:
    """``postgresql+psycopg://...`` (SQLAlchemy form) -> ``postgresql://...`` (libpq form)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _check_name(name: str) -> None:
    # Names are interpolated into SQL identifiers, so keep them boring.
    if not _NAME_RE.match(name):
        raise ValueError(f"unsafe database name {name!r}: use [a-z_][a-z0-9_]*, at most 63 chars")


class PgServer:
    """A throwaway PostgreSQL server (or the one named by ``QUORUM_TEST_PG_URL``)."""

    def __init__(self, external_url: str | None = None) -> None:
        if external_url is None:
            external_url = os.environ.get(ENV_URL) or None
        self.external: bool = external_url is not None
        self.bindir: Path | None = None
        self.basedir: Path | None = None
        self.port: int | None = None
        self.user: str = DB_SUPERUSER
        self.database: str = "postgres"
        self._url: str | None = None
        self._running = False
        self.startup_seconds: float | None = None  # initdb + start, for diagnostics
        if external_url is not None:
            parts = urlsplit(external_url)
            if parts.scheme not in ("postgres", "postgresql") and not parts.scheme.startswith(
                "postgresql+"
            ):
                raise ValueError(f"{ENV_URL} is not a PostgreSQL URL: {external_url!r}")
            self._url = urlunsplit(parts._replace(scheme="postgresql+psycopg"))
            self.port = parts.port
            self.user = parts.username or self.user
            self.database = parts.path.lstrip("/") or self.database

    # -- properties -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the maintenance database (``postgres``)."""
        if self._url is None:
            raise RuntimeError("PgServer is not started")
        return self._url

    @property
    def datadir(self) -> Path:
        if self.basedir is None:
            raise RuntimeError("PgServer is not started")
        return self.basedir / "data"

    @property
    def logfile(self) -> Path:
        if self.basedir is None:
            raise RuntimeError("PgServer is not started")
        return self.basedir / "server.log"

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> PgServer:
        if self.external or self._running:
            return self
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.bindir = find_bindir()
        self.basedir = self._make_basedir()
        atexit.register(self.stop)
        started = time.monotonic()
        try:
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        self._url = f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"
        return self

    def stop(self) -> None:
        if self.external:
            return
        basedir, self.basedir = self.basedir, None
        if basedir is None:
            return
        try:
            # postmaster.pid also covers a server that started but missed pg_ctl's deadline
            if (basedir / "data" / "postmaster.pid").exists():
                # immediate: no shutdown checkpoint, the data is thrown away anyway
                self._run(
                    ["pg_ctl", "stop", "-D", str(basedir / "data"), "-m", "immediate", "-w"],
                    basedir,
                    check=False,
                )
        finally:
            self._running = False
            self._url = None
            shutil.rmtree(basedir, ignore_errors=True)
            atexit.unregister(self.stop)

    def restart(self, mode: str = "fast") -> None:
        """Restart the server on the same port and data (``pg_ctl restart``): every
        client connection is cut; committed data stays. ``mode``: fast or immediate."""
        if self.external or self.basedir is None:
            raise RuntimeError("only a started throwaway server can be restarted")
        self._run(
            ["pg_ctl", "restart", "-D", str(self.datadir), "-m", mode, "-l", str(self.logfile),
             "-o", f"-p {self.port}", "-w", "-t", "60"],
            self.basedir,
        )

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        _check_name(name)
        self._execute(f'CREATE DATABASE "{name}"')
        return _with_database(self.url, name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (if it exists), disconnecting anyone still using it."""
        _check_name(name)
        self._execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _execute(self, sql: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a project dependency
            raise RuntimeError("psycopg is needed to create/drop test databases") from exc
        with psycopg.connect(_libpq_url(self.url), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _as_server_user() -> bool:
        return os.geteuid() == 0

    def _make_basedir(self) -> Path:
        if not self._as_server_user():
            return Path(tempfile.mkdtemp(prefix="quorum-pg-"))
        pw = pwd.getpwnam(SERVER_USER)
        # The default temp dir first; /tmp if the server user cannot reach it (TMPDIR=/root/...).
        for parent in (None, "/tmp"):
            basedir = Path(tempfile.mkdtemp(prefix="quorum-pg-", dir=parent))
            os.chown(basedir, pw.pw_uid, pw.pw_gid)
            probe = subprocess.run(
                ["runuser", "-u", SERVER_USER, "--", "test", "-w", str(basedir)],
                capture_output=True,
                cwd="/",
                stdin=subprocess.DEVNULL,
            )
            if probe.returncode == 0:
                return basedir
            shutil.rmtree(basedir, ignore_errors=True)
        raise RuntimeError(f"no temporary directory writable by the `{SERVER_USER}` OS user")

    def _run(
        self, argv: list[str], basedir: Path, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_server_user():
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=basedir,  # the server user may not be able to read the caller's cwd
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not hit the postmaster
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed with exit status {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}{self._log_tail(basedir)}"
            )
        return proc

    def _initdb(self) -> None:
        assert self.basedir is not None
        self._run(
            [
                "initdb",
                "-D",
                str(self.datadir),
                f"--username={DB_SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            self.basedir,
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.basedir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# quorum test server (throwaway data, durability off)\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_server(self) -> None:
        assert self.basedir is not None
        last_error: RuntimeError | None = None
        for _ in range(_START_ATTEMPTS):
            self.port = _free_port()
            try:
                self._run(
                    [
                        "pg_ctl",
                        "start",
                        "-D",
                        str(self.datadir),
                        "-l",
                        str(self.logfile),
                        "-o",
                        f"-p {self.port}",
                        "-w",
                        "-t",
                        "60",
                    ],
                    self.basedir,
                )
            except RuntimeError as exc:
                last_error = exc
                if "Address already in use" not in self._log_tail(self.basedir):
                    break
                continue
            self._running = True
            return
        raise RuntimeError(f"could not start the test PostgreSQL server:\n{last_error}")

    @staticmethod
    def _log_tail(basedir: Path, lines: int = 30) -> str:
        try:
            text = (basedir / "server.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- server log tail ({basedir / 'server.log'}) ---\n{tail}\n" if tail else ""
