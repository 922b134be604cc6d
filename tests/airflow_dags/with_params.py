"""Params with a schema, read from the context by a Python callable."""

from datetime import datetime

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.python import PythonOperator


def report(params, **context):
    print(f"rows={params['rows']} region={params['region']} dry_run={params['dry_run']}")


with DAG(
    dag_id="with_params",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={
        "rows": Param(100, type="integer", minimum=1),
        "region": Param("eu", enum=["eu", "us"]),
        "dry_run": False,
    },
) as dag:
    PythonOperator(task_id="report", python_callable=report)
