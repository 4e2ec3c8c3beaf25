"""The people at each customer: who they are, how active, who champions the product and who sponsors it.

Contacts are the users whose logins the activity simulation draws, so their roles and weights shape engagement:
admins and champions log in most, executives rarely, and users beyond the seats in use hardly at all.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from app.demo.accounts import stage_rng
from app.demo.names import person_names
from app.demo.state import BookState

ROLES = ("admin", "manager", "member", "executive")
ADMIN, MANAGER, MEMBER, EXECUTIVE = range(4)
MAX_CONTACTS = 40
EXEC_SPONSOR_SHARE = (0.35, 0.75, 0.95)  # by segment: smb, mid_market, enterprise


def _ascii(words: np.ndarray) -> list[str]:
    """Lower-case ASCII form of names for email addresses (Müller -> muller)."""
    return [unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode("ascii").lower() for w in words]


@dataclass
class Contacts:
    """Contact arrays (one entry per contact) plus each account's first contact row (`offset`)."""

    acct: np.ndarray
    rank: np.ndarray
    role: np.ndarray
    weight: np.ndarray  # relative login propensity
    first_day: np.ndarray  # float: first day the contact can be active
    last_day: np.ndarray  # float: day the contact stops (churn, or the champion leaving)
    is_champion: np.ndarray  # flag at as_of (a champion who left is no longer flagged)
    was_champion: np.ndarray
    is_exec_sponsor: np.ndarray
    name: np.ndarray
    email: np.ndarray
    offset: np.ndarray  # per account: index of its first contact
    count: np.ndarray  # per account: number of contacts
    champion_row: np.ndarray  # per account: the (possibly departed) champion's row, or the admin's


def build_contacts(seed: int, st: BookState, domains: list[str]) -> Contacts:
    """Draw 1-40 contacts per account, scaled to its seats, with roles, flags, activity weights and emails."""
    rng = stage_rng(seed, 3)
    pool = st.pool
    n = st.n
    seats = np.maximum(pool.seats0, st.seats_final)
    known = np.minimum(seats, 2.0 + 3.0 * np.sqrt(seats))  # big customers: only part of the users are known
    count = np.clip(np.round(known * rng.uniform(0.45, 0.8, n)), 1, MAX_CONTACTS).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(count)[:-1]])
    total = int(count.sum())
    acct = np.repeat(np.arange(n), count)
    rank = np.arange(total) - offset[acct]
    n_of = count[acct]

    u = rng.random(total)
    role = np.where(rng.random(total) < 0.18, MANAGER, MEMBER)
    role = np.where((rank == 1) & (n_of >= 4) & (u < 0.75), EXECUTIVE, role)
    role = np.where((rank == 2) & (n_of >= 12) & (u < 0.5), ADMIN, role)
    role = np.where(rank == 0, ADMIN, role)

    # The champion is the admin, or in larger teams sometimes a manager further down.
    late_champion = (count >= 3) & (rng.random(n) < 0.35)
    champ_rank = np.where(late_champion, count - 1, 0)
    champion_row = offset + champ_rank
    was_champion = np.zeros(total, dtype=bool)
    was_champion[champion_row[st.champion0]] = True
    role = np.where(was_champion & (role == MEMBER), MANAGER, role)
    is_champion = was_champion & ~np.isfinite(st.champion_leave[acct])

    is_exec = role == EXECUTIVE
    is_exec_sponsor = is_exec & (rng.random(total) < np.asarray(EXEC_SPONSOR_SHARE)[st.segment[acct]])

    active_users = np.maximum(1, np.ceil(count * pool.share0))
    weight = np.select(
        [role == ADMIN, role == MANAGER, role == EXECUTIVE],
        [1.15, 1.0, 0.12],
        rng.lognormal(np.log(0.8), 0.5, total),
    )
    weight = weight * np.where(was_champion, 1.25, 1.0)
    weight = weight * np.where((rank < active_users[acct]) | (role == ADMIN) | was_champion, 1.0, 0.04)

    join = np.where(rank == 0, 0.0, rng.exponential(1.0 + 20.0 * (1.0 - pool.onboarding[acct]) ** 1.5))
    first_day = pool.since[acct] + join
    last_day = np.where(was_champion, np.minimum(st.champion_leave[acct], st.end[acct]), st.end[acct])
    last_day = np.maximum(last_day, first_day)

    first, last = person_names(total, rng)
    style = rng.integers(0, 3, n)[acct].tolist()  # each company has one email convention
    seen: set[str] = set()
    emails = []
    for f, s, st_, dom in zip(_ascii(first), _ascii(last), style, np.asarray(domains, dtype=object)[acct], strict=True):
        local = f"{f}.{s}" if st_ == 0 else (f"{f[0]}{s}" if st_ == 1 else f"{f}_{s}")
        email, k = f"{local}@{dom}", 1
        while email in seen:
            k += 1
            email = f"{local}{k}@{dom}"
        seen.add(email)
        emails.append(email)
    email = np.asarray(emails, dtype=object)
    name = np.asarray([f"{f} {s}" for f, s in zip(first, last, strict=True)], dtype=object)
    return Contacts(
        acct=acct,
        rank=rank,
        role=role.astype(np.int8),
        weight=weight,
        first_day=first_day.astype(float),
        last_day=last_day.astype(float),
        is_champion=is_champion,
        was_champion=was_champion,
        is_exec_sponsor=is_exec_sponsor,
        name=name,
        email=email,
        offset=offset,
        count=count,
        champion_row=champion_row,
    )
