"""BranchPythonOperator, @task.branch (to a task group), ShortCircuitOperator and @task.short_circuit,
as in Airflow's documentation of branching and short-circuiting."""

from datetime import datetime

from airflow import DAG
from airflow.decorators import task
from airflow.models.baseoperator import chain
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, ShortCircuitOperator
from airflow.utils.task_group import TaskGroup
from airflow.utils.trigger_rule import TriggerRule

with DAG("branching", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    # The documented join after a branch: none_failed_min_one_success.
    branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "branch_a")
    branch_a = EmptyOperator(task_id="branch_a")
    branch_b = EmptyOperator(task_id="branch_b")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    branch >> [branch_a, branch_b] >> join

    @task.branch
    def pick(ds=None):
        print("picking for", ds)
        return "group_b"

    with TaskGroup("group_a") as group_a:
        EmptyOperator(task_id="work")
    with TaskGroup("group_b") as group_b:
        EmptyOperator(task_id="first") >> EmptyOperator(task_id="second")
    pick() >> [group_a, group_b]

    # The documented short circuit: a False condition skips everything downstream.
    @task.short_circuit()
    def check_condition(condition):
        return condition

    chain(check_condition.override(task_id="condition_is_true")(condition=True), EmptyOperator(task_id="true_1"))
    chain(
        check_condition.override(task_id="condition_is_false")(condition=False),
        EmptyOperator(task_id="false_1"),
        EmptyOperator(task_id="false_2"),
    )

    # ignore_downstream_trigger_rules=False: only direct downstreams are skipped; rules decide the rest.
    task_1, task_2, task_3, task_4, task_5, task_6 = [EmptyOperator(task_id=f"task_{i}") for i in range(1, 7)]
    task_7 = EmptyOperator(task_id="task_7", trigger_rule=TriggerRule.ALL_DONE)
    short_circuit = ShortCircuitOperator(
        task_id="short_circuit", ignore_downstream_trigger_rules=False, python_callable=lambda: False
    )
    chain(task_1, [task_2, short_circuit], [task_3, task_4], [task_5, task_6], task_7)
