"""The one retry loop (connectors.retry): what each verdict does, the error it leaves, and an unreachable vendor
failing fast, for each of the three clients through its real SDK."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from connectors.errors import ConnectorConfigError, VendorConfigError, VendorError
from connectors.hubspot import HubSpotClient
from connectors.intercom import IntercomClient
from connectors.retry import Action, RetryPolicy, Verdict, call_with_retries
from connectors.salesforce import SalesforceClient, SalesforceConfig
from connectors.source import PullStats


class Flaky:
    """Fails with the given verdicts in turn, then answers "ok"."""

    def __init__(self, *verdicts: Verdict) -> None:
        self.verdicts, self.calls = list(verdicts), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.verdicts:
            raise LookupError(self.verdicts.pop(0))
        return "ok"


def run(fn, waits: list[float], **options):
    stats = options.pop("stats", PullStats())
    policy = options.pop("policy", RetryPolicy(sleep=waits.append))
    return call_with_retries(
        fn,
        vendor="acme",
        url="https://api.acme.test",
        classify=lambda e: e.args[0] if isinstance(e, LookupError) else None,
        policy=policy,
        stats=stats,
        **options,
    )


def test_named_waits_are_honoured_and_backoff_grows() -> None:
    waits: list[float] = []
    stats = PullStats()
    flaky = Flaky(Verdict(Action.RETRY_AFTER, 3.0), *[Verdict(Action.TRANSIENT)] * 3, Verdict(Action.TRANSIENT, 0.2))
    assert run(flaky, waits, stats=stats) == "ok"
    assert waits[0] == 3.0
    # Backoff counts attempts, the named wait's included: 0.5 s doubling from the first, ±20 % jitter.
    assert 0.8 <= waits[1] <= 1.2 and 1.6 <= waits[2] <= 2.4 and 3.2 <= waits[3] <= 4.8
    assert 0.16 <= waits[4] <= 0.24  # capped by the vendor's window
    assert (stats.api_calls, stats.retries) == (6, 5)


def test_named_waits_stay_within_max_wait() -> None:
    waits: list[float] = []
    run(Flaky(Verdict(Action.RETRY_AFTER, 3600.0)), waits)
    assert waits == [60.0]


def test_fatal_verdicts_are_not_retried_and_say_whether_a_later_try_may_land() -> None:
    waits: list[float] = []
    with pytest.raises(VendorConfigError) as config:
        run(Flaky(Verdict(Action.FATAL_CONFIG, status=401)), waits)
    assert config.value.retryable and config.value.status == 401 and isinstance(config.value, ConnectorConfigError)
    with pytest.raises(VendorError) as record:
        run(Flaky(Verdict(Action.FATAL_RECORD, status=404, code="not_found")), waits)
    assert not record.value.retryable and record.value.code == "not_found"
    assert "acme: https://api.acme.test refused the record" in str(record.value)
    assert waits == []


def test_an_expired_session_is_renewed_once_per_call() -> None:
    waits: list[float] = []
    stats, logins = PullStats(), []
    expired = Verdict(Action.REAUTHENTICATE, status=401)
    assert run(Flaky(expired), waits, stats=stats, reauthenticate=lambda: logins.append(1)) == "ok"
    assert logins == [1] and stats.relogins == 1 and stats.retries == 0
    with pytest.raises(VendorError, match="expired"):
        run(Flaky(expired, expired), waits, stats=stats, reauthenticate=lambda: logins.append(1))
    with pytest.raises(VendorError, match="expired"):
        run(Flaky(expired), waits)  # nothing to log in with
    assert logins == [1, 1] and waits == []


def test_the_attempt_budget_and_what_is_not_a_vendor_failure() -> None:
    waits: list[float] = []
    flaky = Flaky(*[Verdict(Action.TRANSIENT, status=503)] * 10)
    with pytest.raises(VendorError, match=r"kept failing after 4 attempts: LookupError \(HTTP 503\)") as caught:
        run(flaky, waits, policy=RetryPolicy(attempts=4, sleep=waits.append))
    assert flaky.calls == 4 and caught.value.attempts == 4 and caught.value.retryable
    with pytest.raises(ZeroDivisionError):  # a bug of ours is raised as it is, at once
        run(lambda: 1 / 0, waits)
    assert len(waits) == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hubspot(url: str, policy: RetryPolicy):
    client = HubSpotClient("token", url, retry=policy, search_requests_per_second=None)
    return client, lambda: client.call(client.api("crm.companies.basic_api").get_page)


def _intercom(url: str, policy: RetryPolicy):
    client = IntercomClient("token", base_url=url, retry=policy)
    return client, lambda: client.request("GET", "companies")


def _salesforce(url: str, policy: RetryPolicy):
    client = SalesforceClient(SalesforceConfig(session_id="00D!x", instance_url=url), retry=policy)
    return client, lambda: client.describe("Account")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "cse-no-such-host.invalid"], ids=["refused", "dns"])
@pytest.mark.parametrize("vendor,build", [("hubspot", _hubspot), ("intercom", _intercom), ("salesforce", _salesforce)])
def test_an_unreachable_base_url_fails_fast_naming_vendor_and_url(vendor, build, host) -> None:
    url = "http://" + host.format(port=_closed_port())
    waits: list[float] = []
    policy = RetryPolicy(attempts=8, sleep=waits.append)  # a 429 would get eight tries; no answer gets three
    client, call = build(url, policy)
    with pytest.raises(VendorError) as caught:
        call()
    error = caught.value
    assert str(error).startswith(f"{vendor}: cannot reach {url} after 3 attempts")
    assert error.vendor == vendor and error.url == url and error.attempts == 3 and error.status is None
    assert client.stats.retries == 2 and len(waits) == 2 and sum(waits) < 2.0


def test_missing_credentials_are_a_config_error_for_every_vendor() -> None:
    for build in (
        lambda: HubSpotClient.from_settings(SimpleNamespace(hubspot_access_token=None)),
        lambda: IntercomClient.from_settings(SimpleNamespace(intercom_access_token=None)),
        lambda: SalesforceClient(SalesforceConfig()),
    ):
        with pytest.raises(ConnectorConfigError):
            build()
