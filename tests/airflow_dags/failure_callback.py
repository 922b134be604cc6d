"""Task callbacks as Airflow's callback docs show them: a failure alert that reads the context."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator


def task_failure_alert(context):
    print(f"Task has failed, task_instance_key_str: {context['task_instance_key_str']}")


def task_retry_alert(context):
    print(f"Retrying {context['ti'].task_id} after try {context['ti'].try_number}")


def task_success_alert(context):
    print(f"Succeeded: {context['task_instance_key_str']}")


with DAG(
    dag_id="failure_callback",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    default_args={"on_failure_callback": task_failure_alert, "on_retry_callback": task_retry_alert},
):
    task1 = EmptyOperator(task_id="task1", on_success_callback=[task_success_alert])
    task2 = BashOperator(task_id="task2", bash_command="exit 1", retries=1, retry_delay=timedelta(seconds=0))
    task3 = EmptyOperator(task_id="task3")
    task1 >> task2 >> task3
