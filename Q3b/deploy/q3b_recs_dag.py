"""Minimal Airflow DAG for the daily Q3b recommendation batch (example; untested here: Airflow is not installed).

Copy into the Airflow dags folder and set the Airflow Variable ``q3b_repo`` (checkout with .venv) and the
environment variable RECS_STORE of the workers (e.g. postgresql://recs@db/recs).  Two tasks: the batch writes and
switches to a new version; the check fails the run unless the store's newest version was written today.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.models import Variable
from airflow.operators.bash import BashOperator

REPO = Variable.get("q3b_repo", default_var="/srv/offsite-test")

with DAG(
    dag_id="q3b_daily_recommendations",
    schedule="15 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # the store also refuses a second concurrent writer
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["q3b", "recommendations"],
) as dag:
    batch = BashOperator(
        task_id="batch",
        bash_command=f"cd {REPO} && .venv/bin/python Q3b/recommender.py batch --data-dir /srv/lastfm-360k"
        ' --force --store "$RECS_STORE"',
        execution_timeout=timedelta(hours=2),
    )
    check = BashOperator(
        task_id="check_new_version",
        bash_command=(
            f'cd {REPO} && .venv/bin/python Q3b/recommender.py versions --store "$RECS_STORE"'
            ' | head -n 1 | grep -q "written $(date -u +%Y-%m-%d)"'
        ),
    )
    batch >> check
