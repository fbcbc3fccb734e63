"""EventBridge schedule expressions: `rate(...)`, `cron(...)` with EventBridge's six fields, and `at(...)`."""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from local.template.model import Schedule

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAY_NAMES = {name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}


def _cron_values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    values: set[int] = set()
    for part in field.upper().split(","):
        for name, number in (names or {}).items():
            part = part.replace(name, str(number))
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            first, last = (int(bound) for bound in part.split("-", 1))
        else:
            first = int(part)
            last = high if step > 1 else first
        values.update(range(first, last + 1, step))
    return values


class Cron:
    """An EventBridge cron expression: minutes hours day-of-month month day-of-week year.

    Supports numbers, names, ranges, lists, steps, `*`, `?`, `L` (last day of the month) and `d#n`
    (the n-th such weekday); W and weekday-L are refused.
    """

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError(f"cron({expression}) needs 6 fields")
        minutes, hours, self.day_of_month, months, self.day_of_week, years = fields
        if "W" in self.day_of_month.upper() or "L" in self.day_of_week.upper():
            raise ValueError(f"cron({expression}): W and weekday L are not emulated")
        self.minutes = _cron_values(minutes, 0, 59)
        self.hours = _cron_values(hours, 0, 23)
        self.months = _cron_values(months, 1, 12, _MONTH_NAMES)
        self.years = _cron_values(years, 1970, 2199)

    def _day_matches(self, day: datetime) -> bool:
        last_day = monthrange(day.year, day.month)[1]
        if self.day_of_month != "?":
            dom = self.day_of_month.upper()
            wanted = {last_day} if dom == "L" else _cron_values(dom, 1, 31)
            if day.day not in wanted:
                return False
        if self.day_of_week != "?":
            weekday = (day.weekday() + 1) % 7 + 1  # EventBridge counts SUN=1 .. SAT=7
            dow = self.day_of_week.upper()
            if "#" in dow:
                name, nth = dow.split("#", 1)
                return weekday in _cron_values(name, 1, 7, _DAY_NAMES) and (day.day - 1) // 7 + 1 == int(nth)
            return weekday in _cron_values(dow, 1, 7, _DAY_NAMES)
        return True

    def next_after(self, moment: datetime) -> datetime | None:
        """The first matching minute strictly after `moment`, in `moment`'s time zone."""
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = moment + timedelta(days=366 * 5)
        while candidate < limit:
            if candidate.year not in self.years or candidate.month not in self.months:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate
        return None


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """When the schedule fires next after `after` (an aware datetime), or None if never."""
    rate = _RATE.match(schedule.expression.strip())
    if rate:
        unit = rate.group(2).rstrip("s")
        return after + timedelta(**{unit + "s": int(rate.group(1))})
    cron = _CRON.match(schedule.expression.strip())
    if cron:
        zone = ZoneInfo(schedule.timezone or "UTC")
        found = Cron(cron.group(1)).next_after(after.astimezone(zone))
        return found.astimezone(UTC) if found else None
    if schedule.expression.startswith("at("):
        at = datetime.fromisoformat(schedule.expression[3:-1]).replace(tzinfo=ZoneInfo(schedule.timezone or "UTC"))
        return at if at > after else None
    raise ValueError(f"schedule expression {schedule.expression!r} is not understood")
