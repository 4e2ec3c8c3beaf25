"""The account card: one backend view of an account (scores, why, what next) and the actions taken from it.

Every CRM surface (HubSpot app card, Intercom inbox app, Salesforce Lightning component) and the web app render
the same card and post the same actions; only the transport and its signature differ (app/web/cards.py).
"""
