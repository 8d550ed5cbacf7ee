"""Idempotency keys per token: one client's retry never returns another client's task or redemption."""

from __future__ import annotations

import hashlib

#: longest key stored as it is (the columns hold 128 characters)
KEY_COLUMN = 128


def scoped_key(token_id: int, key: str) -> str:
    """Namespace a client's idempotency key by the token that sent it (its stored form).

    Parameters
    ----------
    token_id
        The caller's token.
    key
        The key the client sent (1-128 characters).

    Returns
    -------
    str
        ``<token id>:<key>``; a key too long for the column with its prefix is
        stored as ``<token id>:sha256:<hex digest>`` instead.
    """
    stored = f"{token_id}:{key}"
    if len(stored) <= KEY_COLUMN:
        return stored
    return f"{token_id}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
