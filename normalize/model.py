"""The `[model]` settings every normalizer and KPI reads (spec §10), as one frozen value.

config/ parses funnelsync.toml into plain data; funnelsync/ builds `Model(**data)` and passes it down.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_CAMPAIGN_TYPE_MAP = {
    "Webinar": "webinar",
    "Event": "events",
    "Trade Show": "events",
    "Conference": "events",
    "Content Syndication": "content_syndication",
    "Direct Mail": "direct_mail",
    "Email": "email",
}


@dataclass(frozen=True)
class Model:
    timezone: str = "UTC"  # [warehouse] timezone: reporting_tz
    reporting_currency: str = "USD"
    fiscal_year_start_month: int = 1
    opportunity_system_of_record: str = "salesforce"
    sqo_stages: tuple[str, ...] = ()
    mql_statuses: tuple[str, ...] = ("Marketing Qualified",)
    sql_statuses: tuple[str, ...] = ("Sales Qualified",)
    sql_on_conversion: bool = True
    demo_form_ids: tuple[str, ...] = ()
    nurture_list_ids: tuple[str, ...] = ()
    nurture_tags: tuple[str, ...] = ()
    own_domains: tuple[str, ...] = ()
    bookmarkable_paths: tuple[str, ...] = ()
    platform_shorteners_are_dark: bool = False
    lookback_days: int = 90
    half_life_days: float = 7.0
    default_model: str = "w_shaped"
    hybrid_alpha: float = 0.5
    hybrid_base_model: str = "w_shaped"
    amount_basis: str = "annual"
    contract_months: int = 12
    gross_margin: float = 1.0
    expected_lifetime_years: float = 3.0
    ad_mirror_campaign_types: tuple[str, ...] = ("Advertisement", "Paid Social", "Paid Search", "Banner Ads")
    campaign_type_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CAMPAIGN_TYPE_MAP))
    self_report_fields: dict[str, str] = field(default_factory=dict)
    # HubSpot lifecycle stage ids -> our lifecycle events (custom stage ids are configurable, spec §1.4)
    hubspot_stage_ids: dict[str, str] = field(
        default_factory=lambda: {
            "lead": "lead_created",
            "marketingqualifiedlead": "became_mql",
            "salesqualifiedlead": "became_sql",
            "customer": "became_customer",
        }
    )
    attended_statuses: tuple[str, ...] = ("Attended",)
    claimed_statuses: tuple[str, ...] = ("Claimed",)
    meeting_statuses: tuple[str, ...] = ("Meeting Booked",)
    meta_conversion_actions: tuple[str, ...] = ("offsite_conversion.fb_pixel_lead", "offsite_conversion.fb_pixel_purchase")
    zero_waste_target: float = 1.0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Model":
        """Build from the parsed `[model]` table (lists become tuples; unknown keys are config's job to reject)."""
        data = dict(data or {})
        names = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for k, v in data.items():
            if k not in names:
                continue
            if isinstance(v, list):
                v = tuple(v)
            if k == "campaign_type_map":
                v = {**DEFAULT_CAMPAIGN_TYPE_MAP, **v}
            kwargs[k] = v
        return cls(**kwargs)


@dataclass(frozen=True)
class Context:
    """What a normalizer may know besides the record: the model and its source's settings (never secrets)."""

    model: Model = field(default_factory=Model)
    source_name: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # non-secret source settings, e.g. "currency"

    @property
    def tz(self) -> str:
        return self.model.timezone

    @property
    def currency(self) -> str:
        return self.settings.get("currency") or self.model.reporting_currency
