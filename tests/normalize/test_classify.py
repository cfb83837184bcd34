"""Channel rules (spec §3): the §3.5 vectors, §3.2 normalization, touch(), §3.4 self-reports, properties."""
from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalize import classify as C
from normalize.classify import (
    CHANNELS,
    Touch,
    classify,
    click_ids_of,
    host_of,
    nv,
    norm_host,
    norm_medium,
    norm_path,
    norm_source,
    self_reported_channel,
    touch,
)
from normalize.model import Model

# ---- §3.5 test vectors ------------------------------------------------------------------------------------------

GCLID = ("gclid",)
VECTORS = [
    # (kwargs for classify, channel, rule)
    (dict(source="google", medium="cpc"), "paid_search", "R09"),
    (dict(source="LinkedIn", medium="Paid Social"), "paid_social", "R06"),
    (dict(source="fb", medium="paid"), "paid_social", "R08"),
    (dict(source="reddit", medium="cpm"), "paid_social", "R08"),
    (dict(source="adroll", medium="display"), "other", "R11"),
    (dict(source="g2", medium="cpc"), "other", "R11"),
    (dict(source="lnkd.in"), "organic_social", "R13"),
    (dict(referrer="https://lnkd.in/abc"), "organic_social", "R19"),
    (dict(referrer="https://l.messenger.com/"), "dark_social", "R17"),
    (dict(referrer="teams.microsoft.com", path="/pricing"), "dark_social", "R17"),
    (dict(referrer="mail.google.com"), "dark_social", "R17"),
    (dict(source="slack", medium="referral"), "dark_social", "R17"),  # R15 -> R17
    (dict(source="partner.com", medium="referral"), "referral", "R20"),  # R15 -> R20
    (dict(path="/blog/dark-funnel-guide/"), "dark_social", "R21"),
    (dict(path="/"), "direct", "R22"),
    (dict(), "direct", "R22"),
    (dict(source="email", medium="share"), "dark_social", "R01"),
    (dict(source="newsletter", medium="email", campaign="feb"), "email", "R12"),
    (dict(source="google", medium="organic"), "organic_search", "R14"),
    (dict(referrer="https://www.google.co.uk/"), "organic_search", "R18"),
    (dict(source="google", medium="organic", click_ids=GCLID), "paid_search", "R10"),
    (dict(click_ids=GCLID, path="/pricing"), "paid_search", "R10"),
    (dict(source="zoom", medium="webinar"), "webinar", "R02"),
    (dict(campaign="spring_promo"), "other", "R16"),
    (dict(source="linkedin", medium="dm"), "organic_social", "R13"),
    (dict(source="adwords"), "paid_search", "R07"),
    (dict(source="(direct)", medium="(none)", path="/blog/x"), "dark_social", "R21"),  # GA4 direct, deep landing
]


@pytest.mark.parametrize("kwargs, channel, rule", VECTORS, ids=[repr(v[0]) for v in VECTORS])
def test_spec_vectors(kwargs, channel, rule):
    assert classify(**kwargs) == (channel, rule)


@pytest.mark.parametrize("kwargs, channel, rule", VECTORS, ids=[repr(v[0]) for v in VECTORS])
def test_spec_vectors_through_touch(kwargs, channel, rule):
    """touch() gives the same answer as classify() for the same inputs."""
    kw = dict(kwargs)
    path = kw.pop("path", None)
    clicks = kw.pop("click_ids", ())
    t = touch(Model(), landing_path=path, click_ids=clicks, **kw)
    assert (t.channel, t.rule) == (channel, rule)


# ---- more rules -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(medium="Trade-Show"), ("events", "R03")),
        (dict(medium="syndication", source="netline"), ("content_syndication", "R04")),
        (dict(medium="Direct Mail"), ("direct_mail", "R05")),
        (dict(medium="sem", source="facebook"), ("paid_search", "R07")),
        (dict(medium="sponsored", source="google"), ("paid_social", "R06")),
        (dict(source="google_ads", medium="email"), ("paid_search", "R07")),
        (dict(source="bing.com", medium="ppc"), ("paid_search", "R09")),
        (dict(source="www.facebook.com", medium="retargeting"), ("paid_social", "R08")),
        (dict(source="search.brave.com", medium="cpc"), ("paid_search", "R09")),
        (dict(click_ids=("li_fat_id",), source="linkedin", medium="social"), ("paid_social", "R10")),
        (dict(click_ids=("msclkid",)), ("paid_search", "R10")),
        (dict(click_ids=("fbclid",), referrer="l.facebook.com"), ("organic_social", "R19")),  # fbclid ignored
        (dict(click_ids=("fbclid",), path="/pricing"), ("dark_social", "R21")),
        (dict(source="google", medium="cpc", click_ids=("li_fat_id",)), ("paid_search", "R09")),  # tags beat ids
        (dict(medium="affiliate", click_ids=("gclid",)), ("paid_search", "R10")),
        (dict(medium="ads"), ("other", "R11")),
        (dict(source="mailchimp"), ("email", "R12")),
        (dict(source="bit.ly"), ("organic_social", "R13")),
        (dict(medium="sm", source="anything"), ("organic_social", "R13")),
        (dict(source="DuckDuckGo"), ("organic_search", "R14")),
        (dict(source="partner.com"), ("other", "R16")),
        (dict(medium="referral", referrer="https://www.g2.com/x", source="slack"), ("referral", "R20")),  # r wins
        (dict(medium="referral"), ("direct", "R22")),
        (dict(medium="referral", path="/blog/x"), ("dark_social", "R21")),
        (dict(medium="referral", source="t.co"), ("organic_social", "R13")),  # R13 precedes R15
        (dict(referrer="https://web.whatsapp.com/"), ("dark_social", "R17")),
        (dict(referrer="whatsapp.com"), ("dark_social", "R17")),
        (dict(referrer="teams"), ("dark_social", "R17")),
        (dict(referrer="https://outlook.office365.com/mail/"), ("dark_social", "R17")),
        (dict(referrer="https://www.bing.com/search?q=x"), ("organic_search", "R18")),
        (dict(referrer="https://search.brave.com/"), ("organic_search", "R18")),
        (dict(referrer="https://news.ycombinator.com/item?id=1"), ("organic_social", "R19")),
        (dict(referrer="https://t.co/xyz"), ("organic_social", "R19")),
        (dict(referrer="https://m.facebook.com/"), ("organic_social", "R19")),
        (dict(referrer="https://partner.example:8443/page"), ("referral", "R20")),
        (dict(path="/index.html"), ("direct", "R22")),
        (dict(path="/Login/"), ("direct", "R22")),
        (dict(path="(not set)"), ("direct", "R22")),
    ],
)
def test_rules(kwargs, expected):
    assert classify(**kwargs) == expected


def test_own_domain_referrer_is_no_referrer():
    assert classify(referrer="https://www.example.com/pricing", own_domains=["example.com"]) == ("direct", "R22")
    assert classify(referrer="https://blog.example.com/x", path="/docs/api", own_domains=("example.com",)) == (
        "dark_social",
        "R21",
    )
    # not a suffix match on the bare string
    assert classify(referrer="notexample.com", own_domains=("example.com",)) == ("referral", "R20")
    # a self-referral tag is not a referrer either
    assert classify(source="example.com", medium="referral", own_domains=("example.com",)) == ("direct", "R22")


def test_bookmarkable_section_fronts_from_config():
    assert classify(path="/blog") == ("dark_social", "R21")
    assert classify(path="/blog/", bookmarkable=["/Blog"]) == ("direct", "R22")
    assert classify(path="/blog/post", bookmarkable=["/blog"]) == ("dark_social", "R21")  # fronts only


def test_platform_shorteners_are_dark_flag():
    assert classify(referrer="https://lnkd.in/abc") == ("organic_social", "R19")
    assert classify(referrer="https://lnkd.in/abc", shorteners_dark=True) == ("dark_social", "R17")
    assert classify(referrer="https://t.co/abc", shorteners_dark=True) == ("dark_social", "R17")
    # the aliased platform itself and other shorteners are unaffected
    assert classify(referrer="https://www.linkedin.com/feed", shorteners_dark=True) == ("organic_social", "R19")
    assert classify(referrer="https://bit.ly/abc", shorteners_dark=True) == ("organic_social", "R19")
    # a tagged source is decided by R13 either way
    assert classify(source="lnkd.in", shorteners_dark=True) == ("organic_social", "R13")
    m = Model(platform_shorteners_are_dark=True)
    assert touch(m, referrer="https://lnkd.in/x").channel == "dark_social"


# ---- §3.2 normalization ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["", "  ", "(not set)", "(NONE)", "(direct)", "(organic)", "(referral)", "(not provided)", "None",
            " null ", "UNDEFINED", "%28not+set%29", None]
)
def test_nv_null_tokens(raw):
    assert nv(raw) is None


@pytest.mark.parametrize(
    "raw, expected",
    [("Facebook", "facebook"), ("  Spring+Promo ", "spring promo"), ("a%20b", "a b"), ("50%25", "50%"),
     ("Ünïcode", "ünïcode"), ("none of these", "none of these")],
)
def test_nv_values(raw, expected):
    assert nv(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [("Paid Social", "paid_social"), ("e-mail", "e_mail"), ("paid - social", "paid_social"), ("cpc", "cpc"),
     ("Social.Organic", "social_organic"), ("paid+social", "paid_social"), ("(none)", None), (None, None)],
)
def test_norm_medium(raw, expected):
    assert norm_medium(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [("fb", "facebook"), ("META", "facebook"), ("https://business.facebook.com/x", "facebook"),
     ("IG", "instagram"), ("lnkd", "linkedin"), ("LNKD.IN", "linkedin"), ("x", "twitter"), ("x.com", "twitter"),
     ("youtu.be", "youtube"), ("bing.com", "bing"), ("old.reddit.com", "reddit"), ("www.partner.com", "partner.com"),
     ("Partner.com:8080/path?q=1", "partner.com"), ("google", "google"), ("hubspot_email", "hubspot_email"),
     ("(not set)", None)],
)
def test_norm_source(raw, expected):
    assert norm_source(raw) == expected


@pytest.mark.parametrize(
    "raw, expected, aliased",
    [("https://www.Google.co.uk/search?q=x", "google.co.uk", "google.co.uk"),
     ("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com", "l.facebook.com", "facebook"),
     ("http://user@www.partner.com:8080/a", "partner.com", "partner.com"),
     ("//cdn.partner.com/x", "cdn.partner.com", "cdn.partner.com"),
     ("lnkd.in", "lnkd.in", "linkedin"),
     ("google.com?q=a://b", "google.com", "google.com"),
     ("android-app://com.slack/", "com.slack", "com.slack"),
     ("", None, None), (None, None, None), ("https://", None, None)],
)
def test_hosts(raw, expected, aliased):
    assert host_of(raw) == expected
    assert norm_host(raw) == aliased


@pytest.mark.parametrize(
    "raw, expected",
    [("/Blog/Dark-Funnel-Guide/", "/blog/dark-funnel-guide"), ("/", "/"), ("//", "/"), ("/a//b///c/", "/a/b/c"),
     ("/pricing?utm_source=x#top", "/pricing"), ("/#frag", "/"), ("?x=1", "/"), ("blog/x", "/blog/x"),
     ("https://www.example.com", "/"), ("https://www.example.com/Docs/?a=b", "/docs"),
     ("//cdn.example.com/a/", "/a"), ("  /pricing  ", "/pricing"), ("(not set)", None), ("", None), (None, None)],
)
def test_norm_path(raw, expected):
    assert norm_path(raw) == expected


def test_click_ids_from_url():
    url = "https://example.com/p?GCLID=abc&fbclid=x&li_fat_id=1&msclkid=&other=1&wbraid=z#f"
    assert click_ids_of(url) == frozenset({"gclid", "fbclid", "li_fat_id", "wbraid"})
    assert click_ids_of("https://example.com/p") == frozenset()
    assert click_ids_of(None) == frozenset()


def test_lists_are_frozen_constants():
    for name in ("DARK_M", "WEBINAR_M", "EVENT_M", "SYND_M", "DMAIL_M", "PSOC_M", "PSEA_M", "OTHER_M", "EMAIL_M",
                 "EMAIL_S", "SOCIAL_M", "SOCIAL_S", "ADWORDS_S", "MSG_R", "WEBMAIL_R", "BOOKMARKABLE"):
        assert isinstance(getattr(C, name), frozenset), name
    assert {"bit.ly", "ow.ly", "buff.ly", "tinyurl.com", "goo.gl", "is.gd", "rebrand.ly", "t.ly"} <= C.SOCIAL_S
    assert {"whatsapp", "whatsapp.com", "messenger", "messenger.com", "slack", "slack.com", "discord",
            "discord.com"} <= C.MSG_R
    assert len(CHANNELS) == 13 and C.UNATTRIBUTED not in CHANNELS


@pytest.mark.parametrize("medium", ["cpc", "cpm", "ecpc", "ppc", "retargeting", "remarketing", "paid", "paid_xyz",
                                    "ad", "ads"])
def test_paid_re_matches(medium):
    assert C.PAID_RE.match(medium)


@pytest.mark.parametrize("medium", ["adsense", "pad", "unpaid", "display", "social"])
def test_paid_re_rejects(medium):
    assert not C.PAID_RE.match(medium)


@pytest.mark.parametrize("host", ["google", "google.com", "google.co.uk", "news.google.de", "bing", "yandex.ru",
                                  "search.brave.com", "duckduckgo.com"])
def test_search_re_matches(host):
    assert C.SEARCH_RE.search(host)


@pytest.mark.parametrize("host", ["googleads", "google_ads", "notgoogle.com", "brave.com", "googley.com"])
def test_search_re_rejects(host):
    assert not C.SEARCH_RE.search(host)


# ---- touch() ----------------------------------------------------------------------------------------------------

MODEL = Model(own_domains=("example.com",), bookmarkable_paths=("/blog",))


def test_touch_reads_utm_and_click_ids_from_url():
    t = touch(
        MODEL,
        url="https://www.example.com/Blog/Post-1/?utm_source=LinkedIn&utm_medium=Paid+Social&utm_campaign=Q1%20Launch"
        "&utm_content=Video&utm_term=crm+tool&gclid=abc",
        referrer="https://www.linkedin.com/",
    )
    assert isinstance(t, Touch)
    assert t.channel == "paid_social" and t.rule == "R06"
    assert t.utm == {
        "utm_source": "linkedin",
        "utm_medium": "paid_social",
        "utm_campaign": "q1 launch",
        "utm_content": "video",
        "utm_term": "crm tool",
    }
    assert t.referrer_domain == "linkedin.com"  # not aliased
    assert t.landing_path == "/blog/post-1"
    assert t.click_ids == frozenset({"gclid"})


def test_touch_explicit_args_win_over_url():
    t = touch(MODEL, url="/pricing?utm_source=google&utm_medium=cpc", source="newsletter", medium="email")
    assert (t.channel, t.rule) == ("email", "R12")
    assert t.utm["utm_source"] == "newsletter" and t.utm["utm_medium"] == "email"
    # a NULL-like explicit value falls back to the URL
    t = touch(MODEL, url="/pricing?utm_source=google&utm_medium=cpc", source="", medium="(not set)")
    assert (t.channel, t.rule, t.utm["utm_medium"]) == ("paid_search", "R09", "cpc")


def test_touch_click_id_in_url():
    t = touch(MODEL, url="https://example.com/pricing?gclid=Cj0KCQ")
    assert (t.channel, t.rule) == ("paid_search", "R10")
    t = touch(MODEL, url="https://example.com/pricing?li_fat_id=abc-123")
    assert (t.channel, t.rule) == ("paid_social", "R10")


def test_touch_landing_path_and_with_path():
    t = touch(MODEL, url="https://example.com/docs/api-guide/?x=1")
    assert (t.channel, t.rule, t.landing_path) == ("dark_social", "R21", "/docs/api-guide")
    # forms: no path rule, but the path is still reported
    t = touch(MODEL, url="https://example.com/docs/api-guide/?x=1", with_path=False)
    assert (t.channel, t.rule, t.landing_path) == ("direct", "R22", "/docs/api-guide")
    # section front from the model
    t = touch(MODEL, landing_path="/Blog/")
    assert (t.channel, t.rule, t.landing_path) == ("direct", "R22", "/blog")
    # explicit landing_path wins over the URL's path
    t = touch(MODEL, url="https://example.com/docs/x", landing_path="/")
    assert (t.channel, t.landing_path) == ("direct", "/")


def test_touch_own_domain_referrer():
    t = touch(MODEL, url="https://example.com/case-studies/acme", referrer="https://www.example.com/")
    assert t.referrer_domain is None
    assert (t.channel, t.rule) == ("dark_social", "R21")
    t = touch(MODEL, referrer="https://l.messenger.com/l.php?u=x")
    assert (t.channel, t.rule, t.referrer_domain) == ("dark_social", "R17", "l.messenger.com")


def test_touch_empty():
    t = touch(Model())
    assert t == Touch("direct", "R22", {k: None for k in C.UTM_KEYS}, None, None, frozenset())


# ---- §3.4 self-reported ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, channel",
    [
        ("A colleague shared your guide in our Slack", "dark_social"),
        ("Heard you on a podcast", "dark_social"),
        ("Google search", "organic_search"),
        ("Your webinar", "webinar"),
        ("LinkedIn ad", "paid_social"),
        ("Saw a LinkedIn post", "organic_social"),
        ("Got your postcard in the mail", "direct_mail"),
        ("Your newsletter", "email"),
        ("G2 reviews", "referral"),
        ("don't remember", None),
        ("Don’t remember.", None),
        ("N/A", None),
        ("other", None),
        ("-", None),
        ("", None),
        (None, None),
        ("Word+of+mouth", "dark_social"),
        ("A DM from a friend", "dark_social"),
        ("Booth at SaaStr", "events"),
        ("Sponsored post", "paid_social"),
        ("Google Ads", "paid_search"),
        ("Bing", "organic_search"),
        ("Some swag", "direct_mail"),
        ("Capterra", "referral"),
        ("A billboard", "other"),
        ("Other things", "other"),  # S0 compares the whole answer
    ],
)
def test_self_reported(answer, channel):
    assert self_reported_channel(answer) == channel


# ---- properties ---------------------------------------------------------------------------------------------------

ANY_TEXT = st.none() | st.text(max_size=40)
URLISH = st.none() | st.builds(
    lambda scheme, host, path, q: f"{scheme}{host}{path}{q}",
    st.sampled_from(["", "http://", "https://", "//", "HTTPS://www.", "android-app://"]),
    st.text(max_size=15),
    st.text(max_size=15),
    st.text(alphabet=string.ascii_letters + "=&?#%+;", max_size=20),
)
WORD = st.none() | st.text(alphabet=string.ascii_letters + string.digits + " _-./%+", max_size=30)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, ANY_TEXT, ANY_TEXT, URLISH | ANY_TEXT, URLISH | ANY_TEXT,
       st.lists(st.sampled_from(sorted(C.CLICK_IDS)) | st.text(max_size=8), max_size=3), st.booleans())
def test_classify_is_total(source, medium, campaign, referrer, path, click_ids, dark):
    channel, rule = classify(source, medium, campaign, referrer, path, click_ids, own_domains=("example.com",),
                             bookmarkable=("/blog",), shorteners_dark=dark)
    assert channel in CHANNELS
    assert rule in C.RULE_IDS and rule != "R15"


@settings(max_examples=200, deadline=None)
@given(URLISH | ANY_TEXT, URLISH | ANY_TEXT, ANY_TEXT, ANY_TEXT, st.booleans())
def test_touch_is_total(url, referrer, source, landing_path, with_path):
    t = touch(MODEL, url=url, referrer=referrer, source=source, landing_path=landing_path, with_path=with_path)
    assert t.channel in CHANNELS
    assert set(t.utm) == set(C.UTM_KEYS)
    assert t.click_ids <= C.CLICK_IDS
    assert t.landing_path is None or t.landing_path.startswith("/")
    for f in (nv, norm_medium, norm_source, norm_host, host_of, norm_path, self_reported_channel):
        f(url)


def _shout(x, upper):
    if x is None:
        return None
    return f" \t{x.upper() if upper else x.title()}  "


@settings(max_examples=300, deadline=None)
@given(WORD, WORD, WORD, st.booleans())
def test_classify_ignores_case_and_stray_whitespace(source, medium, campaign, upper):
    assert classify(source, medium, campaign) == classify(
        _shout(source, upper), _shout(medium, upper), _shout(campaign, upper)
    )


PAID_MEDIA = sorted(C.PSOC_M | C.PSEA_M | {"cpc", "cpm", "cpv", "ppc", "retargeting", "remarketing", "paid",
                                            "paid-social", "ads", "ad"})
PLATFORMS = ["google", "bing", "google.com", "Bing.com", "yahoo", "fb", "facebook", "LinkedIn", "lnkd.in", "reddit",
             "twitter", "x", "youtube", "instagram"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(PAID_MEDIA), st.sampled_from(PLATFORMS), st.sampled_from([str.upper, str.title, str.lower]),
       st.none() | st.text(max_size=10))
def test_paid_media_are_paid_in_any_case(medium, source, case, campaign):
    channel, _ = classify(case(source), f" {case(medium)} ", campaign)
    assert channel in C.PAID_CHANNELS


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PAID_MEDIA), WORD, st.sampled_from([str.upper, str.title]))
def test_paid_media_never_organic(medium, source, case):
    channel, _ = classify(source, case(medium))
    assert channel in C.PAID_CHANNELS | {"other"}


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "/-_.?#=&", max_size=40))
def test_norm_path_is_idempotent(path):
    p = norm_path(path)
    assert p is None or (norm_path(p) == p and p.startswith("/") and "//" not in p)
