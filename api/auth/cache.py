"""Principals cached in-process, invalidated by PostgreSQL ``NOTIFY``.

Every request authenticates a token (or a console session) by the SHA-256 of its
secret. Looking it up in PostgreSQL costs a round trip per request, so each
server process keeps what it found in a :class:`PrincipalCache` and forgets it
when the database says so:

* triggers on ``api_tokens`` and ``console_sessions`` (migration ``0010_trust``)
  send ``NOTIFY wangge_auth`` with ``token:<id>`` or ``session:<hash>`` whenever a
  row changes or goes (revoke, expiry moved, sign-out), from the writing
  transaction, so every process hears it at commit;
* a listener connection per process (:class:`api.store.listen.Listener`) calls
  :meth:`PrincipalCache.forget` for each message;
* expiry needs no message: an entry keeps the token's and the session's expiry
  and is refused locally once either has passed;
* while the listener is not connected the cache is switched off (every lookup
  goes to PostgreSQL) and emptied, so a message missed while disconnected can
  never leave a revoked token alive.

A lookup that raced a revocation (read the row just before the revoking
transaction committed) must not put the stale row in the cache after the
message was handled: :meth:`PrincipalCache.put` takes the generation read
before the lookup and stores nothing if a message arrived in between.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

#: The channel the triggers notify (see migration 0010_trust).
CHANNEL = "wangge_auth"


def token_key(token_hash: str) -> str:
    """Return the cache key of a token (by the SHA-256 of its plaintext)."""
    return "t:" + token_hash


def session_key(session_hash: str) -> str:
    """Return the cache key of a console session (by the SHA-256 of its cookie secret)."""
    return "s:" + session_hash


@dataclass(frozen=True)
class Entry:
    """What a secret authenticates: a principal and facts about its token (and session).

    Parameters
    ----------
    token_id
        The token behind it (sessions act with their token).
    value
        The cached object (a :class:`api.auth.tokens.TokenInfo` or a
        :class:`api.auth.sessions.Session`).
    expires_at
        The earliest expiry of the token and the session (None: never).
    """

    token_id: int
    value: Any
    expires_at: dt.datetime | None


class PrincipalCache:
    """Secrets' hashes → entries, for one server process (see the module docstring).

    Parameters
    ----------
    max_entries
        Beyond this many entries the cache is emptied (a flood of distinct valid
        secrets must not grow memory without bound).
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self.enabled = False
        self.generation = 0
        self._entries: dict[str, Entry] = {}
        self._by_token: dict[int, set[str]] = {}

    def __len__(self) -> int:
        """Count the entries held."""
        return len(self._entries)

    def get(self, key: str, now: dt.datetime | None = None) -> Entry | None:
        """Return the live entry of a secret's hash (None: unknown here, or expired)."""
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= (now or dt.datetime.now(dt.UTC)):
            self._drop(key)
            return None
        return entry

    def put(self, key: str, entry: Entry, generation: int) -> bool:
        """Remember an entry read from PostgreSQL when no message arrived since ``generation``.

        Returns True when it was stored.
        """
        if not self.enabled or generation != self.generation:
            return False
        if len(self._entries) >= self.max_entries:
            self.clear()
        self._entries[key] = entry
        self._by_token.setdefault(entry.token_id, set()).add(key)
        return True

    def forget(self, message: str) -> None:
        """Handle one notification: ``token:<id>`` or ``session:<hash>`` (anything else: all)."""
        self.generation += 1
        kind, _, ident = message.partition(":")
        if kind == "token" and ident.isdigit():
            for key in self._by_token.pop(int(ident), set()):
                self._entries.pop(key, None)
        elif kind == "session" and ident:
            self._drop(session_key(ident))
        else:
            self.clear()

    def clear(self) -> None:
        """Forget everything (listener lost or reconnected, or the cache is full)."""
        self.generation += 1
        self._entries.clear()
        self._by_token.clear()

    def switch(self, enabled: bool) -> None:
        """Turn the cache on (listener connected) or off (listener lost); both empty it."""
        self.clear()
        self.enabled = enabled

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            keys = self._by_token.get(entry.token_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_token[entry.token_id]
