"""Password rules and hashing (argon2id)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

from collab.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 256
_LIST = Path(__file__).with_name("common_passwords.txt")


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    return frozenset(
        line.strip().lower() for line in _LIST.read_text().splitlines() if line.strip() and not line.startswith("#")
    )


def check_strength(password: object, *, email: str | None = None, name: str | None = None,
                   field: str = "password") -> str:
    if not isinstance(password, str):
        raise Invalid("Password must be text.", field)
    if len(password) < MIN_LENGTH:
        raise Invalid(f"Password must be at least {MIN_LENGTH} characters long.", field)
    if len(password) > MAX_LENGTH:
        raise Invalid(f"Password must be at most {MAX_LENGTH} characters long.", field)
    lowered = password.lower()
    if lowered in _common() or len(set(lowered)) <= 2:
        raise Invalid("That password is too common. Choose a longer phrase of unrelated words.", field)
    squashed = lowered.replace(" ", "")
    for own in (email.split("@")[0] if email else None, name):
        if own and len(own) >= 4 and own.lower().replace(" ", "") in squashed and len(squashed) - len(own) < 6:
            raise Invalid("Password must not be built from your name or e-mail address.", field)
    return password


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(
        time_cost=cfg.get("ARGON2_TIME_COST", 2),
        memory_cost=cfg.get("ARGON2_MEMORY_KIB", 65536),
        parallelism=cfg.get("ARGON2_PARALLELISM", 2),
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored: str, password: str) -> tuple[bool, str | None]:
    """Return (ok, new_hash) where new_hash is set when parameters were raised."""
    hasher = _hasher()
    try:
        hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(stored) else None


def dummy_verify() -> None:
    """Spend the same time on unknown accounts, so timing does not reveal which exist."""
    verify_password(_dummy_hash(), "not the password")


@lru_cache(maxsize=4)
def _dummy_hash_for(params: tuple) -> str:
    return _hasher().hash("dummy password for timing")


def _dummy_hash() -> str:
    cfg = current_app.config
    return _dummy_hash_for((cfg.get("ARGON2_TIME_COST"), cfg.get("ARGON2_MEMORY_KIB")))
