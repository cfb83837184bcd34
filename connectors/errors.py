"""Connector errors, grouped by what a person (or cron) must do about them. Each carries the exit code.

ConnectorError (1)
 ├── AuthError (3)            credentials rejected after any refresh: a person renews the token
 ├── TemporaryError (75)      retry next run: 429/5xx/network errors outlasted the retries
 │    └── QuotaError (75)     an API budget (daily limit, property quota) was reached: stop, commit, resume next run
 └── ApiError (1)             any other 4xx, or a response we cannot use

Messages are for people and never hold a secret: build them with `connectors.http.redact`.
"""
from __future__ import annotations


class ConnectorError(Exception):
    exit_code = 1


class AuthError(ConnectorError):
    exit_code = 3


class TemporaryError(ConnectorError):
    exit_code = 75

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class QuotaError(TemporaryError):
    """Raised by a connector *between pages* when its budget is spent; the sync loop commits what it has."""


class ApiError(ConnectorError):
    exit_code = 1

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
