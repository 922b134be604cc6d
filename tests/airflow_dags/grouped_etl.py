"""Task groups (context manager and decorator), chain, cross_downstream, a naive start_date."""

from datetime import datetime

from airflow import DAG
from airflow.decorators import task, task_group
from airflow.models.baseoperator import chain, cross_downstream
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.utils.task_group import TaskGroup

with DAG("grouped_etl", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False) as dag:
    start = EmptyOperator(task_id="start")

    with TaskGroup("extract", tooltip="pull the sources") as extract:
        users = BashOperator(task_id="users", bash_command="echo extract users")
        orders = BashOperator(task_id="orders", bash_command="echo extract orders")

    @task_group(group_id="transform")
    def transform():
        @task
        def clean():
            print("cleaning")

        @task
        def join():
            print("joining")

        clean() >> join()

    with TaskGroup("load", prefix_group_id=False) as load:
        warehouse = EmptyOperator(task_id="warehouse")
        lake = EmptyOperator(task_id="lake")

    report_a = EmptyOperator(task_id="report_a")
    report_b = EmptyOperator(task_id="report_b")
    chain(start, extract, transform(), load)
    cross_downstream([warehouse, lake], [report_a, report_b])
