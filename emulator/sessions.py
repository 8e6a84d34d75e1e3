"""The server's own state in SQLite: sessions, refresh tokens and the rolling daily API usage."""

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY, username TEXT NOT NULL, user_id TEXT NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token TEXT PRIMARY KEY, username TEXT NOT NULL, consumer_key TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_usage (hour INTEGER PRIMARY KEY, calls INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS user_states (username TEXT PRIMARY KEY, state TEXT NOT NULL);
"""
WINDOW_HOURS = 24  # Salesforce counts API requests over a rolling 24 hours


@dataclass(frozen=True)
class Session:
    token: str
    username: str  # the login name (with the sandbox suffix for sandbox users)
    user_id: str
    expires: float  # epoch seconds


class StateDb:
    """One SQLite connection shared by the stores; writes are rare, so a lock is enough."""

    def __init__(self, path: str | Path):
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class SessionStore:
    """Sessions keyed by token; looked up in memory on every API call, written through to SQLite."""

    def __init__(
        self, db: StateDb, org_id: str, lifetime_seconds: int, clock: Callable[[], float] = time.time
    ):
        self.db = db
        self.org_prefix = org_id[:15]
        self.lifetime = lifetime_seconds
        self.clock = clock
        now = clock()
        db.execute("DELETE FROM sessions WHERE expires < ?", (now - 86400,))
        self._live = {
            row[0]: Session(*row)
            for row in db.execute(
                "SELECT token, username, user_id, expires FROM sessions WHERE expires > ?", (now,)
            )
        }

    def create(self, username: str, user_id: str) -> Session:
        # Real session ids are `<15-char org id>!<opaque>`; clients sometimes parse the org id out.
        now = self.clock()
        session = Session(
            f"{self.org_prefix}!{secrets.token_urlsafe(72)}", username, user_id, now + self.lifetime
        )
        self.db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (session.token, username, user_id, now, session.expires),
        )
        self._live[session.token] = session
        return session

    def validate(self, token: str) -> Session | None:
        session = self._live.get(token)
        if session is None:
            return None
        if session.expires <= self.clock():
            self._live.pop(token, None)
            return None
        return session

    def expire_all(self) -> int:
        now = self.clock()
        count = len(self._live)
        self.db.execute("UPDATE sessions SET expires = ? WHERE expires > ?", (now, now))
        self._live.clear()
        return count

    def create_refresh_token(self, username: str, consumer_key: str) -> str:
        token = f"5Aep{secrets.token_urlsafe(60)}"
        self.db.execute(
            "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?)", (token, username, consumer_key, self.clock())
        )
        return token

    def refresh_token_owner(self, token: str, consumer_key: str) -> str | None:
        """The username a refresh token was issued to, if it was issued to this connected app."""
        rows = self.db.execute(
            "SELECT username FROM refresh_tokens WHERE token = ? AND consumer_key = ?", (token, consumer_key)
        )
        return rows[0][0] if rows else None

    def revoke(self, token: str) -> bool:
        """Revokes a refresh token or an access token (OAuth's revoke endpoint); False if unknown."""
        revoked = bool(self.db.execute("SELECT 1 FROM refresh_tokens WHERE token = ?", (token,)))
        self.db.execute("DELETE FROM refresh_tokens WHERE token = ?", (token,))
        if self._live.pop(token, None) is not None:
            self.db.execute("UPDATE sessions SET expires = ? WHERE token = ?", (self.clock(), token))
            revoked = True
        return revoked

    def refresh_tokens_of(self, username: str) -> int:
        rows = self.db.execute("SELECT COUNT(*) FROM refresh_tokens WHERE username = ?", (username,))
        return rows[0][0]


# What an administrator can do to a user between logins; every flag off is the user as configured.
USER_FLAGS = ("password_expired", "locked", "ip_restricted")


@dataclass(frozen=True)
class UserState:
    """A user's state set through the admin API: a new password, its expiry, a lockout, an IP range
    that excludes the caller, and connected apps the user is not (admin) approved for."""

    password: str | None = None  # None: the configured password
    password_expired: bool = False
    locked: bool = False
    ip_restricted: bool = False
    unapproved_apps: tuple[str, ...] = ()  # consumer keys


class UserStates:
    """User states by login name (persisted), and the logins refused per user and code (in memory)."""

    def __init__(self, db: StateDb):
        self.db = db
        self._states = {
            username: _user_state(json.loads(text))
            for username, text in db.execute("SELECT username, state FROM user_states")
        }
        self._refused: dict[str, dict[str, int]] = {}

    def get(self, username: str) -> UserState:
        return self._states.get(username.lower(), UserState())

    def put(self, username: str, state: UserState) -> None:
        key = username.lower()
        if state == UserState():
            self._states.pop(key, None)
            self.db.execute("DELETE FROM user_states WHERE username = ?", (key,))
            return
        self._states[key] = state
        text = json.dumps({**state.__dict__, "unapproved_apps": list(state.unapproved_apps)})
        self.db.execute("INSERT OR REPLACE INTO user_states VALUES (?, ?)", (key, text))

    def clear(self) -> None:
        self._states.clear()
        self._refused.clear()
        self.db.execute("DELETE FROM user_states")

    def refused(self, username: str, code: str) -> None:
        counts = self._refused.setdefault(username.lower(), {})
        counts[code] = counts.get(code, 0) + 1

    def refusals(self, username: str) -> dict[str, int]:
        return dict(sorted(self._refused.get(username.lower(), {}).items()))


def _user_state(data: dict) -> UserState:
    return UserState(**{**data, "unapproved_apps": tuple(data.get("unapproved_apps") or ())})


class ApiUsage:
    """API requests over the rolling 24 hours, in hourly buckets; flushed to SQLite in the background.

    Counting runs on every API call, so it stays in memory; `flush` persists it (every second and at
    shutdown), which keeps the count across restarts without a disk write per call.
    """

    def __init__(self, db: StateDb, max_calls: int, clock: Callable[[], float] = time.time):
        self.db = db
        self.max = max_calls
        self.clock = clock
        self._buckets: dict[int, int] = dict(db.execute("SELECT hour, calls FROM api_usage"))
        self._dirty = False
        self._hour = -1
        self._used = 0
        self._roll()

    def _roll(self) -> None:
        hour = int(self.clock() // 3600)
        if hour != self._hour:
            self._hour = hour
            self._buckets = {h: c for h, c in self._buckets.items() if h > hour - WINDOW_HOURS}
            self._used = sum(self._buckets.values())
            self._dirty = True

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    @property
    def remaining(self) -> int:
        return max(0, self.max - self.used)

    def try_take(self) -> bool:
        """Counts one call if the allocation allows it; False once the allocation is used up."""
        self._roll()
        if self._used >= self.max:
            return False
        self._buckets[self._hour] = self._buckets.get(self._hour, 0) + 1
        self._used += 1
        self._dirty = True
        return True

    def set_remaining(self, remaining: int) -> None:
        self._roll()
        self._buckets = {self._hour: max(0, self.max - remaining)}
        self._used = self._buckets[self._hour]
        self._dirty = True

    def reset(self) -> None:
        self.set_remaining(self.max)

    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        rows = list(self._buckets.items())
        with self.db.lock:
            with self.db.conn:  # one transaction: delete and rewrite the (at most 24) buckets
                self.db.conn.execute("BEGIN")
                self.db.conn.execute("DELETE FROM api_usage")
                self.db.conn.executemany("INSERT INTO api_usage VALUES (?, ?)", rows)
