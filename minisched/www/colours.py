"""The state colours Airflow users know (Airflow 2's STATE_COLORS)."""

from __future__ import annotations

STATE_COLOURS = {
    "success": "#008000",
    "running": "#00ff00",
    "failed": "#ff0000",
    "queued": "#808080",
    "scheduled": "#d2b48c",
    "up_for_retry": "#ffd700",
    "upstream_failed": "#ffa500",
    "skipped": "#ff69b4",
    "removed": "#d3d3d3",
    "none": "#ffffff",
}
#: States whose colour is too light for white text.
LIGHT_STATES = frozenset({"running", "scheduled", "up_for_retry", "removed", "none", "queued"})


def colour(state: str | None) -> str:
    return STATE_COLOURS.get(state or "none", "#ffffff")
