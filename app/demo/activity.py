"""Daily activity over the window: logins, feature use, API, support, surveys, CSM touches and churn signals.

Everything is drawn from one account-day engagement matrix

    engagement = base(adoption, complexity) * onboarding ramp * disengagement before churn * passing slump
                 * weekday * noise

so usage, breadth, tickets and replies move together the way they do in real books: an account heading to churn
logs in less, abandons features, files more tickets and stops answering its CSM weeks before it leaves.
Generation is vectorized over accounts x days (and contacts x days for logins); loops run over event kinds and
features only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.demo.accounts import stage_rng
from app.demo.contacts import Contacts
from app.demo.spec import CORE_FEATURES, FEATURES, MILESTONES, PLAN_API_LIMIT, PLANS
from app.demo.state import BookState
from engine.canonical import EventKind

KINDS: tuple[EventKind, ...] = tuple(EventKind)
LABELS: tuple[str, ...] = (*FEATURES, *MILESTONES, *PLANS)  # values of the `feature` column
SOURCES: tuple[str, ...] = ("intercom", "salesforce", "hubspot")
DAY = 86_400
WEEKDAY_FACTOR = np.array([1.0, 1.05, 1.05, 1.0, 0.85, 0.18, 0.12])  # Monday first

# Per feature: adoption intercept, per-login use propensity. Core features are adopted far more readily.
FEATURE_ALPHA = {
    "tasks": 4.0, "projects": 3.0, "boards": 1.0, "reports": 0.3, "automations": -0.4, "dashboards": 0.0,
    "gantt": -0.6, "time_tracking": -0.6, "docs": 0.2, "goals": -1.3, "workload": -1.5, "portfolios": -1.0,
    "integrations": -0.4, "custom_fields": -0.9, "api": -2.3,
}  # fmt: skip
FEATURE_PROPENSITY = {
    "tasks": 0.9, "projects": 0.5, "boards": 0.45, "reports": 0.2, "automations": 0.25, "dashboards": 0.3,
    "gantt": 0.25, "time_tracking": 0.4, "docs": 0.3, "goals": 0.12, "workload": 0.15, "portfolios": 0.12,
    "integrations": 0.15, "custom_fields": 0.15, "api": 0.08,
}  # fmt: skip

FEATURE_USE_SCALE = 0.25
SLUMP_SHARE = 0.35  # accounts with a temporary dip in engagement during the window


@dataclass
class Events:
    """Event columns as codes: index into KINDS / LABELS / SOURCES, contact row (-1 = none), seconds since
    the window start."""

    acct: np.ndarray
    contact: np.ndarray
    t: np.ndarray
    kind: np.ndarray
    label: np.ndarray
    count: np.ndarray
    value: np.ndarray
    source: np.ndarray


class _Sink:
    """Collects event parts per kind and concatenates them once."""

    def __init__(self, crm: np.ndarray) -> None:
        self.parts: list[dict[str, np.ndarray]] = []
        self.crm_source = crm.astype(np.int8) + 1

    def add(
        self,
        kind: EventKind,
        acct: np.ndarray,
        t: np.ndarray,
        *,
        contact: np.ndarray | None = None,
        label: np.ndarray | int | None = None,
        count: np.ndarray | None = None,
        value: np.ndarray | None = None,
        source: np.ndarray | str = "intercom",
    ) -> None:
        m = len(acct)
        if m == 0:
            return
        if isinstance(source, str):
            src = self.crm_source[acct] if source == "crm" else np.zeros(m, np.int8)
        else:
            src = source
        self.parts.append(
            {
                "acct": acct.astype(np.int32),
                "contact": np.full(m, -1, np.int32) if contact is None else contact.astype(np.int32),
                "t": t.astype(np.int64),
                "kind": np.full(m, KINDS.index(kind), np.int8),
                "label": np.full(m, -1, np.int16) if label is None else np.broadcast_to(label, (m,)).astype(np.int16),
                "count": np.ones(m, np.int64) if count is None else count.astype(np.int64),
                "value": np.full(m, np.nan) if value is None else value.astype(np.float64),
                "source": src.astype(np.int8),
            }
        )

    def collect(self) -> Events:
        return Events(**{k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]})


def _hours(rng: np.random.Generator, m: int, lo: float = 9.0, hi: float = 17.5) -> np.ndarray:
    """Seconds into the day, uniform over business hours."""
    return (rng.uniform(lo, hi, m) * 3600).astype(np.int64)


def _in_life(st: BookState, acct: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Day (int or float) falls in the account's customer days inside the window."""
    return (day >= st.start[acct]) & (day < st.end[acct])


def simulate_events(seed: int, st: BookState, ct: Contacts, weekday0: int) -> Events:
    """Draw all events of the window; `weekday0` is the weekday of the window's first day (Monday = 0)."""
    rng = stage_rng(seed, 4)
    pool = st.pool
    n, days = st.n, st.days
    sink = _Sink(st.crm)
    d = np.arange(days)
    wk = WEEKDAY_FACTOR[(weekday0 + d) % 7]
    weekend = ((weekday0 + d) % 7) >= 5

    alive = (d[None, :] >= st.start[:, None]) & (d[None, :] < st.end[:, None])
    tenure = d[None, :] - pool.since[:, None]
    ramp_days = 2.0 + 25.0 * (1.0 - pool.onboarding) ** 1.5
    ramp = 1.0 - np.exp(-(tenure + 1.0) / ramp_days[:, None])
    span = np.maximum(pool.churn_day - st.onset, 1.0)
    progress = np.clip((d[None, :] - st.onset[:, None]) / span[:, None], 0.0, 1.0)
    decay = (1.0 - progress) ** 1.5 * _slumps(seed, n, days)
    base = 0.07 + 0.52 * pool.adoption**1.2 * (1.0 - 0.25 * pool.complexity)
    noise = rng.lognormal(0.0, 0.25, (n, days))
    engage = (base[:, None] * ramp * decay * wk[None, :] * noise * alive).astype(np.float32)

    # Logins: one row per contact-day with sessions and minutes.
    cd_ok = (d[None, :] >= ct.first_day[:, None]) & (d[None, :] < ct.last_day[:, None])
    p_login = np.minimum(engage[ct.acct] * ct.weight[:, None].astype(np.float32), 0.95) * cd_ok
    ci, di = np.nonzero(rng.random(p_login.shape, dtype=np.float32) < p_login)
    del p_login, cd_ok
    la = ct.acct[ci]
    ldecay = decay[la, di]
    sessions = 1 + rng.poisson(0.3 + 1.4 * pool.adoption[la] * ldecay)
    mean_session = 4.0 + 32.0 * pool.adoption[la] * (1.0 - 0.45 * pool.complexity[la]) * (0.5 + 0.5 * ldecay)
    minutes = np.maximum(np.round(rng.gamma(2.0 * sessions, mean_session / 2.0), 1), 0.5)
    lt = di * DAY + (np.clip(rng.normal(10.5, 2.3, len(ci)), 6.0, 21.5) * 3600).astype(np.int64)
    sink.add(EventKind.LOGIN, la, lt, contact=ci, count=sessions, value=minutes)

    key = la.astype(np.int64) * days + di
    n_log = np.bincount(key, minlength=n * days).reshape(n, days)
    by_key = np.argsort(key, kind="stable")
    key_start = np.concatenate([[0], np.cumsum(n_log.ravel())[:-1]])

    def pick_login(keys: np.ndarray) -> np.ndarray:
        """A random login row of each account-day key (the key must have logins)."""
        flat = n_log.ravel()[keys]
        return by_key[key_start[keys] + np.floor(rng.random(len(keys)) * flat).astype(np.int64)]

    lifecycles = _features(rng, st, sink, n_log, pick_login, ci, lt)
    _api(rng, st, sink, alive, weekend, decay, noise, lifecycles)
    _support(rng, st, ct, sink, alive, weekend, tenure, progress, n_log, pick_login, ci, lt)
    _milestones(rng, st, ct, sink)
    _surveys(rng, st, ct, sink)
    _csm_touches(rng, st, ct, sink)
    _churn_signals(rng, st, ct, sink)
    _commercial(rng, st, ct, sink)
    ev = sink.collect()

    lo = np.maximum(st.start[ev.acct], 0).astype(np.int64) * DAY
    hi = st.end[ev.acct].astype(np.int64) * DAY
    keep = (ev.t >= lo) & (ev.t < hi)
    return Events(**{k: v[keep] for k, v in ev.__dict__.items()})


def _slumps(seed: int, n: int, days: int) -> np.ndarray:
    """Engagement multiplier (n x days) of temporary dips that pass again (a reorganization, a holiday season, a
    busy quarter): about a third of the accounts have one in the window, churners or not, so a decline alone is
    not a verdict and the early warning has false alarms to avoid. Its own generator leaves the other draws be."""
    rng = stage_rng(seed, 4, 1)
    has = rng.random(n) < SLUMP_SHARE
    start = rng.uniform(-30.0, days, n)
    length = rng.uniform(20.0, 70.0, n)
    depth = np.where(has, rng.uniform(0.3, 0.7, n), 0.0)
    phase = np.clip((np.arange(days)[None, :] - start[:, None]) / length[:, None], 0.0, 1.0)
    return (1.0 - depth[:, None] * np.sin(np.pi * phase)).astype(np.float32)


def _features(rng, st, sink, n_log, pick_login, login_contact, login_t) -> dict[str, tuple[np.ndarray, ...]]:
    """Feature use per account-day: adopted features (driven by adoption, narrowed by complexity), used with a
    probability rising with the day's logins, abandoned one by one as an account disengages before churn.

    Returns feature -> (adopted, adoption day, abandonment day) per account, for the API volume."""
    lifecycles = {}
    pool = st.pool
    n, days = n_log.shape
    d = np.arange(days)
    heading = st.onset < days
    depth = 0.5 + pool.adoption
    has_logins = n_log > 0
    for j, feature in enumerate(FEATURES):
        core = feature in CORE_FEATURES
        beta, gamma = (6.0, 1.5) if core else (4.0, 3.0)
        logit = FEATURE_ALPHA[feature] + beta * (pool.adoption - 0.5) - gamma * (pool.complexity - 0.5)
        logit = logit + 0.4 * pool.plan0
        if feature == "portfolios":
            logit = np.where(pool.plan0 >= 2, logit, -9.0)
        if feature == "api":
            logit = logit + 1.5 * (pool.size_class >= 1)
        adopted = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
        adopt_day = pool.since + rng.exponential((2.0 + 40.0 * (1.0 - pool.onboarding) ** 1.5) * (1 + 0.15 * j))
        skew = 1.0 if core else 2.0  # extended features go first
        abandon_heading = st.onset + rng.random(n) ** skew * (pool.churn_day - st.onset)
        abandon = np.where(heading & (rng.random(n) < 0.85), abandon_heading, np.inf)
        random_drop = rng.random(n) < 0.04
        abandon = np.where(random_drop, np.minimum(abandon, rng.uniform(0, days + 100, n)), abandon)
        lifecycles[feature] = (adopted, adopt_day, abandon)
        in_use = adopted[:, None] & (d[None, :] >= adopt_day[:, None]) & (d[None, :] < abandon[:, None])
        rate = n_log * (FEATURE_USE_SCALE * FEATURE_PROPENSITY[feature] * depth)[:, None]
        used = has_logins & in_use & (rng.random((n, days), dtype=np.float32) < 1.0 - np.exp(-rate))
        keys = np.flatnonzero(used.ravel())
        if not len(keys):
            continue
        acct, day = np.divmod(keys, days)
        row = pick_login(keys)
        count = 1 + rng.poisson(1.5 * rate.ravel()[keys])
        t = np.minimum(login_t[row] + rng.integers(0, 7200, len(keys)), day * DAY + DAY - 1)
        sink.add(EventKind.FEATURE_USED, acct, t, contact=login_contact[row], label=j, count=count)
    return lifecycles


def _api(rng, st, sink, alive, weekend, decay, noise, lifecycles) -> None:
    """Daily API call totals for accounts that adopted the API or integrations features, from adoption until
    both are abandoned; volume vs. the plan limit is an expansion signal, so the heaviest users are the growing
    ones."""
    pool = st.pool
    n, days = alive.shape
    api_on, api_from, api_to = lifecycles["api"]
    int_on, int_from, int_to = lifecycles["integrations"]
    int_on = int_on & (rng.random(n) < 0.2)  # only some integrations call the public API
    uses_api = api_on | int_on
    start = np.minimum(np.where(api_on, api_from, np.inf), np.where(int_on, int_from, np.inf))
    stop = np.maximum(np.where(api_on, api_to, -np.inf), np.where(int_on, int_to, -np.inf))
    util = np.clip(0.1 + 0.85 * pool.growth**1.3 * (0.5 + pool.adoption) / 1.5 + rng.normal(0, 0.1, n), 0.02, 1.05)
    limit = np.asarray(PLAN_API_LIMIT)
    daily = np.minimum(limit[pool.plan0], limit[st.plan_final]) * util / 30.0  # a downgrade caps usage
    d = np.arange(days)
    on = alive & uses_api[:, None] & (d[None, :] >= start[:, None]) & (d[None, :] < stop[:, None])
    on &= rng.random((n, days), dtype=np.float32) < np.where(weekend, 0.6, 0.97)[None, :]
    acct, day = np.nonzero(on)
    lam = daily[acct] * np.where(weekend[day], 0.4, 1.0) * noise[acct, day] * decay[acct, day]
    count = np.maximum(1, rng.poisson(lam))
    t = day * DAY + 23 * 3600 + rng.integers(0, 3500, len(acct))
    sink.add(EventKind.API_CALL, acct, t, count=count)


def _support(rng, st, ct, sink, alive, weekend, tenure, progress, n_log, pick_login, login_contact, login_t):
    """Tickets (more with complexity, early in onboarding and in a spike before churn), their resolution,
    escalations, and self-service answers (the share that complexity erodes)."""
    pool = st.pool
    n, days = alive.shape
    users = 1.0 + pool.seats0 * pool.share0
    lam = (
        0.0035
        * users[:, None] ** 0.6
        * (0.35 + 1.8 * pool.complexity)[:, None]
        * (1.0 + 2.0 * (1.0 - pool.onboarding)[:, None] * np.exp(-np.maximum(tenure, 0) / 21.0))
        * (1.0 + 4.0 * np.sin(np.pi * np.minimum(progress * 1.3, 1.0)))  # spike, then silence
        * np.where(weekend, 0.25, 1.0)[None, :]
        * alive
    )
    counts = rng.poisson(lam)
    acct, day = np.nonzero(counts)
    reps = counts[acct, day]
    acct, day = np.repeat(acct, reps), np.repeat(day, reps)
    m = len(acct)
    rank = np.floor(rng.random(m) ** 2 * ct.count[acct]).astype(np.int64)
    contact = ct.offset[acct] + rank
    contact = np.where(ct.last_day[contact] > day, contact, ct.offset[acct])
    opened = day * DAY + (np.clip(rng.normal(13.0, 3.0, m), 7.0, 20.0) * 3600).astype(np.int64)
    sink.add(EventKind.TICKET_OPENED, acct, opened, contact=contact, source="crm")

    seg_speed = np.array([1.0, 0.8, 0.6])[st.segment[acct]]
    hours = np.clip(rng.lognormal(np.log(6.0 * (0.5 + pool.complexity[acct]) * seg_speed), 1.0), 0.1, 720.0)
    closed = opened + (hours * 3600).astype(np.int64)
    done = closed < st.end[acct].astype(np.int64) * DAY
    sink.add(
        EventKind.TICKET_CLOSED, acct[done], closed[done], contact=contact[done], value=np.round(hours[done], 1),
        source="crm",
    )  # fmt: skip

    p_esc = 0.03 + 0.12 * pool.complexity[acct] + 0.15 * progress[acct, day] + 0.05 * (st.segment[acct] == 2)
    esc = rng.random(m) < p_esc
    esc_t = opened[esc] + (rng.uniform(1, 36, int(esc.sum())) * 3600).astype(np.int64)
    sink.add(EventKind.ESCALATION, acct[esc], esc_t, contact=contact[esc], source="crm")

    ss_rate = n_log * (0.05 * (1.4 - pool.complexity))[:, None]
    ss = rng.poisson(ss_rate)
    keys = np.flatnonzero(ss.ravel())
    s_acct = keys // days
    row = pick_login(keys)
    t = np.minimum(login_t[row] + rng.integers(0, 3600, len(keys)), (keys % days) * DAY + DAY - 1)
    sink.add(EventKind.SELF_SERVICE, s_acct, t, contact=login_contact[row], count=ss.ravel()[keys])


def _milestones(rng, st, ct, sink) -> None:
    """Onboarding milestones at the days the account reached them (when that falls inside the window)."""
    pool = st.pool
    reached = {"setup_complete": pool.setup_days, "first_value": pool.ttfv, "team_active": pool.team_days}
    for milestone, offsets in reached.items():
        day = pool.since + offsets
        acct = np.flatnonzero(_in_life(st, np.arange(st.n), np.floor(day)))  # inf (never) is never in life
        t = np.floor(day[acct]).astype(np.int64) * DAY + _hours(rng, len(acct), 8.0, 19.0)
        label = len(FEATURES) + MILESTONES.index(milestone)
        sink.add(EventKind.MILESTONE, acct, t, contact=ct.offset[acct], label=label)


def _surveys(rng, st, ct, sink) -> None:
    """Quarterly in-app NPS: champions answer more, disengaging accounts less, and score lower."""
    pool = st.pool
    phase = rng.uniform(0, 91, st.n)
    a = ct.acct
    sat = 0.45 * pool.adoption + 0.25 * pool.onboarding + 0.3 * (1.0 - pool.complexity)
    for wave in range(st.days // 91 + 2):
        day = np.floor(phase[a] + 91 * wave + rng.exponential(1.5, len(a)))
        prog = np.clip((day - st.onset[a]) / np.maximum(pool.churn_day[a] - st.onset[a], 1.0), 0.0, 1.0)
        p = np.where(ct.was_champion, 0.45, np.where(ct.role == 3, 0.1, 0.22)) * (1.0 - 0.5 * prog)
        ok = (
            (rng.random(len(a)) < p)
            & _in_life(st, a, day)
            & (day >= ct.first_day)
            & (day < ct.last_day)
            & (day - pool.since[a] >= 30)
        )
        score = np.clip(np.round(2.5 + 8.0 * sat[a] - 4.0 * prog + rng.normal(0, 1.6, len(a))), 0, 10) + 0.0
        idx = np.flatnonzero(ok)
        t = day[idx].astype(np.int64) * DAY + _hours(rng, len(idx), 8.0, 20.0)
        sink.add(EventKind.SURVEY_RESPONSE, a[idx], t, contact=idx, value=score[idx])


def _contact_of(st: BookState, ct: Contacts, acct: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The person a CSM talks to: the champion while there is one, else the admin."""
    champ = ct.champion_row[acct]
    present = st.champion0[acct] & (day < st.champion_leave[acct])
    return np.where(present, champ, ct.offset[acct])


def _csm_touches(rng, st, ct, sink) -> None:
    """CSM outreach on a cadence by segment (weekly enterprise, monthly mid-market, ~6-weekly SMB), onboarding
    touches for new accounts, rescue outreach and meetings once a CSM notices disengagement; replies depend on
    adoption, growth, the champion and how far disengagement has gone."""
    pool = st.pool
    n, days = st.n, st.days
    period = np.array([45.0, 30.0, 7.0])[st.segment]
    phase = rng.uniform(0, 1, n) * period
    k = np.arange(days // 7 + 2)
    cadence = phase[:, None] + period[:, None] * k[None, :]
    acct_c, kk = np.nonzero(cadence < days)
    day_c = np.floor(cadence[acct_c, kk])
    onboarding = pool.since[:, None] + np.array([0.0, 3.0, 14.0])[None, :]
    acct_o, j = np.nonzero(np.ones_like(onboarding, dtype=bool))
    day_o = onboarding[acct_o, j]
    notice = st.onset + rng.uniform(3, 21, n)
    rescue = notice[:, None] + 10.0 * np.arange(6)[None, :]
    acct_r, j = np.nonzero(rng.random(rescue.shape) < 0.6)
    day_r = np.floor(rescue[acct_r, j])
    acct = np.concatenate([acct_c, acct_o, acct_r])
    day = np.concatenate([day_c, day_o, day_r])
    ok = _in_life(st, acct, day) & (day < days)
    acct, day = acct[ok], day[ok].astype(np.int64)
    contact = _contact_of(st, ct, acct, day)
    t = day * DAY + _hours(rng, len(acct))
    sink.add(EventKind.OUTREACH, acct, t, contact=contact, source="crm")

    prog = np.clip((day - st.onset[acct]) / np.maximum(pool.churn_day[acct] - st.onset[acct], 1.0), 0, 1)
    champion_here = st.champion0[acct] & (day < st.champion_leave[acct])
    p_reply = (0.1 + 0.55 * (0.6 * pool.adoption[acct] + 0.4 * pool.growth[acct])) * (1.0 - 0.8 * prog)
    p_reply = p_reply * np.where(champion_here, 1.0, 0.6)
    replied = rng.random(len(acct)) < p_reply
    delay = (rng.exponential(1.0, len(acct)) * DAY + rng.uniform(0.5, 5.0, len(acct)) * 3600).astype(np.int64)
    sink.add(EventKind.EMAIL_REPLIED, acct[replied], (t + delay)[replied], contact=contact[replied], source="crm")

    # Meetings: business reviews by segment, a kickoff for new accounts, rescue calls once risk is noticed.
    mperiod = np.array([10.0 * days, 91.0, 30.0])[st.segment]  # SMB: no business reviews
    mphase = rng.uniform(0, 1, n) * np.where(st.segment > 0, mperiod, 10.0 * days)
    reviews = mphase[:, None] + mperiod[:, None] * np.arange(days // 30 + 2)[None, :]
    acct_m, j = np.nonzero((reviews < days) & (rng.random(reviews.shape) < 0.8))
    day_m = np.floor(reviews[acct_m, j])
    kick = rng.random(n) < np.array([0.3, 0.9, 1.0])[st.segment]
    acct_k = np.flatnonzero(kick)
    day_k = np.floor(pool.since[acct_k] + rng.uniform(1, 7, len(acct_k)))
    save = rng.random(n) < np.array([0.25, 0.6, 0.85])[st.segment]
    acct_s = np.flatnonzero(save)
    day_s = np.floor(notice[acct_s] + rng.uniform(4, 20, len(acct_s)))
    acct = np.concatenate([acct_m, acct_k, acct_s])
    day = np.concatenate([day_m, day_k, day_s])
    ok = _in_life(st, acct, day) & (day < days)
    acct, day = acct[ok], day[ok].astype(np.int64)
    sink.add(
        EventKind.MEETING, acct, day * DAY + _hours(rng, len(acct)), contact=_contact_of(st, ct, acct, day),
        source="crm",
    )  # fmt: skip


def _churn_signals(rng, st, ct, sink) -> None:
    """Cancellation inquiries, data exports and competitor mentions in the weeks before churn (and, rarely,
    from accounts that stay: an export or a competitor question is not a verdict)."""
    pool = st.pool
    n = st.n
    heading = pool.churn_day <= st.days + 45
    specs = (
        (EventKind.CANCELLATION_INQUIRY, 0.55, 0.004, (2, 30), "crm"),
        (EventKind.DATA_EXPORT, 0.5, 0.06, (1, 21), "intercom"),
        (EventKind.COMPETITOR_MENTION, 0.35, 0.03, (7, 60), "mixed"),
    )
    for kind, p_heading, p_other, (lo, hi), source in specs:
        hit = rng.random(n) < np.where(heading, p_heading, p_other)
        before = pool.churn_day - rng.uniform(lo, hi, n)
        anytime = st.start + rng.random(n) * (st.end - st.start)
        day = np.floor(np.where(heading, before, anytime))
        acct = np.flatnonzero(hit & _in_life(st, np.arange(n), day))
        day = day[acct].astype(np.int64)
        t = day * DAY + _hours(rng, len(acct), 8.0, 19.0)
        if source == "mixed":
            src = np.where(rng.random(len(acct)) < 0.5, 0, sink.crm_source[acct]).astype(np.int8)
        else:
            src = source
        sink.add(kind, acct, t, contact=_contact_of(st, ct, acct, day), source=src)


def _commercial(rng, st, ct, sink) -> None:
    """Seat and plan changes decided in state.py, recorded in the account's CRM by its admin's contract."""
    t = st.seat_day * DAY + _hours(rng, len(st.seat_acct))
    sink.add(
        EventKind.SEAT_CHANGE, st.seat_acct, t, contact=ct.offset[st.seat_acct], value=st.seat_delta.astype(float),
        source="crm",
    )  # fmt: skip
    t = st.plan_day * DAY + _hours(rng, len(st.plan_acct))
    label = len(FEATURES) + len(MILESTONES) + st.plan_new
    sink.add(
        EventKind.PLAN_CHANGE, st.plan_acct, t, contact=ct.offset[st.plan_acct], label=label,
        value=st.plan_delta.astype(float), source="crm",
    )  # fmt: skip
