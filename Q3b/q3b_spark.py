"""Q3b on Apache Spark: the user-user neighbour search as Spark joins, with the local model's candidate rule.

The local batch's expensive step is finding each user's ``k`` nearest users. Spark does it here with the same rule as
``neighbours.inverted_neighbours`` (the local production route), so that no artist can make the join quadratic:

1. posting lists: for every artist, the ``posting_cap`` users with the largest weight on it (ties: lower row);
2. candidates of a query user q: the users in the lists of q's artists, except q, scored by the partial dot product
   over those capped lists; the best ``n_candidates`` (ties: lower row) are kept;
3. those candidates are re-scored by the exact cosine of the full feature rows (profile columns included) and the
   best ``k`` kept (ties: lower row).

Rows of step 2 number at most (entries of the query rows) x ``posting_cap``, and of step 3 ``n_candidates`` x (entries
of the query rows): linear in the data whatever the artists' popularity (an uncapped self-join on artist costs the
sum of listeners squared). Everything else in the batch (loading, features, the vote/scoring rule, popularity fill and
cold start, the output frames) is the local model's code: :class:`SparkNeighbourSearch` plugs into
``user_knn.build_batch(..., neighbour_search=...)``. :func:`write_parquet` writes the batch's frames as Parquet
folders of part files, the layout a cluster job writes and ``pandas.read_parquet`` reads back.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import scipy.sparse as sp

import neighbours


class SparkUnavailableError(RuntimeError):
    """Spark cannot start here (no Java, no pyspark, a master it cannot use): the message says what to do."""


class SparkJobError(RuntimeError):
    """A Spark job failed (an unreachable cluster, out of memory, an unwritable output): one line with the cause."""


def spark_error_reason(error: Exception) -> str:
    """The innermost cause of a Spark/Py4J error as one line (a Java error's text holds its whole stack)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:") for line in lines if line.startswith("Caused by:")]
    reason = causes[-1] if causes else next((line for line in lines if "Exception" in line), "")
    reason = (reason or (lines[0] if lines else type(error).__name__)).lstrip(": ").strip()
    if "S3AFileSystem" in reason:
        reason += " (s3a:// needs the hadoop-aws jar: see SCALING.md)"
    return reason[:300]


def _spark_errors() -> tuple:
    """The exception types of a Spark or Py4J failure that are not an error in our own Python code."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return PySparkException, Py4JError


def check_spark_available() -> None:
    """Raise SparkUnavailableError with the install hint when pyspark or a Java runtime is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            "--engine spark needs pyspark: pip install -r requirements-spark.txt (or run make test once)"
        ) from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK)) and not shutil.which("java"):
        raise SparkUnavailableError(
            "--engine spark needs Java 17 or later: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
        )


def spark_session(master: str | None = None, app_name: str = "q3b-user-knn", conf: dict | None = None):
    """A SparkSession for the Q3b batch (an existing one is reused, e.g. under spark-submit).

    master: a Spark master URL ('local[*]', 'local[2]', 'spark://host:7077', 'yarn', 'k8s://...'); None: the one
    spark-submit was given, or local[*] when run as a plain script.
    conf: extra Spark settings. Raises SparkUnavailableError when Java or pyspark is missing.
    """
    check_spark_available()
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # started by spark-submit, which set the master and Python
    if (master or ("cluster" if submitted else "local")).startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers: this interpreter, with its packages
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    builder = (
        builder.appName(app_name)
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if (master or ("cluster" if submitted else "local")).startswith("local"):
        builder = builder.config("spark.driver.memory", "3g")  # local mode: the driver's heap holds the tasks too
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    # spark.sql.shuffle.partitions stays at Spark's 200, which adaptive execution merges into partitions of about
    # 64 MB: the pair tables grow with the data, and 8 partitions at 20K users ran tasks out of execution memory
    try:
        return builder.getOrCreate()
    except _spark_errors() as error:  # e.g. a master URL Spark does not know, a cluster that does not answer
        raise SparkUnavailableError(f"Spark could not start (--master {master}): {spark_error_reason(error)}") from None


def feature_entries(spark, unit: sp.csr_matrix):
    """The stored entries of ``unit`` as a DataFrame (u int, col int, w double)."""
    coo = unit.tocoo()
    frame = pd.DataFrame(
        {"u": coo.row.astype(np.int32), "col": coo.col.astype(np.int32), "w": coo.data.astype(np.float64)}
    )
    return spark.createDataFrame(frame, "u int, col int, w double")


def neighbour_pairs(
    entries,
    query,
    n_profile: int,
    k: int,
    posting_cap: int | None = neighbours.POSTING_CAP,
    n_candidates: int | None = None,
):
    """The ``k`` nearest rows of each query row as a DataFrame (q, c, sim, rank), by the candidate rule above.

    entries: DataFrame (u, col, w) of the L2-normalised feature rows (see :func:`feature_entries`); columns below
    ``n_profile`` are the profile block, the others artists. query: DataFrame with one column ``q`` of row indices.
    n_candidates: candidates re-scored exactly per query (default ``max(neighbours.N_CANDIDATES, k)``).
    posting_cap None: every other row is a candidate (all pairs, the exact route; small data only).
    Ties rank by lower row at every step. Lazy: nothing runs until the result is read.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if posting_cap is None:
        rows = entries.select(F.col("u").alias("c")).distinct()
        candidates = query.crossJoin(rows).where(F.col("q") != F.col("c"))
    else:
        n_candidates = max(n_candidates or neighbours.N_CANDIDATES, k)
        plays = entries.where((F.col("col") >= n_profile) & (F.col("w") > 0))
        postings = (
            plays.withColumn("r", F.row_number().over(Window.partitionBy("col").orderBy(F.desc("w"), F.asc("u"))))
            .where(F.col("r") <= posting_cap)
            .select("col", F.col("u").alias("c"), F.col("w").alias("wc"))
        )
        query_plays = plays.join(query.withColumnRenamed("q", "u"), "u").select(
            F.col("u").alias("q"), "col", F.col("w").alias("wq")
        )
        candidates = (
            query_plays.join(postings, "col")
            .where(F.col("q") != F.col("c"))
            .groupBy("q", "c")
            .agg(F.sum(F.col("wq") * F.col("wc")).alias("partial"))
            .withColumn("r", F.row_number().over(Window.partitionBy("q").orderBy(F.desc("partial"), F.asc("c"))))
            .where(F.col("r") <= n_candidates)
            .select("q", "c")
        )
    query_rows = entries.select(F.col("u").alias("q"), "col", F.col("w").alias("wq"))
    candidate_rows = entries.select(F.col("u").alias("c"), "col", F.col("w").alias("wc"))
    exact = (
        candidates.join(query_rows, "q")
        .join(candidate_rows, ["c", "col"])
        .groupBy("q", "c")
        .agg(F.sum(F.col("wq") * F.col("wc")).alias("sim"))
    )
    return (
        exact.withColumn("rank", F.row_number().over(Window.partitionBy("q").orderBy(F.desc("sim"), F.asc("c"))))
        .where(F.col("rank") <= k)
        .select("q", "c", "sim", "rank")
    )


class SparkNeighbourSearch:
    """The neighbour search of ``user_knn.build_batch(..., neighbour_search=SparkNeighbourSearch(spark))``.

    Called as ``idx, sim = search(unit, n_profile, k, query)`` with ``unit`` the CSR (n_pool, n_features) of
    L2-normalised feature rows (profile block first, ``n_profile`` columns) and ``query`` row indices; returns
    ``idx`` (len(query), k) int32 rows of ``unit``, best first, -1 padded, and ``sim`` float32 cosines, -inf
    padded. ``posting_cap`` None: all pairs (the exact route, small data only). ``timings`` collects the wall
    seconds of the Spark job. Raises SparkJobError when the Spark job fails.
    """

    def __init__(self, spark, posting_cap: int | None = neighbours.POSTING_CAP, n_candidates: int | None = None):
        self.spark, self.posting_cap, self.n_candidates = spark, posting_cap, n_candidates
        self.timings: dict = {}

    def __call__(self, unit: sp.csr_matrix, n_profile: int, k: int, query) -> tuple[np.ndarray, np.ndarray]:
        import time

        query = np.asarray(query, dtype=np.int64)
        idx = np.full((len(query), k), -1, np.int32)
        sim = np.full((len(query), k), -np.inf, np.float32)
        if not len(query) or k < 1:
            return idx, sim
        start = time.perf_counter()
        entries = feature_entries(self.spark, unit.tocsr())
        queries = self.spark.createDataFrame(pd.DataFrame({"q": query.astype(np.int32)}), "q int")
        # Spark's size estimates after the aggregations can be far too small, and a broadcast of the pair tables
        # runs the driver out of heap: sort-merge joins only, while this job runs
        threshold = self.spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
        self.spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
        try:
            pairs = neighbour_pairs(entries, queries, n_profile, k, self.posting_cap, self.n_candidates).toPandas()
        except _spark_errors() as error:
            raise SparkJobError(f"the Spark neighbour search failed: {spark_error_reason(error)}") from None
        finally:
            self.spark.conf.set("spark.sql.autoBroadcastJoinThreshold", threshold)
        self.timings["spark neighbours"] = time.perf_counter() - start
        position = pd.Series(np.arange(len(query)), index=query)  # query rows are distinct
        rows = position.loc[pairs["q"].to_numpy()].to_numpy()
        ranks = pairs["rank"].to_numpy() - 1
        idx[rows, ranks] = pairs["c"].to_numpy(np.int32)
        sim[rows, ranks] = pairs["sim"].to_numpy(np.float32)
        return idx, sim


def write_parquet(spark, frame: pd.DataFrame, path, key: str, partitions: int, overwrite: bool = False) -> None:
    """Write ``frame`` as a Parquet folder of ``partitions`` part files at ``path`` (local or a Hadoop URI), rows
    hash-partitioned by ``key`` and sorted by (key, rank) within each file. Raises FileExistsError when ``path``
    exists and not ``overwrite``, SparkJobError when Spark fails to write it."""
    if "://" not in str(path) and os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: exists; pass --force to overwrite it")
    table = spark.createDataFrame(frame) if len(frame) else spark.createDataFrame(frame, _empty_schema(frame))
    try:
        (
            table.repartition(partitions, key)
            .sortWithinPartitions(key, "rank")
            .write.mode("overwrite" if overwrite else "errorifexists")
            .parquet(str(path))
        )
    except _spark_errors() as error:
        raise SparkJobError(f"{path}: Spark could not write it: {spark_error_reason(error)}") from None


def _empty_schema(frame: pd.DataFrame) -> str:
    types = {"int32": "int", "int64": "bigint", "float64": "double", "float32": "float"}
    return ", ".join(f"`{c}` {types.get(str(t), 'string')}" for c, t in frame.dtypes.items())
