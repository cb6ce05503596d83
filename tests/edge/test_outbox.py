"""The outbox: order, the telemetry cap, durability across reopen and across kill -9, the epoch."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.outbox import Outbox, OutboxError

EVENT = "kota/v1/traffic/simpang-1/event"
TELEMETRY = "kota/v1/traffic/simpang-1/telemetry"
REPO = Path(__file__).resolve().parents[2]


def put_event(box: Outbox, n: int) -> int:
    return box.put(EVENT, f"event-{n}".encode(), qos=1, retain=False, droppable=False)


def put_telemetry(box: Outbox, n: int) -> int:
    return box.put(TELEMETRY, f"tele-{n}".encode(), qos=0, retain=False, droppable=True)


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite3", telemetry_cap=5)


def test_rows_come_back_oldest_first_and_after_a_cursor(box: Outbox) -> None:
    ids = [put_event(box, 0), put_telemetry(box, 1), put_event(box, 2)]
    rows = box.peek(10)
    assert [r.id for r in rows] == ids == sorted(ids)
    assert [r.payload for r in rows] == [b"event-0", b"tele-1", b"event-2"]
    assert [(r.qos, r.droppable, r.retain) for r in rows] == [(1, False, False), (0, True, False), (1, False, False)]
    assert [r.id for r in box.peek(10, after_id=ids[0])] == ids[1:]
    assert [r.id for r in box.peek(1)] == ids[:1]


def test_remove_deletes_only_the_given_rows_and_ignores_unknown_ids(box: Outbox) -> None:
    ids = [put_event(box, n) for n in range(4)]
    assert box.remove([ids[1], ids[3], 9999]) == 2
    assert [r.id for r in box.peek(10)] == [ids[0], ids[2]]
    assert box.remove([]) == 0


def test_ids_are_never_reused_after_a_delete(box: Outbox) -> None:
    first = put_event(box, 0)
    box.remove([first])
    assert put_event(box, 1) > first


def test_cap_drops_the_oldest_telemetry_and_never_an_event(box: Outbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edge.outbox")
    for n in range(30):
        put_event(box, n)
        put_telemetry(box, n)
    rows = box.peek(1000)
    assert [r.payload for r in rows if not r.droppable] == [f"event-{n}".encode() for n in range(30)]
    assert [r.payload for r in rows if r.droppable] == [f"tele-{n}".encode() for n in range(25, 30)]
    counts = box.counts()
    assert (counts.droppable, counts.reliable, counts.dropped_total) == (5, 30, 25)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one warning per outage, not one per dropped row"


def test_dropping_warns_again_only_after_the_outbox_drained(box: Outbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.outbox")
    for n in range(8):
        put_telemetry(box, n)
    box.remove([r.id for r in box.peek(100)])
    for n in range(8):
        put_telemetry(box, n)
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.INFO, logging.WARNING]


def test_rows_and_cap_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, telemetry_cap=3)
    put_event(box, 0)
    for n in range(3):
        put_telemetry(box, n)
    box.close()
    box = Outbox(path, telemetry_cap=3)
    assert [r.payload for r in box.peek(10)] == [b"event-0", b"tele-0", b"tele-1", b"tele-2"]
    put_telemetry(box, 3)  # the count of droppable rows was read back: the cap still holds
    assert [r.payload for r in box.peek(10) if r.droppable] == [b"tele-1", b"tele-2", b"tele-3"]


def test_epoch_starts_at_one_and_bumps_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path, telemetry_cap=10)
    assert (box.next_epoch(), box.next_epoch()) == (1, 2)
    box.close()
    assert Outbox(path, telemetry_cap=10).next_epoch() == 3


def test_the_file_is_in_wal_mode(box: Outbox) -> None:
    with sqlite3.connect(box.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unusable_path_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    with pytest.raises(OutboxError, match="state_dir"):
        Outbox(tmp_path / "not-a-dir" / "outbox.sqlite3", telemetry_cap=10)


def test_bad_arguments_are_refused(box: Outbox) -> None:
    with pytest.raises(ValueError):
        box.put(EVENT, b"x", qos=2, retain=False, droppable=False)
    with pytest.raises(ValueError):
        Outbox(box.path, telemetry_cap=0)


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from edge.outbox import Outbox

    box = Outbox(Path(sys.argv[1]), telemetry_cap=20)
    n = 0
    while True:
        row_id = box.put("kota/v1/traffic/simpang-1/event", f"event-{n}".encode(), 1, False, False)
        print(row_id, n, flush=True)  # printed only after the commit returned
        box.put("kota/v1/traffic/simpang-1/telemetry", b"t", 0, False, True)
        n += 1
""")


def test_every_committed_event_survives_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                              text=True, env=env)
    assert writer.stdout is not None
    committed: dict[int, str] = {}
    for line in writer.stdout:
        row_id, n = line.split()
        committed[int(row_id)] = f"event-{n}"
        if len(committed) == 300:
            os.kill(writer.pid, signal.SIGKILL)  # mid-stream: it is writing its next rows
            break
    rest, _ = writer.communicate(timeout=10)
    for line in rest.splitlines():  # lines it printed before it died are commits too
        row_id, n = line.split()
        committed[int(row_id)] = f"event-{n}"
    assert writer.returncode == -signal.SIGKILL

    box = Outbox(path, telemetry_cap=20)
    stored = {r.id: r.payload.decode() for r in box.peek(100_000) if not r.droppable}
    assert {i: stored.get(i) for i in committed} == committed
    assert box.counts().droppable <= 20
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
