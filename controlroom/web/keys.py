"""The API-key dependency of the read endpoints that show personal data: who is asking.

Owns the 401 answer (which names why a key is needed); role checks stay with the endpoints
that change something.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations at definition time.
from collections.abc import Callable

from fastapi import HTTPException, Request

from controlroom.traffic.access import KeyRing, Operator


def key_reader(keyring: KeyRing, why: str) -> Callable[[Request], Operator]:
    """A FastAPI dependency: the operator of the request's X-API-Key, or 401 saying `why`."""

    def reader(request: Request) -> Operator:
        operator = keyring.lookup(request.headers.get("x-api-key"))
        if operator is None:
            raise HTTPException(401, f"{why}: send an X-API-Key",
                                headers={"WWW-Authenticate": "X-API-Key"})
        return operator

    return reader
