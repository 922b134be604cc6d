"""Templating as Airflow's tutorial and operator docs show it: a Jinja loop with macros, env from the
run's conf (env replaces the environment), templated op_kwargs/templates_dict, get_current_context."""

import datetime

from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator, get_current_context

templated_command = """
{% for i in range(3) %}
    echo "{{ ds }}"
    echo "{{ macros.ds_add(ds, 7)}}"
{% endfor %}
"""


def show(a, templates_dict, **kwargs):
    print("a is", a, "and the query is", templates_dict["query"])


with DAG(
    dag_id="templated",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    params={"table": "events"},
) as dag:
    BashOperator(task_id="templated", depends_on_past=False, bash_command=templated_command)
    BashOperator(
        task_id="bash_task",
        bash_command='echo "here is the message: \'$message\'" home=${HOME:-unset}',
        env={"message": '{{ dag_run.conf["message"] if dag_run.conf else "" }}'},
    )
    PythonOperator(
        task_id="python_task",
        python_callable=show,
        op_kwargs={"a": "{{ ds_nodash }}"},
        templates_dict={"query": "select * from {{ params.table }} where day = '{{ ds }}'"},
    )

    @task
    def current():
        context = get_current_context()
        print("logical date is", context["logical_date"], "run", context["run_id"])

    current()
