"""The account page links to the account's record in each CRM, at the address the CRM serves it from, built from
the deployment's settings; without a vendor's setting the id is shown with the setting that would link it."""

from __future__ import annotations

import re

from sqlalchemy import insert

from app.settings import Settings
from app.store.models import ExternalId
from app.web import create_app
from tests.programs_support import book
from tests.web_support import sign_in

RECORDS = [("salesforce", "Account", "001Kd00000AbCdEIA3"), ("intercom", "companies", "65f1c0ffee")]


def _account_page(store, tmp_path, **settings) -> str:
    (account_id,) = book(store, 1)  # with HubSpot company co-<key>
    with store.begin() as conn:
        conn.execute(insert(ExternalId), [{"account_id": account_id, "vendor": v, "object": o, "external_id": i}
                                          for v, o, i in RECORDS])  # fmt: skip
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key="k", **settings), engine=store)
    client = app.test_client()
    sign_in(client, store, "viewer")
    return client.get(f"/accounts/{account_id}").get_data(as_text=True)


def test_each_crm_record_links_to_the_crm(store, tmp_path):
    page = _account_page(store, tmp_path, salesforce_instance_url="https://acme.my.salesforce.com",
                         hubspot_portal_id="4455667", intercom_app_id="abc123xy")  # fmt: skip
    links = dict(re.findall(r'<li data-vendor="(\w+)"><a href="([^"]+)"', page))
    hubspot_id = re.search(r"<code>(co-[^<]+)</code>", page).group(1)
    assert links == {
        "salesforce": "https://acme.my.salesforce.com/lightning/r/Account/001Kd00000AbCdEIA3/view",
        "hubspot": f"https://app.hubspot.com/contacts/4455667/company/{hubspot_id}",
        "intercom": "https://app.intercom.com/a/apps/abc123xy/companies/65f1c0ffee",
    }


def test_without_the_setting_the_id_is_shown_with_the_setting_to_set(store, tmp_path):
    page = _account_page(store, tmp_path, hubspot_portal_id="4455667")
    assert re.findall(r'<li data-vendor="(\w+)"><a href', page) == ["hubspot"]
    assert "(set SALESFORCE_INSTANCE_URL to link to it)" in page and "(set INTERCOM_APP_ID to link to it)" in page
