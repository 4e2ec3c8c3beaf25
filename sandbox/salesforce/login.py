"""Logging in to the sandbox org: the SOAP login the SDK uses by default (its envelope and faults) and the OAuth 2.0
token endpoint (JWT bearer and username-password flows of a connected app)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

import jwt
from flask import Flask, Response, jsonify, request

from sandbox.salesforce.org import SalesforceOrg

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
LOGIN_FAULT = "Invalid username, password, security token; or user locked out."


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status=500, content_type="text/xml; charset=utf-8")


def _login_response(org: SalesforceOrg, sid: str, version: str, host: str) -> Response:
    user = org.records["User"][org.api_user_id]
    org15 = org.org_id[:15]
    info = {
        "accessibilityMode": "false",
        "currencySymbol": "$",
        "orgAttachmentFileSizeLimit": "5242880",
        "orgDefaultCurrencyIsoCode": "USD",
        "orgDisallowHtmlAttachments": "false",
        "orgHasPersonAccounts": "false",
        "organizationId": org.org_id,
        "organizationMultiCurrency": "false",
        "organizationName": "CSE Sandbox",
        "profileId": "00e5g000000AbCdAAK",
        "roleId": "",
        "sessionSecondsValid": "7200",
        "userDefaultCurrencyIsoCode": "",
        "userEmail": user["Email"],
        "userFullName": user["Name"],
        "userId": user["Id"],
        "userLanguage": "en_US",
        "userLocale": "en_US",
        "userName": user["Username"],
        "userTimeZone": "America/Los_Angeles",
        "userType": "Standard",
        "userUiSkin": "Theme3",
    }
    nil = ' xsi:nil="true"'
    user_info = "".join(f"<{k}{'' if v else nil}>{escape(v)}</{k}>" for k, v in info.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
        f"<metadataServerUrl>https://{escape(host)}/services/Soap/m/{version}/{org15}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>https://{escape(host)}/services/Soap/u/{version}/{org15}</serverUrl>"
        f"<sessionId>{escape(sid)}</sessionId><userId>{user['Id']}</userId>"
        f"<userInfo>{user_info}</userInfo>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status=200, content_type="text/xml; charset=utf-8")


def _xml_values(payload: bytes) -> dict[str, str]:
    """Local name -> text of every element (the SDK's login envelopes use varying namespace prefixes)."""
    values = {}
    for element in ET.fromstring(payload).iter():
        values[element.tag.rsplit("}", 1)[-1]] = (element.text or "").strip()
    return values


def _jwt_claims(org: SalesforceOrg, assertion: str) -> dict[str, Any]:
    """Check the JWT bearer assertion: signature against the connected app's certificate when one is set."""
    if org.jwt_public_key:
        return jwt.decode(assertion, org.jwt_public_key, algorithms=["RS256"], options={"verify_aud": False})
    claims = jwt.decode(assertion, options={"verify_signature": False})
    if int(claims.get("exp", 0)) < time.time():
        raise jwt.ExpiredSignatureError("expired")
    return claims


def register_login(app: Flask, org: SalesforceOrg) -> None:
    """The login routes on `app`, answering for `org` (the app's current org)."""

    @app.post("/services/Soap/u/<version>")
    def soap_login(version: str) -> Response:
        if org.faults.latency_seconds:
            time.sleep(org.faults.latency_seconds)
        try:
            values = _xml_values(request.get_data())
        except ET.ParseError:
            return _soap_fault("INVALID_LOGIN", LOGIN_FAULT)
        if not org.check_password(values.get("username", ""), values.get("password", "")):
            return _soap_fault("INVALID_LOGIN", LOGIN_FAULT)
        return _login_response(org, org.open_session(), version, request.host)

    @app.post("/services/oauth2/token")
    def oauth_token() -> tuple[Response, int]:
        """OAuth 2.0 JWT bearer flow (and the username-password flow) for a connected app."""
        grant = request.form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = _jwt_claims(org, request.form.get("assertion", ""))
            except jwt.PyJWTError:
                return jsonify({"error": "invalid_grant", "error_description": "invalid assertion"}), 400
            if org.consumer_key and claims.get("iss") != org.consumer_key:
                return jsonify({"error": "invalid_client_id", "error_description": "client identifier invalid"}), 400
            if claims.get("sub") != org.username:
                return jsonify(
                    {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
                ), 400
        elif grant == "password":
            if org.consumer_key and request.form.get("client_id") != org.consumer_key:
                return jsonify({"error": "invalid_client_id", "error_description": "client identifier invalid"}), 400
            if not org.check_password(request.form.get("username", ""), request.form.get("password", "")):
                return jsonify({"error": "invalid_grant", "error_description": "authentication failure"}), 400
        else:
            return jsonify({"error": "unsupported_grant_type", "error_description": "grant type not supported"}), 400
        sid = org.open_session()
        return jsonify(
            {
                "access_token": sid,
                "scope": "api",
                "instance_url": f"https://{request.host}",
                "id": f"https://login.salesforce.com/id/{org.org_id}/{org.api_user_id}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            }
        ), 200
