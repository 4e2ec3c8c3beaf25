"""Intercom connector: the official SDK with retries and call counting (client.py), the pull (source.py)."""

from connectors.intercom.client import API_VERSION, IntercomClient
from connectors.intercom.source import OBJECTS, IntercomSource
from connectors.registry import Connector

__all__ = ["CONNECTOR", "API_VERSION", "OBJECTS", "IntercomClient", "IntercomSource"]

CONNECTOR = Connector(
    name="intercom",
    credentials=("intercom_access_token",),
    credentials_help="INTERCOM_ACCESS_TOKEN",
    source="connectors.intercom.source:IntercomSource.from_settings",
    client="connectors.intercom.client:IntercomClient",
    pusher="connectors.intercom.push:IntercomPusher",
    push_mapping="push_companies",
    company_object="companies",
    fields="connectors.intercom.fields",
    webhook_objects={
        "company": "companies",
        "contact": "contacts",
        "user": "contacts",
        "lead": "contacts",
        "conversation": "conversations",
    },  # fmt: skip
    also_fetch={"contacts": ("events",)},
    messages=True,
    rank=2,
    sandbox="sandbox.intercom:start_sandbox",
    surveys="connectors.intercom.surveys:IntercomSurveys.from_settings",
    survey_topics=("conversation.user.replied", "conversation.rating.added"),
)
