"""`kota user …` in-process (``kota.cli.main``) against the embedded PostgreSQL: a user added
with the password piped in can log in, a weak password and a taken name are refused with
nothing stored, list shows state, and passwd, disable, enable and unlock do what they say."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from controlroom.auth.service import Authenticator, LoginRefused
from controlroom.auth.store import ROLES, UserStore
from controlroom.settings import AuthSettings
from controlroom.storage.store import open_pool
from kota import user_cli
from kota.cli import main

PASSWORD = "pintu-merah-2026"
CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}


@pytest.fixture
def pg_server(embedded_pg_server: str) -> str:
    return embedded_pg_server


@pytest.fixture
def config(tmp_path: Path, pg_url: str) -> Path:
    db = conninfo_to_dict(pg_url)  # the fixture gives key=value conninfo; settings want a URL
    url = (f"postgresql://{db.get('user', 'postgres')}@{db.get('host', '127.0.0.1')}:"
           f"{db.get('port', 5432)}/{db['dbname']}")
    lines = ["[site]", f'data_dir = "{tmp_path / "data"}"', "[database]", f'url = "{url}"',
             "[controlroom.auth]", *(f"{k} = {v}" for k, v in CHEAP.items()),
             "max_failed_logins = 2"]
    path = tmp_path / "kota.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def auth(pg_url: str, config: Path) -> Iterator[Authenticator]:
    pool = open_pool(pg_url, 1, 2)
    yield Authenticator(UserStore(pool), AuthSettings(**CHEAP, max_failed_logins=2))
    pool.close()


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, config: Path,
        *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--log-level", "WARNING", "--config", str(config), "user", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_and_refusals(capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch, config: Path,
                               pg_url: str) -> None:
    code, out, _ = run(capsys, monkeypatch, config, "list")
    assert code == 0 and "no users yet" in out
    code, out, err = run(capsys, monkeypatch, config, "add", "sari", "--role", "admin",
                         stdin=PASSWORD + "\n")
    assert (code, out, err) == (0, "user sari added with role admin\n", "")
    # weak, empty, taken, a bad role or name: exit 2, one line, nothing stored
    for argv, stdin, says in (
            (("add", "budi", "--role", "operator"), "pendek\n", "at least 10 characters"),
            (("add", "budi", "--role", "operator"), "", "no password on standard input"),
            (("add", "sari", "--role", "operator"), PASSWORD + "\n", "a user named sari exists"),
            (("passwd", "nobody"), PASSWORD + "\n", "no user 'nobody'")):
        code, _, err = run(capsys, monkeypatch, config, *argv, stdin=stdin)
        assert code == 2 and says in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as bad_role:
        run(capsys, monkeypatch, config, "add", "budi", "--role", "viewer", stdin=PASSWORD)
    assert bad_role.value.code == 2
    with pytest.raises(SystemExit):
        run(capsys, monkeypatch, config, "add", "budi siregar", "--role", "admin")
    capsys.readouterr()
    code, out, _ = run(capsys, monkeypatch, config, "list", "--json")
    users = json.loads(out)
    assert code == 0 and [(u["name"], u["role"], u["state"]) for u in users] == [
        ("sari", "admin", "active")]
    with psycopg.connect(pg_url) as conn:
        [(stored,)] = conn.execute("SELECT password_hash FROM app_user").fetchall()
        audit = conn.execute("SELECT action, target, outcome FROM audit_log").fetchall()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert audit == [("user_add", "sari", "done")]


def test_passwd_disable_enable_unlock(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch, config: Path,
                                      auth: Authenticator) -> None:
    assert run(capsys, monkeypatch, config, "add", "budi", "--role", "operator",
               stdin=PASSWORD + "\r\n")[0] == 0
    first = auth.login("budi", PASSWORD)
    new = "jalan-sudirman-77"
    code, out, _ = run(capsys, monkeypatch, config, "passwd", "budi", stdin=new + "\n")
    assert code == 0 and "sessions ended" in out
    assert auth.session(first.token) is None
    with pytest.raises(LoginRefused):
        auth.login("budi", PASSWORD)
    with pytest.raises(LoginRefused):
        auth.login("budi", PASSWORD)  # the second failure locks (max_failed_logins = 2)
    code, out, _ = run(capsys, monkeypatch, config, "list")
    assert "locked until" in out.splitlines()[1]
    assert run(capsys, monkeypatch, config, "unlock", "budi")[0] == 0
    auth.login("budi", new)
    assert run(capsys, monkeypatch, config, "disable", "budi")[0] == 0
    assert "disabled" in run(capsys, monkeypatch, config, "list")[1]
    with pytest.raises(LoginRefused):
        auth.login("budi", new)
    assert run(capsys, monkeypatch, config, "enable", "budi")[0] == 0
    assert auth.login("budi", new).session.role == "operator"


def test_the_cli_knows_the_roles_the_database_allows() -> None:
    assert user_cli.ROLES == ROLES


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_the_password_is_asked_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "something-else-1"])
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", getpass)
    assert user_cli.read_password("sari", _Terminal()) == PASSWORD
    assert prompts == ["new password for sari: ", "the same again: "]
    with pytest.raises(user_cli.UsageError, match="differ"):
        user_cli.read_password("sari", _Terminal())
