"""Query plans at 1M events: the cohort query reads indexes when the table has them, and is set-based without them
(each scan of the table runs once, joined by hash, never once per cohort user)."""

import json

import pytest

from event_generator import app_events
from retention import RetentionQuery, cohort_retention, cohort_retention_sql, missing_index_hint
from seed import seed_events

pytestmark = pytest.mark.slow  # every test here runs on the embedded PostgreSQL


def _plan_nodes(node, parent=""):
    yield node, parent
    for child in node.get("Plans", []):
        yield from _plan_nodes(child, child.get("Parent Relationship", ""))


def _explain(conn, query):
    statement, params = cohort_retention_sql(query)
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + cur.mogrify(statement, params).decode())
        plan = cur.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return list(_plan_nodes(plan[0]["Plan"]))


def test_cohort_query_plans_with_and_without_indexes(conn, table_name):
    seed_events(conn, table_name, app_events(1_000_000, 100_000), stamp={"explain": table_name})
    query = RetentionQuery(table=table_name, tz="Asia/Hong_Kong")
    indexed = cohort_retention(conn, query)
    assert indexed.cohort_size > 5_000  # a real cohort, not an empty short-cut
    assert missing_index_hint(conn, query) is None

    nodes = _explain(conn, query)
    scans = [n for n, _ in nodes if n.get("Relation Name") == table_name]
    assert scans and all(n["Node Type"] != "Seq Scan" for n in scans), [n["Node Type"] for n in scans]
    assert {n["Index Name"] for n, _ in nodes if "Index Name" in n} == {
        f"{table_name}_install_time_idx",
        f"{table_name}_uid_time_idx",
    }

    with conn.cursor() as cur:
        cur.execute(f'DROP INDEX "{table_name}_install_time_idx", "{table_name}_uid_time_idx"')
        cur.execute(f'ANALYZE "{table_name}"')
    conn.commit()
    nodes = _explain(conn, query)
    scans = [(n, parent) for n, parent in nodes if n.get("Relation Name") == table_name]
    # Two scans: the cohort events up to the cohort's end, and the window; each runs once (or once per parallel
    # worker), none inside a correlated SubPlan.
    assert len(scans) == 2 and all(n["Node Type"] in ("Seq Scan", "Parallel Seq Scan") for n, _ in scans)
    assert all(parent != "SubPlan" for _, parent in nodes)
    assert all(n["Actual Loops"] <= 1 + n.get("Workers Launched", 2) for n, _ in scans)
    assert any(n["Node Type"] == "Hash Join" and "Semi" in n.get("Join Type", "") for n, _ in nodes)
    unindexed = cohort_retention(conn, query)
    assert (unindexed.cohort_size, unindexed.retained_users) == (indexed.cohort_size, indexed.retained_users)
    hint = missing_index_hint(conn, query)
    assert hint.startswith(f"hint: {table_name} has no index on (uid, time)")
    assert f'CREATE INDEX "{table_name}_uid_time_idx" ON "{table_name}" ("uid", "time")' in hint
