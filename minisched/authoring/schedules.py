"""Schedules: which data intervals a DAG gets runs for, as Airflow 2's timetables decide.

``CronSchedule``, ``DeltaSchedule``, ``OnceSchedule`` and ``NullSchedule`` mirror Airflow's
``CronDataIntervalTimetable``, ``DeltaDataIntervalTimetable``, ``OnceTimetable`` and
``NullTimetable``. Everything is pure (``now`` is a parameter) and every datetime returned is
timezone-aware UTC; cron expressions are evaluated on the wall clock of the schedule's
timezone. croniter is imported only when a cron schedule is built, so ``import minisched``
stays fast.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

from minisched.exceptions import DagDefinitionError

if TYPE_CHECKING:
    from croniter import croniter

CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
SUPPORTED_SCHEDULES = "a 5-field cron string, @once, " + ", ".join(CRON_PRESETS) + ", a timedelta or None"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMEDELTA_TEXT = re.compile(r"^(?:(?P<days>\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)$")
_OFFSET_TEXT = re.compile(r"^(?P<sign>[+-])(?P<h>\d\d):(?P<m>\d\d)$")


class DataInterval(NamedTuple):
    """The half-open span ``[start, end)`` of data a run covers; ``start`` is its logical date."""

    start: datetime
    end: datetime

    @classmethod
    def exact(cls, at: datetime) -> DataInterval:
        """An empty interval at one instant (what ``@once`` and manual runs of ``None`` get)."""
        return cls(at, at)


def to_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; naive datetimes are refused because their meaning is a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} given; use tzinfo=timezone.utc")
    return value.astimezone(UTC)


def parse_timezone(value: str | tzinfo | None) -> tzinfo:
    """Turn a zone name, a fixed offset text or a tzinfo into a tzinfo minisched can store.

    ``None`` means UTC. pytz/pendulum zones are converted to ``ZoneInfo`` by name so that
    wall-clock arithmetic follows PEP 495 everywhere.
    """
    if value is None:
        return UTC
    if isinstance(value, str):
        return _timezone_from_name(value)
    if isinstance(value, ZoneInfo):
        return value
    if isinstance(value, timezone):
        return UTC if value.utcoffset(None) == timedelta(0) else value
    name = getattr(value, "key", None) or getattr(value, "zone", None) or getattr(value, "name", None)
    if isinstance(name, str):
        return _timezone_from_name(name)
    raise DagDefinitionError(
        f"unsupported tzinfo {value!r}; use timezone.utc or zoneinfo.ZoneInfo('Europe/Berlin')"
    )


def timezone_name(tz: tzinfo) -> str:
    """The text ``parse_timezone`` turns back into ``tz`` ("UTC", "Europe/Berlin", "+05:30")."""
    if isinstance(tz, ZoneInfo) and tz.key:
        return tz.key
    offset = tz.utcoffset(None)
    if offset is None:
        raise DagDefinitionError(f"timezone {tz!r} has no name; use zoneinfo.ZoneInfo('Area/City')")
    if offset == timedelta(0):
        return "UTC"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _timezone_from_name(name: str) -> tzinfo:
    if name.upper() in {"UTC", "Z", "ETC/UTC", "GMT"}:
        return UTC
    match = _OFFSET_TEXT.match(name)
    if match:
        offset = timedelta(hours=int(match["h"]), minutes=int(match["m"]))
        return parse_timezone(timezone(-offset if match["sign"] == "-" else offset))
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        pass
    raise DagDefinitionError(f"unknown timezone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'")


class Schedule:
    """When runs of a DAG are due. Subclasses mirror Airflow 2's timetables."""

    timezone: tzinfo = UTC

    @property
    def summary(self) -> str | None:
        """The schedule as written in the DAG and stored in ``dag.schedule``."""
        raise NotImplementedError

    @property
    def can_be_scheduled(self) -> bool:
        """Whether the scheduler ever creates runs on its own (all but ``schedule=None``)."""
        return True

    @property
    def periodic(self) -> bool:
        """Whether runs recur (cron and timedelta; not ``@once``), as Airflow's ``periodic``."""
        return False

    def next_dagrun_info(
        self,
        last_interval: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None = None,
        catchup: bool = False,
        now: datetime | None = None,
    ) -> DataInterval | None:
        """The interval of the next scheduled run, or None when there is none (now or ever).

        The run may be created once ``interval.end <= now``; the interval is returned even
        when its end is in the future so the caller can store when it becomes due.
        """
        return None

    def intervals_between(self, start: datetime, end: datetime) -> list[DataInterval]:
        """Aligned intervals whose start (logical date) lies in ``[start, end]``, for backfill."""
        intervals: list[DataInterval] = []
        info = self.next_dagrun_info(None, start_date=start, end_date=end, catchup=True)
        while info is not None:
            intervals.append(info)
            info = self.next_dagrun_info(info, start_date=start, end_date=end, catchup=True)
        return intervals

    def infer_manual_data_interval(self, logical_date: datetime) -> DataInterval:
        """The data interval of a manually triggered run at ``logical_date``."""
        return DataInterval.exact(to_utc(logical_date))

    @property
    def timezone_name(self) -> str:
        return timezone_name(self.timezone)

    def _key(self) -> tuple[object, ...]:
        return (type(self).__name__, self.summary, self.timezone_name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return str(self.summary)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary!r}, timezone={self.timezone_name!r})"


class NullSchedule(Schedule):
    """``schedule=None``: runs are only created when triggered."""

    @property
    def summary(self) -> str | None:
        return None

    @property
    def can_be_scheduled(self) -> bool:
        return False


class OnceSchedule(Schedule):
    """``schedule="@once"``: exactly one run, at ``start_date``, regardless of catchup."""

    @property
    def summary(self) -> str | None:
        return "@once"

    def next_dagrun_info(
        self,
        last_interval: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None = None,
        catchup: bool = False,
        now: datetime | None = None,
    ) -> DataInterval | None:
        if last_interval is not None or start_date is None:
            return None
        if end_date is not None and to_utc(start_date) > to_utc(end_date):
            return None
        return DataInterval.exact(to_utc(start_date))


class _IntervalSchedule(Schedule):
    """Periodic schedules: a run per interval, created when the interval has ended."""

    @property
    def periodic(self) -> bool:
        return True

    def next_dagrun_info(
        self,
        last_interval: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None = None,
        catchup: bool = False,
        now: datetime | None = None,
    ) -> DataInterval | None:
        earliest = to_utc(start_date) if start_date is not None else None
        if not catchup:
            earliest = self._skip_to_latest(earliest, to_utc(now or datetime.now(UTC)))
        elif earliest is not None:
            earliest = self._align_to_next(earliest)
        if last_interval is None:
            if earliest is None:
                return None
            start = earliest
        else:
            # Re-aligning the previous end keeps a changed schedule on its new grid.
            start = self._align_to_prev(to_utc(last_interval.end))
            if earliest is not None:
                start = max(start, earliest)
        if end_date is not None and start > to_utc(end_date):
            return None
        return DataInterval(start, self._next(start))

    def intervals_between(self, start: datetime, end: datetime) -> list[DataInterval]:
        # Same result as the base class, without re-aligning at every step.
        interval = self.next_dagrun_info(None, start_date=start, end_date=end, catchup=True)
        intervals: list[DataInterval] = []
        last_start = to_utc(end)
        while interval is not None and interval.start <= last_start:
            intervals.append(interval)
            interval = DataInterval(interval.end, self._next(interval.end))
        return intervals

    def _next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _prev(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_prev(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        raise NotImplementedError


class DeltaSchedule(_IntervalSchedule):
    """``schedule=timedelta(...)``: intervals of a fixed length, starting at ``start_date``.

    With ``catchup=False`` the first run skipped to starts one delta before now, rounded down
    to the grid of deltas since the Unix epoch (off ``start_date``'s grid), as in Airflow
    2.10. Backfill ranges are anchored at their own start, as in Airflow.
    """

    def __init__(self, delta: timedelta) -> None:
        if delta <= timedelta(0):
            raise DagDefinitionError(f"schedule interval must be positive, not {delta!r}")
        self.delta = delta

    @property
    def summary(self) -> str | None:
        return str(self.delta)

    def _next(self, current: datetime) -> datetime:
        return current + self.delta

    def _prev(self, current: datetime) -> datetime:
        return current - self.delta

    def _align_to_next(self, current: datetime) -> datetime:
        return current

    def _align_to_prev(self, current: datetime) -> datetime:
        return current

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        # Airflow 2.10 rounds now down to a multiple of the delta since the Unix epoch.
        rounded_now = _EPOCH + (now - _EPOCH) // self.delta * self.delta
        latest_start = rounded_now - self.delta
        return latest_start if earliest is None else max(latest_start, earliest)

    def infer_manual_data_interval(self, logical_date: datetime) -> DataInterval:
        end = to_utc(logical_date)
        return DataInterval(end - self.delta, end)


class CronSchedule(_IntervalSchedule):
    """A cron expression (or preset) evaluated on the wall clock of ``tz``, as Airflow 2.10 does.

    Airflow's rules, kept because the differential test set (``tests/data/airflow_schedules.json``)
    holds minisched to them: a cron match is turned into an instant by taking the later of its
    possible instants (a time that happens twice fires the second time; a time a DST jump skips
    fires as if the old offset still held, so 02:30 on a spring-forward night runs at 03:30). An
    expression that fires every hour instead steps by the wall-clock distance to its next match,
    from the current instant, so hourly runs have neither gaps nor repeated instants.
    """

    def __init__(self, text: str, tz: str | tzinfo | None = None) -> None:
        self.text = text.strip()
        self.expression = CRON_PRESETS.get(self.text, self.text)
        self.timezone = parse_timezone(tz)
        cron = _validated_croniter(self.expression, self.text)
        self._every_hour = cron.expanded[1] == ["*"]
        self._per_thread = threading.local()

    @property
    def summary(self) -> str | None:
        return self.text

    def __getstate__(self) -> dict[str, object]:
        # Thread-local croniters cannot be pickled (executors may send schedules to workers).
        return {k: v for k, v in self.__dict__.items() if k != "_per_thread"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._per_thread = threading.local()

    def infer_manual_data_interval(self, logical_date: datetime) -> DataInterval:
        # The last complete interval before the trigger: a daily DAG triggered at 01:00
        # on the 25th covers the 24th (Airflow's rule).
        end = self._align_to_prev(to_utc(logical_date))
        return DataInterval(self._prev(end), end)

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        last_start = self._prev(now)
        # The interval starting at last_start ends after now unless now is on a boundary. (Near a
        # DST change Airflow can find it ending before now and stops on an assertion; the
        # interval before it is taken here.)
        latest = last_start if self._next(last_start) == now else self._prev(last_start)
        return latest if earliest is None else max(latest, self._align_to_next(earliest))

    def _align_to_next(self, current: datetime) -> datetime:
        upcoming = self._next(current)
        return current if self._prev(upcoming) == current else upcoming

    def _align_to_prev(self, current: datetime) -> datetime:
        previous = self._prev(current)
        return current if self._next(previous) == current else previous

    def _next(self, current: datetime) -> datetime:
        """The next fire instant after ``current``."""
        wall = self._wall(current)
        match: datetime = self._croniter(wall).get_next(datetime)
        if self._every_hour:
            return current + (match - wall)
        return later_instant(match, self.timezone)

    def _prev(self, current: datetime) -> datetime:
        """The previous fire instant before ``current`` (near a DST change, as Airflow finds it)."""
        wall = self._wall(current)
        match: datetime = self._croniter(wall).get_prev(datetime)
        if self._every_hour:
            return current - (wall - match)
        return later_instant(match, self.timezone)

    def _wall(self, instant: datetime) -> datetime:
        return instant.astimezone(self.timezone).replace(tzinfo=None, fold=0)

    def _croniter(self, start: datetime) -> croniter:
        """A croniter positioned at ``start``; one per thread, since parsing costs more than stepping."""
        cron: croniter | None = getattr(self._per_thread, "cron", None)
        if cron is None:
            from croniter import croniter

            cron = self._per_thread.cron = croniter(self.expression, start)
        else:
            cron.set_current(start, force=True)
        return cron


def later_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The UTC instant of local time ``wall`` in ``tz``; of two (a repeated hour) or none (a skipped
    one, read with either offset), the later. Airflow's ``make_aware`` does this for cron matches."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return max(first, second)


def earlier_instant(wall: datetime, tz: tzinfo) -> datetime:
    """As ``later_instant``, the earlier one: how Airflow reads a naive ``start_date`` in its zone."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return min(first, second)


def _validated_croniter(expression: str, text: str) -> croniter:
    from croniter import CroniterError, croniter

    how_to_fix = f"use {SUPPORTED_SCHEDULES}"
    if len(expression.split()) != 5:
        raise DagDefinitionError(
            f"invalid cron expression {text!r}: expected 5 fields "
            f"(minute hour day-of-month month day-of-week); {how_to_fix}"
        )
    try:
        cron = croniter(expression, datetime(2000, 1, 1))
        cron.get_next(datetime)
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise DagDefinitionError(f"invalid cron expression {text!r}: {exc}; {how_to_fix}") from None
    return cron


def make_schedule(schedule: str | timedelta | Schedule | None, tz: str | tzinfo | None = None) -> Schedule:
    """Build the Schedule for a DAG's ``schedule=`` argument or for its stored text.

    Accepts what ``Schedule.summary`` produces, so the scheduler can rebuild a schedule
    from ``dag.schedule`` and the timezone name alone.
    """
    if schedule is None:
        return NullSchedule()
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, timedelta):
        return DeltaSchedule(schedule)
    if not isinstance(schedule, str):
        raise DagDefinitionError(
            f"schedule must be {SUPPORTED_SCHEDULES}, not {type(schedule).__name__} {schedule!r}"
        )
    text = schedule.strip()
    if text == "@once":
        return OnceSchedule()
    delta = _parse_timedelta_text(text)
    if delta is not None:
        return DeltaSchedule(delta)
    if text.startswith("@") and text not in CRON_PRESETS:
        raise DagDefinitionError(f"unknown schedule preset {text!r}; use {SUPPORTED_SCHEDULES}")
    return CronSchedule(text, tz)


def _parse_timedelta_text(text: str) -> timedelta | None:
    """Parse ``str(timedelta)`` output such as "1:00:00" or "2 days, 0:30:00"."""
    match = _TIMEDELTA_TEXT.match(text)
    if not match:
        return None
    return timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=float(match["s"]),
    )
