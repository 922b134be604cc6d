"""Trigger rules decide like Airflow 2.10's TriggerRuleDep (flag_upstream_failed=True)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from minisched.authoring.trigger_rules import (
    VALID_TRIGGER_RULES,
    TriggerDecision,
    TriggerRule,
    evaluate_trigger_rule,
)

STATES = ("success", "skipped", "failed", "upstream_failed", "removed", "running", None)


def airflow_oracle(rule: str, states: list[str | None]) -> str:
    """A transliteration of Airflow 2.10's ``_evaluate_direct_relatives`` for unmapped tasks.

    First the block that sets a new state (only with flag_upstream_failed), then the block
    that yields failing statuses; no new state and no failing status means the dep passes.
    """
    upstream = len(states)
    if upstream == 0 or rule == "always":
        return "ready"
    counter = Counter(
        s for s in states if s in {"success", "skipped", "failed", "upstream_failed", "removed"}
    )
    success, skipped, failed = counter["success"], counter["skipped"], counter["failed"]
    upstream_failed, done = counter["upstream_failed"], sum(counter.values())
    upstream_done = done >= upstream
    new_state = None
    if rule == "all_success":
        if upstream_failed or failed:
            new_state = "upstream_failed"
        elif skipped:
            new_state = "skipped"
    elif rule == "all_failed":
        if success or skipped:
            new_state = "skipped"
    elif rule == "one_success":
        if upstream_done and done == skipped:
            new_state = "skipped"
        elif upstream_done and success <= 0:
            new_state = "upstream_failed"
    elif rule == "one_failed":
        if upstream_done and not (failed or upstream_failed):
            new_state = "skipped"
    elif rule == "one_done":
        if upstream_done and not (failed or success):
            new_state = "skipped"
    elif rule == "none_failed":
        if upstream_failed or failed:
            new_state = "upstream_failed"
    elif rule == "none_failed_min_one_success":
        if upstream_failed or failed:
            new_state = "upstream_failed"
        elif skipped == upstream:
            new_state = "skipped"
    elif rule == "none_skipped":
        if skipped:
            new_state = "skipped"
    elif rule == "all_skipped" and (success or failed or upstream_failed):
        new_state = "skipped"
    if new_state is not None:
        return new_state

    failing = {
        "one_success": success <= 0,
        "one_failed": not failed and not upstream_failed,
        "one_done": success + failed <= 0,
        "all_success": upstream - success > 0,
        "all_failed": upstream - failed - upstream_failed > 0,
        "all_done": not upstream_done,
        "none_failed": upstream - success - skipped > 0,
        "none_failed_min_one_success": upstream - success - skipped > 0,
        "none_skipped": not upstream_done or skipped > 0,
        "all_skipped": upstream - skipped > 0,
    }[rule]
    return "wait" if failing else "ready"


def all_upstream_combinations(max_upstream: int = 4) -> list[tuple[str | None, ...]]:
    combos: list[tuple[str | None, ...]] = []
    for n in range(max_upstream + 1):
        combos.extend(itertools.combinations_with_replacement(STATES, n))
    return combos


@pytest.mark.parametrize("rule", VALID_TRIGGER_RULES)
def test_every_rule_matches_airflow_for_every_upstream_combination(rule: str) -> None:
    for combo in all_upstream_combinations():
        counts = Counter(s for s in combo if s is not None)
        got = evaluate_trigger_rule(rule, counts, len(combo))
        assert got == airflow_oracle(rule, list(combo)), (rule, combo)


# Hand-written expectations: (rule, upstream states, decision), from Airflow's docs and source.
CASES = [
    # all_success: failure -> upstream_failed, skip -> skipped (skips propagate), else wait.
    ("all_success", ["success", "success"], "ready"),
    ("all_success", ["success", "running"], "wait"),
    ("all_success", ["success", "skipped"], "skipped"),
    ("all_success", ["failed", "running"], "upstream_failed"),
    ("all_success", ["upstream_failed", "skipped"], "upstream_failed"),
    ("all_success", ["success", "removed"], "wait"),
    # all_failed: any success or skip ends it as skipped, even before the rest finish.
    ("all_failed", ["failed", "upstream_failed"], "ready"),
    ("all_failed", ["failed", "running"], "wait"),
    ("all_failed", ["failed", "success"], "skipped"),
    ("all_failed", ["skipped", "running"], "skipped"),
    # all_done: any finished state counts.
    ("all_done", ["failed", "skipped", "success", "upstream_failed"], "ready"),
    ("all_done", ["failed", "running"], "wait"),
    # one_success: runs on the first success; all done without success.
    ("one_success", ["success", "running"], "ready"),
    ("one_success", ["failed", "running"], "wait"),
    ("one_success", ["failed", "skipped"], "upstream_failed"),
    ("one_success", ["skipped", "skipped"], "skipped"),
    ("one_success", ["upstream_failed", "upstream_failed"], "upstream_failed"),
    # one_failed: runs on the first failure; all done without failure -> skipped.
    ("one_failed", ["failed", "running"], "ready"),
    ("one_failed", ["upstream_failed", "running"], "ready"),
    ("one_failed", ["success", "running"], "wait"),
    ("one_failed", ["success", "skipped"], "skipped"),
    # one_done: first success or failure; all done with neither -> skipped.
    ("one_done", ["success", "running"], "ready"),
    ("one_done", ["failed", "running"], "ready"),
    ("one_done", ["skipped", "upstream_failed"], "skipped"),
    ("one_done", ["skipped", "running"], "wait"),
    # none_failed: success or skipped all around; any failure -> upstream_failed.
    ("none_failed", ["success", "skipped"], "ready"),
    ("none_failed", ["skipped", "skipped"], "ready"),
    ("none_failed", ["success", "running"], "wait"),
    ("none_failed", ["failed", "running"], "upstream_failed"),
    # none_failed_min_one_success: like none_failed, but all skipped -> skipped.
    ("none_failed_min_one_success", ["success", "skipped"], "ready"),
    ("none_failed_min_one_success", ["skipped", "skipped"], "skipped"),
    ("none_failed_min_one_success", ["upstream_failed", "success"], "upstream_failed"),
    ("none_failed_min_one_success", ["skipped", "running"], "wait"),
    # none_skipped: any skip -> skipped; otherwise waits for all to be done.
    ("none_skipped", ["success", "failed"], "ready"),
    ("none_skipped", ["success", "skipped"], "skipped"),
    ("none_skipped", ["success", "running"], "wait"),
    # all_skipped: anything but skips -> skipped.
    ("all_skipped", ["skipped", "skipped"], "ready"),
    ("all_skipped", ["skipped", "success"], "skipped"),
    ("all_skipped", ["skipped", "running"], "wait"),
    # always: runs at once.
    ("always", ["running", "failed"], "ready"),
    ("always", [None, None], "ready"),
]


@pytest.mark.parametrize(("rule", "states", "expected"), CASES)
def test_hand_written_airflow_expectations(rule: str, states: list[str | None], expected: str) -> None:
    counts = Counter(s for s in states if s is not None)
    assert evaluate_trigger_rule(rule, counts, len(states)) == expected


@pytest.mark.parametrize("rule", VALID_TRIGGER_RULES)
def test_a_task_without_upstream_is_always_ready(rule: str) -> None:
    assert evaluate_trigger_rule(rule, {}, 0) is TriggerDecision.READY


def test_decisions_compare_equal_to_plain_strings_and_accept_plain_dicts() -> None:
    decision = evaluate_trigger_rule(TriggerRule.ALL_SUCCESS, {"success": 1, "failed": 1}, 2)
    assert decision == "upstream_failed"
    assert isinstance(decision, str)


def test_unknown_rule_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown trigger_rule 'all_good'.*all_success.*always"):
        evaluate_trigger_rule("all_good", {}, 1)
