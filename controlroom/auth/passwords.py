"""Password hashing (argon2id through argon2-cffi) and the password policy.

Owns the hash parameters and what counts as too weak; it stores nothing. Verifying an unknown
user's attempt against a dummy hash (`burn`) costs what a real check costs, so the answer's
time does not tell whether the name exists.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Longer input only makes hashing slower for an attacker's benefit; no real password is this long.
MAX_PASSWORD_CHARS = 1024


class WeakPasswordError(ValueError):
    """The password breaks the policy; the message says which rule (never the password)."""


class Passwords:
    """argon2id with the configured cost; hashes carry their parameters, so old ones verify."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4,
                 min_length: int = 10) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                      parallelism=parallelism, type=Type.ID)
        self.min_length = min_length
        self._dummy: str | None = None  # made at first use: a control room's start stays quick

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        if len(password) > MAX_PASSWORD_CHARS:
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def burn(self, password: str) -> None:
        """Spend one verification's time for an attempt that cannot succeed."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("kota-pintar: no such user")
        self.verify(self._dummy, password[:MAX_PASSWORD_CHARS])

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def check(self, password: str, *, name: str = "") -> None:
        """Raise WeakPasswordError unless `password` is acceptable for user `name`."""
        if len(password) < self.min_length:
            raise WeakPasswordError(f"a password needs at least {self.min_length} characters")
        if len(password) > MAX_PASSWORD_CHARS:
            raise WeakPasswordError(f"a password has at most {MAX_PASSWORD_CHARS} characters")
        if len(set(password)) < 4:
            raise WeakPasswordError("a password needs at least 4 different characters")
        if name and name.lower() in password.lower():
            raise WeakPasswordError("a password must not contain the user name")
