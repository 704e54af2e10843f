"""Synthetic app events for ``piwik_track(time, uid, event_name)``, in two distributions, reproducible by seed.

* ``uniform``: the original take-home data: every event has a uniformly random time in the range, a uniformly
  random user and a name from FIRST_INSTALL/A/B, drawn with Faker as the original answer did. Users may have
  no install, several installs, or events before their install.
* ``app``: behaves like a mobile app's analytics (numpy, vectorised, fine for 10M events). Each user installs
  once, at a uniformly random moment in the range, and the install is their first event. On each later day k
  the user comes back with probability ``day1_return * k ** -decay`` (defaults: 35% on day 1, 13% on day 7,
  close to the "power-law" retention curves published for mobile apps). The remaining events are spread
  uniformly over the user-days on which the user is active, with names from a small taxonomy.

uids look like Matomo visitor ids: 16 lower-case hex characters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
from faker import Faker

DISTRIBUTIONS = ("app", "uniform")
UNIFORM_EVENT_NAMES = ("FIRST_INSTALL", "A", "B")
APP_EVENT_NAMES = np.array(["APP_OPEN", "ARTICLE_VIEW", "VIDEO_PLAY", "SHARE", "PUSH_OPEN"])
APP_EVENT_WEIGHTS = np.array([0.35, 0.35, 0.15, 0.05, 0.10])
SECONDS_PER_DAY = 86_400
# An odd multiplier is a bijection on uint64, so distinct user numbers give distinct uids without a set lookup.
_UID_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def check_generator_arguments(distribution: str, n_events: int, n_users: int, start: dt.date, end: dt.date) -> None:
    """Raise ``ValueError`` naming the problem if :func:`generate_events` would refuse these arguments."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    _check_sizes(n_events, n_users, start, end)
    if distribution == "app" and n_events < n_users:
        raise ValueError(f"app distribution needs at least one event per user: {n_events} events < {n_users} users")


def _check_sizes(n_events: int, n_users: int, start: dt.date, end: dt.date) -> None:
    if n_users < 1 or n_events < 0:
        raise ValueError(f"need at least 1 user and 0 events, got {n_users} users and {n_events} events")
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")


def matomo_uids(user_numbers: np.ndarray, salt: int) -> np.ndarray:
    """16-hex-character uids for integer user numbers, distinct for distinct numbers.

    Parameters
    ----------
    user_numbers : ndarray of int, shape (n,)
    salt : int
        Mixed in (from the seed) so different seeds give different uids.

    Returns
    -------
    ndarray of str, shape (n,)
    """
    with np.errstate(over="ignore"):
        mixed = (user_numbers.astype(np.uint64) + np.uint64(salt % 2**64)) * _UID_MULTIPLIER
    hex_text = mixed.astype(">u8").tobytes().hex().encode("ascii")
    return np.frombuffer(hex_text, dtype="S16").astype(str)


def uniform_events(
    n_events: int = 10_000,
    n_users: int = 1_000,
    start: dt.date = dt.date(2017, 4, 1),
    end: dt.date = dt.date(2017, 4, 10),
    seed: int = 42,
) -> pd.DataFrame:
    """The original uniformly random events, drawn with a seeded Faker.

    Returns
    -------
    pandas.DataFrame, shape (n_events, 3)
        Columns ``time`` (datetime64[s], naive UTC, within [start 00:00, end+1 00:00)), ``uid`` (str),
        ``event_name`` (one of FIRST_INSTALL, A, B).
    """
    _check_sizes(n_events, n_users, start, end)
    fake = Faker()
    fake.seed_instance(seed)
    users = [fake.hexify("^" * 16) for _ in range(n_users)]
    first = dt.datetime.combine(start, dt.time())
    after_last = dt.datetime.combine(end + dt.timedelta(days=1), dt.time()) - dt.timedelta(seconds=1)
    return pd.DataFrame(
        {
            "time": pd.to_datetime(
                [fake.date_time_between(first, after_last).replace(microsecond=0) for _ in range(n_events)]
            ).astype("datetime64[s]"),
            "uid": [fake.random_element(users) for _ in range(n_events)],
            "event_name": [fake.random_element(UNIFORM_EVENT_NAMES) for _ in range(n_events)],
        }
    )


def _split(total: int, parts: int) -> np.ndarray:
    """``parts`` near-equal non-negative integers summing to ``total``."""
    return np.diff(np.linspace(0, total, parts + 1).round().astype(np.int64))


def app_events(
    n_events: int = 10_000,
    n_users: int = 1_000,
    start: dt.date = dt.date(2017, 4, 1),
    end: dt.date = dt.date(2017, 4, 10),
    seed: int = 42,
    day1_return: float = 0.35,
    decay: float = 0.5,
    chunk_users: int = 200_000,
) -> Iterator[pd.DataFrame]:
    """App-like events (see module docstring), yielded in chunks of whole users to bound memory.

    Yields
    ------
    pandas.DataFrame
        Same columns as :func:`uniform_events`; over all chunks exactly ``n_events`` rows, ``n_users`` of them
        FIRST_INSTALL (one per user, each user's earliest event).

    Raises
    ------
    ValueError
        ``n_events < n_users`` (every user needs an install) or bad sizes/dates.
    """
    _check_sizes(n_events, n_users, start, end)
    if n_events < n_users:
        raise ValueError(f"app distribution needs at least one event per user: {n_events} events < {n_users} users")
    rng = np.random.default_rng(seed)
    salt = int(rng.integers(0, 2**63))
    n_days = (end - start).days + 1
    epoch = np.datetime64(start.isoformat(), "s")
    return_prob = day1_return * np.arange(1, n_days, dtype=float) ** -decay  # index k-1 for day k
    n_chunks = -(-n_users // chunk_users)
    users_per_chunk = _split(n_users, n_chunks)
    extra_per_chunk = _split(n_events - n_users, n_chunks)
    first_user = 0
    for chunk_size, n_extra in zip(users_per_chunk, extra_per_chunk):
        installed = rng.integers(0, n_days * SECONDS_PER_DAY, chunk_size)  # seconds since start
        install_day = installed // SECONDS_PER_DAY
        # Active user-days: day 0 always (the install session), later day k with decaying probability.
        k = np.arange(1, n_days)
        returns = (rng.random((chunk_size, n_days - 1)) < return_prob) & (install_day[:, None] + k <= n_days - 1)
        slot_user = np.concatenate([np.arange(chunk_size), np.nonzero(returns)[0]])
        slot_offset = np.concatenate([np.zeros(chunk_size, np.int64), np.nonzero(returns)[1] + 1])
        slot = rng.integers(0, len(slot_user), n_extra)
        user = slot_user[slot]
        day_start = (install_day[user] + slot_offset[slot]) * SECONDS_PER_DAY
        # Same-day events fall strictly after the install, so the install stays the user's first event.
        earliest = np.where(slot_offset[slot] == 0, installed[user] + 1, day_start)
        latest = day_start + SECONDS_PER_DAY - 1
        ok = earliest <= latest
        at = np.where(ok, earliest + (rng.random(n_extra) * (latest - earliest + 1)).astype(np.int64), installed[user])
        # An install at 23:59:59 leaves no later second that day: such events move to the install second itself.
        at = np.maximum(at, installed[user])
        uids = matomo_uids(np.arange(first_user, first_user + chunk_size), salt)
        names = APP_EVENT_NAMES[rng.choice(len(APP_EVENT_NAMES), n_extra, p=APP_EVENT_WEIGHTS)]
        yield pd.DataFrame(
            {
                "time": epoch + np.concatenate([installed, at]).astype("timedelta64[s]"),
                "uid": np.concatenate([uids, uids[user]]),
                "event_name": np.concatenate([np.full(chunk_size, "FIRST_INSTALL"), names]),
            }
        )
        first_user += chunk_size


def generate_events(
    distribution: str = "app",
    n_events: int = 10_000,
    n_users: int = 1_000,
    start: dt.date = dt.date(2017, 4, 1),
    end: dt.date = dt.date(2017, 4, 10),
    seed: int = 42,
) -> Iterator[pd.DataFrame]:
    """Events of either distribution as an iterator of DataFrame chunks (see :func:`app_events`).

    Raises
    ------
    ValueError
        Unknown ``distribution`` or bad sizes.
    """
    if distribution == "uniform":
        return iter([uniform_events(n_events, n_users, start, end, seed)])
    if distribution == "app":
        return app_events(n_events, n_users, start, end, seed)
    raise ValueError(f"unknown distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")
