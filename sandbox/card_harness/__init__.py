"""A local harness that renders each CRM surface's card from what our endpoints answer, for screenshots.

    python -m sandbox.card_harness --out .cse-data/harness            # write the three HTML pages
    python -m sandbox.card_harness --shoot docs/screenshots           # and capture them in headless Chromium

A throwaway store gets one account, scored, linked to a HubSpot company, a Salesforce Account and an Intercom
company, with an open task; then signed requests built by sandbox/cards.py (as the vendors send them) log a call,
override the band and request an enrollment through the three endpoints, and the answers (card JSON, Intercom
canvas) are rendered as HTML close to how HubSpot, Intercom and Salesforce draw them.
"""
