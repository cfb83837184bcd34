"""Google's OAuth 2.0 token endpoint (token_uri = https://127.0.0.1:PORT/google_oauth/token), for GA4 and Google Ads.

POST /token (application/x-www-form-urlencoded):
- grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer & assertion=<JWT>: the service-account flow (GA4). The
  RS256 JWT is verified against the key the sandbox generated (`ga4.credentials_file()`), its `aud` must be this
  token_uri and `iss` the key's client_email -> {access_token, expires_in, token_type} for GA4.
- grant_type=refresh_token & client_id & client_secret & refresh_token: the installed-app flow (Google Ads) ->
  {access_token, expires_in, scope, token_type}.
Failures: 400 {"error": "invalid_grant" | "invalid_client", "error_description": ...}
(developers.google.com/identity/protocols/oauth2/service-account#httprest, .../oauth2/web-server#offline).
"""
from __future__ import annotations

import base64
import json
import time
from typing import Any

from .base import Api
from .server import Request, Response, json_response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class GoogleOAuth(Api):
    name = "google_oauth"
    client_id = "sandbox-client.apps.googleusercontent.com"
    client_secret = "sandbox-google-client-secret"
    refresh_token = "1//sandbox-refresh-token"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.service_accounts: dict[str, Any] = {}  # client_email -> RSA public key
        self.expires_in = 3599

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def is_token_endpoint(self, req: Request) -> bool:
        return True

    def handle(self, req: Request) -> Response:
        if req.path != "/token" or req.method != "POST":
            return self.not_found(req)
        form = req.form()
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            problem = self.check_assertion(form.get("assertion", ""))
            if problem:
                return json_response(400, {"error": "invalid_grant", "error_description": problem})
            return json_response(200, {"access_token": self.sandbox.tokens.issue("ga4", "ya29.sandbox-ga4-"),
                                       "expires_in": self.expires_in, "token_type": "Bearer"})
        if grant == "refresh_token":
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return json_response(401, {"error": "invalid_client", "error_description": "Unauthorized"})
            if form.get("refresh_token") != self.refresh_token:
                return json_response(400, {"error": "invalid_grant",
                                           "error_description": "Token has been expired or revoked."})
            return json_response(200, {"access_token": self.sandbox.tokens.issue("google_ads", "ya29.sandbox-ads-"),
                                       "expires_in": self.expires_in, "scope": "https://www.googleapis.com/auth/adwords",
                                       "token_type": "Bearer"})
        return json_response(400, {"error": "unsupported_grant_type", "error_description": f"Invalid grant_type: {grant}"})

    def check_assertion(self, assertion: str) -> str | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, payload, sig = assertion.split(".")
            header, claims = json.loads(_b64(head)), json.loads(_b64(payload))
        except ValueError:
            return "Invalid JWT: malformed"
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256"
        key = self.service_accounts.get(claims.get("iss"))
        if key is None:
            return "Invalid JWT: unknown issuer"
        try:
            key.verify(_b64(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature."
        if claims.get("aud") != self.token_uri:
            return f"Invalid JWT: Failed audience check. The right audience is {self.token_uri}"
        if not claims.get("exp") or claims["exp"] < time.time():
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        return None
