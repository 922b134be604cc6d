# A script template: BashOperator(bash_command="templating_report.sh") renders it, then runs it.
echo "report for {{ dag.dag_id }} on {{ ds }} (try {{ ti.try_number }}, {{ ts_nodash }})"
