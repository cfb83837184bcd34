"""funnelsync.toml -> validated, frozen `Settings` (contract.md "Configuration", domain.md §10).

Standard library only; imports nothing from the other funnelsync packages.

- Found by `--config PATH`, else `$FUNNELSYNC_CONFIG`, else `./funnelsync.toml` (`find_config`).
- `${NAME}` in any string value (nested tables and lists too) is replaced by the environment variable NAME.
- Every problem raises `ConfigError` (exit code 2) whose text is ONE line:
  `<file>: <key path>: <what is wrong>; expected <what>`.
- Secret values (tokens, keys, passwords) are never echoed: a message about a secret key says what is wrong
  without the value, a value that came from the environment is shown as its `${NAME}` template, and as a last
  guard every secret seen in the file is scrubbed from each message.

The accepted keys live in data tables: `COMMON_KEYS` + `SOURCE_TYPES[type]` for `[sources.NAME]`,
`WAREHOUSE_KEYS`, `GOAL_KEYS`, `FX_RATE_KEYS`, each `key -> (kind, required, default)`, and `MODEL_KEYS`
(`key -> kind`; mirrors `normalize.model.Model`, which owns the defaults; a test keeps them in sync).
A kind is a name ("str", "bool", "date", "url", ...), a range/choice object (`Int`, `Num`, `OneOf`, `Pattern`)
or, for `extra_types`, a Python type (str, int, float, bool, list, dict).
"""
from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

DEFAULT_FILE = "funnelsync.toml"
ENV_VAR = "FUNNELSYNC_CONFIG"
DEFAULT_WAREHOUSE_URL = "sqlite:///warehouse.db"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_START_DAYS = 365  # start_date default: this many days before today (computed at load time)
INLINE_LABEL = "<inline funnelsync.toml>"  # the "file" named in messages of parse(text) without a path


class ConfigError(Exception):
    """A usage/configuration problem; the CLI prints str(e) and exits 2."""

    exit_code = 2

    def __init__(self, file: str, key: str | None, problem: str, expected: str | None = None):
        self.file, self.key, self.problem, self.expected = file, key, problem, expected
        text = f"{file}: {key}: {problem}" if key else f"{file}: {problem}"
        if expected:
            text += f"; expected {expected}"
        super().__init__(" ".join(text.split()))  # always one line


# --------------------------------------------------------------------------------------------------- kinds
@dataclass(frozen=True)
class Int:
    """An integer (not a bool) within [ge, le]."""

    ge: int | None = None
    le: int | None = None


@dataclass(frozen=True)
class Num:
    """A number (int or float, not a bool), returned as float, within the given bounds."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]

    def __init__(self, *choices: str):
        object.__setattr__(self, "choices", tuple(choices))


@dataclass(frozen=True)
class Pattern:
    """A string matching `regex` (full match); `example` goes into the message."""

    regex: str
    example: str
    accept_int: bool = False  # TOML integers (property_id = 123456789) are turned into their digits
    accept_float: bool = False  # TOML floats (api_version = 60.0) are turned into their text


SIMPLE_KINDS = ("str", "bool", "date", "url", "https_url", "path", "currency", "list[str]", "list[str]+",
                "dict[str,str]", "int", "number", "list", "dict", "any")
PY_KINDS: dict[Any, str] = {str: "str", bool: "bool", int: "int", float: "number", list: "list[str]",
                            list[str]: "list[str]", dict: "dict", dict[str, str]: "dict[str,str]", date: "date",
                            Path: "path"}

ATTRIBUTION_MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "full_path", "time_decay",
                      "j_shaped", "inverse_j", "hybrid_self_reported")
GOAL_METRICS = ("closed_won_revenue",)  # domain.md §6
RATE_NAMES = ("ADS", "win", "s2o", "m2s", "l2m", "v2l")  # goals.rate_overrides keys (§6)

# --------------------------------------------------------------------------------------------------- secrets
SECRET_KEYS = frozenset({"access_token", "api_key", "client_secret", "refresh_token", "developer_token", "password"})
SECRET_WORDS = ("token", "secret", "key", "password", "passwd")
NOT_SECRET_KEYS = frozenset({"account_ids", "customer_ids", "property_id", "login_customer_id", "token_uri",
                             "list_ids", "credentials_file", "hubspot_stage_ids"})


def is_secret(key: str) -> bool:
    """True for keys whose values must never be shown (tokens, keys, secrets, passwords)."""
    k = str(key).lower()
    if k in NOT_SECRET_KEYS:
        return False
    return k in SECRET_KEYS or any(word in k for word in SECRET_WORDS)


_URL_PASSWORD = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/@:\s]*:)(?P<pw>[^/@\s]*)@", re.I)


def _redact_url(value: str) -> str:
    return _URL_PASSWORD.sub(lambda m: m.group("pre") + "***@", value)


def redacted(settings_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a source settings dict with secret values replaced by "***" (for `status` and logs)."""
    out: dict[str, Any] = {}
    for k, v in settings_dict.items():
        if v is not None and is_secret(k):
            out[k] = "***"
        elif isinstance(v, Mapping):
            out[k] = redacted(v)
        elif isinstance(v, str):
            out[k] = _redact_url(v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------------- schemas
Spec = tuple[Any, bool, Any]  # (kind, required, default)

COMMON_KEYS: dict[str, Spec] = {
    "type": ("str", False, None),
    "start_date": ("date", False, None),  # None -> DEFAULT_START_DAYS before today
    "base_url": ("url", False, None),
    "currency": ("currency", False, None),
    "requests_per_second": (Num(gt=0), False, None),
    "reread_days": (Int(ge=0), False, None),
}

SOURCE_TYPES: dict[str, dict[str, Spec]] = {
    "hubspot": {
        "access_token": ("str", True, None),
        "base_url": ("url", False, "https://api.hubapi.com"),
        "lookback_minutes": (Int(ge=0), False, 10),
        "email_events": ("bool", False, True),
        "forms": ("bool", False, True),
        # read by connectors/hubspot.py (no default here: the connector's applies)
        "self_report_property": ("str", False, None),
        "sqo_stages": ("list[str]", False, None),
        "lifecycle_stage_ids": ("list[str]", False, None),
    },
    "salesforce": {
        "instance_url": ("https_url", True, None),
        "access_token": ("str", False, None),  # or client_id + client_secret (checked in _check_salesforce)
        "client_id": ("str", False, None),
        "client_secret": ("str", False, None),
        "login_url": ("url", False, None),  # default: instance_url (the My Domain URL client credentials needs),
        "api_version": (Pattern(r"\d{2,3}\.0", '"60.0"', accept_float=True), False, "60.0"),
        "bulk_threshold": (Int(ge=1), False, 10000),
        "api_budget_share": (Num(gt=0, le=1), False, 0.8),
        "lookback_minutes": (Int(ge=0), False, 10),
        "history_object": (OneOf("OpportunityHistory", "OpportunityFieldHistory"), False, "OpportunityHistory"),
        "bulk_max_records": (Int(ge=1), False, None),
        "self_report_field": ("str", False, None),
    },
    "ga4": {
        "property_id": (Pattern(r"\d+", '"123456789"', accept_int=True), True, None),
        "credentials_file": ("path", False, None),  # or access_token (checked in _check_ga4)
        "access_token": ("str", False, None),
        "base_url": ("url", False, "https://analyticsdata.googleapis.com"),
        "token_uri": ("url", False, None),
        "reread_days": (Int(ge=0), False, 3),
        "quota_stop_share": (Num(gt=0, le=1), False, 0.9),
        "window_days": (Int(ge=1), False, 30),
        "page_size": (Int(ge=1), False, None),
        "quota_min_tokens": (Int(ge=0), False, None),
    },
    "mailchimp": {
        "api_key": ("str", True, None),  # "<key>-<dc>" (checked in _check_mailchimp)
        "base_url": ("url", False, None),  # default https://<dc>.api.mailchimp.com/3.0
        "reread_days": (Int(ge=0), False, 14),
        "max_connections": (Int(ge=1, le=10), False, 10),
        "list_ids": ("list[str]", False, None),
        "page_size": (Int(ge=1, le=1000), False, None),
        "lookback_minutes": (Int(ge=0), False, None),
    },
    "linkedin_ads": {
        "access_token": ("str", True, None),
        "account_ids": ("list[str]+", True, None),
        "base_url": ("url", False, "https://api.linkedin.com/rest"),
        "linkedin_version": (Pattern(r"\d{6}", '"202510" (YYYYMM)', accept_int=True), False, "202510"),
        "reread_days": (Int(ge=0), False, 7),
        "page_size": (Int(ge=1), False, None),
        "window_days": (Int(ge=1), False, None),
        "fields_per_request": (Int(ge=1), False, None),
    },
    "meta_ads": {
        "access_token": ("str", True, None),
        "account_ids": ("list[str]+", True, None),
        "base_url": ("url", False, "https://graph.facebook.com/v21.0"),
        "reread_days": (Int(ge=0), False, 28),
        "conversion_actions": ("list[str]", False, None),
        "page_size": (Int(ge=1), False, None),
        "window_days": (Int(ge=1), False, None),
        "usage_threshold": (Num(gt=0, le=100), False, None),
        "max_usage_pause": (Num(ge=0), False, None),
        "max_regain_wait": (Num(ge=0), False, None),
    },
    "google_ads": {
        "developer_token": ("str", True, None),
        "customer_ids": ("list[str]+", True, None),
        "login_customer_id": ("str", False, None),
        # client_id + client_secret + refresh_token, or an access_token (checked in _check_google_ads)
        "client_id": ("str", False, None),
        "client_secret": ("str", False, None),
        "refresh_token": ("str", False, None),
        "access_token": ("str", False, None),
        "token_uri": ("url", False, "https://oauth2.googleapis.com/token"),
        "base_url": ("url", False, "https://googleads.googleapis.com/v18"),
        "reread_days": (Int(ge=0), False, 30),
        "window_days": (Int(ge=1), False, None),
        "max_retry_delay": (Num(ge=0), False, None),
    },
}

# [model]: every normalize.model.Model field except `timezone` (that one is [warehouse] timezone).
MODEL_KEYS: dict[str, Any] = {  # key -> kind; the defaults live in Model
    "reporting_currency": "currency",
    "fiscal_year_start_month": Int(ge=1, le=12),
    "opportunity_system_of_record": OneOf("salesforce", "hubspot"),  # absent -> inferred from the sources
    "sqo_stages": "list[str]",
    "mql_statuses": "list[str]",
    "sql_statuses": "list[str]",
    "sql_on_conversion": "bool",
    "demo_form_ids": "list[str]",
    "nurture_list_ids": "list[str]",
    "nurture_tags": "list[str]",
    "own_domains": "list[str]",
    "bookmarkable_paths": "list[str]",
    "platform_shorteners_are_dark": "bool",
    "lookback_days": Int(ge=1),
    "half_life_days": Num(gt=0),
    "default_model": OneOf(*ATTRIBUTION_MODELS),
    "hybrid_alpha": Num(ge=0, le=1),
    # the hybrid's base is a position/decay model, never the hybrid itself
    "hybrid_base_model": OneOf(*(m for m in ATTRIBUTION_MODELS if m != "hybrid_self_reported")),
    "amount_basis": OneOf("annual", "monthly", "total_contract"),
    "contract_months": Int(ge=1),
    "gross_margin": Num(gt=0, le=1),
    "expected_lifetime_years": Num(gt=0),
    "ad_mirror_campaign_types": "list[str]",
    "campaign_type_map": "dict[str,str]",
    "self_report_fields": "dict[str,str]",
    "hubspot_stage_ids": "dict[str,str]",
    "attended_statuses": "list[str]",
    "claimed_statuses": "list[str]",
    "meeting_statuses": "list[str]",
    "meta_conversion_actions": "list[str]",
    "zero_waste_target": Num(gt=0),
}


GOAL_KEYS: dict[str, Spec] = {
    "plan_year": (Int(ge=1900, le=2999), True, None),
    "metric": (OneOf(*GOAL_METRICS), True, None),
    "target": (Num(gt=0), True, None),
    "quarter_weights": ("any", False, None),  # checked in _goal
    "rate_overrides": ("any", False, None),
}

FX_RATE_KEYS: dict[str, Spec] = {
    "date": ("date", True, None),
    "currency": ("currency", True, None),
    "rate_to_reporting": (Num(gt=0), True, None),
}

WAREHOUSE_KEYS: dict[str, Spec] = {
    "url": ("str", False, DEFAULT_WAREHOUSE_URL),
    "timezone": ("str", False, DEFAULT_TIMEZONE),
}

TOP_LEVEL = {"warehouse": "[warehouse]", "sources": "[sources.NAME]", "model": "[model]", "goals": "[[goals]]",
             "fx_rates": "[[fx_rates]]"}
WAREHOUSE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")

# keys people put in the wrong table
MISPLACED = {("model", "timezone"): "[warehouse] timezone", ("sources", "timezone"): "[warehouse] timezone",
             ("model", "currency"): "[model] reporting_currency", ("warehouse", "reporting_currency"): "[model]"}


# --------------------------------------------------------------------------------------------------- Settings
@dataclass(frozen=True)
class Settings:
    """The validated configuration.

    sources: name -> settings dict with "name", "type", every key that has a default (start_date included) and
    the optional keys the file sets; optional keys without a default are absent (use `.get`). Strings are
    ${ENV}-expanded and stripped; dates are "YYYY-MM-DD" strings; URLs lose a trailing "/".
    model: only the [model] keys the file sets, plus opportunity_system_of_record (always); feed it to
    `Model.from_dict({**model, "timezone": timezone})`.
    """

    path: Path | None
    warehouse_url: str
    timezone: str
    sources: dict[str, dict]
    model: dict
    goals: list[dict]
    fx_rates: list[dict]


def find_config(path: str | os.PathLike | None, environ: Mapping[str, str] | None = None) -> Path:
    """`--config PATH`, else `$FUNNELSYNC_CONFIG`, else `./funnelsync.toml` (not checked for existence)."""
    environ = os.environ if environ is None else environ
    if path:
        return Path(path).expanduser()
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR]).expanduser()
    return Path(DEFAULT_FILE)


def load(path: str | os.PathLike | None = None, *, environ: Mapping[str, str] | None = None,
         extra_types: dict[str, dict] | None = None, today: date | None = None) -> Settings:
    """Find, read and validate the configuration file."""
    environ = os.environ if environ is None else environ
    found = find_config(path, environ)
    how = "--config" if path else f"${ENV_VAR}" if environ.get(ENV_VAR) else "the default ./funnelsync.toml"
    label = str(found)
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(label, None, f"config file not found (looked for {found.absolute()}, from {how})",
                          f"a funnelsync.toml: create one there (the README shows a complete example), pass "
                          f"--config PATH or set {ENV_VAR}") from None
    except IsADirectoryError:
        raise ConfigError(label, None, "is a directory, not a config file", "the path of a funnelsync.toml file") \
            from None
    except UnicodeDecodeError as e:
        raise ConfigError(label, None, f"not UTF-8 text (byte {e.start})", "a UTF-8 encoded TOML file") from None
    except OSError as e:
        raise ConfigError(label, None, f"cannot read the file ({e.strerror or type(e).__name__})",
                          "a readable TOML file") from None
    return parse(text, path=found, environ=environ, extra_types=extra_types, today=today)


def parse(text: str, *, path: Path | str | None = None, environ: Mapping[str, str] | None = None,
          extra_types: dict[str, dict] | None = None, today: date | None = None) -> Settings:
    """Validate the text of a funnelsync.toml; `path` names it in messages and anchors relative paths."""
    environ = os.environ if environ is None else environ
    p = Path(path) if path is not None else None
    return _Parser(p, environ, extra_types or {}, today or date.today()).run(text)


# --------------------------------------------------------------------------------------------------- parser
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SOURCE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_MAILCHIMP_KEY = re.compile(r"\S+-([a-z]+[0-9]+)")

Path_ = tuple  # a key path: ("sources", "hubspot", "account_ids", 0)


def _fmt_path(kp: Path_) -> str:
    out = ""
    for part in kp:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            s = part if _BARE_KEY.fullmatch(part) else '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out += ("." if out else "") + s
    return out


def _type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a float"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, datetime):
        return "a date-time"
    if isinstance(v, date):
        return "a date"
    return type(v).__name__


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    hit = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[hit[0]] if hit else None


def _kind_of(kind: Any) -> Any:
    if isinstance(kind, (Int, Num, OneOf, Pattern)):
        return kind
    if isinstance(kind, str) and kind in SIMPLE_KINDS:
        return kind
    try:
        return PY_KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unsupported config kind {kind!r}; use one of {', '.join(SIMPLE_KINDS)}, "
                         f"Int/Num/OneOf/Pattern or str/int/float/bool/list/dict") from None


class _Parser:
    def __init__(self, path: Path | None, environ: Mapping[str, str], extra_types: dict[str, dict], today: date):
        self.path = path
        self.file = str(path) if path is not None else INLINE_LABEL
        self.base_dir = path.absolute().parent if path is not None else None
        self.environ = environ
        self.today = today
        self.origins: dict[Path_, str] = {}  # key path -> ${...} template the value came from
        self.secrets: set[str] = set()  # values to scrub from every message
        self.types: dict[str, dict[str, Spec]] = {}
        for name in (*SOURCE_TYPES, *extra_types):
            spec = {**COMMON_KEYS, **SOURCE_TYPES.get(name, {}), **dict(extra_types.get(name) or {})}
            for key, entry in spec.items():
                if not (isinstance(entry, tuple) and len(entry) == 3):
                    raise ValueError(f"extra_types[{name!r}][{key!r}] must be (kind, required, default)")
                spec[key] = (_kind_of(entry[0]), bool(entry[1]), entry[2])
            self.types[name] = spec

    # ------------------------------------------------------------------ errors
    def error(self, kp: Path_ | None, problem: str, expected: str | None = None) -> ConfigError:
        return ConfigError(self.file, _fmt_path(kp) if kp else None, self.scrub(problem),
                           self.scrub(expected) if expected else None)

    def scrub(self, text: str) -> str:
        """Last guard: replace every secret value seen so far."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def show(self, kp: Path_, value: Any) -> str:
        """How a wrong value may appear in a message: never a secret, env values as their template."""
        if _secret_path(kp):
            return "(value hidden)"
        if kp in self.origins:
            return f"{self.origins[kp]!r} (from the environment)"
        if isinstance(value, str):
            value = _redact_url(value)
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    def expect(self, kp: Path_, value: Any, expected: str, problem: str | None = None) -> ConfigError:
        return self.error(kp, problem or f"got {_type_name(value)} {self.show(kp, value)}", expected)

    # ------------------------------------------------------------------ interpolation
    def interpolate(self, value: Any, kp: Path_) -> Any:
        if isinstance(value, dict):
            return {k: self.interpolate(v, kp + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate(v, kp + (i,)) for i, v in enumerate(value)]
        secret = _secret_path(kp)
        if not isinstance(value, str) or "${" not in value:
            if isinstance(value, str) and secret:
                self._add_secret(value)
            return value

        def sub(m: re.Match) -> str:
            name = m.group(1)
            if name not in self.environ:
                raise self.error(kp, f"environment variable {name} is not set",
                                 f"export {name}=... before running (or write the value into the file)")
            if secret:
                self._add_secret(self.environ[name])
            return self.environ[name]

        result = _VAR.sub(sub, value)
        if result != value:
            self.origins[kp] = value
        if secret:
            self._add_secret(result)
        return result

    def _add_secret(self, value: str) -> None:
        value = value.strip()
        if len(value) >= 4:
            self.secrets.add(value)

    # ------------------------------------------------------------------ scalar kinds
    def coerce(self, kp: Path_, kind: Any, value: Any) -> Any:
        """Validate one value against its kind; return the normalized value."""
        if isinstance(value, str) and kind not in ("any",):
            value = value.strip()
        if isinstance(kind, Int):
            if type(value) is not int:
                raise self.expect(kp, value, self._int_text(kind))
            if (kind.ge is not None and value < kind.ge) or (kind.le is not None and value > kind.le):
                raise self.expect(kp, value, self._int_text(kind), f"{value} is out of range")
            return value
        if isinstance(kind, Num):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self.expect(kp, value, self._num_text(kind))
            if ((kind.gt is not None and not value > kind.gt) or (kind.ge is not None and not value >= kind.ge)
                    or (kind.le is not None and not value <= kind.le)):
                raise self.expect(kp, value, self._num_text(kind), f"{value} is out of range")
            return float(value)
        if isinstance(kind, OneOf):
            if isinstance(value, str) and value in kind.choices:
                return value
            hint = _suggest(value, kind.choices) if isinstance(value, str) else None
            problem = (f"unknown value {self.show(kp, value)}" + (f" (did you mean {hint!r}?)" if hint else "")
                       if isinstance(value, str) else None)
            raise self.expect(kp, value, "one of " + ", ".join(kind.choices), problem)
        if isinstance(kind, Pattern):
            if kind.accept_int and type(value) is int and value >= 0:
                value = str(value)
            elif kind.accept_float and type(value) is float and math.isfinite(value):
                value = str(value)
            if not isinstance(value, str):
                raise self.expect(kp, value, f"a string like {kind.example}")
            if not re.fullmatch(kind.regex, value):
                raise self.expect(kp, value, f"a string like {kind.example}", f"malformed value {self.show(kp, value)}")
            return value
        if kind == "any":
            return value
        if kind == "str":
            if not isinstance(value, str):
                raise self.expect(kp, value, "a string")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.expect(kp, value, "true or false")
            return value
        if kind == "int":
            return self.coerce(kp, Int(), value)
        if kind == "number":
            return self.coerce(kp, Num(), value)
        if kind == "date":
            return self.date(kp, value)
        if kind in ("url", "https_url"):
            return self.url(kp, value, https_only=kind == "https_url")
        if kind == "path":
            return self.file_path(kp, value)
        if kind == "currency":
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
                raise self.expect(kp, value, 'a 3-letter ISO 4217 currency code such as "USD"',
                                  f"malformed currency {self.show(kp, value)}" if isinstance(value, str) else None)
            return value.upper()
        if kind in ("list[str]", "list[str]+"):
            example = {"account_ids": '["508000000"]', "customer_ids": '["1234567890"]'}.get(
                str(kp[-1]), '["a", "b"]')
            if not isinstance(value, list):
                raise self.expect(kp, value, f"an array of strings, e.g. {example}")
            out = []
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise self.expect(kp + (i,), item, f"a string (ids and names are quoted), e.g. {example}")
                out.append(item.strip())
            if kind == "list[str]+" and not out:
                raise self.error(kp, "is empty", f"at least one entry, e.g. {example}")
            return out
        if kind == "list":
            if not isinstance(value, list):
                raise self.expect(kp, value, "an array")
            return value
        if kind in ("dict[str,str]", "dict"):
            if not isinstance(value, dict):
                raise self.expect(kp, value, "a table")
            if kind == "dict":
                return value
            for k, v in value.items():
                if not isinstance(v, str):
                    raise self.expect(kp + (k,), v, "a string")
            return {k: v.strip() for k, v in value.items()}
        raise AssertionError(kind)  # pragma: no cover - _kind_of rejects anything else

    @staticmethod
    def _int_text(kind: Int) -> str:
        if kind.ge is not None and kind.le is not None:
            return f"an integer from {kind.ge} to {kind.le}"
        if kind.ge is not None:
            return f"an integer >= {kind.ge}"
        return "an integer"

    @staticmethod
    def _num_text(kind: Num) -> str:
        lo = f"> {kind.gt:g}" if kind.gt is not None else f">= {kind.ge:g}" if kind.ge is not None else None
        hi = f"<= {kind.le:g}" if kind.le is not None else None
        bounds = " and ".join(b for b in (lo, hi) if b)
        return f"a number {bounds}" if bounds else "a number"

    def date(self, kp: Path_, value: Any) -> str:
        if isinstance(value, datetime):
            raise self.expect(kp, value, 'a date "YYYY-MM-DD" without a time')
        if isinstance(value, date):
            return value.isoformat()
        if not isinstance(value, str):
            raise self.expect(kp, value, 'a date "YYYY-MM-DD"')
        if not _DATE.fullmatch(value):
            raise self.expect(kp, value, 'a date "YYYY-MM-DD", e.g. "2024-01-01"',
                              f"malformed date {self.show(kp, value)}")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise self.expect(kp, value, 'a real calendar date "YYYY-MM-DD"',
                              f"{self.show(kp, value)} is not a real date") from None

    def url(self, kp: Path_, value: Any, https_only: bool = False) -> str:
        schemes = ("https://",) if https_only else ("https://", "http://")
        expected = ("an https:// URL, e.g. \"https://acme.my.salesforce.com\"" if https_only
                    else "an https:// or http:// URL")
        if not isinstance(value, str):
            raise self.expect(kp, value, expected)
        if not value.lower().startswith(schemes) or any(c.isspace() for c in value):
            raise self.expect(kp, value, expected, f"invalid URL {self.show(kp, value)}")
        host = value.split("//", 1)[1].split("/", 1)[0]
        if not host or host.startswith(":"):
            raise self.expect(kp, value, expected, f"URL without a host {self.show(kp, value)}")
        return value.rstrip("/")

    def file_path(self, kp: Path_, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.expect(kp, value, "a file path (relative to the config file's directory)")
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = (self.base_dir or Path.cwd()) / p
        if not p.is_file():
            raise self.error(kp, f"file not found: {p}", "an existing file (relative paths start at the config "
                                                          "file's directory)")
        return str(p)

    # ------------------------------------------------------------------ tables
    def table(self, kp: Path_, data: Any, schema: Mapping[str, Spec], what: str) -> dict[str, Any]:
        """Check a table's keys (unknown -> suggestion, required -> present) and kinds; fill defaults."""
        if not isinstance(data, dict):
            raise self.expect(kp, data, f"a table {what}")
        for key in data:
            if key not in schema:
                raise self.unknown(kp, key, list(schema))
        out: dict[str, Any] = {}
        for key, (kind, required, default) in schema.items():
            value = data.get(key)
            if isinstance(value, str) and not value.strip() and kind != "any":
                value = None  # "" (e.g. an empty ${VAR}) counts as not set
            if value is None:
                if required:
                    raise self.missing(kp + (key,))
                if default is not None:  # unset optional keys stay absent, so `.get(key, fallback)` works
                    out[key] = _copy(default)
                continue
            out[key] = self.coerce(kp + (key,), kind, value)
        return out

    def unknown(self, kp: Path_, key: str, known: list[str]) -> ConfigError:
        where = MISPLACED.get((str(kp[0]) if kp else "", key))
        if where is None and kp and kp[0] == "sources" and key in MODEL_KEYS:
            where = f"[model] {key}"
        hint = _suggest(key, known)
        problem = "unknown key" + (f" (did you mean {hint!r}?)" if hint else f" (it belongs in {where})" if where
                                   else "")
        return self.error(kp + (key,), problem, "one of " + ", ".join(known))

    def missing(self, kp: Path_) -> ConfigError:
        key = str(kp[-1])
        if is_secret(key):
            return self.error(kp, "missing credential",
                              f'{key} = "${{{_env_name(kp)}}}" (and export {_env_name(kp)}) or the value itself')
        return self.error(kp, "missing required key", f"{key} = ...")

    # ------------------------------------------------------------------ sections
    def run(self, text: str) -> Settings:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            msg = str(e)
            m = re.search(r"\s*\(at (line \d+, column \d+|end of document)\)\s*$", msg)
            where = m.group(1) if m else None
            msg = msg[: m.start()] if m else msg
            raise self.error(None, f"{where + ': ' if where else ''}TOML syntax error: {msg}",
                             "valid TOML (https://toml.io)") from None
        for key in raw:
            if key not in TOP_LEVEL:
                hint = _suggest(key, list(TOP_LEVEL))
                where = MISPLACED.get(("sources", key)) if key == "timezone" else None
                problem = ("unknown top-level table" if isinstance(raw[key], (dict, list)) else "unknown top-level key")
                if hint or where:
                    problem += f" (did you mean {TOP_LEVEL[hint]}?)" if hint else f" (it belongs in {where})"
                raise self.error((key,), problem, "only " + ", ".join(TOP_LEVEL.values()))
        data = self.interpolate(raw, ())

        warehouse = self.table(("warehouse",), data.get("warehouse", {}), WAREHOUSE_KEYS, "[warehouse]")
        url = self.warehouse_url(warehouse["url"])
        tz = self.timezone(warehouse["timezone"])
        sources = self.sources(data.get("sources", {}))
        model = self.model(data.get("model", {}), sources)
        goals = self.goals(data.get("goals", []))
        fx_rates = self.fx_rates(data.get("fx_rates", []))
        return Settings(path=self.path.absolute() if self.path else None, warehouse_url=url, timezone=tz,
                        sources=sources, model=model, goals=goals, fx_rates=fx_rates)

    def warehouse_url(self, url: str) -> str:
        kp = ("warehouse", "url")
        expected = '"sqlite:///warehouse.db" (relative to the config file) or "postgresql://user@host:5432/db"'
        if not isinstance(url, str) or not url.lower().startswith(WAREHOUSE_SCHEMES):
            scheme = url.split(":", 1)[0] if isinstance(url, str) and ":" in url else None
            problem = (f"unsupported scheme {scheme!r}" if scheme and re.fullmatch(r"[\w+.-]+", scheme)
                       else "not a sqlite:/// or postgresql:// URL") if isinstance(url, str) else None
            raise self.expect(kp, url, expected, problem)
        password = _URL_PASSWORD.search(url)
        if password:
            self._add_secret(password.group("pw"))
        if not url.lower().startswith("sqlite:///"):
            if len(url.split("://", 1)[1]) == 0:
                raise self.error(kp, "PostgreSQL URL without host or database", expected)
            return url
        rest = url[len("sqlite:///"):]
        if not rest or rest.endswith("/"):
            raise self.error(kp, "sqlite URL without a file name", expected)
        if rest == ":memory:" or rest.startswith("/"):
            return url
        p = Path(rest).expanduser()
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return "sqlite:///" + str(p) if p.is_absolute() else url

    def timezone(self, tz: str) -> str:
        kp = ("warehouse", "timezone")
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            hint = _suggest(tz, sorted(zoneinfo.available_timezones()))
            raise self.expect(kp, tz, 'an IANA time zone such as "UTC" or "Europe/Paris"',
                              f"unknown time zone {self.show(kp, tz)}" + (f" (did you mean {hint!r}?)" if hint else "")
                              ) from None
        return tz

    def sources(self, data: Any) -> dict[str, dict]:
        if not isinstance(data, dict):
            raise self.expect(("sources",), data, "[sources.NAME] tables, one per source")
        out: dict[str, dict] = {}
        known = ", ".join(self.types)
        for name, table in data.items():
            kp: Path_ = ("sources", name)
            if not _SOURCE_NAME.fullmatch(name):
                raise self.error(kp, "invalid source name", "a name of letters, digits, _ and - starting with a "
                                                             "letter, e.g. [sources.hubspot_eu]")
            if not isinstance(table, dict):
                raise self.expect(kp, table, f"a table [sources.{name}] with type = one of {known}")
            stype = table.get("type")
            if stype is None:
                if name not in self.types:
                    raise self.error(kp + ("type",), "missing source type (the name is not a known type)",
                                     f"type = one of {known}")
                stype = name
            if not isinstance(stype, str):
                raise self.expect(kp + ("type",), stype, f"one of {known}")
            stype = stype.strip()
            if stype not in self.types:
                hint = _suggest(stype, list(self.types))
                raise self.error(kp + ("type",), f"unknown source type {self.show(kp + ('type',), stype)}"
                                 + (f" (did you mean {hint!r}?)" if hint else ""), f"one of {known}")
            values = self.table(kp, table, self.types[stype], f"[sources.{name}]")
            values["type"] = stype
            if "start_date" not in values:
                values["start_date"] = (self.today - timedelta(days=DEFAULT_START_DAYS)).isoformat()
            check = _CHECKS.get(stype)
            if check:
                check(self, kp, values)
            out[name] = {"name": name, **values}
        return out

    def model(self, data: Any, sources: dict[str, dict]) -> dict:
        if not isinstance(data, dict):
            raise self.expect(("model",), data, "a table [model]")
        for key in data:
            if key not in MODEL_KEYS:
                raise self.unknown(("model",), key, list(MODEL_KEYS))
        out = {key: self.coerce(("model", key), MODEL_KEYS[key], value) for key, value in data.items()}
        if out.get("opportunity_system_of_record") is None:
            has_sf = any(s["type"] == "salesforce" for s in sources.values())
            out["opportunity_system_of_record"] = "salesforce" if has_sf else "hubspot"
        return out

    def _array_of_tables(self, key: str, data: Any) -> list:
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise self.expect((key,), data, f"[[{key}]] tables (an array of tables)")
        return data

    def goals(self, data: Any) -> list[dict]:
        out: list[dict] = []
        seen: set[tuple] = set()
        for i, item in enumerate(self._array_of_tables("goals", data)):
            kp: Path_ = ("goals", i)
            goal = self.table(kp, item, GOAL_KEYS, "[[goals]]")
            if isinstance(goal["target"], float) and isinstance(item["target"], int):
                goal["target"] = item["target"]  # keep an integer target an integer
            goal["quarter_weights"] = self.quarter_weights(kp + ("quarter_weights",), goal.get("quarter_weights"))
            goal["rate_overrides"] = self.rate_overrides(kp + ("rate_overrides",), goal.get("rate_overrides"))
            ident = (goal["plan_year"], goal["metric"])
            if ident in seen:
                raise self.error(kp, f"a second goal for plan_year {ident[0]} and metric {ident[1]!r}",
                                 "one [[goals]] table per plan_year and metric")
            seen.add(ident)
            out.append(goal)
        return out

    def quarter_weights(self, kp: Path_, value: Any) -> list[float]:
        if value is None:
            return [0.25] * 4
        expected = "an array of 4 numbers >= 0 summing to 1, e.g. [0.2, 0.25, 0.25, 0.3]"
        if not isinstance(value, list) or len(value) != 4:
            raise self.expect(kp, value, expected)
        weights = [self.coerce(kp + (j,), Num(ge=0), w) for j, w in enumerate(value)]
        if not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
            raise self.error(kp, f"the weights sum to {sum(weights):g}", expected)
        return weights

    def rate_overrides(self, kp: Path_, value: Any) -> dict[str, float]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.expect(kp, value, "a table with any of " + ", ".join(RATE_NAMES))
        for key in value:
            if key not in RATE_NAMES:
                raise self.unknown(kp, key, list(RATE_NAMES))
        return {key: self.coerce(kp + (key,), Num(gt=0), v) for key, v in value.items()}

    def fx_rates(self, data: Any) -> list[dict]:
        out: list[dict] = []
        seen: set[tuple] = set()
        for i, item in enumerate(self._array_of_tables("fx_rates", data)):
            kp: Path_ = ("fx_rates", i)
            rate = self.table(kp, item, FX_RATE_KEYS, "[[fx_rates]]")
            ident = (rate["date"], rate["currency"])
            if ident in seen:
                raise self.error(kp, f"a second rate for {ident[1]} on {ident[0]}", "one rate per date and currency")
            seen.add(ident)
            out.append(rate)
        return out


# --------------------------------------------------------------------------------------------------- per type
def _secret_path(kp: Path_) -> bool:
    """True for a value under a secret key of a source table (sources.NAME.<secret key>...)."""
    return len(kp) >= 3 and kp[0] == "sources" and isinstance(kp[2], str) and is_secret(kp[2])


def _env_name(kp: Path_) -> str:
    name = "_".join(str(p) for p in kp[1:] if not isinstance(p, int))
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def _check_salesforce(p: _Parser, kp: Path_, s: dict) -> None:
    if "access_token" in s:
        return
    if "client_id" in s and "client_secret" not in s:
        raise p.missing(kp + ("client_secret",))
    if "client_secret" in s and "client_id" not in s:
        raise p.error(kp + ("client_id",), "missing required key (client_secret is set)",
                      "client_id = the connected app's consumer key")
    if "client_id" not in s:
        raise p.error(kp + ("access_token",), "missing credential",
                      "access_token, or client_id and client_secret (OAuth client-credentials flow)")


def _check_ga4(p: _Parser, kp: Path_, s: dict) -> None:
    if "credentials_file" not in s and "access_token" not in s:
        raise p.error(kp + ("credentials_file",), "missing credential",
                      'credentials_file = "service-account.json" (a service-account key) or access_token')


def _check_mailchimp(p: _Parser, kp: Path_, s: dict) -> None:
    m = _MAILCHIMP_KEY.fullmatch(s["api_key"])
    if not m:
        raise p.error(kp + ("api_key",), "malformed API key (value hidden)",
                      'a Mailchimp API key "<key>-<dc>" ending in its data center, like "...-us6"')
    if "base_url" not in s:
        s["base_url"] = f"https://{m.group(1)}.api.mailchimp.com/3.0"


def _check_linkedin(p: _Parser, kp: Path_, s: dict) -> None:
    ids = []
    for i, v in enumerate(s["account_ids"]):
        digits = v.removeprefix("urn:li:sponsoredAccount:")
        if not digits.isdigit():
            raise p.expect(kp + ("account_ids", i), v, 'numeric ad account ids, e.g. ["508000000"]',
                           f"malformed account id {p.show(kp + ('account_ids', i), v)}")
        ids.append(digits)
    s["account_ids"] = ids


def _check_meta(p: _Parser, kp: Path_, s: dict) -> None:
    for i, v in enumerate(s["account_ids"]):
        if not re.fullmatch(r"act_\d+", v):
            raise p.expect(kp + ("account_ids", i), v, 'ad account ids starting with "act_", e.g. ["act_1234567890"]',
                           f"malformed account id {p.show(kp + ('account_ids', i), v)}")


def _google_id(p: _Parser, kp: Path_, v: str) -> str:
    digits = v.replace("-", "")
    if not re.fullmatch(r"\d{10}", digits):
        raise p.expect(kp, v, 'a 10-digit customer id, e.g. "1234567890" or "123-456-7890"',
                       f"malformed customer id {p.show(kp, v)}")
    return digits


def _check_google_ads(p: _Parser, kp: Path_, s: dict) -> None:
    if "access_token" not in s or any(k in s for k in ("client_id", "client_secret", "refresh_token")):
        for key in ("client_id", "client_secret", "refresh_token"):  # the OAuth refresh flow needs all three
            if key not in s:
                raise p.missing(kp + (key,))
    s["customer_ids"] = [_google_id(p, kp + ("customer_ids", i), v) for i, v in enumerate(s["customer_ids"])]
    if "login_customer_id" in s:
        s["login_customer_id"] = _google_id(p, kp + ("login_customer_id",), s["login_customer_id"])


_CHECKS: dict[str, Callable[[_Parser, Path_, dict], None]] = {
    "salesforce": _check_salesforce,
    "ga4": _check_ga4,
    "mailchimp": _check_mailchimp,
    "linkedin_ads": _check_linkedin,
    "meta_ads": _check_meta,
    "google_ads": _check_google_ads,
}


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
