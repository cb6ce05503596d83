"""`kota user …`: the people who log in to the control room (issue 9) — add, list, set a
password, disable, enable, unlock.

It parses arguments, reads passwords from standard input (twice at a terminal, once from a
pipe), checks them before anything is stored, and works against the configured database (the
embedded one by default, also while the demo runs on it) through `controlroom.auth`. It owns
only arguments, output and exit codes; it must not write SQL. There are no default users: the
first admin is made here. Exit codes: 0 done; 1 a failure (database unreachable); 2 bad input
(weak or mismatched password, a taken or unknown name, nothing changed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from controlroom.auth.service import Authenticator
    from kota.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CODES = ("Exit codes: 0 done; 1 a failure (database unreachable); 2 bad input (one line on "
              "stderr says what; nothing changed).")
# controlroom.auth.store.ROLES, repeated so that `kota --help` imports no database code (a test
# checks they agree).
ROLES = ("operator", "supervisor", "bkpsdm", "technician", "admin")
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class UsageError(Exception):
    """What was typed cannot be used; nothing was changed (exit 2)."""


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still audit something true
        return f"uid-{os.getuid()}"


def read_password(name: str, stdin: TextIO | None = None) -> str:
    """The new password of `name`: asked twice (unechoed) at a terminal, else the first line of
    standard input (a pipe or a file: scripts and the demo)."""
    stream = stdin if stdin is not None else sys.stdin
    if stream.isatty():
        first = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("the same again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    line = stream.readline().rstrip("\r\n")
    if not line:
        raise UsageError("no password on standard input (pipe it in, e.g. from a password "
                         "manager; it is never taken as an argument)")
    return line


def _checked_password(settings: Settings, name: str) -> str:
    """Read the password and check it against the policy before the database is touched."""
    from controlroom.auth.passwords import WeakPasswordError
    from controlroom.auth.service import passwords_for

    password = read_password(name)
    try:
        passwords_for(settings.controlroom.auth).check(password, name=name)
    except WeakPasswordError as exc:
        raise UsageError(f"password refused: {exc}") from exc
    return password


@contextmanager
def _opened(settings: Settings) -> Iterator[Authenticator]:
    """The authenticator over the configured database (migrated first); the embedded server,
    if this command started it, is stopped afterwards."""
    from controlroom.auth.service import Authenticator
    from controlroom.auth.store import UserStore
    from controlroom.storage.migrate import migrate
    from controlroom.storage.store import open_pool
    from kota.cli import _database_url

    url, server = _database_url(settings)
    try:
        migrate(url, retention_days=settings.database.retention_days,
                compress_after_days=settings.database.compress_after_days)
        pool = open_pool(url, 1, 2, name="kota-user")
        try:
            yield Authenticator(UserStore(pool), settings.controlroom.auth)
        finally:
            pool.close()
    finally:
        if server is not None and server.launched:
            server.stop()


def _name(text: str) -> str:
    if not NAME.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: a user name is 1–64 letters, digits or _ . @ -")
    return text


# --------------------------------------------------------------------------- commands


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    password = _checked_password(settings, args.name)
    with _opened(settings) as auth:
        auth.add_user(args.name, args.role, password, actor=args.by)
    print(f"user {args.name} added with role {args.role}")
    return EXIT_OK


def cmd_passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = _checked_password(settings, args.name)
    with _opened(settings) as auth:
        auth.set_password(args.name, password, actor=args.by)
    print(f"password of {args.name} set; their sessions ended")
    return EXIT_OK


def _toggle(disabled: bool) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        with _opened(settings) as auth:
            auth.set_disabled(args.name, disabled, actor=args.by)
        print(f"user {args.name} {'disabled; their sessions ended' if disabled else 'enabled'}")
        return EXIT_OK
    return run


def cmd_unlock(args: argparse.Namespace, settings: Settings) -> int:
    with _opened(settings) as auth:
        auth.unlock(args.name, actor=args.by)
    print(f"user {args.name} unlocked")
    return EXIT_OK


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with _opened(settings) as auth:
        users = auth.store.users()
    now = datetime.now(UTC)
    rows = []
    for u in users:
        state = ("disabled" if u.disabled else
                 f"locked until {u.locked_until.isoformat(timespec='seconds')}"
                 if u.locked_until is not None and u.locked_until > now else "active")
        rows.append({"name": u.name, "role": u.role, "state": state,
                     "last_login_at": u.last_login_at, "created_at": u.created_at,
                     "password_changed_at": u.password_changed_at})
    if args.json:
        print(json.dumps(rows, default=lambda v: v.isoformat(timespec="seconds"), indent=2))
        return EXIT_OK
    if not rows:
        print("no users yet: add the first admin with `kota user add NAME --role admin`")
        return EXIT_OK
    print(f"{'name':<20} {'role':<11} {'state':<34} last log-in")
    for r in rows:
        last = r["last_login_at"].isoformat(timespec="seconds") if r["last_login_at"] else "never"
        print(f"{r['name']:<20} {r['role']:<11} {r['state']:<34} {last}")
    return EXIT_OK


def _command(work: Callable[[argparse.Namespace, Settings], int]
             ) -> Callable[[argparse.Namespace], int]:
    """A command with its errors turned into one line on stderr and the exit code."""
    def run(args: argparse.Namespace) -> int:
        import psycopg
        from psycopg_pool import PoolTimeout

        from controlroom.auth.store import AuthStorageError, DuplicateUserError, UnknownUserError
        from controlroom.storage.embedded import EmbeddedPostgresError
        from controlroom.storage.migrate import MigrationError
        from kota.cli import _settings

        what = f"kota user {args.user_command}"
        try:
            return work(args, _settings(args))
        except DuplicateUserError:
            print(f"{what}: a user named {args.name} exists (disabled users keep their name: "
                  "`kota user enable` brings one back)", file=sys.stderr)
            return EXIT_USAGE
        except (UsageError, UnknownUserError) as exc:
            print(f"{what}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (AuthStorageError, EmbeddedPostgresError, MigrationError, psycopg.Error,
                PoolTimeout, OSError) as exc:
            print(f"{what}: cannot use the database: {exc}", file=sys.stderr)
            return EXIT_FAILED
    return run


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `user` and its commands on the `kota` subparsers."""
    user = subparsers.add_parser(
        "user", help="people who log in to the control room: add, list, passwd, disable, "
        "enable, unlock",
        description="Manage the control room's users (roles: " + ", ".join(ROLES) + ") in the "
        "configured database — the embedded one by default, also while `kota demo` runs on it. "
        "There are no default users or passwords: create the first admin with `kota user add "
        "NAME --role admin`. Passwords are read from standard input (asked twice at a "
        "terminal; one line from a pipe), never from arguments. Every change is audited.",
        epilog="Examples: `kota user add sari --role admin`; `pass show kota/rina | kota user "
        "add rina --role bkpsdm`; `kota user unlock budi`. " + EXIT_CODES)
    sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    def add(name: str, help_: str, func: Callable[[argparse.Namespace, Settings], int],
            *, named: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_ + ".", epilog=EXIT_CODES)
        p.set_defaults(func=_command(func))
        if named:
            p.add_argument("name", metavar="NAME", type=_name, help="the user name")
            p.add_argument("--by", metavar="USER", default=_os_user(), help="who does this, "
                           "for the audit log (default: the OS user)")
        return p

    p = add("add", "add a user with a role; the password is read from standard input", cmd_add)
    p.add_argument("--role", required=True, choices=ROLES, help="what they may do")
    listing = add("list", "list users: role, state (active, locked, disabled), last log-in",
                  cmd_list, named=False)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add("passwd", "set a user's password (read from standard input); their sessions end",
        cmd_passwd)
    add("disable", "disable a user: no log-in, their sessions end (the name stays taken)",
        _toggle(True))
    add("enable", "enable a disabled user again", _toggle(False))
    add("unlock", "end a lock-out after failed log-ins before it runs out", cmd_unlock)
    return user
