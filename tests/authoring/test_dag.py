"""Defining DAGs: ids, context managers, collection for the loader, validation messages."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisched import DAG, BaseOperator, PythonOperator
from minisched.authoring import EmptyOperator, TriggerRule, collect_dags, current_dag
from minisched.authoring.dag import MAX_ID_LENGTH
from minisched.exceptions import DagDefinitionError

START = datetime(2024, 1, 1, tzinfo=UTC)


def noop() -> None:
    return None


def test_operators_created_inside_with_attach_to_the_dag() -> None:
    with DAG("etl", schedule="@daily", start_date=START) as dag:
        a = EmptyOperator(task_id="a")
        b = PythonOperator(task_id="b", python_callable=noop)
    assert a.dag is dag and b.dag is dag
    assert dag.task_ids == ["a", "b"]
    assert dag.tasks == [a, b]
    assert dag.get_task("b") is b
    assert current_dag() is None


def test_nested_with_blocks_attach_to_the_innermost_dag() -> None:
    with DAG("outer") as outer:
        a = EmptyOperator(task_id="a")
        with DAG("inner") as inner:
            b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
    assert [a.dag, b.dag, c.dag] == [outer, inner, outer]
    assert outer.task_ids == ["a", "c"]


def test_explicit_dag_argument_wins_over_the_with_block() -> None:
    other = DAG("other")
    with DAG("main"):
        task = EmptyOperator(task_id="t", dag=other)
    assert task.dag is other


def test_task_can_be_attached_later_by_assignment() -> None:
    dag = DAG("late")
    task = EmptyOperator(task_id="t")
    assert not task.has_dag()
    task.dag = dag
    assert dag.get_task("t") is task


def test_task_cannot_move_to_a_second_dag() -> None:
    task = EmptyOperator(task_id="t", dag=DAG("first"))
    with pytest.raises(DagDefinitionError, match="already belongs to DAG 'first'"):
        task.dag = DAG("second")


def test_collect_dags_gets_module_level_with_block_and_factory_dags() -> None:
    def factory(name: str) -> DAG:
        return DAG(name)

    with collect_dags() as dags:
        plain = DAG("plain")
        with DAG("in_with") as in_with:
            EmptyOperator(task_id="t")
        made = factory("made")
    assert dags == [plain, in_with, made]
    outside = DAG("outside")
    assert outside not in dags


def test_collect_dags_blocks_nest_and_are_isolated_per_thread() -> None:
    seen: list[list[DAG]] = []

    def load_in_thread() -> None:
        with collect_dags() as dags:
            DAG("thread_dag")
        seen.append(dags)

    with collect_dags() as outer:
        DAG("before")
        with collect_dags() as inner:
            DAG("nested")
        worker = threading.Thread(target=load_in_thread)
        worker.start()
        worker.join()
        DAG("after")
    assert [d.dag_id for d in outer] == ["before", "after"]
    assert [d.dag_id for d in inner] == ["nested"]
    assert [d.dag_id for d in seen[0]] == ["thread_dag"]


def test_failed_dag_is_not_collected() -> None:
    with collect_dags() as dags, pytest.raises(DagDefinitionError):
        DAG("bad id!")
    assert dags == []


def test_fileloc_is_the_file_that_created_the_dag() -> None:
    assert DAG("here").fileloc == __file__


def test_roots_leaves_and_topological_order() -> None:
    with DAG("graph") as dag:
        a, b, c, d = (EmptyOperator(task_id=x) for x in "abcd")
        a >> [b, c]
        [b, c] >> d
    assert dag.roots == [a]
    assert dag.leaves == [d]
    order = [t.task_id for t in dag.topological_order()]
    assert order == ["a", "b", "c", "d"]
    assert b.upstream_task_ids == {"a"}
    assert a.downstream_task_ids == {"b", "c"}
    assert d.upstream_list == [b, c]


def test_topological_order_puts_every_task_after_its_upstreams() -> None:
    with DAG("reverse") as dag:
        tasks = [EmptyOperator(task_id=f"t{i}") for i in range(30)]
        for i in range(29, 0, -1):
            tasks[i] << tasks[i - 1]
        tasks[5] >> tasks[20]
    position = {t.task_id: i for i, t in enumerate(dag.topological_order())}
    for task in tasks:
        for up in task.upstream_task_ids:
            assert position[up] < position[task.task_id]


def test_shift_operators_return_the_right_side_for_chaining() -> None:
    with DAG("chain"):
        a, b, c, d, e = (EmptyOperator(task_id=x) for x in "abcde")
        assert (a >> b >> c) is c
        assert (d << c) is c
        assert ([a, b] << e) is e
    assert c.downstream_task_ids == {"d"}
    assert e.downstream_task_ids == {"a", "b"}


def test_set_upstream_and_set_downstream() -> None:
    with DAG("sets"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        b.set_upstream(a)
        b.set_downstream([c])
    assert b.upstream_task_ids == {"a"}
    assert b.downstream_task_ids == {"c"}


def test_repeated_dependency_is_ignored() -> None:
    with DAG("dupe_edge"):
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        a >> b
        a >> b
    assert b.upstream_task_ids == {"a"}


def test_dependency_adopts_the_dag_of_the_other_task() -> None:
    dag = DAG("adopt")
    a = EmptyOperator(task_id="a", dag=dag)
    b = EmptyOperator(task_id="b")
    a >> b
    assert b.dag is dag


@pytest.mark.parametrize(
    "dag_id",
    ["", "has space", "slash/", "ümlaut", "x" * (MAX_ID_LENGTH + 1), "semi;colon"],
)
def test_invalid_dag_id_is_rejected(dag_id: str) -> None:
    with pytest.raises(DagDefinitionError, match=r"invalid dag_id.*letters, digits, '_', '-' or '.'"):
        DAG(dag_id)


def test_valid_ids_allow_dots_dashes_and_the_maximum_length() -> None:
    assert DAG("a.b-c_D9").dag_id == "a.b-c_D9"
    assert DAG("x" * MAX_ID_LENGTH).dag_id == "x" * MAX_ID_LENGTH


def test_non_string_dag_id_is_rejected() -> None:
    with pytest.raises(DagDefinitionError, match="dag_id must be a string"):
        DAG(42)  # type: ignore[arg-type]


def test_invalid_task_id_is_rejected() -> None:
    with DAG("d"), pytest.raises(DagDefinitionError, match="invalid task_id 'bad id'"):
        EmptyOperator(task_id="bad id")


def test_duplicate_task_id_names_the_dag_and_the_fix() -> None:
    with DAG("dupes"):
        EmptyOperator(task_id="same")
        with pytest.raises(DagDefinitionError, match=r"duplicate task_id 'same' in DAG 'dupes'.*rename"):
            EmptyOperator(task_id="same")


def test_cycle_is_detected_when_the_closing_edge_is_added_and_named() -> None:
    with DAG("cyclic"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        a >> b >> c
        with pytest.raises(DagDefinitionError, match=r"cycle in DAG 'cyclic': c -> a -> b -> c"):
            c >> a
    assert a.upstream_task_ids == set()


def test_self_dependency_is_a_cycle() -> None:
    with DAG("selfish"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(DagDefinitionError, match="a -> a"):
            a >> a


def test_cycle_through_a_list_dependency() -> None:
    with DAG("listcycle"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        a >> [b, c]
        with pytest.raises(DagDefinitionError, match="c -> a -> c"):
            [c] >> a


def test_dependencies_need_a_dag() -> None:
    a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
    with pytest.raises(DagDefinitionError, match=r"not in a DAG.*with DAG"):
        a >> b


def test_dependencies_across_dags_are_rejected() -> None:
    a = EmptyOperator(task_id="a", dag=DAG("one"))
    b = EmptyOperator(task_id="b", dag=DAG("two"))
    with pytest.raises(DagDefinitionError, match="different DAGs"):
        a >> b


def test_dependency_on_something_that_is_not_a_task() -> None:
    with DAG("d"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(DagDefinitionError, match="must be tasks, task groups or lists of them, got 'b'"):
            a >> "b"
        with pytest.raises(DagDefinitionError, match="got 3"):
            [a, 3] >> EmptyOperator(task_id="c")  # type: ignore[operator]


def test_upstream_list_of_a_task_without_dag() -> None:
    with pytest.raises(DagDefinitionError, match="not in a DAG"):
        _ = EmptyOperator(task_id="lonely").upstream_list


def test_naive_start_date_is_read_in_utc_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    _default_timezone(monkeypatch, None)
    dag = DAG("naive", schedule="@daily", start_date=datetime(2024, 1, 1), end_date=datetime(2024, 2, 1))
    assert dag.start_date == START and dag.start_date.tzinfo is not None
    assert dag.end_date == datetime(2024, 2, 1, tzinfo=UTC)
    assert dag.timezone_name == "UTC"


def test_naive_start_date_is_read_in_the_configured_default_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    _default_timezone(monkeypatch, "Europe/Berlin")
    dag = DAG("berlin", schedule="0 6 * * *", start_date=datetime(2024, 7, 1))
    assert dag.start_date == datetime(2024, 6, 30, 22, tzinfo=UTC)
    assert dag.timezone_name == "Europe/Berlin"
    interval = dag.next_dagrun_info(None, now=datetime(2024, 7, 3, tzinfo=UTC))
    assert interval is not None and interval.start.hour == 4  # 06:00 in Berlin's summer time


def test_naive_start_date_follows_an_explicit_dag_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    _default_timezone(monkeypatch, "Europe/Berlin")
    dag = DAG("tokyo", schedule="@daily", start_date=datetime(2024, 1, 1), timezone="Asia/Tokyo")
    assert dag.start_date == datetime(2023, 12, 31, 15, tzinfo=UTC)


def _default_timezone(monkeypatch: pytest.MonkeyPatch, name: str | None) -> None:
    from minisched import settings as config

    if name is None:
        monkeypatch.delenv("MINISCHED_DEFAULT_TIMEZONE", raising=False)
    else:
        monkeypatch.setenv("MINISCHED_DEFAULT_TIMEZONE", name)
    monkeypatch.setattr(config, "_current", None)


def test_start_date_must_be_a_datetime() -> None:
    with pytest.raises(DagDefinitionError, match="start_date must be a datetime, got a date"):
        DAG("date_only", start_date=date(2024, 1, 1))  # type: ignore[arg-type]


def test_end_date_before_start_date() -> None:
    with pytest.raises(DagDefinitionError, match=r"end_date .* is before start_date"):
        DAG("backwards", start_date=START, end_date=START - timedelta(days=1))


def test_scheduled_dag_needs_a_start_date() -> None:
    with pytest.raises(DagDefinitionError, match=r"schedule '@daily' but no start_date"):
        DAG("nostart", schedule="@daily")
    assert DAG("manual_only").start_date is None


def test_invalid_cron_names_the_expression() -> None:
    with pytest.raises(DagDefinitionError, match=r"DAG 'badcron': invalid cron expression '61 \* \* \* \*'"):
        DAG("badcron", schedule="61 * * * *", start_date=START)


def test_unknown_timezone_is_rejected() -> None:
    with pytest.raises(DagDefinitionError, match="DAG 'tz': unknown timezone 'Mars/Olympus'"):
        DAG("tz", start_date=START, timezone="Mars/Olympus")


def test_start_date_timezone_drives_the_schedule_unless_timezone_is_given() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    dag = DAG("berlin", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=berlin))
    assert dag.timezone_name == "Europe/Berlin"
    assert DAG("ny", schedule="@daily", start_date=START, timezone="America/New_York").timezone_name == (
        "America/New_York"
    )
    assert DAG("utc", schedule="@daily", start_date=START).timezone_name == "UTC"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_active_runs": 0}, "max_active_runs must be an int from 1 to 2147483647"),
        ({"max_active_tasks": -1}, "max_active_tasks must be an int from 1 to 2147483647"),
        ({"catchup": "yes"}, "catchup must be True or False"),
        ({"default_args": ["retries"]}, "default_args must be a dict"),
        ({"params": "x"}, "params must be a dict"),
        ({"tags": "etl"}, "tags must be a list of non-empty strings"),
        ({"tags": ["ok", 3]}, "tags must be a list of non-empty strings"),
        ({"dagrun_timeout": 60}, "dagrun_timeout must be a positive timedelta"),
        ({"schedule": 3600}, "schedule must be a 5-field cron string"),
        ({"schedule": "@continuous"}, "unknown schedule preset '@continuous'"),
        ({"schedule": timedelta(0)}, "schedule interval must be positive"),
        ({"schedule": "@daily", "schedule_interval": "@hourly"}, "either schedule= or schedule_interval="),
    ],
)
def test_dag_argument_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DagDefinitionError, match=message):
        DAG("checked", start_date=START, **kwargs)  # type: ignore[arg-type]


def test_schedule_interval_is_accepted_as_in_airflow_2() -> None:
    assert DAG("old_style", schedule_interval="@hourly", start_date=START).schedule == "@hourly"


def test_start_date_may_come_from_default_args() -> None:
    dag = DAG("from_defaults", schedule="@daily", default_args={"start_date": START, "owner": "ops"})
    assert dag.start_date == START


def test_dag_attributes_are_kept() -> None:
    dag = DAG(
        "full",
        schedule=timedelta(hours=1),
        start_date=START,
        end_date=START + timedelta(days=3),
        catchup=True,
        max_active_runs=2,
        max_active_tasks=4,
        tags=["a", "b"],
        description="desc",
        dagrun_timeout=timedelta(hours=2),
        params={"table": "t"},
    )
    assert dag.schedule == "1:00:00"
    assert (dag.catchup, dag.max_active_runs, dag.max_active_tasks) == (True, 2, 4)
    assert dag.tags == ["a", "b"] and dag.description == "desc" and dag.params == {"table": "t"}
    assert repr(dag) == "<DAG: full>"


def test_get_task_of_unknown_id() -> None:
    with pytest.raises(KeyError, match="task 'nope' not found in DAG 'empty'"):
        DAG("empty").get_task("nope")


# -- task arguments ------------------------------------------------------------------------


def test_default_args_fill_missing_task_arguments_and_explicit_ones_win() -> None:
    defaults = {
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "pool": "db",
        "owner": "ops",
        "email": "x",
    }
    with DAG("defaults", default_args=defaults):
        inherited = EmptyOperator(task_id="inherited")
        explicit = EmptyOperator(task_id="explicit", retries=0, pool="other", execution_timeout=None)
        own_defaults = EmptyOperator(task_id="own", default_args={"retries": 5})
    assert (inherited.retries, inherited.retry_delay, inherited.pool) == (2, timedelta(seconds=30), "db")
    assert inherited.owner == "ops"
    assert (explicit.retries, explicit.pool, explicit.retry_delay) == (0, "other", timedelta(seconds=30))
    assert own_defaults.retries == 5


def test_task_defaults_match_airflow() -> None:
    task = BaseOperator(task_id="plain")
    assert task.retries == 0
    assert task.retry_delay == timedelta(seconds=300)
    assert task.retry_exponential_backoff is False
    assert task.max_retry_delay is None and task.execution_timeout is None
    assert (task.pool, task.pool_slots, task.priority_weight) == ("default_pool", 1, 1)
    assert task.weight_rule == "downstream"
    assert task.trigger_rule is TriggerRule.ALL_SUCCESS
    assert task.depends_on_past is False


def test_numbers_are_read_as_seconds_for_durations() -> None:
    task = EmptyOperator(task_id="n", retry_delay=10, max_retry_delay=60.5, execution_timeout=5)
    assert task.retry_delay == timedelta(seconds=10)
    assert task.max_retry_delay == timedelta(seconds=60.5)
    assert task.execution_timeout == timedelta(seconds=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "retries must be an int from 0 to 2147483646, got -1"),
        ({"retries": "3"}, "retries must be an int from 0 to"),
        ({"retry_delay": timedelta(seconds=-1)}, "retry_delay must be a timedelta >= 0"),
        ({"retry_delay": "5m"}, "retry_delay must be a timedelta"),
        ({"max_retry_delay": "x"}, "max_retry_delay must be a timedelta"),
        ({"execution_timeout": timedelta(0)}, "execution_timeout must be a positive timedelta"),
        ({"pool": ""}, "pool must be a non-empty string"),
        ({"pool_slots": 0}, "pool_slots must be an int from 1 to 2147483647"),
        ({"priority_weight": 1.5}, "priority_weight must be an int"),
        (
            {"weight_rule": "sideways"},
            "unknown weight_rule 'sideways'; valid values are downstream, upstream",
        ),
        ({"retry_exponential_backoff": 1}, "retry_exponential_backoff must be True or False"),
        ({"depends_on_past": None}, "depends_on_past must be True or False"),
        ({"owner": 3}, "owner must be a non-empty string"),
        ({"on_failure_callback": 3}, "on_failure_callback must be a function taking the context"),
        ({"sla": 3}, "unknown argument.*sla.*valid task arguments"),
        ({"dag": "etl"}, "dag must be a DAG"),
    ],
)
def test_task_argument_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DagDefinitionError, match=f"task 't': .*{message}"):
        EmptyOperator(task_id="t", **kwargs)  # type: ignore[arg-type]


def test_unknown_trigger_rule_lists_the_valid_ones() -> None:
    with pytest.raises(DagDefinitionError, match=r"unknown trigger_rule 'all_good'.*all_success, all_failed"):
        EmptyOperator(task_id="t", trigger_rule="all_good")


def test_trigger_rule_accepts_enum_or_text() -> None:
    assert EmptyOperator(task_id="a", trigger_rule=TriggerRule.ALL_DONE).trigger_rule == "all_done"
    assert EmptyOperator(task_id="b", trigger_rule="one_failed").trigger_rule is TriggerRule.ONE_FAILED


def test_retries_none_means_zero() -> None:
    assert EmptyOperator(task_id="t", retries=None).retries == 0


# -- priority weights ------------------------------------------------------------------------


def diamond(weight_rule: str) -> DAG:
    with DAG(f"diamond_{weight_rule}") as dag:
        a = EmptyOperator(task_id="a", priority_weight=1, weight_rule=weight_rule)
        b = EmptyOperator(task_id="b", priority_weight=2, weight_rule=weight_rule)
        c = EmptyOperator(task_id="c", priority_weight=4, weight_rule=weight_rule)
        d = EmptyOperator(task_id="d", priority_weight=8, weight_rule=weight_rule)
        a >> [b, c] >> d
    return dag


def weights(dag: DAG) -> dict[str, int]:
    return {t.task_id: t.priority_weight_total for t in dag.tasks}


def test_downstream_weight_rule_sums_each_downstream_task_once() -> None:
    assert weights(diamond("downstream")) == {"a": 15, "b": 10, "c": 12, "d": 8}


def test_upstream_weight_rule_sums_upstream_tasks() -> None:
    assert weights(diamond("upstream")) == {"a": 1, "b": 3, "c": 5, "d": 15}


def test_absolute_weight_rule_uses_the_own_weight() -> None:
    assert weights(diamond("absolute")) == {"a": 1, "b": 2, "c": 4, "d": 8}


def test_priority_weights_follow_graph_changes() -> None:
    with DAG("growing"):
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        assert a.priority_weight_total == 1
        a >> b
        assert a.priority_weight_total == 2
        b >> EmptyOperator(task_id="c")
        assert a.priority_weight_total == 3
    assert EmptyOperator(task_id="alone", priority_weight=7).priority_weight_total == 7


# -- retry delays ----------------------------------------------------------------------------


def test_retry_delay_without_backoff_is_constant() -> None:
    task = EmptyOperator(task_id="t", retry_delay=timedelta(seconds=30))
    assert [task.next_retry_delay(n) for n in (1, 2, 5)] == [timedelta(seconds=30)] * 3


def test_exponential_backoff_doubles_per_try_and_is_capped() -> None:
    task = EmptyOperator(
        task_id="t",
        retry_delay=timedelta(seconds=10),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(seconds=100),
    )
    assert [task.next_retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]


def test_exponential_backoff_rounds_up_to_a_second_and_caps_at_a_day() -> None:
    assert EmptyOperator(task_id="z", retry_delay=0, retry_exponential_backoff=True).next_retry_delay(
        3
    ) == timedelta(seconds=1)
    task = EmptyOperator(task_id="t", retry_delay=0.3, retry_exponential_backoff=True)
    assert task.next_retry_delay(1) == timedelta(seconds=1)
    assert task.next_retry_delay(10_000) == timedelta(days=1)


def test_exponential_backoff_jitter_is_airflows_deterministic_hash() -> None:
    import hashlib

    with DAG("jitter"):
        task = EmptyOperator(task_id="t", retry_delay=timedelta(seconds=10), retry_exponential_backoff=True)
    logical = datetime(2024, 1, 1, tzinfo=UTC)
    key = "jitter#t#2024-01-01T00:00:00+00:00#2"
    expected = 20 + int(hashlib.sha1(key.encode()).hexdigest(), 16) % 20
    assert task.next_retry_delay(2, logical) == timedelta(seconds=expected)
    assert task.next_retry_delay(2, logical) == task.next_retry_delay(2, logical)


# -- properties ------------------------------------------------------------------------------


def reachable(edges: set[tuple[int, int]], source: int) -> set[int]:
    seen, todo = set(), [source]
    while todo:
        node = todo.pop()
        for a, b in edges:
            if a == node and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 8),
    edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=25),
    weights=st.lists(st.integers(-3, 5), min_size=8, max_size=8),
    rule=st.sampled_from(["downstream", "upstream", "absolute"]),
)
def test_random_graphs_reject_exactly_the_cycles_and_sum_weights_like_airflow(
    n: int, edges: list[tuple[int, int]], weights: list[int], rule: str
) -> None:
    with DAG("random") as dag:
        tasks = [
            EmptyOperator(task_id=f"t{i}", priority_weight=weights[i], weight_rule=rule) for i in range(n)
        ]
    accepted: set[tuple[int, int]] = set()
    for a, b in ((a, b) for a, b in edges if a < n and b < n):
        closes_cycle = a == b or a in reachable(accepted, b)
        if closes_cycle:
            with pytest.raises(DagDefinitionError) as raised:
                tasks[a] >> tasks[b]
            cycle = str(raised.value).split(": ")[1].split(";")[0].split(" -> ")
            hops = list(itertools.pairwise(int(t[1:]) for t in cycle))
            assert hops[0] == (a, b) and cycle[0] == cycle[-1]
            assert all(hop in accepted for hop in hops[1:])
        else:
            tasks[a] >> tasks[b]
            accepted.add((a, b))
    position = {t.task_id: i for i, t in enumerate(dag.topological_order())}
    assert all(position[f"t{a}"] < position[f"t{b}"] for a, b in accepted)
    upstream = {i: {a for a, b in accepted if b == i} for i in range(n)}
    for i, task in enumerate(tasks):
        assert task.upstream_task_ids == {f"t{u}" for u in upstream[i]}
        if rule == "downstream":
            related = reachable(accepted, i)
        elif rule == "upstream":
            related = reachable({(b, a) for a, b in accepted}, i)
        else:
            related = set()
        assert task.priority_weight_total == weights[i] + sum(weights[r] for r in related)
