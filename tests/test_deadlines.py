"""Tests for app.services.deadlines.

Every expected date below was checked against a calendar: the comment on each case gives the
raw landing day, its weekday, and why it rolls (or not).
"""

import time
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from app.deadlines import (
    CCPA_CALENDAR,
    DEFAULT_CALENDAR,
    HolidayCalendar,
    Regulation,
    add_calendar_months,
    compute_due_date,
    days_left,
    due_at,
    extension_allowed,
    local_date,
    paused_day_count,
    validate_calendar,
)

LONDON = ZoneInfo("Europe/London")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")

ENG = HolidayCalendar("GB", "ENG")
SCT = HolidayCalendar("GB", "SCT")
WLS = HolidayCalendar("GB", "WLS")
NIR = HolidayCalendar("GB", "NIR")
IRELAND = HolidayCalendar("IE", None)


# --------------------------------------------------------------------------- GDPR due dates


@pytest.mark.parametrize(
    ("calendar", "start", "expected"),
    [
        # DESIGN examples (England).
        # 3 Oct 2026 is a Saturday -> Monday 5 Oct.
        pytest.param(ENG, date(2026, 9, 3), date(2026, 10, 5), id="design-eng-3sep-sat-roll"),
        # Leap year: 31 Jan -> 29 Feb 2028 (Tuesday), no roll.
        pytest.param(ENG, date(2028, 1, 31), date(2028, 2, 29), id="design-eng-31jan-leap"),
        # 30 Feb does not exist -> 28 Feb 2027 (Sunday) -> Monday 1 Mar.
        pytest.param(ENG, date(2027, 1, 30), date(2027, 3, 1), id="design-eng-30jan-clamp-sun"),
        # 25 Dec 2026 Fri (Christmas), 26 Sat, 27 Sun, 28 Mon (Boxing Day observed) -> Tue 29.
        pytest.param(ENG, date(2026, 11, 25), date(2026, 12, 29), id="design-eng-christmas-2026"),
        # DESIGN example (Scotland): 1 Jan 2027 Fri (hol), 2 Sat (hol), 3 Sun,
        # 4 Mon (2 Jan holiday observed) -> Tuesday 5 Jan.
        pytest.param(SCT, date(2026, 12, 1), date(2027, 1, 5), id="design-sct-new-year"),
        # Same start in England: 4 Jan 2027 is an ordinary Monday there.
        pytest.param(ENG, date(2026, 12, 1), date(2027, 1, 4), id="eng-new-year-vs-sct"),
        # Non-leap 31 Jan -> 28 Feb 2027 (Sunday) -> Monday 1 Mar.
        pytest.param(ENG, date(2027, 1, 31), date(2027, 3, 1), id="eng-31jan-nonleap-sun"),
        # 31 Mar -> 30 Apr 2027 (Friday), clamp only.
        pytest.param(ENG, date(2027, 3, 31), date(2027, 4, 30), id="eng-31mar-clamp"),
        # Plain weekday landing: 17 Mar 2026 is a Tuesday.
        pytest.param(ENG, date(2026, 2, 17), date(2026, 3, 17), id="eng-plain-weekday"),
        # Sunday landing: 8 Mar 2026 is a Sunday -> Monday 9 Mar.
        pytest.param(ENG, date(2026, 2, 8), date(2026, 3, 9), id="eng-sunday-roll"),
        # Saturday landing: 4 Jul 2026 is a Saturday -> Monday 6 Jul.
        pytest.param(ENG, date(2026, 6, 4), date(2026, 7, 6), id="eng-saturday-roll"),
        # Easter Monday 6 Apr 2026: a holiday in England, not in Scotland.
        pytest.param(ENG, date(2026, 3, 6), date(2026, 4, 7), id="eng-easter-monday-2026"),
        pytest.param(SCT, date(2026, 3, 6), date(2026, 4, 6), id="sct-easter-monday-2026"),
        pytest.param(WLS, date(2026, 3, 6), date(2026, 4, 7), id="wls-easter-monday-2026"),
        pytest.param(NIR, date(2026, 3, 6), date(2026, 4, 7), id="nir-easter-monday-2026"),
        # 28 Mar 2027 Sun; 29 Mar is Easter Monday in England only.
        pytest.param(ENG, date(2027, 2, 28), date(2027, 3, 30), id="eng-sunday-then-easter"),
        pytest.param(SCT, date(2027, 2, 28), date(2027, 3, 29), id="sct-sunday-no-easter"),
        # Good Friday 26 Mar 2027 is a holiday everywhere in the UK.
        pytest.param(SCT, date(2027, 2, 26), date(2027, 3, 29), id="sct-good-friday-2027"),
        pytest.param(ENG, date(2027, 2, 26), date(2027, 3, 30), id="eng-good-friday-2027"),
        # 2027: 25 Dec Sat, 26 Sun, substitutes Mon 27 + Tue 28 -> Wednesday 29 Dec.
        pytest.param(ENG, date(2027, 11, 25), date(2027, 12, 29), id="eng-christmas-sub-2027"),
        pytest.param(ENG, date(2027, 11, 27), date(2027, 12, 29), id="eng-christmas-obs-2027"),
        pytest.param(SCT, date(2027, 11, 28), date(2027, 12, 29), id="sct-boxing-obs-2027"),
        # 2 Jan 2026 (Friday) is a Scottish holiday only -> Monday 5 Jan in Scotland.
        pytest.param(SCT, date(2025, 12, 2), date(2026, 1, 5), id="sct-2-january"),
        pytest.param(ENG, date(2025, 12, 2), date(2026, 1, 2), id="eng-2-january"),
        # St Andrew's Day 30 Nov 2026 (Monday): Scotland only.
        pytest.param(SCT, date(2026, 10, 30), date(2026, 12, 1), id="sct-st-andrews-day"),
        pytest.param(ENG, date(2026, 10, 30), date(2026, 11, 30), id="eng-st-andrews-day"),
        # St Patrick's Day 17 Mar 2026 (Tuesday): Northern Ireland only.
        pytest.param(NIR, date(2026, 2, 17), date(2026, 3, 18), id="nir-st-patricks-day"),
        # Battle of the Boyne 12 Jul 2026 is a Sunday, observed Mon 13 -> Tuesday 14 in NIR.
        pytest.param(NIR, date(2026, 6, 12), date(2026, 7, 14), id="nir-boyne-observed"),
        pytest.param(ENG, date(2026, 6, 12), date(2026, 7, 13), id="eng-boyne-not-holiday"),
        # Late Summer Bank Holiday 31 Aug 2026 (Mon): England/Wales; Scotland's is 3 Aug.
        pytest.param(WLS, date(2026, 7, 31), date(2026, 9, 1), id="wls-late-summer"),
        pytest.param(SCT, date(2026, 7, 31), date(2026, 8, 31), id="sct-late-summer"),
    ],
)
def test_gdpr_due_date(calendar: HolidayCalendar, start: date, expected: date) -> None:
    got = compute_due_date(regulation=Regulation.UK_GDPR, clock_started_on=start, calendar=calendar)
    assert got == expected


@pytest.mark.parametrize(
    ("calendar", "start", "expected"),
    [
        # EU GDPR uses the same month rule with the configured calendar.
        pytest.param(ENG, date(2026, 9, 3), date(2026, 10, 5), id="eu-eng-sat-roll"),
        # St Patrick's Day 17 Mar 2026 (Tue) is an Irish public holiday -> 18 Mar.
        pytest.param(IRELAND, date(2026, 2, 17), date(2026, 3, 18), id="eu-ie-st-patricks"),
        # Same start without Irish holidays: no roll.
        pytest.param(ENG, date(2026, 2, 17), date(2026, 3, 17), id="eu-eng-st-patricks"),
    ],
)
def test_eu_gdpr_due_date(calendar: HolidayCalendar, start: date, expected: date) -> None:
    got = compute_due_date(regulation=Regulation.EU_GDPR, clock_started_on=start, calendar=calendar)
    assert got == expected


def test_default_calendar_is_england() -> None:
    assert DEFAULT_CALENDAR == HolidayCalendar() == HolidayCalendar("GB", "ENG")
    # 6 Mar 2026 -> Easter Monday 6 Apr -> 7 Apr under the default (England) calendar.
    got = compute_due_date(regulation="uk_gdpr", clock_started_on=date(2026, 3, 6))
    assert got == date(2026, 4, 7)


@pytest.mark.parametrize(
    ("regulation", "expected"),
    [
        pytest.param("uk_gdpr", date(2026, 10, 5), id="str-uk"),
        pytest.param("eu_gdpr", date(2026, 10, 5), id="str-eu"),
        # 3 Sep 2026 + 45 days = 18 Oct 2026 (Sunday) -> Monday 19 Oct.
        pytest.param("ccpa", date(2026, 10, 19), id="str-ccpa"),
    ],
)
def test_regulation_accepts_plain_strings(regulation: str, expected: date) -> None:
    got = compute_due_date(regulation=regulation, clock_started_on=date(2026, 9, 3))
    assert got == expected


def test_unknown_regulation_rejected() -> None:
    with pytest.raises(ValueError, match="pipeda"):
        compute_due_date(regulation="pipeda", clock_started_on=date(2026, 9, 3))


# --------------------------------------------------------------------------- extensions


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # DESIGN: 31 Jan 2026 + 3 months = 30 Apr 2026 (Thursday). Chained (+1 -> 28 Feb,
        # +2 -> 28 Apr) would lose two days.
        pytest.param(date(2026, 1, 31), date(2026, 4, 30), id="design-31jan-not-chained"),
        # 31 Dec 2026 + 3 months = 31 Mar 2027 (Wednesday).
        pytest.param(date(2026, 12, 31), date(2027, 3, 31), id="31dec-to-31mar"),
        # 29 Nov 2027 + 3 months = 29 Feb 2028 (Tuesday, leap day).
        pytest.param(date(2027, 11, 29), date(2028, 2, 29), id="into-leap-day"),
        # 30 Nov 2026 + 3 months clamps to 28 Feb 2027 (Sunday) -> Monday 1 Mar.
        pytest.param(date(2026, 11, 30), date(2027, 3, 1), id="clamp-then-sunday"),
        # 6 Jan 2026 + 3 months = 6 Apr 2026, Easter Monday -> Tuesday 7 Apr.
        pytest.param(date(2026, 1, 6), date(2026, 4, 7), id="easter-monday"),
    ],
)
def test_gdpr_extended_due_date(start: date, expected: date) -> None:
    got = compute_due_date(regulation=Regulation.UK_GDPR, clock_started_on=start, extended=True)
    assert got == expected


def test_extension_is_not_chained_from_the_one_month_date() -> None:
    start = date(2026, 1, 31)
    chained = add_calendar_months(add_calendar_months(start, 1), 2)
    assert chained == date(2026, 4, 28)
    got = compute_due_date(regulation=Regulation.UK_GDPR, clock_started_on=start, extended=True)
    assert got == date(2026, 4, 30) != chained


@pytest.mark.parametrize(
    ("already_extended", "original_due", "today", "expected"),
    [
        pytest.param(False, date(2026, 10, 5), date(2026, 9, 10), True, id="early"),
        pytest.param(False, date(2026, 10, 5), date(2026, 10, 5), True, id="on-due-date"),
        pytest.param(False, date(2026, 10, 5), date(2026, 10, 6), False, id="day-after-due"),
        pytest.param(True, date(2026, 10, 5), date(2026, 9, 10), False, id="already-extended"),
        pytest.param(True, date(2026, 10, 5), date(2026, 10, 6), False, id="extended-and-late"),
    ],
)
def test_extension_allowed(
    already_extended: bool, original_due: date, today: date, expected: bool
) -> None:
    got = extension_allowed(
        already_extended=already_extended, original_due_date=original_due, today=today
    )
    assert got is expected


# --------------------------------------------------------------------------- pauses


@pytest.mark.parametrize(
    ("paused_on", "resumed_on", "expected"),
    [
        pytest.param(date(2026, 6, 10), date(2026, 6, 10), 1, id="same-day"),
        pytest.param(date(2026, 6, 10), date(2026, 6, 12), 3, id="three-days"),
        pytest.param(date(2026, 1, 30), date(2026, 2, 2), 4, id="across-month"),
        pytest.param(date(2026, 12, 31), date(2027, 1, 1), 2, id="across-year"),
        pytest.param(date(2028, 2, 28), date(2028, 3, 1), 3, id="across-leap-day"),
    ],
)
def test_paused_day_count_includes_both_ends(
    paused_on: date, resumed_on: date, expected: int
) -> None:
    assert paused_day_count(paused_on, resumed_on) == expected


def test_paused_day_count_rejects_reversed_range() -> None:
    with pytest.raises(ValueError, match="before"):
        paused_day_count(date(2026, 6, 12), date(2026, 6, 10))


@pytest.mark.parametrize(
    ("regulation", "start", "extended", "paused", "expected"),
    [
        # 1 Jul 2026 (Wed) + 3 paused = 4 Jul (Saturday) -> Monday 6 Jul.
        pytest.param("uk_gdpr", date(2026, 6, 1), False, 3, date(2026, 7, 6), id="pause-to-sat"),
        # 1 Jul 2026 (Wed) + 1 paused = Thursday 2 Jul, no roll.
        pytest.param("uk_gdpr", date(2026, 6, 1), False, 1, date(2026, 7, 2), id="pause-weekday"),
        # 3 Oct 2026 is a Saturday, but + 2 paused = Monday 5 Oct: pause added before rolling
        # (rolling first would give 5 Oct + 2 = 7 Oct).
        pytest.param("uk_gdpr", date(2026, 9, 3), False, 2, date(2026, 10, 5), id="add-then-roll"),
        # Extended: 30 Apr 2026 + 2 = 2 May (Sat), 3 Sun, 4 May (May Day) -> Tuesday 5 May.
        pytest.param("uk_gdpr", date(2026, 1, 31), True, 2, date(2026, 5, 5), id="ext-pause"),
        # CCPA: 3 Sep 2026 + 45 = 18 Oct; + 4 paused = Thursday 22 Oct.
        pytest.param("ccpa", date(2026, 9, 3), False, 4, date(2026, 10, 22), id="ccpa-pause"),
    ],
)
def test_paused_days_are_added_before_rolling(
    regulation: str, start: date, extended: bool, paused: int, expected: date
) -> None:
    got = compute_due_date(
        regulation=regulation, clock_started_on=start, extended=extended, paused_days=paused
    )
    assert got == expected


def test_paused_day_count_feeds_compute_due_date() -> None:
    # Paused 10 Jun, resumed 12 Jun 2026 -> 3 days; 1 Jul + 3 = Sat 4 Jul -> Mon 6 Jul.
    paused = paused_day_count(date(2026, 6, 10), date(2026, 6, 12))
    got = compute_due_date(
        regulation=Regulation.UK_GDPR, clock_started_on=date(2026, 6, 1), paused_days=paused
    )
    assert got == date(2026, 7, 6)


def test_negative_paused_days_rejected() -> None:
    with pytest.raises(ValueError, match="paused_days"):
        compute_due_date(regulation="uk_gdpr", clock_started_on=date(2026, 6, 1), paused_days=-1)


# --------------------------------------------------------------------------- CCPA


@pytest.mark.parametrize(
    ("start", "extended", "expected"),
    [
        # 1 Jun 2026 + 45 = Thursday 16 Jul 2026, no roll.
        pytest.param(date(2026, 6, 1), False, date(2026, 7, 16), id="plain-weekday"),
        # 12 Oct 2026 + 45 = Thanksgiving Thu 26 Nov; Fri 27 is a CA holiday; 28/29 weekend
        # -> Monday 30 Nov.
        pytest.param(date(2026, 10, 12), False, date(2026, 11, 30), id="thanksgiving"),
        # 19 May 2026 + 45 = Fri 3 Jul 2026 (Independence Day observed) -> Monday 6 Jul.
        pytest.param(date(2026, 5, 19), False, date(2026, 7, 6), id="july-4-observed-fri"),
        # 20 May 2027 + 45 = Sun 4 Jul 2027; Mon 5 Jul observed -> Tuesday 6 Jul.
        pytest.param(date(2027, 5, 20), False, date(2027, 7, 6), id="july-4-sunday"),
        # 10 Nov 2026 + 45 = Fri 25 Dec 2026 -> Monday 28 Dec (no Boxing Day in the US).
        pytest.param(date(2026, 11, 10), False, date(2026, 12, 28), id="christmas"),
        # Extended: 5 Jan 2026 + 90 = Sun 5 Apr 2026 -> Monday 6 Apr (no Easter Monday in US).
        pytest.param(date(2026, 1, 5), True, date(2026, 4, 6), id="extended-90-sunday"),
        # Extended: 28 Aug 2026 + 90 = Thanksgiving 26 Nov 2026 -> Monday 30 Nov.
        pytest.param(date(2026, 8, 28), True, date(2026, 11, 30), id="extended-thanksgiving"),
    ],
)
def test_ccpa_due_date(start: date, extended: bool, expected: date) -> None:
    got = compute_due_date(regulation=Regulation.CCPA, clock_started_on=start, extended=extended)
    assert got == expected


def test_ccpa_ignores_configured_calendar() -> None:
    # Under England's calendar, 6 Apr 2026 (Easter Monday) would roll to 7 Apr; CCPA uses US-CA.
    for calendar in (ENG, SCT, IRELAND):
        got = compute_due_date(
            regulation=Regulation.CCPA,
            clock_started_on=date(2026, 1, 5),
            extended=True,
            calendar=calendar,
        )
        assert got == date(2026, 4, 6)


def test_ccpa_calendar_is_california() -> None:
    assert HolidayCalendar("US", "CA") == CCPA_CALENDAR
    # Day after Thanksgiving (27 Nov 2026) is a California state holiday.
    assert not CCPA_CALENDAR.is_working_day(date(2026, 11, 27))


# --------------------------------------------------------------------------- calendars


@pytest.mark.parametrize(
    ("calendar", "day", "expected"),
    [
        pytest.param(ENG, date(2026, 3, 17), True, id="eng-tuesday"),
        pytest.param(ENG, date(2026, 10, 3), False, id="eng-saturday"),
        pytest.param(ENG, date(2026, 10, 4), False, id="eng-sunday"),
        pytest.param(ENG, date(2026, 4, 6), False, id="eng-easter-monday"),
        pytest.param(SCT, date(2026, 4, 6), True, id="sct-easter-monday"),
        pytest.param(SCT, date(2026, 11, 30), False, id="sct-st-andrews"),
        pytest.param(ENG, date(2026, 11, 30), True, id="eng-st-andrews"),
        pytest.param(NIR, date(2026, 3, 17), False, id="nir-st-patricks"),
        pytest.param(WLS, date(2026, 3, 17), True, id="wls-st-patricks"),
        pytest.param(ENG, date(2027, 12, 28), False, id="eng-boxing-substitute-2027"),
        pytest.param(ENG, date(2028, 1, 3), False, id="eng-new-year-substitute-2028"),
    ],
)
def test_is_working_day(calendar: HolidayCalendar, day: date, expected: bool) -> None:
    assert calendar.is_working_day(day) is expected


@pytest.mark.parametrize(
    ("calendar", "day", "expected"),
    [
        pytest.param(ENG, date(2026, 3, 17), date(2026, 3, 17), id="working-day-unchanged"),
        pytest.param(ENG, date(2026, 10, 3), date(2026, 10, 5), id="saturday"),
        pytest.param(ENG, date(2026, 12, 25), date(2026, 12, 29), id="christmas-2026"),
        pytest.param(SCT, date(2027, 1, 1), date(2027, 1, 5), id="sct-new-year-2027"),
    ],
)
def test_next_working_day(calendar: HolidayCalendar, day: date, expected: date) -> None:
    assert calendar.next_working_day(day) == expected


@pytest.mark.parametrize(
    ("country", "subdivision"),
    [
        pytest.param("GB", "ENG", id="gb-eng"),
        pytest.param("GB", "WLS", id="gb-wls"),
        pytest.param("GB", "SCT", id="gb-sct"),
        pytest.param("GB", "NIR", id="gb-nir"),
        pytest.param("GB", None, id="gb-national"),
        pytest.param("US", "CA", id="us-ca"),
        pytest.param("IE", None, id="ie"),
    ],
)
def test_validate_calendar_accepts_known(country: str, subdivision: str | None) -> None:
    validate_calendar(country, subdivision)


@pytest.mark.parametrize(
    ("country", "subdivision"),
    [
        pytest.param("GB", "XX", id="bad-subdivision"),
        pytest.param("GB", "eng", id="lowercase-subdivision"),
        pytest.param("ZZ", None, id="bad-country"),
        pytest.param("gb", "ENG", id="lowercase-country"),
    ],
)
def test_validate_calendar_rejects_unknown(country: str, subdivision: str | None) -> None:
    with pytest.raises(ValueError, match="Unsupported holiday calendar"):
        validate_calendar(country, subdivision)


def test_invalid_calendar_raises_value_error_on_use() -> None:
    with pytest.raises(ValueError, match="XX"):
        HolidayCalendar("GB", "XX").is_working_day(date(2026, 3, 17))


# --------------------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    ("due_date", "tz", "expected"),
    [
        # BST (UTC+1): 23:59:59 local is 22:59:59Z.
        pytest.param(
            date(2026, 10, 5), LONDON, datetime(2026, 10, 5, 22, 59, 59, tzinfo=UTC), id="bst"
        ),
        # GMT (UTC+0).
        pytest.param(
            date(2026, 12, 29), LONDON, datetime(2026, 12, 29, 23, 59, 59, tzinfo=UTC), id="gmt"
        ),
        # Clocks go forward 29 Mar 2026 and back 25 Oct 2026: the evening is BST / GMT.
        pytest.param(
            date(2026, 3, 29),
            LONDON,
            datetime(2026, 3, 29, 22, 59, 59, tzinfo=UTC),
            id="bst-start-day",
        ),
        pytest.param(
            date(2026, 10, 25),
            LONDON,
            datetime(2026, 10, 25, 23, 59, 59, tzinfo=UTC),
            id="bst-end-day",
        ),
        # PST (UTC-8) rolls into the next UTC day; PDT (UTC-7) likewise.
        pytest.param(
            date(2026, 11, 30), LOS_ANGELES, datetime(2026, 12, 1, 7, 59, 59, tzinfo=UTC), id="pst"
        ),
        pytest.param(
            date(2027, 7, 6), LOS_ANGELES, datetime(2027, 7, 7, 6, 59, 59, tzinfo=UTC), id="pdt"
        ),
    ],
)
def test_due_at_is_end_of_local_day_in_utc(
    due_date: date, tz: ZoneInfo, expected: datetime
) -> None:
    got = due_at(due_date, tz)
    assert got == expected
    assert got.tzinfo is UTC
    assert got.microsecond == 0
    assert local_date(got, tz) == due_date
    # One second later is already the next local day.
    assert local_date(got + timedelta(seconds=1), tz) == due_date + timedelta(days=1)


@pytest.mark.parametrize(
    ("instant", "tz", "expected"),
    [
        # Summer: 23:30Z is 00:30 BST on the next day.
        pytest.param(
            datetime(2026, 6, 30, 23, 30, tzinfo=UTC), LONDON, date(2026, 7, 1), id="bst-next-day"
        ),
        # Winter: 23:30Z is 23:30 GMT, same day.
        pytest.param(
            datetime(2026, 12, 30, 23, 30, tzinfo=UTC), LONDON, date(2026, 12, 30), id="gmt-same"
        ),
        pytest.param(
            datetime(2026, 1, 15, 23, 30, tzinfo=UTC), LONDON, date(2026, 1, 15), id="gmt-jan"
        ),
        # Naive values are treated as UTC.
        pytest.param(datetime(2026, 6, 30, 23, 30), LONDON, date(2026, 7, 1), id="naive-as-utc"),
        # A non-UTC aware instant: 00:30+02:00 on 1 Jul = 22:30Z 30 Jun = 23:30 BST 30 Jun.
        pytest.param(
            datetime(2026, 7, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            LONDON,
            date(2026, 6, 30),
            id="aware-non-utc",
        ),
        # Los Angeles (PDT, UTC-7): 05:00Z on 1 Jul is 22:00 on 30 Jun.
        pytest.param(
            datetime(2026, 7, 1, 5, 0, tzinfo=UTC), LOS_ANGELES, date(2026, 6, 30), id="pdt"
        ),
    ],
)
def test_local_date(instant: datetime, tz: ZoneInfo, expected: date) -> None:
    assert local_date(instant, tz) == expected


@pytest.mark.parametrize("machine_zone", ["Asia/Tokyo", "America/Los_Angeles", "UTC"])
@pytest.mark.parametrize(
    ("naive", "expected"),
    [
        (datetime(2026, 6, 30, 23, 30), date(2026, 7, 1)),  # 00:30 BST next day
        (datetime(2026, 12, 31, 23, 30), date(2026, 12, 31)),  # 23:30 GMT same day
        (datetime(2027, 1, 1, 0, 30), date(2027, 1, 1)),  # just after midnight
    ],
)
def test_naive_instants_are_utc_whatever_the_machine_zone(
    monkeypatch: pytest.MonkeyPatch, machine_zone: str, naive: datetime, expected: date
) -> None:
    """SQLite hands back naive UTC timestamps: the server's own zone must never creep in."""
    monkeypatch.setenv("TZ", machine_zone)
    time.tzset()
    try:
        assert local_date(naive, LONDON) == expected
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("due_date", "today", "expected"),
    [
        pytest.param(date(2026, 10, 5), date(2026, 10, 1), 4, id="four-left"),
        pytest.param(date(2026, 10, 5), date(2026, 10, 5), 0, id="due-today"),
        pytest.param(date(2026, 10, 5), date(2026, 10, 7), -2, id="two-days-late"),
        pytest.param(date(2027, 1, 5), date(2026, 12, 1), 35, id="across-year"),
    ],
)
def test_days_left(due_date: date, today: date, expected: int) -> None:
    assert days_left(due_date, today) == expected


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize(
    "months", [pytest.param(n, id=f"{n:+d}-months") for n in (-13, -1, 0, 1, 2, 3, 11, 12, 25)]
)
def test_add_calendar_months_properties(months: int) -> None:
    # Exhaustive over 2023-2029 (two leap years): same day or clamped to the month's end.
    day = date(2023, 1, 1)
    while day <= date(2029, 12, 31):
        result = add_calendar_months(day, months)
        year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
        assert (result.year, result.month) == (year, month0 + 1)
        assert result.day <= day.day
        assert result.day == min(day.day, monthrange(year, month0 + 1)[1])
        day += timedelta(days=1)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param(date(2026, 1, 31), 1, date(2026, 2, 28), id="31jan-nonleap"),
        pytest.param(date(2028, 1, 31), 1, date(2028, 2, 29), id="31jan-leap"),
        pytest.param(date(2026, 3, 31), 1, date(2026, 4, 30), id="31mar"),
        pytest.param(date(2026, 12, 15), 1, date(2027, 1, 15), id="year-wrap"),
        pytest.param(date(2026, 11, 30), 3, date(2027, 2, 28), id="plus-3-clamp"),
        pytest.param(date(2028, 2, 29), 12, date(2029, 2, 28), id="leap-day-plus-year"),
        pytest.param(date(2026, 3, 31), -1, date(2026, 2, 28), id="negative"),
    ],
)
def test_add_calendar_months_examples(start: date, months: int, expected: date) -> None:
    assert add_calendar_months(start, months) == expected


@pytest.mark.parametrize(
    ("regulation", "calendar", "country", "subdivision"),
    [
        pytest.param(Regulation.UK_GDPR, ENG, "GB", "ENG", id="uk-eng"),
        pytest.param(Regulation.UK_GDPR, WLS, "GB", "WLS", id="uk-wls"),
        pytest.param(Regulation.UK_GDPR, SCT, "GB", "SCT", id="uk-sct"),
        pytest.param(Regulation.UK_GDPR, NIR, "GB", "NIR", id="uk-nir"),
        pytest.param(Regulation.CCPA, ENG, "US", "CA", id="ccpa"),
    ],
)
def test_due_date_is_first_working_day_on_or_after_raw_date(
    regulation: Regulation, calendar: HolidayCalendar, country: str, subdivision: str
) -> None:
    # Independent oracle built directly from the holidays package, over every start in 2026-27.
    public = holidays.country_holidays(country, subdiv=subdivision)

    def working(day: date) -> bool:
        return day.weekday() < 5 and day not in public

    start = date(2026, 1, 1)
    while start <= date(2027, 12, 31):
        for extended in (False, True):
            if regulation is Regulation.CCPA:
                raw = start + timedelta(days=90 if extended else 45)
            else:
                raw = add_calendar_months(start, 3 if extended else 1)
            due = compute_due_date(
                regulation=regulation, clock_started_on=start, extended=extended, calendar=calendar
            )
            assert due >= raw
            assert working(due)
            assert not any(working(raw + timedelta(days=i)) for i in range((due - raw).days))
        start += timedelta(days=1)
