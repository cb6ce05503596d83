"""Open and clear the rows of an alarm table (``attendance_alarm``, ``cctv_alarm``) from the
conditions that hold now; the stores own their tables and errors, this owns the reconciling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from psycopg import Connection, sql


class Holding(Protocol):
    severity: str
    text: str
    data: Any


def reconcile(conn: Connection[Any], table: str, key_columns: Sequence[str],
              holding: Mapping[tuple[str, ...], Holding], at: datetime,
              scope_column: str, scope: Sequence[str] | None) -> tuple[int, int]:
    """In the caller's transaction: insert the holding conditions not yet open, clear the open
    rows (within ``scope`` of ``scope_column``, default all) that no longer hold. Returns
    (opened, cleared)."""
    keys = sql.SQL(", ").join(map(sql.Identifier, key_columns))
    select = sql.SQL("SELECT {} FROM {} WHERE cleared_at IS NULL").format(
        keys, sql.Identifier(table))
    if scope is not None:
        select += sql.SQL(" AND {} = ANY(%s)").format(sql.Identifier(scope_column))
    open_keys = {tuple(r) for r in conn.execute(select, (list(scope),) if scope is not None
                                                 else ()).fetchall()}
    insert = sql.SQL("INSERT INTO {} ({}, severity, text, data, opened_at) VALUES ({}) "
                     "ON CONFLICT DO NOTHING").format(
        sql.Identifier(table), keys, sql.SQL(", ").join(sql.Placeholder() * (len(key_columns) + 4)))
    clear = sql.SQL("UPDATE {} SET cleared_at = %s WHERE {} AND cleared_at IS NULL").format(
        sql.Identifier(table),
        sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in key_columns))
    opened = cleared = 0
    for key, c in holding.items():
        if key not in open_keys:
            conn.execute(insert, (*key, c.severity, c.text, json.dumps(c.data or {}, default=str),
                                  at))
            opened += 1
    for key in sorted(open_keys - holding.keys()):
        conn.execute(clear, (at, *key))
        cleared += 1
    return opened, cleared
