"""Timestamps: GitLab's ISO-8601 strings to integer milliseconds UTC and back, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from lore_daemon.timeutil import iso_to_ms, ms_to_iso

# Years 1000 to 9999 at millisecond precision: every instant GitLab (or a fixture) can write
# (below 1000 ``strftime`` stops zero-padding the year, so ``ms_to_iso`` is not ISO there).
instants = st.integers(min_value=-30_610_224_000_000, max_value=253_402_300_799_999)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def _reference_ms(moment: datetime) -> int:
    """Independent arithmetic: whole seconds from the ordinal day, then the milliseconds."""
    utc = moment.astimezone(UTC)
    days = utc.toordinal() - datetime(1970, 1, 1).toordinal()
    seconds = days * 86_400 + utc.hour * 3600 + utc.minute * 60 + utc.second
    return seconds * 1000 + utc.microsecond // 1000


@given(instants)
def test_gitlab_format_round_trips(ms: int) -> None:
    assert iso_to_ms(ms_to_iso(ms)) == ms


@given(instants, offsets)
def test_any_offset_parses_to_the_same_instant(ms: int, offset: timezone) -> None:
    moment = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))
    try:
        local = moment.astimezone(offset)
    except OverflowError:  # the instant shifted past year 1 or 9999 in that zone
        return
    text = local.isoformat(timespec="milliseconds")
    assert iso_to_ms(text) == ms == _reference_ms(local)


def test_gitlab_z_suffix_naive_strings_and_datetimes() -> None:
    assert iso_to_ms("2019-08-20T09:09:56.690Z") == 1_566_292_196_690
    assert iso_to_ms("2019-08-20T09:09:56.690") == 1_566_292_196_690  # no offset: UTC
    assert iso_to_ms("1969-12-31T23:59:59.999Z") == -1  # floors before the epoch, like the store
    assert iso_to_ms(datetime(2019, 8, 20, 11, 9, 56, 690_000, tzinfo=timezone(timedelta(hours=2)))) \
        == 1_566_292_196_690
