"""config/: funnelsync.toml -> Settings; every bad input is ONE ConfigError line naming file + key; no secrets."""
from __future__ import annotations

import dataclasses
import textwrap
from datetime import date
from pathlib import Path

import pytest

import config
from config import ConfigError, Settings, load, parse, redacted
from config.settings import MODEL_KEYS, SOURCE_TYPES, Int, Num, OneOf, find_config, is_secret

SECRET = "s3cr3t-value-123"
TODAY = date(2024, 4, 1)
ENV = {
    "HUBSPOT_ACCESS_TOKEN": SECRET,
    "SALESFORCE_ACCESS_TOKEN": SECRET,
    "MAILCHIMP_API_KEY": "0123456789abcdef-us6",
    "LINKEDIN_ACCESS_TOKEN": SECRET,
    "META_ACCESS_TOKEN": SECRET,
    "GOOGLE_ADS_DEVELOPER_TOKEN": SECRET,
    "GOOGLE_ADS_CLIENT_ID": "client-id.apps.example",
    "GOOGLE_ADS_CLIENT_SECRET": SECRET,
    "GOOGLE_ADS_REFRESH_TOKEN": SECRET,
    "TOKEN": SECRET,
}
HUBSPOT = '[sources.hubspot]\naccess_token = "${HUBSPOT_ACCESS_TOKEN}"\n'


def write(tmp_path: Path, text: str, name: str = "fs-test.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def ok(tmp_path: Path, text: str, env: dict | None = None, **kw) -> Settings:
    return load(str(write(tmp_path, text)), environ={**ENV, **(env or {})}, today=TODAY, **kw)


def fail(tmp_path: Path, text: str, env: dict | None = None, **kw) -> str:
    """Load a bad config; check the message is one line, names the file and holds no secret; return it."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(str(path), environ={**ENV, **(env or {})}, today=TODAY, **kw)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path}: "), message
    assert SECRET not in message and "s3cr3t" not in message, message
    assert "; expected " in message, message
    assert info.value.exit_code == 2
    return message


# ------------------------------------------------------------------------------------------- the contract file
CONTRACT_EXAMPLE = """
[warehouse]
url = "sqlite:///warehouse.db"
timezone = "UTC"

[sources.hubspot]
type = "hubspot"
access_token = "${HUBSPOT_ACCESS_TOKEN}"
start_date = "2024-01-01"

[sources.salesforce]
type = "salesforce"
instance_url = "https://acme.my.salesforce.com"
access_token = "${SALESFORCE_ACCESS_TOKEN}"

[sources.ga4]
type = "ga4"
property_id = "123456789"
credentials_file = "service-account.json"

[sources.mailchimp]
type = "mailchimp"
api_key = "${MAILCHIMP_API_KEY}"

[sources.linkedin_ads]
type = "linkedin_ads"
access_token = "${LINKEDIN_ACCESS_TOKEN}"
account_ids = ["508000000"]

[sources.meta_ads]
type = "meta_ads"
access_token = "${META_ACCESS_TOKEN}"
account_ids = ["act_1234567890"]

[sources.google_ads]
type = "google_ads"
developer_token = "${GOOGLE_ADS_DEVELOPER_TOKEN}"
customer_ids = ["1234567890"]
client_id = "${GOOGLE_ADS_CLIENT_ID}"
client_secret = "${GOOGLE_ADS_CLIENT_SECRET}"
refresh_token = "${GOOGLE_ADS_REFRESH_TOKEN}"

[model]
reporting_currency = "USD"
fiscal_year_start_month = 1
opportunity_system_of_record = "salesforce"
sqo_stages = []
mql_statuses = ["Marketing Qualified"]
sql_statuses = ["Sales Qualified"]
sql_on_conversion = true
demo_form_ids = []
nurture_list_ids = []
nurture_tags = []
own_domains = ["example.com"]
bookmarkable_paths = []
platform_shorteners_are_dark = false
lookback_days = 90
half_life_days = 7
default_model = "w_shaped"
hybrid_alpha = 0.5
amount_basis = "annual"
contract_months = 12
gross_margin = 1.0
expected_lifetime_years = 3
ad_mirror_campaign_types = ["Advertisement", "Paid Social", "Paid Search", "Banner Ads"]

[model.campaign_type_map]
"Webinar" = "webinar"

[model.self_report_fields]
hubspot = "how_did_you_hear_about_us"
salesforce = "How_did_you_hear_about_us__c"

[[goals]]
plan_year = 2025
metric = "closed_won_revenue"
target = 1800000
quarter_weights = [0.2, 0.25, 0.25, 0.3]
"""


def test_contract_and_domain_examples_parse_with_defaults(tmp_path):
    (tmp_path / "service-account.json").write_text("{}")
    s = ok(tmp_path, CONTRACT_EXAMPLE)
    assert s.path == tmp_path / "fs-test.toml"
    assert s.warehouse_url == f"sqlite:///{tmp_path}/warehouse.db"  # relative to the config file's directory
    assert s.timezone == "UTC"
    assert list(s.sources) == ["hubspot", "salesforce", "ga4", "mailchimp", "linkedin_ads", "meta_ads", "google_ads"]
    for name, src in s.sources.items():
        assert src["name"] == name and src["type"] == name
    hs = s.sources["hubspot"]
    assert hs["access_token"] == SECRET and hs["start_date"] == "2024-01-01"
    assert (hs["base_url"], hs["lookback_minutes"], hs["email_events"], hs["forms"]) == (
        "https://api.hubapi.com", 10, True, True)
    sf = s.sources["salesforce"]
    assert (sf.get("login_url"), sf["api_version"], sf["bulk_threshold"], sf["api_budget_share"],
            sf["lookback_minutes"], sf["history_object"]) == (
        None, "60.0", 10000, 0.8, 10, "OpportunityHistory")
    ga = s.sources["ga4"]
    assert ga["credentials_file"] == str(tmp_path / "service-account.json")
    assert (ga["base_url"], ga["reread_days"], ga["quota_stop_share"], ga["window_days"]) == (
        "https://analyticsdata.googleapis.com", 3, 0.9, 30)
    mc = s.sources["mailchimp"]
    assert (mc["base_url"], mc["reread_days"], mc["max_connections"]) == ("https://us6.api.mailchimp.com/3.0", 14, 10)
    li = s.sources["linkedin_ads"]
    assert (li["base_url"], li["linkedin_version"], li["reread_days"], li["account_ids"]) == (
        "https://api.linkedin.com/rest", "202510", 7, ["508000000"])
    meta = s.sources["meta_ads"]
    assert (meta["base_url"], meta["reread_days"]) == ("https://graph.facebook.com/v21.0", 28)
    ga_ads = s.sources["google_ads"]
    assert (ga_ads["token_uri"], ga_ads["base_url"], ga_ads["reread_days"]) == (
        "https://oauth2.googleapis.com/token", "https://googleads.googleapis.com/v18", 30)
    # optional keys without a default are absent, so a connector's `source.get(key, its_default)` applies
    for absent in ("login_customer_id", "access_token", "window_days", "currency", "requests_per_second"):
        assert absent not in ga_ads, absent
    assert "token_uri" not in ga and "reread_days" not in hs and "base_url" not in sf
    # defaults common to all: start_date is 365 days before today when absent
    assert s.sources["meta_ads"]["start_date"] == "2023-04-02"
    assert s.model["half_life_days"] == 7.0 and s.model["own_domains"] == ["example.com"]
    assert s.model["campaign_type_map"] == {"Webinar": "webinar"}
    assert "timezone" not in s.model
    assert s.goals == [{"plan_year": 2025, "metric": "closed_won_revenue", "target": 1800000,
                        "quarter_weights": [0.2, 0.25, 0.25, 0.3], "rate_overrides": {}}]
    assert s.fx_rates == []


def test_empty_file_gives_all_defaults(tmp_path):
    s = ok(tmp_path, "")
    assert s.warehouse_url == f"sqlite:///{tmp_path}/warehouse.db"
    assert (s.timezone, s.sources, s.goals, s.fx_rates) == ("UTC", {}, [], [])
    assert s.model == {"opportunity_system_of_record": "hubspot"}


def test_parse_without_path_keeps_relative_sqlite_and_names_inline_config():
    s = parse("", environ={})
    assert s.path is None and s.warehouse_url == "sqlite:///warehouse.db"
    with pytest.raises(ConfigError) as info:
        parse("[bogus]\n", environ={})
    assert str(info.value).startswith("<inline funnelsync.toml>: bogus: ")


# ------------------------------------------------------------------------------------------- finding the file
def test_find_config_precedence(tmp_path):
    env = {"FUNNELSYNC_CONFIG": str(tmp_path / "env.toml")}
    assert find_config(str(tmp_path / "cli.toml"), env) == tmp_path / "cli.toml"
    assert find_config(None, env) == tmp_path / "env.toml"
    assert find_config(None, {}) == Path("funnelsync.toml")


def test_load_uses_env_var_then_default(tmp_path, monkeypatch):
    write(tmp_path, HUBSPOT, "via-env.toml")
    s = load(environ={**ENV, "FUNNELSYNC_CONFIG": str(tmp_path / "via-env.toml")})
    assert list(s.sources) == ["hubspot"]
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[warehouse]\ntimezone = "Europe/Paris"\n', "funnelsync.toml")
    assert load(environ={}).timezone == "Europe/Paris"


def test_missing_file_says_where_it_looked_and_how_to_create_one(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(str(path), environ={})
    msg = str(info.value)
    assert msg.startswith(f"{path}: config file not found") and "--config" in msg and "create" in msg
    assert str(path.absolute()) in msg and "\n" not in msg


def test_missing_default_file_mentions_env_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load(environ={})
    msg = str(info.value)
    assert msg.startswith("funnelsync.toml: ") and "FUNNELSYNC_CONFIG" in msg and str(tmp_path) in msg


def test_directory_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load(str(tmp_path), environ={})


# ------------------------------------------------------------------------------------------- syntax / structure
def test_toml_syntax_error_has_line_and_column(tmp_path):
    msg = fail(tmp_path, '[warehouse]\nurl = "sqlite:///x.db"\ntimezone = \n')
    assert "line 3, column 12" in msg and "TOML syntax error" in msg


def test_unknown_top_level_table_suggests(tmp_path):
    msg = fail(tmp_path, "[warehous]\nurl = 'sqlite:///a.db'\n")
    assert ": warehous: unknown top-level table" in msg and "[warehouse]" in msg


def test_top_level_timezone_points_to_warehouse(tmp_path):
    msg = fail(tmp_path, 'timezone = "UTC"\n')
    assert ": timezone: unknown top-level key" in msg and "[warehouse] timezone" in msg


def test_sources_must_be_tables(tmp_path):
    assert "sources.hubspot: got a string" in fail(tmp_path, '[sources]\nhubspot = "x"\n')
    assert ": sources: got an array" in fail(tmp_path, '[[sources]]\ntype = "hubspot"\n')


# ------------------------------------------------------------------------------------------- sources: types
def test_type_inferred_from_table_name_and_several_sources_share_a_type(tmp_path):
    s = ok(tmp_path, """
        [sources.hubspot]
        access_token = "${HUBSPOT_ACCESS_TOKEN}"
        [sources.hubspot_eu]
        type = "hubspot"
        access_token = "${TOKEN}"
        base_url = "https://eu1.api.example/"
        [sources.hubspot_us]
        type = "hubspot"
        access_token = "other-token"
        email_events = false
    """)
    assert {n: s.sources[n]["type"] for n in s.sources} == {
        "hubspot": "hubspot", "hubspot_eu": "hubspot", "hubspot_us": "hubspot"}
    assert s.sources["hubspot_eu"]["base_url"] == "https://eu1.api.example"  # trailing slash dropped
    assert s.sources["hubspot_us"]["email_events"] is False and s.sources["hubspot"]["email_events"] is True
    assert s.sources["hubspot_us"]["access_token"] == "other-token"


def test_unknown_source_type_lists_known_types(tmp_path):
    msg = fail(tmp_path, '[sources.crm]\ntype = "hubspt"\naccess_token = "${TOKEN}"\n')
    assert ": sources.crm.type: unknown source type 'hubspt' (did you mean 'hubspot'?)" in msg
    for t in SOURCE_TYPES:
        assert t in msg


def test_name_that_is_not_a_type_needs_a_type(tmp_path):
    msg = fail(tmp_path, '[sources.crm]\naccess_token = "${TOKEN}"\n')
    assert ": sources.crm.type: missing source type" in msg and "linkedin_ads" in msg


def test_invalid_source_name(tmp_path):
    msg = fail(tmp_path, '[sources."my hub"]\ntype = "hubspot"\naccess_token = "x"\n')
    assert ': sources."my hub": invalid source name' in msg


# ------------------------------------------------------------------------------------------- credentials
@pytest.mark.parametrize("text, key", [
    ("[sources.hubspot]\n", "sources.hubspot.access_token"),
    ('[sources.hubspot]\naccess_token = ""\n', "sources.hubspot.access_token"),
    ('[sources.hubspot]\naccess_token = "${EMPTY}"\n', "sources.hubspot.access_token"),
    ('[sources.sf]\ntype = "salesforce"\ninstance_url = "https://a.my.salesforce.com"\n', "sources.sf.access_token"),
    ('[sources.sf]\ntype = "salesforce"\ninstance_url = "https://a.my.salesforce.com"\nclient_id = "abc"\n',
     "sources.sf.client_secret"),
    ('[sources.sf]\ntype = "salesforce"\ninstance_url = "https://a.my.salesforce.com"\nclient_secret = "${TOKEN}"\n',
     "sources.sf.client_id"),
    ('[sources.ga4]\nproperty_id = "1"\n', "sources.ga4.credentials_file"),
    ("[sources.mailchimp]\n", "sources.mailchimp.api_key"),
    ('[sources.linkedin_ads]\naccess_token = "${TOKEN}"\n', "sources.linkedin_ads.account_ids"),
    ('[sources.google_ads]\ndeveloper_token = "${TOKEN}"\ncustomer_ids = ["1234567890"]\nclient_id = "c"\n'
     'client_secret = "${TOKEN}"\n', "sources.google_ads.refresh_token"),
])
def test_missing_credentials_and_required_keys(tmp_path, text, key):
    msg = fail(tmp_path, text, env={"EMPTY": ""})
    assert f": {key}: missing" in msg


def test_missing_credential_message_suggests_an_env_var(tmp_path):
    msg = fail(tmp_path, "[sources.hubspot]\n")
    assert "missing credential" in msg and "${HUBSPOT_ACCESS_TOKEN}" in msg


def test_salesforce_client_credentials_are_enough(tmp_path):
    s = ok(tmp_path, """
        [sources.salesforce]
        instance_url = "https://acme.my.salesforce.com"
        client_id = "consumer-key"
        client_secret = "${TOKEN}"
        login_url = "https://test.salesforce.com"
        api_version = 59.0
        api_budget_share = 1
        history_object = "OpportunityFieldHistory"
    """)
    sf = s.sources["salesforce"]
    assert "access_token" not in sf and (sf["client_id"], sf["client_secret"]) == ("consumer-key", SECRET)
    assert (sf["api_version"], sf["api_budget_share"], sf["history_object"]) == ("59.0", 1.0, "OpportunityFieldHistory")
    assert s.model["opportunity_system_of_record"] == "salesforce"


def test_ga4_access_token_alternative_and_property_id_forms(tmp_path):
    s = ok(tmp_path, '[sources.ga4]\nproperty_id = 123456789\naccess_token = "${TOKEN}"\n'
                     'token_uri = "http://localhost:8080/token"\n')
    assert s.sources["ga4"]["property_id"] == "123456789" and "credentials_file" not in s.sources["ga4"]
    assert s.sources["ga4"]["token_uri"] == "http://localhost:8080/token"
    assert ": sources.ga4.property_id: malformed value 'properties/12'" in fail(
        tmp_path, '[sources.ga4]\nproperty_id = "properties/12"\naccess_token = "x"\n')


def test_ga4_credentials_file_must_exist(tmp_path):
    msg = fail(tmp_path, '[sources.ga4]\nproperty_id = "1"\ncredentials_file = "missing.json"\n')
    assert ": sources.ga4.credentials_file: file not found: " in msg and str(tmp_path / "missing.json") in msg


def test_mailchimp_key_shape_and_dc(tmp_path):
    s = ok(tmp_path, '[sources.mailchimp]\napi_key = "fake-mailchimp-key-us21"\nlist_ids = ["abc"]\n')
    assert s.sources["mailchimp"]["base_url"] == "https://us21.api.mailchimp.com/3.0"
    assert s.sources["mailchimp"]["list_ids"] == ["abc"]
    s = ok(tmp_path, '[sources.mailchimp]\napi_key = "k-us6"\nbase_url = "http://127.0.0.1:9999/3.0"\n')
    assert s.sources["mailchimp"]["base_url"] == "http://127.0.0.1:9999/3.0"
    msg = fail(tmp_path, '[sources.mailchimp]\napi_key = "${MC}"\n', env={"MC": SECRET})
    assert ": sources.mailchimp.api_key: malformed API key" in msg and "<key>-<dc>" in msg
    msg = fail(tmp_path, '[sources.mailchimp]\napi_key = "k-us6"\nmax_connections = 11\n')
    assert ": sources.mailchimp.max_connections: 11 is out of range; expected an integer from 1 to 10" in msg


# ------------------------------------------------------------------------------------------- interpolation
def test_undefined_variable_names_variable_and_key(tmp_path):
    msg = fail(tmp_path, '[sources.hubspot]\naccess_token = "${HUBSPOT_TOKEN_TYPO}"\n')
    assert ": sources.hubspot.access_token: environment variable HUBSPOT_TOKEN_TYPO is not set" in msg
    msg = fail(tmp_path, '[sources.meta_ads]\naccess_token = "x"\naccount_ids = ["act_1", "${NOPE}"]\n')
    assert ": sources.meta_ads.account_ids[1]: environment variable NOPE is not set" in msg


def test_interpolation_in_nested_values(tmp_path):
    s = ok(tmp_path, """
        [warehouse]
        url = "postgresql://${PGUSER}:${PGPASS}@db.internal:5432/${PGDB}"
        timezone = "${TZ_NAME}"
        [sources.linkedin_ads]
        access_token = "Bearer ${TOKEN}"
        account_ids = ["${LI_ACCOUNT}", "urn:li:sponsoredAccount:42"]
        [model]
        own_domains = ["${DOMAIN}", "www.${DOMAIN}"]
        [model.campaign_type_map]
        "Field Event" = "${CHANNEL}"
        [[goals]]
        plan_year = 2025
        metric = "closed_won_revenue"
        target = 10
        [goals.rate_overrides]
        win = 0.5
        [[fx_rates]]
        date = "${FX_DATE}"
        currency = "eur"
        rate_to_reporting = 1.08
    """, env={"PGUSER": "etl", "PGPASS": "pw", "PGDB": "mkt", "TZ_NAME": "America/New_York", "LI_ACCOUNT": "508",
              "DOMAIN": "acme.example", "CHANNEL": "events", "FX_DATE": "2024-03-01"})
    assert s.warehouse_url == "postgresql://etl:pw@db.internal:5432/mkt"
    assert s.timezone == "America/New_York"
    assert s.sources["linkedin_ads"]["access_token"] == f"Bearer {SECRET}"
    assert s.sources["linkedin_ads"]["account_ids"] == ["508", "42"]
    assert s.model["own_domains"] == ["acme.example", "www.acme.example"]
    assert s.model["campaign_type_map"] == {"Field Event": "events"}
    assert s.goals[0]["rate_overrides"] == {"win": 0.5}
    assert s.fx_rates == [{"date": "2024-03-01", "currency": "EUR", "rate_to_reporting": 1.08}]


def test_text_without_variables_is_left_alone(tmp_path):
    s = ok(tmp_path, '[sources.hubspot]\naccess_token = "$NOT_A_VAR and ${ not one}"\n')
    assert s.sources["hubspot"]["access_token"] == "$NOT_A_VAR and ${ not one}"


def test_value_from_environment_is_shown_as_its_template(tmp_path):
    msg = fail(tmp_path, '[sources.meta_ads]\naccess_token = "x"\naccount_ids = "${ACCOUNTS}"\n',
               env={"ACCOUNTS": SECRET})
    assert ": sources.meta_ads.account_ids: got a string '${ACCOUNTS}' (from the environment)" in msg


# ------------------------------------------------------------------------------------------- keys and values
def test_unknown_key_suggests_closest(tmp_path):
    msg = fail(tmp_path, '[sources.hubspot]\nacess_token = "${TOKEN}"\n')
    assert ": sources.hubspot.acess_token: unknown key (did you mean 'access_token'?)" in msg
    msg = fail(tmp_path, '[warehouse]\nurll = "sqlite:///a.db"\n')
    assert ": warehouse.urll: unknown key (did you mean 'url'?)" in msg
    msg = fail(tmp_path, '[model]\nlookback_day = 30\n')
    assert ": model.lookback_day: unknown key (did you mean 'lookback_days'?)" in msg
    msg = fail(tmp_path, HUBSPOT + 'own_domains = ["acme.example"]\n')
    assert ": sources.hubspot.own_domains: unknown key (it belongs in [model] own_domains)" in msg
    msg = fail(tmp_path, '[model]\ntimezone = "UTC"\n')
    assert ": model.timezone: unknown key (it belongs in [warehouse] timezone)" in msg


@pytest.mark.parametrize("start", ['"2024-13-01"', '"2024-02-30"', '"01/02/2024"', '"2024-1-1"', "2024-01-01T00:00:00Z",
                                   "20240101"])
def test_malformed_start_date(tmp_path, start):
    msg = fail(tmp_path, HUBSPOT + f"start_date = {start}\n")
    assert ": sources.hubspot.start_date: " in msg and "YYYY-MM-DD" in msg


def test_start_date_accepts_toml_date(tmp_path):
    assert ok(tmp_path, HUBSPOT + "start_date = 2024-02-29\n").sources["hubspot"]["start_date"] == "2024-02-29"


@pytest.mark.parametrize("text, key, expected", [
    ('[sources.linkedin_ads]\naccess_token = "x"\naccount_ids = "508000000"\n',
     "sources.linkedin_ads.account_ids", "an array of strings"),
    ('[sources.linkedin_ads]\naccess_token = "x"\naccount_ids = [508000000]\n',
     "sources.linkedin_ads.account_ids[0]", "a string"),
    ('[sources.linkedin_ads]\naccess_token = "x"\naccount_ids = []\n',
     "sources.linkedin_ads.account_ids", "at least one entry"),
    ('[sources.linkedin_ads]\naccess_token = "x"\naccount_ids = ["1"]\nlinkedin_version = "2024-09"\n',
     "sources.linkedin_ads.linkedin_version", '"202510"'),
    ('[sources.meta_ads]\naccess_token = "x"\naccount_ids = ["1234567890"]\n',
     "sources.meta_ads.account_ids[0]", '"act_"'),
    (HUBSPOT + 'lookback_minutes = "10"\n', "sources.hubspot.lookback_minutes", "an integer >= 0"),
    (HUBSPOT + "lookback_minutes = 1.5\n", "sources.hubspot.lookback_minutes", "an integer >= 0"),
    (HUBSPOT + 'forms = "yes"\n', "sources.hubspot.forms", "true or false"),
    (HUBSPOT + "reread_days = -1\n", "sources.hubspot.reread_days", "an integer >= 0"),
    (HUBSPOT + "requests_per_second = 0\n", "sources.hubspot.requests_per_second", "a number > 0"),
    (HUBSPOT + "requests_per_second = true\n", "sources.hubspot.requests_per_second", "a number > 0"),
    (HUBSPOT + 'currency = "euro"\n', "sources.hubspot.currency", "ISO 4217"),
    ('[sources.salesforce]\ninstance_url = "https://a.my.salesforce.com"\naccess_token = "x"\n'
     'api_budget_share = 1.5\n', "sources.salesforce.api_budget_share", "a number > 0 and <= 1"),
    ('[sources.salesforce]\ninstance_url = "https://a.my.salesforce.com"\naccess_token = "x"\n'
     'history_object = "OpportunityHistroy"\n', "sources.salesforce.history_object", "OpportunityFieldHistory"),
    ('[sources.salesforce]\ninstance_url = "https://a.my.salesforce.com"\naccess_token = "x"\napi_version = "v60"\n',
     "sources.salesforce.api_version", '"60.0"'),
    ('[sources.google_ads]\ndeveloper_token = "d"\ncustomer_ids = ["123-456-789"]\nclient_id = "c"\n'
     'client_secret = "s"\nrefresh_token = "r"\n', "sources.google_ads.customer_ids[0]", "10-digit"),
])
def test_wrong_types_and_values(tmp_path, text, key, expected):
    msg = fail(tmp_path, text)
    assert f": {key}: " in msg and expected in msg.split("; expected ", 1)[1]


def test_google_ads_access_token_alternative(tmp_path):
    s = ok(tmp_path, '[sources.google_ads]\ndeveloper_token = "d"\ncustomer_ids = ["1234567890"]\n'
                     'access_token = "${TOKEN}"\n')
    assert s.sources["google_ads"]["access_token"] == SECRET and "refresh_token" not in s.sources["google_ads"]
    msg = fail(tmp_path, '[sources.google_ads]\ndeveloper_token = "d"\ncustomer_ids = ["1234567890"]\n')
    assert ": sources.google_ads.client_id: missing" in msg


def test_connector_tuning_keys(tmp_path):
    s = ok(tmp_path, '''
        [sources.meta_ads]
        access_token = "x"
        account_ids = ["act_1"]
        page_size = 100
        window_days = 7
        usage_threshold = 60
        [sources.hubspot]
        access_token = "x"
        sqo_stages = ["appointmentscheduled"]
        self_report_property = "how_did_you_hear_about_us"
    ''')
    assert (s.sources["meta_ads"]["page_size"], s.sources["meta_ads"]["usage_threshold"]) == (100, 60.0)
    assert s.sources["hubspot"]["sqo_stages"] == ["appointmentscheduled"]
    msg = fail(tmp_path, '[sources.mailchimp]\napi_key = "k-us6"\npage_size = 5000\n')
    assert ": sources.mailchimp.page_size: 5000 is out of range; expected an integer from 1 to 1000" in msg


def test_google_ads_ids_are_normalized(tmp_path):
    s = ok(tmp_path, """
        [sources.google_ads]
        developer_token = "${GOOGLE_ADS_DEVELOPER_TOKEN}"
        customer_ids = ["123-456-7890", "0987654321"]
        login_customer_id = "111-222-3333"
        client_id = "${GOOGLE_ADS_CLIENT_ID}"
        client_secret = "${GOOGLE_ADS_CLIENT_SECRET}"
        refresh_token = "${GOOGLE_ADS_REFRESH_TOKEN}"
    """)
    g = s.sources["google_ads"]
    assert g["customer_ids"] == ["1234567890", "0987654321"] and g["login_customer_id"] == "1112223333"


@pytest.mark.parametrize("url", ['"ftp://api.example"', '"api.hubapi.com"', '"https://"', '"https://a b"', "42"])
def test_invalid_base_url(tmp_path, url):
    msg = fail(tmp_path, HUBSPOT + f"base_url = {url}\n")
    assert ": sources.hubspot.base_url: " in msg and "https:// or http:// URL" in msg


def test_salesforce_instance_url_must_be_https(tmp_path):
    msg = fail(tmp_path, '[sources.salesforce]\ninstance_url = "http://acme.my.salesforce.com"\naccess_token = "x"\n')
    assert ": sources.salesforce.instance_url: invalid URL" in msg and "an https:// URL" in msg


def test_invalid_timezone_suggests(tmp_path):
    msg = fail(tmp_path, '[warehouse]\ntimezone = "Europe/Pariss"\n')
    assert ": warehouse.timezone: unknown time zone 'Europe/Pariss' (did you mean 'Europe/Paris'?)" in msg
    assert "IANA" in msg
    assert ": warehouse.timezone: " in fail(tmp_path, '[warehouse]\ntimezone = "../../etc/passwd"\n')
    assert ": warehouse.timezone: got an integer" in fail(tmp_path, "[warehouse]\ntimezone = 1\n")


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///data/wh.db", "sqlite:///{dir}/data/wh.db"),
    ("sqlite:////var/lib/wh.db", "sqlite:////var/lib/wh.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql://user@host:5432/db", "postgresql://user@host:5432/db"),
    ("postgres://host/db", "postgres://host/db"),
])
def test_warehouse_urls(tmp_path, url, expected):
    assert ok(tmp_path, f'[warehouse]\nurl = "{url}"\n').warehouse_url == expected.format(dir=tmp_path)


@pytest.mark.parametrize("url", ["mysql://u:s3cr3t-value-123@h/db", "sqlite://wh.db", "warehouse.db",
                                 "sqlite:///", "postgresql://"])
def test_bad_warehouse_url_never_shows_password(tmp_path, url):
    msg = fail(tmp_path, f'[warehouse]\nurl = "{url}"\n')
    assert ": warehouse.url: " in msg and "sqlite:///" in msg


# ------------------------------------------------------------------------------------------- secrets
SECRET_CASES = [
    '[sources.hubspot]\naccess_token = ["${TOKEN}"]\n',                                  # wrong type of a secret
    '[sources.hubspot]\naccess_token = 12345678\n',
    '[sources.hubspot]\nacces_token = "${TOKEN}"\n',                                     # misspelled secret key
    '[sources.hubspot]\nacces_token = "s3cr3t-value-123"\n',
    '[sources.mailchimp]\napi_key = "${TOKEN}"\n',                                       # malformed secret
    '[sources.mailchimp]\napi_key = "s3cr3t-value-123"\n',
    '[sources.hubspot]\naccess_token = "${TOKEN}"\nbase_url = "ftp://x/${TOKEN}"\n',    # secret reused elsewhere
    '[sources.hubspot]\naccess_token = "${TOKEN}"\nstart_date = "${TOKEN}"\n',
    '[sources.sf]\ntype = "salesforce"\ninstance_url = "https://a.b"\nclient_secret = "${TOKEN}"\n',
    '[sources.hubspot]\nmy_api_key = "${TOKEN}"\n',
    '[warehouse]\nurl = "mysql://etl:${TOKEN}@host/db"\n',
    '[sources.x]\ntype = "hubspot"\nclient_password = "s3cr3t-value-123"\naccess_token = "a"\n',
    '[sources.google_ads]\ndeveloper_token = 5\n',
]


@pytest.mark.parametrize("text", SECRET_CASES)
def test_no_secret_in_any_message(tmp_path, text):
    fail(tmp_path, text)  # fail() asserts the secret never appears, not even in part


def test_is_secret_and_redacted():
    for key in ("access_token", "api_key", "client_secret", "refresh_token", "developer_token", "password",
                "my_token", "x_secret", "private_key"):
        assert is_secret(key), key
    for key in ("account_ids", "customer_ids", "property_id", "login_customer_id", "client_id", "token_uri",
                "base_url", "instance_url", "list_ids"):
        assert not is_secret(key), key
    source = {"name": "h", "type": "hubspot", "access_token": SECRET, "client_secret": None,
              "base_url": "https://user:pw@proxy.example/api", "account_ids": ["1"]}
    out = redacted(source)
    assert out == {"name": "h", "type": "hubspot", "access_token": "***", "client_secret": None,
                   "base_url": "https://user:***@proxy.example/api", "account_ids": ["1"]}
    assert source["access_token"] == SECRET  # a copy


# ------------------------------------------------------------------------------------------- [model]
def test_model_keys_match_model_fields():
    from normalize.model import Model

    fields = {f.name: f for f in dataclasses.fields(Model)}
    assert set(MODEL_KEYS) == set(fields) - {"timezone"}
    for name, kind in MODEL_KEYS.items():
        annotation = str(fields[name].type)
        if annotation.startswith("tuple[str"):
            assert kind == "list[str]", name
        elif annotation.startswith("dict[str, str]"):
            assert kind == "dict[str,str]", name
        elif annotation == "bool":
            assert kind == "bool", name
        elif annotation == "int":
            assert isinstance(kind, Int), name
        elif annotation == "float":
            assert isinstance(kind, Num), name
        else:
            assert annotation == "str" and (isinstance(kind, OneOf) or kind == "currency"), name
        if isinstance(kind, OneOf):
            assert fields[name].default in kind.choices, name  # Model's default is itself valid


def test_model_feeds_Model(tmp_path):
    from normalize.model import Model

    s = ok(tmp_path, CONTRACT_EXAMPLE.replace('credentials_file = "service-account.json"', 'access_token = "t"'))
    m = Model.from_dict({**s.model, "timezone": s.timezone})
    assert m.own_domains == ("example.com",) and m.half_life_days == 7.0 and m.expected_lifetime_years == 3.0
    assert m.self_report_fields["salesforce"] == "How_did_you_hear_about_us__c"
    assert m.campaign_type_map["Event"] == "events"  # Model merges its defaults


@pytest.mark.parametrize("sources, expected", [
    ("", "hubspot"),
    (HUBSPOT, "hubspot"),
    ('[sources.crm]\ntype = "salesforce"\ninstance_url = "https://a.my.salesforce.com"\naccess_token = "x"\n',
     "salesforce"),
])
def test_opportunity_system_of_record_inferred(tmp_path, sources, expected):
    assert ok(tmp_path, sources).model["opportunity_system_of_record"] == expected


def test_opportunity_system_of_record_explicit_wins(tmp_path):
    text = ('[sources.salesforce]\ninstance_url = "https://a.my.salesforce.com"\naccess_token = "x"\n'
            '[model]\nopportunity_system_of_record = "hubspot"\n')
    assert ok(tmp_path, text).model["opportunity_system_of_record"] == "hubspot"


@pytest.mark.parametrize("line, key, expected", [
    ('opportunity_system_of_record = "pipedrive"', "model.opportunity_system_of_record", "salesforce, hubspot"),
    ('default_model = "w-shaped"', "model.default_model", "w_shaped"),
    ('hybrid_base_model = "hybrid_self_reported"', "model.hybrid_base_model", "time_decay"),
    ('amount_basis = "yearly"', "model.amount_basis", "annual, monthly, total_contract"),
    ("fiscal_year_start_month = 13", "model.fiscal_year_start_month", "from 1 to 12"),
    ("hybrid_alpha = 1.5", "model.hybrid_alpha", ">= 0 and <= 1"),
    ('own_domains = "example.com"', "model.own_domains", "an array of strings"),
    ("sql_on_conversion = 1", "model.sql_on_conversion", "true or false"),
    ("campaign_type_map = { Webinar = 1 }", "model.campaign_type_map.Webinar", "a string"),
    ('hubspot_stage_ids = ["lead"]', "model.hubspot_stage_ids", "a table"),
    ('reporting_currency = "US"', "model.reporting_currency", "ISO 4217"),
    ("lookback_days = 0", "model.lookback_days", "an integer >= 1"),
])
def test_model_errors(tmp_path, line, key, expected):
    msg = fail(tmp_path, f"[model]\n{line}\n")
    assert f": {key}: " in msg and expected in msg.split("; expected ", 1)[1]


def test_model_values_are_typed(tmp_path):
    m = ok(tmp_path, '[model]\nhalf_life_days = 3\ngross_margin = 1\nreporting_currency = "eur"\n'
                     'default_model = "hybrid_self_reported"\nfiscal_year_start_month = 2\n').model
    assert m["half_life_days"] == 3.0 and isinstance(m["half_life_days"], float)
    assert m["reporting_currency"] == "EUR" and m["default_model"] == "hybrid_self_reported"
    assert m["fiscal_year_start_month"] == 2


# ------------------------------------------------------------------------------------------- [[goals]], [[fx_rates]]
GOAL = '[[goals]]\nplan_year = 2024\nmetric = "closed_won_revenue"\ntarget = 180000\n'


def test_goal_example_from_spec(tmp_path):
    s = ok(tmp_path, GOAL + "rate_overrides = {ADS = 9000, win = 0.6666666667, s2o = 1.0, m2s = 0.5, l2m = 0.6, "
                            "v2l = 0.01}\n")
    g = s.goals[0]
    assert g["quarter_weights"] == [0.25] * 4 and g["target"] == 180000
    assert g["rate_overrides"] == {"ADS": 9000.0, "win": 0.6666666667, "s2o": 1.0, "m2s": 0.5, "l2m": 0.6, "v2l": 0.01}


@pytest.mark.parametrize("extra, key, expected", [
    ("quarter_weights = [0.5, 0.5]\n", "goals[0].quarter_weights", "4 numbers"),
    ("quarter_weights = [0.3, 0.3, 0.3, 0.3]\n", "goals[0].quarter_weights", "summing to 1"),
    ('quarter_weights = [0.25, 0.25, "0.25", 0.25]\n', "goals[0].quarter_weights[2]", "a number >= 0"),
    ("rate_overrides = {ads = 9000}\n", "goals[0].rate_overrides.ads", "ADS, win"),
    ("rate_overrides = {win = 0}\n", "goals[0].rate_overrides.win", "a number > 0"),
    ("targt = 5\n", "goals[0].targt", "plan_year, metric, target"),
])
def test_goal_errors(tmp_path, extra, key, expected):
    msg = fail(tmp_path, GOAL + extra)
    assert f": {key}: " in msg and expected in msg.split("; expected ", 1)[1]


def test_goal_required_keys_metric_and_duplicates(tmp_path):
    assert ": goals[0].target: missing required key" in fail(
        tmp_path, '[[goals]]\nplan_year = 2024\nmetric = "closed_won_revenue"\n')
    assert ": goals[0].metric: unknown value 'closed_won_revenu' (did you mean 'closed_won_revenue'?)" in fail(
        tmp_path, '[[goals]]\nplan_year = 2024\nmetric = "closed_won_revenu"\ntarget = 1\n')
    assert ": goals[1]: a second goal for plan_year 2024" in fail(tmp_path, GOAL + GOAL)
    assert ": goals: got a table" in fail(tmp_path, "[goals]\nplan_year = 2024\n")


def test_fx_rates(tmp_path):
    s = ok(tmp_path, '[[fx_rates]]\ndate = 2024-01-31\ncurrency = "GBP"\nrate_to_reporting = 1\n'
                     '[[fx_rates]]\ndate = "2024-01-31"\ncurrency = "EUR"\nrate_to_reporting = 1.09\n')
    assert s.fx_rates == [{"date": "2024-01-31", "currency": "GBP", "rate_to_reporting": 1.0},
                          {"date": "2024-01-31", "currency": "EUR", "rate_to_reporting": 1.09}]
    row = '[[fx_rates]]\ndate = "2024-01-31"\ncurrency = "EUR"\nrate_to_reporting = {}\n'
    assert ": fx_rates[0].rate_to_reporting: " in fail(tmp_path, row.format("0"))
    assert ": fx_rates[1]: a second rate for EUR on 2024-01-31" in fail(tmp_path, row.format(1) + row.format(2))
    bad_date = row.replace('"2024-01-31"', '"Jan 31"').format(1)
    assert ": fx_rates[0].date: malformed date 'Jan 31'" in fail(tmp_path, bad_date)
    assert ": fx_rates[0].currency: malformed currency 'EURO'" in fail(
        tmp_path, row.replace('"EUR"', '"EURO"').format(1))


# ------------------------------------------------------------------------------------------- extra types
def test_extra_types_add_third_party_connectors(tmp_path):
    extra = {"pipedrive": {"api_token": (str, True, None), "company_domain": ("str", True, None),
                           "page_size": (Int(ge=1, le=500), False, 100), "base_url": ("url", False, "https://api.pd")}}
    s = ok(tmp_path, '[sources.pipedrive]\napi_token = "${TOKEN}"\ncompany_domain = "acme"\n'
                     '[sources.pd2]\ntype = "pipedrive"\napi_token = "t"\ncompany_domain = "b"\npage_size = 5\n',
           extra_types=extra)
    assert s.sources["pipedrive"] == {"name": "pipedrive", "type": "pipedrive", "api_token": SECRET,
                                      "company_domain": "acme", "page_size": 100, "base_url": "https://api.pd",
                                      "start_date": "2023-04-02"}
    assert s.sources["pd2"]["page_size"] == 5
    msg = fail(tmp_path, "[sources.pipedrive]\ncompany_domain = 'a'\n", extra_types=extra)
    assert ": sources.pipedrive.api_token: missing credential" in msg
    msg = fail(tmp_path, '[sources.x]\ntype = "zendesk"\n', extra_types=extra)
    assert "pipedrive" in msg and "hubspot" in msg
    with pytest.raises(ValueError):
        parse("", environ={}, extra_types={"bad": {"k": ("no-such-kind", False, None)}})


# ------------------------------------------------------------------------------------------- package surface
def test_package_exports_and_layering():
    assert config.load is load and config.Settings is Settings and config.ConfigError is ConfigError
    assert ConfigError.exit_code == 2
    for module in ("config/__init__.py", "config/settings.py"):
        text = (Path(__file__).resolve().parent.parent / module).read_text()
        for pkg in ("connectors", "normalize", "warehouse", "funnelsync"):
            assert f"import {pkg}" not in text and f"from {pkg}" not in text, (module, pkg)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse("", environ={}).timezone = "x"  # type: ignore[misc]
