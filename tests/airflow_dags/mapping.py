"""Dynamic task mapping, as in Airflow 2.10's "Dynamic Task Mapping" documentation."""

from datetime import datetime

from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator

with DAG("mapping", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):

    @task
    def add_one(x: int):
        return x + 1

    @task
    def sum_it(values):
        total = sum(values)
        print(f"Total was {total}")

    sum_it(add_one.expand(x=[1, 2, 3]))

    @task
    def make_list():
        return [1, 2, {"a": "b"}, "str"]

    @task
    def consumer(arg):
        print(repr(arg))

    consumer.expand(arg=make_list())

    @task
    def add(x: int, y: int):
        return x + y

    @task
    def report(values):
        print(f"added: {list(values)}")

    report(add.partial(y=10).expand(x=[1, 2, 3]))

    @task
    def cross(x: int, y: int):
        return x * y

    cross.expand(x=[1, 2], y=[10, 20, 30])

    @task
    def nothing():
        return []

    consumer.override(task_id="never").expand(arg=nothing())

    BashOperator.partial(task_id="bash", do_xcom_push=False).expand_kwargs(
        [
            {"bash_command": "echo value=$X", "env": {"X": "one"}},
            {"bash_command": "echo value=$X", "env": {"X": "two"}},
        ]
    )
