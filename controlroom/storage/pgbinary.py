"""PostgreSQL's binary COPY format written from NumPy columns, without a Python object per
value: a month of attendance days is 620,000 rows, and `write_row` would spend seconds on
them.

Owns the byte layout only (PostgreSQL docs, "COPY — Binary Format"): an 11-byte signature, a
32-bit flags field and a header-extension length; then per row a 16-bit field count and per
field a 32-bit length (-1 for NULL) and the value in network byte order; a 16-bit -1 ends the
data. Values: int2/int4/int8/float8 big-endian; date = days since 2000-01-01; timestamp =
microseconds since 2000-01-01. Variable-length text is laid out as a fixed-width byte matrix
with a mask of the bytes that exist, so that one boolean index turns all rows into the stream.
It must not talk to the server (callers hand the bytes to psycopg's `copy.write`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_FIXED = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "date": ">i4",
          "timestamp": ">i8", "bool": "u1"}


class TextVocabulary:
    """The byte rows of a column's distinct texts (None: NULL), built once and gathered by
    index for every chunk of rows."""

    def __init__(self, values: Sequence[str | None]) -> None:
        encoded = [None if v is None else v.encode() for v in values]
        width = max([len(e) for e in encoded if e is not None], default=0)
        sizes = np.array([-1 if e is None else len(e) for e in encoded], ">i4")
        self.sizes = np.maximum(sizes.astype(np.int64), 0)
        self.table = np.zeros((len(encoded), 4 + width), np.uint8)
        self.mask = np.zeros((len(encoded), 4 + width), bool)
        self.table[:, :4] = sizes.view(np.uint8).reshape(-1, 4)
        self.mask[:, :4] = True
        for i, item in enumerate(encoded):
            if item:
                self.table[i, 4:4 + len(item)] = np.frombuffer(item, np.uint8)
                self.mask[i, 4:4 + len(item)] = True


@dataclass(frozen=True)
class Column:
    """One column: `kind` is a key of the fixed types or "text"; for text, `values` are indices
    into `vocabulary` (a None in it is NULL); `null` marks NULL rows of fixed types."""

    kind: str
    values: np.ndarray
    null: np.ndarray | None = None
    vocabulary: Sequence[str | None] | TextVocabulary = ()


def _fixed(column: Column) -> tuple[np.ndarray, np.ndarray]:
    dtype = np.dtype(_FIXED[column.kind])
    n = column.values.shape[0]
    values = np.ascontiguousarray(column.values.astype(dtype))
    body = values.view(np.uint8).reshape(n, dtype.itemsize)
    length = np.full(n, dtype.itemsize, ">i4")
    mask = np.ones((n, 4 + dtype.itemsize), bool)
    if column.null is not None:
        length[column.null] = -1
        mask[column.null, 4:] = False
    return np.hstack([length.view(np.uint8).reshape(n, 4), body]), mask


def _text(column: Column) -> tuple[np.ndarray, np.ndarray]:
    vocabulary = column.vocabulary
    if not isinstance(vocabulary, TextVocabulary):
        vocabulary = TextVocabulary(vocabulary)
    # Only as wide as the longest text these rows use: a long but rare text (a holiday's name)
    # must not widen every row of the matrix.
    width = 4 + int(vocabulary.sizes[np.unique(column.values)].max(initial=0))
    return vocabulary.table[column.values, :width], vocabulary.mask[column.values, :width]


def encode(columns: Sequence[Column], *, header: bool = True, trailer: bool = True) -> bytes:
    """The binary COPY stream of these columns' rows (all columns the same length)."""
    if not columns:
        raise ValueError("no columns")
    n = columns[0].values.shape[0]
    count = np.full(n, len(columns), ">i2").view(np.uint8).reshape(n, 2)
    parts, masks = [count], [np.ones((n, 2), bool)]
    for column in columns:
        if column.values.shape[0] != n:
            raise ValueError("columns differ in length")
        data, mask = _text(column) if column.kind == "text" else _fixed(column)
        parts.append(data)
        masks.append(mask)
    body = np.hstack(parts)[np.hstack(masks)].tobytes()
    return (HEADER if header else b"") + body + (TRAILER if trailer else b"")
