"""Schedules identical to Airflow 2.10's, case by case, against answers Airflow itself gave.

``tests/data/airflow_schedules.json`` was written by ``tests/data/gen_airflow_schedules.py`` from
Airflow's own ``CronDataIntervalTimetable`` and ``DeltaDataIntervalTimetable``: cron and timedelta
schedules in zones with and without DST, naive start dates read in the DAG's zone (some of them
ambiguous or non-existent local times), catchup on and off with a frozen clock, end dates, and the
data interval of manual runs triggered around each DST change. Each case is a DAG built through the
public ``DAG`` API here, asked the same questions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from minisched import DAG
from minisched.authoring.schedules import DataInterval

DATA = json.loads((Path(__file__).parent.parent / "data" / "airflow_schedules.json").read_text())


def _schedule(raw: str | float) -> str | timedelta:
    return raw if isinstance(raw, str) else timedelta(seconds=raw)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['schedule']}|{case['timezone']}|{case['start']}|{case['label']}"


def _dag(case: dict[str, Any]) -> DAG:
    end = datetime.fromisoformat(case["end"]) if case.get("end") else None
    return DAG(
        "differential",
        schedule=_schedule(case["schedule"]),
        start_date=datetime.fromisoformat(case["start"]),
        end_date=end,
        timezone=case["timezone"],
        catchup=case["catchup"],
    )


def test_the_data_set_is_airflows_and_covers_dst_edges() -> None:
    assert DATA["airflow_version"] == "2.10.5"
    labels = {case["label"] for case in DATA["scheduled"]}
    assert {"ambiguous", "nonexistent", "end_date", "catchup", "no-catchup"} <= labels
    assert len(DATA["scheduled"]) >= 300
    assert sum(len(m["answers"]) for m in DATA["manual"]) >= 500


@pytest.mark.parametrize("case", DATA["scheduled"], ids=_case_id)
def test_scheduled_runs_match_airflow(case: dict[str, Any]) -> None:
    dag = _dag(case)
    now = _utc(case["now"])
    runs: list[list[str]] = []
    last: DataInterval | None = None
    while len(runs) < len(case["runs"]) + 1:
        info = dag.next_dagrun_info(last, now=now)
        if info is None:
            break
        runs.append([_iso(info.start), _iso(info.end)])
        last = info
    if "airflow_error" in case:
        # Airflow stops on its own assertion here; minisched must agree up to there and go on.
        assert runs[: len(case["runs"])] == case["runs"]
        assert len(runs) > len(case["runs"])
    else:
        expected_runs = case["runs"]
        assert runs[: len(expected_runs)] == expected_runs
        # Airflow's list stops either at MAX_RUNS or because there is no next run.
        assert len(runs) == len(expected_runs) or len(expected_runs) == DATA["max_runs"]


@pytest.mark.parametrize(
    "manual", DATA["manual"], ids=lambda m: f"{m['schedule']}|{m['timezone']}|{m['answers'][0][0]}"
)
def test_manual_run_intervals_match_airflow(manual: dict[str, Any]) -> None:
    dag = DAG(
        "differential",
        schedule=_schedule(manual["schedule"]),
        start_date=datetime(2000, 1, 1),
        timezone=manual["timezone"],
    )
    answers = []
    for run_after, _start, _end in manual["answers"]:
        interval = dag.timetable.infer_manual_data_interval(_utc(run_after))
        answers.append([run_after, _iso(interval.start), _iso(interval.end)])
    assert answers == manual["answers"]
