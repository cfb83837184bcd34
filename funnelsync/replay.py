"""Recorded HTTP (vcrpy): one configuration for recording and replay, used by the tests and `funnelsync demo`.

The cassettes in cassettes/<type>/ are synthesized from each API's documented requests and responses (there are
no live accounts here); the same filters would scrub a real recording: credentials in headers, query strings,
form fields and token responses are replaced before anything is written.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"

SECRET_HEADERS = ["authorization", "cookie", "set-cookie", "x-api-key", "developer-token", "x-goog-api-key",
                  "proxy-authorization"]
SECRET_PARAMS = ["access_token", "api_key", "apikey", "hapikey", "key", "client_secret", "refresh_token", "appsecret_proof"]
SECRET_FORM = ["client_secret", "assertion", "refresh_token", "client_id", "password", "code"]
SECRET_BODY_KEYS = ("access_token", "refresh_token", "id_token", "signature")
# tokens inside URLs in response bodies (Meta's paging.next carries access_token=...)
_URL_SECRET = re.compile(r"((?:access_token|api_key|appsecret_proof|client_secret)=)[^&\"'\s]+")


def scrub_response(response: dict) -> dict:
    """Replace token values in JSON response bodies (OAuth token endpoints) and drop cookies."""
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in ("set-cookie", "cookie"):
            headers.pop(name)
    body = response.get("body", {}).get("string")
    if body:
        raw = body.decode("utf-8") if isinstance(body, bytes) else body
        scrubbed = _URL_SECRET.sub(r"\1REDACTED", raw)
        if scrubbed != raw:
            raw = scrubbed
            response["body"]["string"] = raw.encode("utf-8") if isinstance(body, bytes) else raw
            for name in list(headers):
                if name.lower() == "content-length":
                    headers[name] = [str(len(raw.encode("utf-8")))]
        try:
            data = json.loads(raw)
        except ValueError:
            return response
        if isinstance(data, dict) and any(k in data for k in SECRET_BODY_KEYS):
            for k in SECRET_BODY_KEYS:
                if k in data:
                    data[k] = "REDACTED"
            text = json.dumps(data)
            response["body"]["string"] = text.encode("utf-8") if isinstance(body, bytes) else text
            for name in list(headers):
                if name.lower() == "content-length":
                    headers[name] = [str(len(text.encode("utf-8")))]
    return response


def vcr_config(record_mode: str = "none") -> dict[str, Any]:
    return {
        "record_mode": record_mode,
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "filter_headers": [(h, "REDACTED") for h in SECRET_HEADERS],
        "filter_query_parameters": [(p, "REDACTED") for p in SECRET_PARAMS],
        "filter_post_data_parameters": [(p, "REDACTED") for p in SECRET_FORM],
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
    }


def make_vcr(record_mode: str = "none"):
    import vcr  # imported lazily: only tests and `funnelsync demo` replay HTTP

    return vcr.VCR(cassette_library_dir=str(CASSETTES), **vcr_config(record_mode))
