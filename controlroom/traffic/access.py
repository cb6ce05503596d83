"""Who may change the street: API keys from settings mapped to a user and a role.

Owns the role table (which roles may override signals) and the constant-time key lookup. It
must not read the environment or hold default keys: with no `[[controlroom.api_keys]]`
configured nobody may override. Keys serve machines and scripts; people log in
(``controlroom.auth``) with the same roles, and ``controlroom.web.keys.Gate`` accepts either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from controlroom.settings import ApiKey

# Roles allowed to change signals (hold, force, flash, plan, release).
OVERRIDE_ROLES = frozenset({"operator", "supervisor", "admin"})


@dataclass(frozen=True, slots=True)
class Operator:
    user: str
    role: str

    @property
    def may_override(self) -> bool:
        return self.role in OVERRIDE_ROLES


class KeyRing:
    """API key → operator. Keys are compared as SHA-256 digests in constant time."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._entries = [(hashlib.sha256(k.key.get_secret_value().encode()).digest(),
                          Operator(k.user, k.role)) for k in keys]

    def lookup(self, presented: str | None) -> Operator | None:
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for known, operator in self._entries:  # no early exit: the time does not tell which
            if hmac.compare_digest(known, digest):
                found = operator
        return found
