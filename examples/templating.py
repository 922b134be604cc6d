"""Jinja templates in task arguments, rendered with Airflow's context just before each try.

- `bash_command`, `env` (BashOperator) and `op_args`, `op_kwargs`, `templates_dict` (PythonOperator)
  are templates: `{{ ds }}`, `{{ params.x }}`, `{{ macros.ds_add(ds, -1) }}`, `{{ dag_run.run_id }}`.
- A bash_command ending in `.sh` names a script template next to this file (`templating_report.sh`).
- `user_defined_macros` and `user_defined_filters` extend the template language for this DAG.
- `minisched tasks render example_templating summarize 2024-03-01` prints the rendered fields
  without running anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from minisched import DAG, BashOperator, PythonOperator, get_current_context


def summarize(region: str, templates_dict: dict[str, Any]) -> None:
    context = get_current_context()
    print(f"summarizing {region} for {context['ds']}: window {templates_dict['window']}")
    print(f"this try started for the run {context['dag_run'].run_id} at {context['logical_date']}")


with DAG(
    "example_templating",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    params={"region": "eu"},
    user_defined_macros={"warehouse": "analytics"},
    user_defined_filters={"versioned": lambda name: f"{name}_v2"},
    tags=["example", "templates"],
    description="Jinja templates, macros, filters and a .sh script template",
):
    export = BashOperator(
        task_id="export",
        bash_command=(
            "echo exporting {{ warehouse }}.{{ 'events' | versioned }} "
            "from {{ macros.ds_add(ds, -1) }} to {{ ds }} as $TARGET"
        ),
        env={"TARGET": "s3://bucket/{{ params.region }}/{{ ds_nodash }}.csv"},
        append_env=True,
    )
    summary = PythonOperator(
        task_id="summarize",
        python_callable=summarize,
        op_kwargs={"region": "{{ params.region | upper }}"},
        templates_dict={"window": "{{ data_interval_start }} .. {{ data_interval_end }}"},
    )
    report = BashOperator(task_id="report", bash_command="templating_report.sh")
    export >> summary >> report
