"""Channel classification (spec §3): value normalization (§3.2), the ordered rules R01–R22 (§3.3) and
self-reported answers (§3.4).

Pure and stdlib only. Every public function accepts any `str`/`None` input and never raises; other input types
are converted with `str()` first. The lists of §3.2 are module-level frozensets / compiled regexes; the parts the
`[model]` table configures (`own_domains`, `bookmarkable_paths`, `platform_shorteners_are_dark`) come in through
`touch(model, ...)` or the keyword arguments of `classify(...)`.

Choices where the spec leaves room (documented here so callers can rely on them):

- `classify()` takes raw values and normalizes them itself; the returned rule id is the rule that decided, so a
  `utm_medium=referral` touch reports the rule reached after R15 (`R17`..`R22`), never `R15`.
- Aliases (§3.2.3) are used for rule matching and for `utm_source`; `Touch.referrer_domain` keeps the
  normalized host *without* aliasing (dashboards see `l.messenger.com`, `lnkd.in`), and is `None` for an own
  domain (an own-domain referrer is "no referrer", §3.2).
- Own domains match the host itself and its subdomains (`own_domains=["example.com"]` also covers
  `blog.example.com`); the other host lists match the normalized host exactly.
- `platform_shorteners_are_dark` ([D-23]): R17 additionally tests the raw referrer host (before aliasing) against
  the platform shorteners `lnkd.in` and `t.co`, so such referrers become dark_social (R17) instead of
  organic_social (R19). With R15 the raw host of `utm_source` is tested the same way. A `utm_source=lnkd.in` with
  other UTMs is still decided by R13 (the flag is about untagged referrers).
- In `touch()`, an explicit utm argument wins over the URL's `utm_*` parameter unless it normalizes to NULL
  (`""`, `(not set)`, ...), in which case the URL's value is used.
- `norm_path`: blank / NULL-token input is `None`; a non-blank value whose path part is empty (`https://a.com`,
  `?x=1`) is `/`. Paths are not percent-decoded (§3.2.4 does not ask for it); a full URL is reduced to its path.
- `Touch.landing_path` is always filled from `landing_path`/`url` (forms read it for `properties.page_path`);
  only `with_path=True` (web_visit / web_*) lets it take part in the rules (R21).
"""
from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Iterable, Mapping, NamedTuple
from urllib.parse import unquote_plus

__all__ = [
    "CHANNELS", "UNATTRIBUTED", "PAID_CHANNELS", "RULE_IDS",
    "NULL_TOKENS", "ALIASES", "DARK_M", "WEBINAR_M", "EVENT_M", "SYND_M", "DMAIL_M", "PSOC_M", "PSEA_M", "PAID_RE",
    "OTHER_M", "EMAIL_M", "EMAIL_S", "SOCIAL_M", "SOCIAL_S", "SHORTENERS", "SEARCH_RE", "ADWORDS_S", "MSG_R",
    "WEBMAIL_R", "PLATFORM_SHORTENERS", "BOOKMARKABLE", "CLICK_IDS", "PAID_SEARCH_CLICK_IDS",
    "PAID_SOCIAL_CLICK_IDS", "UTM_KEYS",
    "nv", "norm_medium", "norm_source", "norm_host", "host_of", "norm_path", "click_ids_of", "url_params",
    "Touch", "touch", "classify", "self_reported_channel",
]

# ---- channels -----------------------------------------------------------------------------------------------

CHANNELS: tuple[str, ...] = (
    "paid_search", "paid_social", "organic_search", "organic_social", "email", "referral", "direct",
    "dark_social", "events", "content_syndication", "webinar", "direct_mail", "other",
)
UNATTRIBUTED = "unattributed"
PAID_CHANNELS = frozenset({"paid_search", "paid_social"})
RULE_IDS: tuple[str, ...] = tuple(f"R{i:02d}" for i in range(1, 23))
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

# ---- §3.2 lists ----------------------------------------------------------------------------------------------

NULL_TOKENS = frozenset(
    {"", "(not set)", "(none)", "(direct)", "(organic)", "(referral)", "(not provided)", "none", "null", "undefined"}
)

_ALIAS_GROUPS = {
    "facebook": ("fb", "meta", "facebook.com", "m.facebook.com", "l.facebook.com", "lm.facebook.com",
                 "web.facebook.com", "business.facebook.com"),
    "instagram": ("ig", "instagram.com", "l.instagram.com"),
    "linkedin": ("li", "lnkd", "linkedin.com", "lnkd.in"),
    "twitter": ("x", "tw", "x.com", "twitter.com", "t.co"),
    "youtube": ("yt", "youtube.com", "m.youtube.com", "youtu.be"),
    "bing": ("bing.com",),
    "reddit": ("reddit.com", "old.reddit.com", "out.reddit.com"),
}
ALIASES: dict[str, str] = {alias: canon for canon, group in _ALIAS_GROUPS.items() for alias in group}

DARK_M = frozenset(
    {"share", "social_share", "sharing", "dark_social", "darksocial", "private", "private_share", "messaging"}
)
WEBINAR_M = frozenset({"webinar", "webinars"})
EVENT_M = frozenset(
    {"event", "events", "conference", "tradeshow", "trade_show", "field_event", "booth", "virtual_event"}
)
SYND_M = frozenset({"content_syndication", "syndication", "syndicated"})
DMAIL_M = frozenset({"direct_mail", "directmail", "postal", "mailer", "gifting"})
PSOC_M = frozenset({"paidsocial", "paid_social", "social_paid", "social_ads", "sponsored", "sponsored_content"})
PSEA_M = frozenset({"paidsearch", "paid_search", "sem", "search_ads"})
PAID_RE = re.compile(r"^(.*cp.*|ppc|retargeting|remarketing|paid.*|ads?)$", re.DOTALL)
OTHER_M = frozenset({"display", "banner", "expandable", "interstitial", "programmatic", "affiliate", "affiliates"})
EMAIL_M = frozenset({"email", "e_mail", "newsletter", "email_marketing", "nurture"})
EMAIL_S = frozenset({"email", "e_mail", "newsletter", "mailchimp", "hubspot_email", "hs_email", "marketo", "pardot"})
SOCIAL_M = frozenset({"social", "social_network", "social_media", "sm", "organic_social", "social_organic"})
SHORTENERS = frozenset({"bit.ly", "ow.ly", "buff.ly", "tinyurl.com", "goo.gl", "is.gd", "rebrand.ly", "t.ly"})
SOCIAL_S = frozenset(
    {"facebook", "instagram", "linkedin", "twitter", "youtube", "reddit", "quora", "pinterest", "tiktok", "xing",
     "threads", "mastodon", "medium.com", "news.ycombinator.com", "producthunt"}
) | SHORTENERS
SEARCH_RE = re.compile(
    r"(^|\.)(google|bing|yahoo|duckduckgo|ecosia|baidu|yandex|qwant|startpage|naver)(\.|$)|^search\.brave\.com$"
)
ADWORDS_S = frozenset({"adwords", "googleads", "google_ads", "gads"})
MSG_R = frozenset(
    {"whatsapp", "whatsapp.com", "web.whatsapp.com", "wa.me", "messenger", "messenger.com", "l.messenger.com", "m.me",
     "telegram", "t.me", "web.telegram.org", "slack", "slack.com", "app.slack.com", "slack-redir.net", "teams",
     "teams.microsoft.com", "teams.live.com", "discord", "discord.com", "skype", "web.skype.com", "line.me",
     "wechat", "signal", "sms", "imessage", "chat.google.com", "messages.google.com"}
)
WEBMAIL_R = frozenset(
    {"mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com", "mail.yahoo.com",
     "mail.proton.me", "mail.aol.com"}
)
_DARK_R = MSG_R | WEBMAIL_R
# [D-23]: the platforms' own link shorteners, dark when `platform_shorteners_are_dark` is set.
PLATFORM_SHORTENERS = frozenset({"lnkd.in", "t.co"})
BOOKMARKABLE = frozenset(
    {"/", "/index.html", "/home", "/login", "/signin", "/sign-in", "/app", "/dashboard", "/account"}
)
PAID_SEARCH_CLICK_IDS = frozenset({"gclid", "gbraid", "wbraid", "msclkid", "dclid"})
PAID_SOCIAL_CLICK_IDS = frozenset({"li_fat_id"})
# fbclid is parsed (and kept on the Touch) but never decides a channel: Meta adds it to organic links too.
CLICK_IDS = PAID_SEARCH_CLICK_IDS | PAID_SOCIAL_CLICK_IDS | {"fbclid"}

_MEDIUM_SEP = re.compile(r"[\s\-.]+")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_SLASHES = re.compile(r"/{2,}")

# ---- §3.2 normalization --------------------------------------------------------------------------------------


def _text(x: Any) -> str | None:
    if x is None or isinstance(x, str):
        return x
    try:
        return str(x)
    except Exception:  # a broken __str__ must not break classification
        return None


@lru_cache(maxsize=8192)
def _nv(x: str) -> str | None:
    v = unquote_plus(x).strip().lower()
    return None if v in NULL_TOKENS else v


def nv(x: Any) -> str | None:
    """Normalize a value (§3.2.1): URL-decode (`+` is a space), trim, lowercase; NULL tokens become None."""
    x = _text(x)
    return None if x is None else _nv(x)


@lru_cache(maxsize=4096)
def _medium(x: str) -> str | None:
    v = _nv(x)
    return None if v is None else _MEDIUM_SEP.sub("_", v)


def norm_medium(x: Any) -> str | None:
    """Normalize a utm_medium (§3.2.2): `nv`, then runs of whitespace, `-` and `.` become `_`."""
    x = _text(x)
    return None if x is None else _medium(x)


def _strip_host(v: str) -> str | None:
    """Host of an already `nv`-normalized referrer / URL / domain: no scheme, path, userinfo, port or `www.`."""
    sm = _SCHEME.match(v)
    if sm:
        v = v[sm.end():]
    elif v.startswith("//"):
        v = v[2:]
    for sep in "/?#\\":
        j = v.find(sep)
        if j >= 0:
            v = v[:j]
    if "@" in v:
        v = v.rsplit("@", 1)[1]
    if v.startswith("["):  # IPv6 literal
        end = v.find("]")
        v = v[: end + 1] if end >= 0 else v
    else:
        v = v.split(":", 1)[0]
    v = v.strip().strip(".")
    if v.startswith("www."):
        v = v[4:]
    return v or None


@lru_cache(maxsize=8192)
def _host(x: str) -> str | None:
    v = _nv(x)
    return None if v is None else _strip_host(v)


def host_of(x: Any) -> str | None:
    """Normalized host of a referrer / URL / domain, without aliasing (what `Touch.referrer_domain` stores)."""
    x = _text(x)
    return None if x is None else _host(x)


def norm_host(x: Any) -> str | None:
    """Normalized host of a referrer / URL with the §3.2.3 aliases applied (`lnkd.in` -> `linkedin`)."""
    h = host_of(x)
    return None if h is None else ALIASES.get(h, h)


@lru_cache(maxsize=8192)
def _source_raw(x: str) -> str | None:
    v = _nv(x)
    if v is None or "." not in v:
        return v
    return _strip_host(v)


def norm_source(x: Any) -> str | None:
    """Normalize a utm_source (§3.2.3): `nv`; a value with a dot is reduced to its host; then the aliases."""
    x = _text(x)
    if x is None:
        return None
    v = _source_raw(x)
    return None if v is None else ALIASES.get(v, v)


@lru_cache(maxsize=8192)
def _path(x: str) -> str | None:
    v = x.strip().lower()
    if v in NULL_TOKENS:
        return None
    sm = _SCHEME.match(v)
    if sm:
        rest = v[sm.end():]
    elif v.startswith("//"):
        rest = v[2:]
    else:
        rest = None
    if rest is not None:  # a full URL: keep what follows the authority
        j = min((k for k in (rest.find("/"), rest.find("?"), rest.find("#")) if k >= 0), default=len(rest))
        v = rest[j:]
    for sep in "?#":
        j = v.find(sep)
        if j >= 0:
            v = v[:j]
    v = _SLASHES.sub("/", v.strip())
    if not v.startswith("/"):
        v = "/" + v
    if len(v) > 1 and v.endswith("/"):
        v = v[:-1]
    return v


def norm_path(x: Any) -> str | None:
    """Normalize a landing path (§3.2.4): lowercase, no query/fragment, `//` collapsed, no trailing `/` except
    the root, empty -> `/`. A full URL is reduced to its path; blank / NULL tokens are None."""
    x = _text(x)
    return None if x is None else _path(x)


@lru_cache(maxsize=4096)
def url_params(url: str) -> tuple[tuple[str, str], ...]:
    """The query parameters of a URL as (lowercased name, raw still-encoded value), in order, blanks dropped."""
    i = url.find("?")
    if i < 0:
        return ()
    query = url[i + 1:]
    j = query.find("#")
    if j >= 0:
        query = query[:j]
    out = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if value.strip():
            out.append((unquote_plus(name).strip().lower(), value))
    return tuple(out)


def click_ids_of(url: Any) -> frozenset[str]:
    """Names of the click ids (§3.2.5) present with a non-empty value in the URL's query."""
    url = _text(url)
    if not url:
        return frozenset()
    return frozenset(name for name, value in url_params(url) if name in CLICK_IDS and nv(value) is not None)


# ---- §3.3 rules ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _own_set(own_domains: tuple) -> frozenset[str]:
    return frozenset(h for h in (host_of(d) for d in own_domains) if h)


@lru_cache(maxsize=256)
def _bookmarkable_set(paths: tuple) -> frozenset[str]:
    return BOOKMARKABLE | frozenset(p for p in (norm_path(x) for x in paths) if p)


def _as_tuple(values: Any) -> tuple:
    if not values:
        return ()
    if isinstance(values, str):
        return (values,)
    try:
        return tuple(values)
    except TypeError:
        return ()


def _is_own(host: str | None, own: frozenset[str]) -> bool:
    if not host or not own:
        return False
    if host in own:
        return True
    i = host.find(".")
    while i >= 0:
        if host[i + 1:] in own:
            return True
        i = host.find(".", i + 1)
    return False


@lru_cache(maxsize=4096)
def _search(host: str) -> bool:
    return SEARCH_RE.search(host) is not None


def _rules(
    s: str | None, s_raw: str | None, m: str | None, c: str | None, r: str | None, r_raw: str | None,
    p: str | None, k: frozenset[str], own: frozenset[str], bookmarkable: frozenset[str], shorteners_dark: bool,
) -> tuple[str, str]:
    """§3.3 on normalized inputs; `r`/`s` aliased, `r_raw`/`s_raw` before aliasing, `r` already own-filtered."""
    if m is not None:
        if m in DARK_M:
            return "dark_social", "R01"
        if m in WEBINAR_M:
            return "webinar", "R02"
        if m in EVENT_M:
            return "events", "R03"
        if m in SYND_M:
            return "content_syndication", "R04"
        if m in DMAIL_M:
            return "direct_mail", "R05"
        if m in PSOC_M:
            return "paid_social", "R06"
    if (m is not None and m in PSEA_M) or (s is not None and s in ADWORDS_S):
        return "paid_search", "R07"
    paid = m is not None and PAID_RE.match(m) is not None
    if paid and s is not None:
        if s in SOCIAL_S:
            return "paid_social", "R08"
        if _search(s):
            return "paid_search", "R09"
    if k:
        if not k.isdisjoint(PAID_SEARCH_CLICK_IDS):
            return "paid_search", "R10"
        if not k.isdisjoint(PAID_SOCIAL_CLICK_IDS):
            return "paid_social", "R10"
    if paid or (m is not None and m in OTHER_M):
        return "other", "R11"
    if (m is not None and m in EMAIL_M) or (s is not None and s in EMAIL_S):
        return "email", "R12"
    if (m is not None and m in SOCIAL_M) or (s is not None and s in SOCIAL_S):
        return "organic_social", "R13"
    if m == "organic" or (s is not None and _search(s)):
        return "organic_search", "R14"
    if m == "referral":
        # R15: a referral tag names the referrer in utm_source; continue at R17 with it.
        if r is None and s is not None and not _is_own(s_raw, own):
            r, r_raw = s, s_raw
    elif s is not None or m is not None or c is not None:
        return "other", "R16"
    if r is not None:
        if r in _DARK_R or (shorteners_dark and r_raw in PLATFORM_SHORTENERS):
            return "dark_social", "R17"
        if _search(r):
            return "organic_search", "R18"
        if r in SOCIAL_S:
            return "organic_social", "R19"
        return "referral", "R20"
    if p is not None and p not in bookmarkable:
        return "dark_social", "R21"
    return "direct", "R22"


def _click_set(click_ids: Any) -> frozenset[str]:
    out = set()
    for x in _as_tuple(click_ids):
        v = nv(x)
        if v in CLICK_IDS:
            out.add(v)
    return frozenset(out)


def classify(
    source: Any = None,
    medium: Any = None,
    campaign: Any = None,
    referrer: Any = None,
    path: Any = None,
    click_ids: Iterable[str] = (),
    *,
    own_domains: Iterable[str] = (),
    bookmarkable: Iterable[str] = (),
    shorteners_dark: bool = False,
) -> tuple[str, str]:
    """Return (channel, rule id) for raw utm source/medium/campaign, referrer URL or host, landing path and
    click-id names (§3.2 then §3.3). Pass `path` only for web_visit / web_* events. Never raises."""
    own = _own_set(_as_tuple(own_domains))
    book = _bookmarkable_set(_as_tuple(bookmarkable)) if bookmarkable else BOOKMARKABLE
    s_raw = _source_raw(x) if (x := _text(source)) is not None else None
    s = ALIASES.get(s_raw, s_raw) if s_raw is not None else None
    r_raw = host_of(referrer)
    if _is_own(r_raw, own):
        r_raw = None
    r = ALIASES.get(r_raw, r_raw) if r_raw is not None else None
    return _rules(
        s, s_raw, norm_medium(medium), nv(campaign), r, r_raw, norm_path(path), _click_set(click_ids),
        own, book, bool(shorteners_dark),
    )


# ---- touches -------------------------------------------------------------------------------------------------


class Touch(NamedTuple):
    """A classified touch: channel + deciding rule, and the normalized columns an event row stores."""

    channel: str
    rule: str
    utm: Mapping[str, str | None]  # utm_source, utm_medium, utm_campaign, utm_content, utm_term (normalized, None when absent)
    referrer_domain: str | None  # normalized host, not aliased; None for own domains
    landing_path: str | None
    click_ids: frozenset[str]


def touch(
    model: Any,
    *,
    url: Any = None,
    referrer: Any = None,
    source: Any = None,
    medium: Any = None,
    campaign: Any = None,
    content: Any = None,
    term: Any = None,
    landing_path: Any = None,
    with_path: bool = True,
    click_ids: Iterable[str] = (),
) -> Touch:
    """Classify one touch with the model's own_domains, bookmarkable_paths and platform_shorteners_are_dark.

    `url` is the landing/page URL: its `utm_*` parameters fill the utm arguments that are None or NULL-like,
    its click ids (plus any names in `click_ids`) feed R10, and its path is the landing path unless
    `landing_path` is given. The landing path takes part in the rules only when `with_path` (web_visit / web_*).
    Memoised on its inputs (the same page URLs and referrers recur across millions of records).
    """
    key = (url, referrer, source, medium, campaign, content, term, landing_path, bool(with_path),
           tuple(click_ids) if click_ids else (), _as_tuple(getattr(model, "own_domains", ())),
           _as_tuple(getattr(model, "bookmarkable_paths", ())), bool(getattr(model, "platform_shorteners_are_dark", False)))
    try:
        found = _touch_cached(key)
    except TypeError:  # an unhashable argument: classify without the cache
        found = _touch(*key)
    return found


@lru_cache(maxsize=8192)
def _touch_cached(key: tuple) -> Touch:
    return _touch(*key)


def _touch(url: Any, referrer: Any, source: Any, medium: Any, campaign: Any, content: Any, term: Any,
           landing_path: Any, with_path: bool, click_ids: tuple, own_domains: tuple, bookmarkable_paths: tuple,
           dark: bool) -> Touch:
    url = _text(url)
    params: dict[str, str] = {}
    if url:
        for name, value in url_params(url):
            if name.startswith("utm_") and name not in params:
                params[name] = value
    explicit = (source, medium, campaign, content, term)
    raw: list[Any] = []
    for key, value in zip(UTM_KEYS, explicit):
        if nv(value) is None and key in params:
            value = params[key]
        raw.append(value)
    s_text = _text(raw[0])
    s_raw = _source_raw(s_text) if s_text is not None else None
    s = ALIASES.get(s_raw, s_raw) if s_raw is not None else None
    m = norm_medium(raw[1])
    utm = {
        "utm_source": s,
        "utm_medium": m,
        "utm_campaign": nv(raw[2]),
        "utm_content": nv(raw[3]),
        "utm_term": nv(raw[4]),
    }
    own = _own_set(own_domains)
    book = _bookmarkable_set(bookmarkable_paths) if bookmarkable_paths else BOOKMARKABLE
    r_raw = host_of(referrer)
    if _is_own(r_raw, own):
        r_raw = None
    r = ALIASES.get(r_raw, r_raw) if r_raw is not None else None
    path = norm_path(landing_path) if _text(landing_path) is not None else None
    if path is None and url:
        path = norm_path(url)
    k = click_ids_of(url) | _click_set(click_ids)
    channel, rule = _rules(s, s_raw, m, utm["utm_campaign"], r, r_raw, path if with_path else None, k, own, book,
                           dark)
    return Touch(channel, rule, MappingProxyType(utm), r_raw, path, k)  # read-only: the result is memoised


# ---- §3.4 self-reported answers --------------------------------------------------------------------------------

_S0 = frozenset(
    {"", "n/a", "na", "-", "don't know", "dont know", "not sure", "can't remember", "don't remember", "other"}
)
_SELF_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), channel)
    for pattern, channel in (
        (r"podcast|word of mouth|colleague|co-?worker|friend|peer|recommend|referred by|slack|whatsapp|community"
         r"|group chat|\bdm\b|direct message", "dark_social"),                                       # S1
        (r"webinar", "webinar"),                                                                      # S2
        (r"event|conference|trade ?show|booth|summit|meetup", "events"),                              # S3
        (r"(linkedin|facebook|instagram|twitter|youtube|tiktok|reddit).*\bads?\b|sponsored", "paid_social"),  # S4
        (r"google ads?|\bppc\b|search ad", "paid_search"),                                            # S5
        (r"linkedin|facebook|instagram|twitter|youtube|tiktok|reddit|social", "organic_social"),      # S6
        (r"google|bing|search|duckduckgo", "organic_search"),                                         # S7
        (r"direct mail|postcard|gift|package|swag|in the mail", "direct_mail"),                       # S8
        (r"email|newsletter", "email"),                                                               # S9
        (r"g2|capterra|gartner|trustradius|review|blog|article|partner|marketplace", "referral"),      # S10
    )
)


@lru_cache(maxsize=4096)
def _self_reported(v: str) -> str | None:
    # S0 compares the whole answer; curly apostrophes and trailing punctuation ("Don’t remember.") still count.
    bare = v.replace("\u2019", "'").replace("\u2018", "'").strip(" .!?,;:\t\r\n")
    if bare in _S0:
        return None
    for pattern, channel in _SELF_RULES:
        if pattern.search(v):
            return channel
    return "other"  # S11


def self_reported_channel(answer: Any) -> str | None:
    """Channel of a "How did you hear about us?" answer (§3.4, first match wins); None for no real answer."""
    v = nv(answer)
    return None if v is None else _self_reported(v)
