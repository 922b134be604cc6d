"""Trigger rules and their evaluation, exactly as Airflow 2.10 decides them.

The evaluation is a pure function of upstream state counts so the scheduler can compute
the counts in one SQL query and decide many task instances without loading DAG objects.
It mirrors ``airflow/ti_deps/deps/trigger_rule_dep.py`` with ``flag_upstream_failed=True``
for unmapped tasks without setup/teardown (which minisched does not have).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class TriggerRule(StrEnum):
    """When a task may run, given the states of its direct upstream tasks."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALL_SKIPPED = "all_skipped"
    ALWAYS = "always"


class TriggerDecision(StrEnum):
    """What the scheduler should do with a task instance that has no state yet."""

    READY = "ready"  # schedule it
    WAIT = "wait"  # leave it; upstream tasks are still running
    UPSTREAM_FAILED = "upstream_failed"  # set this terminal state without running
    SKIPPED = "skipped"  # set this terminal state without running


VALID_TRIGGER_RULES: tuple[str, ...] = tuple(rule.value for rule in TriggerRule)

_READY = TriggerDecision.READY
_WAIT = TriggerDecision.WAIT
_SKIPPED = TriggerDecision.SKIPPED
_UPSTREAM_FAILED = TriggerDecision.UPSTREAM_FAILED


def evaluate_trigger_rule(rule: str, upstream_states: Mapping[str, int], n_upstream: int) -> TriggerDecision:
    """Decide a task instance from the number of its direct upstreams in each state.

    ``upstream_states`` maps state names to counts (e.g. a ``Counter`` of the upstream
    task instances' states); states that are not finished (running, queued, None, ...)
    may be present and are ignored. ``n_upstream`` is the number of direct upstream tasks.
    """
    trigger_rule = parse_trigger_rule(rule)
    if n_upstream == 0 or trigger_rule is TriggerRule.ALWAYS:
        return _READY
    success = upstream_states.get("success", 0)
    skipped = upstream_states.get("skipped", 0)
    failed = upstream_states.get("failed", 0)
    upstream_failed = upstream_states.get("upstream_failed", 0)
    removed = upstream_states.get("removed", 0)
    done = success + skipped + failed + upstream_failed + removed
    all_done = done >= n_upstream
    failures = failed + upstream_failed

    match trigger_rule:
        case TriggerRule.ALL_SUCCESS:
            if failures:
                return _UPSTREAM_FAILED
            if skipped:
                return _SKIPPED
            return _ready_if(n_upstream - success <= 0)
        case TriggerRule.ALL_FAILED:
            if success or skipped:
                return _SKIPPED
            return _ready_if(n_upstream - failures <= 0)
        case TriggerRule.ALL_DONE:
            return _ready_if(all_done)
        case TriggerRule.ONE_SUCCESS:
            if all_done and done == skipped:
                return _SKIPPED
            if all_done and success <= 0:
                return _UPSTREAM_FAILED
            return _ready_if(success > 0)
        case TriggerRule.ONE_FAILED:
            if all_done and not failures:
                return _SKIPPED
            return _ready_if(failures > 0)
        case TriggerRule.ONE_DONE:
            if all_done and not (failed or success):
                return _SKIPPED
            return _ready_if(success + failed > 0)
        case TriggerRule.NONE_FAILED:
            if failures:
                return _UPSTREAM_FAILED
            return _ready_if(n_upstream - success - skipped <= 0)
        case TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
            if failures:
                return _UPSTREAM_FAILED
            if skipped == n_upstream:
                return _SKIPPED
            return _ready_if(n_upstream - success - skipped <= 0)
        case TriggerRule.NONE_SKIPPED:
            if skipped:
                return _SKIPPED
            return _ready_if(all_done)
        case TriggerRule.ALL_SKIPPED:
            if success or failures:
                return _SKIPPED
            return _ready_if(n_upstream - skipped <= 0)
    raise AssertionError(f"unhandled trigger rule {rule!r}")  # pragma: no cover


def parse_trigger_rule(rule: str) -> TriggerRule:
    """Return the rule named ``rule``; a ``ValueError`` lists the valid names otherwise."""
    try:
        return TriggerRule(rule)
    except ValueError:
        raise ValueError(
            f"unknown trigger_rule {rule!r}; valid trigger rules are: {', '.join(VALID_TRIGGER_RULES)}"
        ) from None


def _ready_if(condition: bool) -> TriggerDecision:
    return _READY if condition else _WAIT
