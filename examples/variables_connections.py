"""Settings and credentials from the metadata database: a variable and a connection, read at run time,
and the settings handed from one task to the next with TaskFlow (stored as XCom).

Both lookups fall back to a default, so this DAG runs on a fresh database. Set them to see the real
values (the password shows as *** in the task log, and is stored encrypted):

    minisched variables set example_region us-east-2
    minisched variables set example_limits '{"rows": 500}'
    minisched connections add example_warehouse --conn-uri 'postgres://etl:s3cret-pw@db.example:5432/dwh'

`MINISCHED_VAR_EXAMPLE_REGION` or `MINISCHED_CONN_EXAMPLE_WAREHOUSE` in the environment win over the
database, as Airflow's AIRFLOW_VAR_*/AIRFLOW_CONN_* do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from minisched import DAG, BaseHook, Variable, task
from minisched.exceptions import ConnectionNotFound

DEFAULT_LIMITS = {"rows": 100}


@task
def read_settings() -> dict[str, Any]:
    region = Variable.get("example_region", default_var="eu-west-1")
    limits = Variable.get("example_limits", default_var=DEFAULT_LIMITS, deserialize_json=True)
    print(f"exporting up to {limits['rows']} rows from region {region}")
    return {"region": region, "rows": limits["rows"]}


@task
def check_warehouse(settings: dict[str, Any]) -> None:
    print(f"checking the warehouse for {settings['rows']} rows from region {settings['region']}")
    try:
        warehouse = BaseHook.get_connection("example_warehouse")
    except ConnectionNotFound:
        print("connection example_warehouse is not defined; nothing to check")
        return
    print(f"would connect to {warehouse.host}:{warehouse.port} as {warehouse.login}")
    print(f"with password {warehouse.password} (masked in this log) via {warehouse.get_uri()}")


with DAG(
    "example_variables_connections",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["example"],
    description="Variable.get and BaseHook.get_connection, with defaults; the settings passed on",
):
    check_warehouse(read_settings())
