"""normalize/events.py: timestamps. The fast paths of `to_utc` agree with the general parser everywhere."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalize.events import Malformed, parse_ts, to_utc

CANONICAL = "%Y-%m-%dT%H:%M:%SZ"


@given(st.integers(min_value=0, max_value=253402300799999))
def test_epoch_milliseconds_fast_path_equals_the_parser(ms):
    expected = parse_ts(ms).strftime(CANONICAL)
    assert to_utc(ms) == expected
    assert to_utc(str(ms)) == expected


@given(st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)))
def test_canonical_text_round_trips(dt):
    text = dt.strftime(CANONICAL)
    if len(text) == 20:  # years before 1000 are not 4-digit in strftime on every platform
        assert to_utc(text) == text
        assert to_utc(dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000")) == text


@pytest.mark.parametrize("value", [253402300800000, 10 ** 20, "99999999999999999999"])
def test_out_of_range_epoch_is_malformed_not_a_crash(value):
    with pytest.raises(Malformed):
        to_utc(value)


@pytest.mark.parametrize("value", ["2024-02-30T10:00:00Z", "2024-02-30T10:00:00.000+0000", "yesterday", ""])
def test_bad_text_is_malformed(value):
    with pytest.raises(Malformed):
        to_utc(value)
