"""@dag function parameters become DAG params, as Airflow's TaskFlow docs show: passed to a task,
each is the param's value in the run; a Param default carries its schema."""

from datetime import datetime

from airflow.decorators import dag, task
from airflow.models.param import Param


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def dag_params(rows: int = 10, region=Param("eu", enum=["eu", "us"])):
    @task
    def report(rows, region, params=None):
        print(f"rows={rows} ({type(rows).__name__}) region={region} params={params}")

    report(rows, region)


dag_params()
