"""AirflowSkipException, AirflowFailException and trigger rules (the TriggerRule enum)."""

from datetime import datetime, timezone

from airflow.decorators import dag, task
from airflow.exceptions import AirflowFailException, AirflowSkipException
from airflow.operators.empty import EmptyOperator
from airflow.utils.trigger_rule import TriggerRule


@dag(schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False, tags=["rules"])
def skips_and_rules():
    @task
    def maybe_skip():
        raise AirflowSkipException("nothing new today")

    @task
    def always_works():
        print("worked")

    @task(retries=3)
    def hard_fail():
        raise AirflowFailException("bad credentials: retrying will not help")

    skipped = maybe_skip()
    fine = always_works()
    failed = hard_fail()
    after_skip = EmptyOperator(task_id="after_skip")  # all_success: skipped upstream -> skipped
    none_failed = EmptyOperator(task_id="none_failed", trigger_rule=TriggerRule.NONE_FAILED)
    one_failed = EmptyOperator(task_id="one_failed", trigger_rule=TriggerRule.ONE_FAILED)
    cleanup = EmptyOperator(task_id="cleanup", trigger_rule=TriggerRule.ALL_DONE)
    skipped >> after_skip
    [skipped, fine] >> none_failed
    [fine, failed] >> one_failed
    [after_skip, none_failed, one_failed] >> cleanup


skips_and_rules()
