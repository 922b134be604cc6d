"""Write airflow_schedules.json: what Airflow 2.10's own timetables answer, case by case.

Run it with the Python of a throwaway Airflow venv (the one ``benchmarks/bench_airflow.py``
creates), never in CI:

    ~/.cache/minisched-bench/airflow-2.10.5/bin/python tests/data/gen_airflow_schedules.py

Each case is a DAG as its file would say it (a schedule, a timezone, a naive local start_date read
in that zone, catchup, an optional end_date) plus a frozen "now". The answers are the intervals that
``next_dagrun_info`` returns when iterated as the scheduler does, and the data interval of manual
runs triggered at instants around each DST change. ``tests/authoring/test_airflow_schedules.py``
feeds the same cases to minisched.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"

import airflow
import airflow.settings
import airflow.timetables.interval as interval_module
import pendulum
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.timetables.interval import (
    CronDataIntervalTimetable,
    DeltaDataIntervalTimetable,
)
from airflow.utils import timezone as airflow_timezone

OUT = Path(__file__).with_name("airflow_schedules.json")
MAX_RUNS = 5

CRONS = ["@daily", "@hourly", "0 2 * * *", "30 1 * * *", "*/15 * * * *", "0 */2 * * *", "0 9 * * 1-5"]
DELTAS = [timedelta(hours=1), timedelta(days=1), timedelta(minutes=30)]
# (zone, a DST change: its naive local wall time, the direction) -- Sao Paulo's changed at midnight.
TRANSITIONS = [
    ("Europe/London", datetime(2024, 3, 31, 1, 0), "forward"),
    ("Europe/London", datetime(2024, 10, 27, 1, 0), "back"),
    ("America/New_York", datetime(2024, 3, 10, 2, 0), "forward"),
    ("America/New_York", datetime(2024, 11, 3, 1, 0), "back"),
    ("Australia/Lord_Howe", datetime(2024, 10, 6, 2, 0), "forward"),
    ("Australia/Lord_Howe", datetime(2024, 4, 7, 1, 30), "back"),
    ("America/Sao_Paulo", datetime(2018, 11, 4, 0, 0), "forward"),
    ("America/Sao_Paulo", datetime(2019, 2, 16, 23, 0), "back"),
]
PLAIN_ZONES = ["UTC", "Asia/Kolkata"]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_start(naive: datetime, zone: str) -> pendulum.DateTime:
    """A naive start_date as Airflow reads it with ``default_timezone = zone``."""
    airflow.settings.TIMEZONE = pendulum.timezone(zone)
    return airflow_timezone.convert_to_utc(naive)


def timetable(schedule: str | timedelta, zone: str) -> CronDataIntervalTimetable | DeltaDataIntervalTimetable:
    if isinstance(schedule, timedelta):
        return DeltaDataIntervalTimetable(schedule)
    return CronDataIntervalTimetable(schedule, pendulum.timezone(zone))


def scheduled_runs(case: dict[str, object]) -> list[list[str]]:
    """Iterate next_dagrun_info with "now" frozen at the case's now."""
    now = pendulum.parse(str(case["now"]))
    interval_module.utcnow = lambda: now  # both _skip_to_latest read the clock through this name
    table = timetable(_schedule(case), str(case["timezone"]))
    start = local_start(datetime.fromisoformat(str(case["start"])), str(case["timezone"]))
    end = (
        local_start(datetime.fromisoformat(str(case["end"])), str(case["timezone"])) if case["end"] else None
    )
    restriction = TimeRestriction(earliest=start, latest=end, catchup=bool(case["catchup"]))
    runs: list[list[str]] = []
    last: DataInterval | None = None
    while len(runs) < MAX_RUNS:
        try:
            info = table.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        except AssertionError as exc:  # Airflow's own consistency check; minisched must not crash there
            case["airflow_error"] = f"AssertionError: {exc}"
            break
        if info is None:
            break
        last = info.data_interval
        runs.append([iso(last.start), iso(last.end)])
    return runs


def manual_intervals(schedule: str | timedelta, zone: str, run_afters: list[datetime]) -> list[list[str]]:
    table = timetable(schedule, zone)
    answers = []
    for run_after in run_afters:
        interval = table.infer_manual_data_interval(run_after=pendulum.instance(run_after))
        answers.append([iso(run_after), iso(interval.start), iso(interval.end)])
    return answers


def _schedule(case: dict[str, object]) -> str | timedelta:
    schedule = case["schedule"]
    return schedule if isinstance(schedule, str) else timedelta(seconds=float(str(schedule)))


def _schedule_json(schedule: str | timedelta) -> str | float:
    return schedule if isinstance(schedule, str) else schedule.total_seconds()


def transition_instant(zone: str, wall: datetime) -> datetime:
    """The UTC instant of the DST change whose old wall time is ``wall``."""
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def cases_around(zone: str, wall: datetime, direction: str) -> list[dict[str, object]]:
    change = transition_instant(zone, wall)
    # A local time that does not exist (forward) or happens twice (back), 30 minutes into the change.
    odd_local = wall + timedelta(minutes=30)
    day_before = (wall - timedelta(days=1)).replace(hour=0, minute=0)
    cases: list[dict[str, object]] = []
    for schedule in [*CRONS, *DELTAS]:
        hourly_or_finer = (isinstance(schedule, timedelta) and schedule <= timedelta(hours=1)) or (
            isinstance(schedule, str)
            and (
                "*/" in schedule.split()[0]
                or schedule.split()[1:2] == ["*"]
                or schedule == "@hourly"
                or schedule.startswith("0 */2")
            )
        )
        near = wall - timedelta(hours=2) if hourly_or_finer else day_before
        odd_label = "nonexistent" if direction == "forward" else "ambiguous"
        cases.append(_case(schedule, zone, odd_local, now=change + timedelta(days=30), label=odd_label))
        for offset in (timedelta(minutes=-20), timedelta(minutes=40)):
            now = change + offset
            cases.append(
                _case(
                    schedule,
                    zone,
                    day_before - timedelta(days=10),
                    catchup=False,
                    now=now,
                    label=f"no-catchup now{'+' if offset > timedelta(0) else ''}{offset}",
                )
            )
        end = odd_local + timedelta(hours=3) if hourly_or_finer else wall + timedelta(days=2)
        cases.append(_case(schedule, zone, near, end=end, now=change + timedelta(days=30), label="end_date"))
    return cases


def _case(
    schedule: str | timedelta,
    zone: str,
    start: datetime,
    *,
    now: datetime,
    label: str,
    end: datetime | None = None,
    catchup: bool = True,
) -> dict[str, object]:
    return {
        "schedule": _schedule_json(schedule),
        "timezone": zone,
        "start": start.isoformat(),
        "end": end.isoformat() if end else None,
        "catchup": catchup,
        "now": iso(now),
        "label": label,
    }


def plain_cases() -> list[dict[str, object]]:
    cases = []
    for zone in PLAIN_ZONES:
        for schedule in [*CRONS, *DELTAS]:
            start = datetime(2024, 2, 27, 22, 10)  # across a leap day, off every schedule's grid
            cases.append(_case(schedule, zone, start, now=datetime(2024, 4, 1, tzinfo=UTC), label="catchup"))
            now = datetime(2024, 3, 1, 0, 7, 13, tzinfo=UTC)
            cases.append(_case(schedule, zone, start, catchup=False, now=now, label="no-catchup"))
    return cases


def manual_cases() -> list[dict[str, object]]:
    manual = []
    for zone, wall, _direction in TRANSITIONS:
        change = transition_instant(zone, wall)
        run_afters = [change + timedelta(minutes=m) for m in (-61, -30, 0, 15, 30, 45, 60, 90, 150)]
        for schedule in [*CRONS, *DELTAS]:
            manual.append(
                {
                    "schedule": _schedule_json(schedule),
                    "timezone": zone,
                    "answers": manual_intervals(schedule, zone, run_afters),
                }
            )
    return manual


def main() -> int:
    cases = plain_cases()
    for zone, wall, direction in TRANSITIONS:
        cases.extend(cases_around(zone, wall, direction))
    for case in cases:
        case["runs"] = scheduled_runs(case)
    document = {
        "generated_by": "tests/data/gen_airflow_schedules.py",
        "airflow_version": airflow.__version__,
        "max_runs": MAX_RUNS,
        "scheduled": cases,
        "manual": manual_cases(),
    }
    with OUT.open("w") as out:
        out.write("{\n")
        out.write(f' "generated_by": {json.dumps(document["generated_by"])},\n')
        out.write(f' "airflow_version": {json.dumps(document["airflow_version"])},\n')
        out.write(f' "max_runs": {MAX_RUNS},\n')
        for key in ("scheduled", "manual"):
            rows = ",\n  ".join(json.dumps(row, separators=(",", ":")) for row in document[key])
            out.write(f' "{key}": [\n  {rows}\n ]{"," if key == "scheduled" else ""}\n')
        out.write("}\n")
    print(f"{len(cases)} scheduled and {len(document['manual'])} manual cases written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
