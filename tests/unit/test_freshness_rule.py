"""The freshness rule: a night is covered by a load made after it ended, in the company's time zone."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from custlabel.warehouse.freshness import Limits, NewestLoad, judge, night_end

LIMITS = Limits(warn_after_days=1, error_after_days=3)
NIGHT = date(2026, 12, 3)


def at(text: str, zone: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def test_a_load_this_morning_covers_last_night_at_a_0200_run() -> None:
    load = NewestLoad("customers", at("2026-12-04 08:30"), by_load_time=True)
    assert judge(NIGHT, load, LIMITS, "UTC", now=at("2026-12-04 10:00")).level == "fresh"
    assert judge(NIGHT, load, LIMITS, "UTC", now=at("2026-12-05 02:00")).level == "fresh"


def test_a_load_before_the_night_ended_does_not_cover_it_and_the_message_says_how_to_fix_it() -> None:
    load = NewestLoad("sales", at("2026-12-03 18:05", "Europe/Berlin"), by_load_time=True)
    verdict = judge(NIGHT, load, LIMITS, "Europe/Berlin", now=at("2026-12-04 02:00", "Europe/Berlin"))
    assert verdict.level == "error"
    assert verdict.message == (
        "sales: stale for night 2026-12-03 (Europe/Berlin, ended 2026-12-04 00:00 CET): "
        "newest load 2026-12-03 18:05 CET was made before the night ended"
    )


def test_the_night_ends_at_midnight_in_the_company_time_zone() -> None:
    # 16:00 UTC on Dec 3 is 01:00 on Dec 4 in Tokyo: after Tokyo's night of Dec 3 ended, not London's.
    load = NewestLoad("customers", at("2026-12-03 16:00"), by_load_time=True)
    now = at("2026-12-03 17:00")
    assert night_end(NIGHT, "Asia/Tokyo") == at("2026-12-03 15:00")
    assert judge(NIGHT, load, LIMITS, "Asia/Tokyo", now).level == "fresh"
    assert judge(NIGHT, load, LIMITS, "UTC", now).level == "error"
    assert judge(NIGHT, load, LIMITS, "Pacific/Kiritimati", now).level == "fresh"
    assert judge(NIGHT, load, LIMITS, "Etc/GMT+12", now).level == "error"


def test_a_load_older_than_the_limit_at_run_time_is_stale_for_tonight_but_a_replay_on_it_is_fresh() -> None:
    hours = Limits(warn_after_days=0.25, error_after_days=0.5)
    load = NewestLoad("sales", at("2026-12-04 00:30"), by_load_time=True)
    assert judge(NIGHT, load, hours, "UTC", now=at("2026-12-04 04:00")).level == "fresh"
    assert judge(NIGHT, load, hours, "UTC", now=at("2026-12-04 08:00")).level == "warn"
    verdict = judge(NIGHT, load, hours, "UTC", now=at("2026-12-04 14:00"))
    assert verdict.level == "error" and "is 0.6 days old (limit 0.5 days)" in verdict.message
    week_later = at("2026-12-11 02:00")
    assert judge(NIGHT, load, LIMITS, "UTC", now=week_later).level == "fresh", "a replay on a newer extract"
    assert judge(date(2026, 12, 4), load, LIMITS, "UTC", now=week_later).level == "error", "a replay needs a newer extract"


def test_a_table_without_load_times_is_judged_on_its_newest_change() -> None:
    changed = NewestLoad("customers", at("2026-12-02 12:00"), by_load_time=False)
    verdict = judge(NIGHT, changed, LIMITS, "UTC", now=at("2026-12-04 02:00"))
    assert verdict.level == "warn" and "newest change (updated_at" in verdict.message
    assert judge(date(2026, 12, 1), changed, LIMITS, "UTC", now=at("2026-12-04 02:00")).level == "fresh"


def test_nothing_loaded_and_no_limits() -> None:
    nothing = NewestLoad("sales", None, by_load_time=True)
    assert judge(NIGHT, nothing, LIMITS, "UTC", now=datetime.now(timezone.utc)).message.endswith("nothing loaded yet")
    assert judge(NIGHT, nothing, Limits(None, None), "UTC", now=datetime.now(timezone.utc)).level == "fresh"
