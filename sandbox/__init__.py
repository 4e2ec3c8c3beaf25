"""Sandbox CRM servers: small HTTP apps that behave like the Salesforce, HubSpot and Intercom APIs we use.

They power the integration tests (the official SDKs talk to them over loopback) and `cse demo`.
"""
