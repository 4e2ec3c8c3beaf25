"""The settings and engine the app factory attached, for the blueprints."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine

from app.settings import Settings


def settings() -> Settings:
    return current_app.extensions["cse"]["settings"]


def engine() -> Engine:
    return current_app.extensions["cse"]["engine"]
