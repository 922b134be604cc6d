"""Jinja templating of template fields, with Airflow's context, filters, macros and DAG options."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from minisched import DAG, BashOperator, PythonOperator
from minisched.authoring import task_context
from minisched.authoring.baseoperator import BaseOperator
from minisched.authoring.templating import TemplateError, rendered_copy

LOGICAL = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)


def _context(task: BaseOperator, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    return task_context(
        task,
        run_id="manual__x",
        logical_date=LOGICAL,
        data_interval_start=LOGICAL,
        data_interval_end=LOGICAL,
        try_number=3,
        conf=conf,
    )


def _rendered(task: BaseOperator, name: str, conf: dict[str, Any] | None = None) -> Any:
    return getattr(rendered_copy(task, _context(task, conf)), name)


def test_context_names_filters_macros_and_method_calls() -> None:
    with DAG("t", schedule=None, start_date=LOGICAL, params={"n": 2}):
        op = BashOperator(
            task_id="b",
            bash_command=(
                "{{ ds }}|{{ ds_nodash }}|{{ ts }}|{{ ts_nodash }}|{{ ts_nodash_with_tz }}|"
                "{{ logical_date }}|"
                "{{ data_interval_end | ds }}|{{ macros.ds_add(ds, -5) }}|"
                "{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m') }}|{{ ds.replace('-', '') }}|"
                "{{ params.n * 10 }}|{{ conf.get('x', 'none') }}|{{ ti.try_number }}|{{ task.task_id }}|"
                "{{ dag.dag_id }}|{{ dag_run.conf }}|{{ macros.datetime(2020, 1, 2).year }}"
            ),
        )
    assert _rendered(op, "bash_command", {"x": "y"}).split("|") == [
        "2024-03-05",
        "20240305",
        "2024-03-05T06:07:08+00:00",
        "20240305T060708",
        "20240305T060708+0000",
        "2024-03-05 06:07:08+00:00",
        "2024-03-05",
        "2024-02-29",
        "05/03",
        "20240305",
        "20",
        "y",
        "3",
        "b",
        "t",
        "{'x': 'y'}",
        "2020",
    ]


def test_nested_values_render_and_the_original_task_keeps_its_templates() -> None:
    with DAG("t", schedule=None, start_date=LOGICAL):
        op = PythonOperator(
            task_id="p",
            python_callable=print,
            op_args=["{{ ds }}", 7, ("{{ ti.task_id }}",)],
            op_kwargs={"k": {"inner": ["{{ run_id }}"]}},
            templates_dict={"when": "{{ ts }}"},
        )
    copy = rendered_copy(op, _context(op))
    assert copy.op_args == ["2024-03-05", 7, ("p",)]
    assert copy.op_kwargs == {"k": {"inner": ["manual__x"]}}
    assert copy.templates_dict == {"when": "2024-03-05T06:07:08+00:00"}
    assert op.op_args[0] == "{{ ds }}" and op.templates_dict == {"when": "{{ ts }}"}


def test_native_rendering_user_macros_and_filters() -> None:
    with DAG(
        "native",
        schedule=None,
        start_date=LOGICAL,
        render_template_as_native_obj=True,
        user_defined_macros={"limit": 3},
        user_defined_filters={"double": lambda v: v * 2},
    ):
        op = PythonOperator(task_id="p", python_callable=print, op_kwargs={"rows": "{{ [1, 2] * limit }}"})
        text = PythonOperator(task_id="q", python_callable=print, op_args=["{{ limit | double }}"])
    assert _rendered(op, "op_kwargs") == {"rows": [1, 2, 1, 2, 1, 2]}
    assert _rendered(text, "op_args") == [6]


def test_script_templates_are_read_next_to_the_dag_file_or_in_the_searchpath(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("echo {{ ds }} from a file\n")
    with DAG("files", schedule=None, start_date=LOGICAL, template_searchpath=str(tmp_path)) as dag:
        op = BashOperator(task_id="b", bash_command="run.sh")
        missing = BashOperator(task_id="m", bash_command="missing.sh")
        spaced = BashOperator(task_id="s", bash_command="run.sh ")  # Airflow's trick: not a file
    assert dag.template_searchpath == [str(tmp_path)]
    assert _rendered(op, "bash_command") == "echo 2024-03-05 from a file"
    assert _rendered(spaced, "bash_command") == "run.sh "
    with pytest.raises(
        TemplateError, match=r"task 'm': TemplateNotFound: 'missing\.sh' not found in search paths"
    ):
        _rendered(missing, "bash_command")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ nope }}", "UndefinedError: 'nope' is undefined"),
        ("{{ ds ", "TemplateSyntaxError: unexpected end of template"),
        ("{{ ''.__class__ }}", "SecurityError: access to attribute '__class__'"),
    ],
)
def test_template_errors_name_the_field_and_jinja_reason(template: str, message: str) -> None:
    with DAG("bad", schedule=None, start_date=LOGICAL):
        op = BashOperator(task_id="b", bash_command=template, env={"A": "fine"})
    with pytest.raises(TemplateError, match=f"field 'bash_command' of task 'b': {message}"):
        _rendered(op, "bash_command")


def test_a_custom_operator_declares_its_own_template_fields_and_extensions(tmp_path: Path) -> None:
    class SqlOperator(BaseOperator):
        template_fields = ("sql", "parameters")
        template_ext = (".sql",)

        def __init__(self, task_id: str, sql: str, parameters: dict[str, Any], **kwargs: Any) -> None:
            super().__init__(task_id, **kwargs)
            self.sql = sql
            self.parameters = parameters

    (tmp_path / "daily.sql").write_text("select * from t where day = '{{ ds }}'")
    with DAG("custom", schedule=None, start_date=LOGICAL, template_searchpath=[str(tmp_path)]):
        op = SqlOperator("q", sql="daily.sql", parameters={"limit": "{{ params.get('limit', 10) }}"})
    copy = rendered_copy(op, _context(op))
    assert (copy.sql, copy.parameters) == ("select * from t where day = '2024-03-05'", {"limit": "10"})


def test_tries_of_a_dag_share_one_environment_and_its_compiled_templates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import jinja2

    from minisched.authoring import templating

    built: list[object] = []
    compiled: list[str] = []
    real_build, real_compile = templating.template_environment, jinja2.Environment.from_string
    monkeypatch.setattr(templating, "template_environment", lambda dag: built.append(dag) or real_build(dag))

    def counting_compile(self: jinja2.Environment, source: str, *args: Any, **kwargs: Any) -> Any:
        compiled.append(source)
        return real_compile(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "from_string", counting_compile)
    (tmp_path / "run.sh").write_text("echo one {{ ti.try_number }}\n")
    with DAG("shared", schedule=None, start_date=LOGICAL, template_searchpath=str(tmp_path)) as dag:
        op = BashOperator(task_id="b", bash_command="{{ ds }} {{ ti.try_number }}")
        script = BashOperator(task_id="s", bash_command="run.sh")
    for try_number in (1, 2, 3):
        context = task_context(
            op,
            run_id="manual__x",
            logical_date=LOGICAL,
            data_interval_start=LOGICAL,
            data_interval_end=LOGICAL,
            try_number=try_number,
        )
        assert rendered_copy(op, context).bash_command == f"2024-03-05 {try_number}"
        assert rendered_copy(script, context).bash_command == f"echo one {try_number}"
    assert built == [dag]
    assert compiled == ["{{ ds }} {{ ti.try_number }}"]

    # An edited template file is read again; changed DAG settings get a new environment.
    (tmp_path / "run.sh").write_text("echo two, somewhat longer\n")
    os.utime(tmp_path / "run.sh", (1, 1))
    assert _rendered(script, "bash_command") == "echo two, somewhat longer"
    dag.user_defined_macros = {"who": "macro"}
    op.bash_command = "{{ who }}"
    assert _rendered(op, "bash_command") == "macro"
    assert built == [dag, dag]
