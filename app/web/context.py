"""The settings and engine the app factory attached, for the blueprints."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine

from app.settings import Settings


def settings() -> Settings:
    return current_app.extensions["cse"]["settings"]


def engine() -> Engine:
    return current_app.extensions["cse"]["engine"]


def refusals():
    """The per-source budget of refused webhook requests (app/web/throttle.py), one per app, shared by the apps
    of every web worker through Redis when there is one."""
    return current_app.extensions["cse"]["refusals"]


def redis():
    """One Redis client (and connection pool) per process, made on first use: a client per request cost more
    than the rest of a webhook's handling."""
    state = current_app.extensions["cse"]
    if state.get("redis") is None:
        from app.queues import redis_connection

        state["redis"] = redis_connection(state["settings"])
    return state["redis"]


def score_queue():
    """The RQ queue webhook processing goes to, built once per process next to its Redis client."""
    state = current_app.extensions["cse"]
    if state.get("score_queue") is None:
        from app.queues import SCORE_QUEUE, get_queue

        state["score_queue"] = get_queue(state["settings"], SCORE_QUEUE, redis())
    return state["score_queue"]
