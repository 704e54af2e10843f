"""Airflow DAG for the daily Q3b batch on a Spark cluster (example; untested here: Airflow is not installed).

The Spark variant of ``q3b_recs_dag.py``: the neighbour search runs on the cluster (``recommender.py batch --engine
spark`` under spark-submit; no Python code runs on the executors, so no --py-files), the rest of the batch in the
driver. Set the Airflow Variables ``q3b_repo`` (checkout
with .venv), ``q3b_spark_master`` (e.g. yarn, k8s://https://..., spark://host:7077) and ``q3b_lastfm`` (folder of the
two Last.fm files, readable by the driver), and RECS_STORE in the workers' environment. Three tasks: the batch writes
the partitioned Parquet folders and a new store version; the check fails the run if the store has no version from
today.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.models import Variable
from airflow.operators.bash import BashOperator

REPO = Variable.get("q3b_repo", default_var="/srv/offsite-test")
MASTER = Variable.get("q3b_spark_master", default_var="yarn")
LASTFM = Variable.get("q3b_lastfm", default_var="/srv/lastfm-360k")
OUT = "/srv/recs/{{ ds }}"  # one folder per run day: recommendations.parquet/ and recommendations_fallbacks.parquet/

with DAG(
    dag_id="q3b_daily_recommendations_spark",
    schedule="15 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # the store also refuses a second concurrent writer
    default_args={"retries": 1, "retry_delay": timedelta(minutes=15)},
    tags=["q3b", "recommendations", "spark"],
) as dag:
    prepare = BashOperator(task_id="prepare_output", bash_command=f"mkdir -p {OUT}")
    batch = BashOperator(
        task_id="batch_on_spark",
        bash_command=(
            f"cd {REPO} && PYSPARK_PYTHON=.venv/bin/python spark-submit --master {MASTER} --deploy-mode client"
            " --conf spark.sql.shuffle.partitions=400 --conf spark.executor.memory=4g --conf spark.driver.memory=8g"
            f" Q3b/recommender.py batch --engine spark --data-dir {LASTFM} --partitions 64"
            f' --out {OUT}/recommendations.parquet --force --store "$RECS_STORE"'
        ),
        execution_timeout=timedelta(hours=3),
    )
    check = BashOperator(
        task_id="check_new_version",
        bash_command=(
            f'cd {REPO} && .venv/bin/python Q3b/recommender.py versions --store "$RECS_STORE"'
            ' | head -n 1 | grep -q "written $(date -u +%Y-%m-%d)"'
        ),
    )
    prepare >> batch >> check
