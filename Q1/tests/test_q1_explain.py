"""The cohort query stays sargable: at 1M events PostgreSQL answers it from the indexes, with no sequential scan."""

import json

from event_generator import app_events
from retention import RetentionQuery, cohort_retention_sql
from seed import seed_events


def _plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def test_cohort_query_uses_indexes_at_1m_rows(conn, table_name):
    seed_events(conn, table_name, app_events(1_000_000, 100_000), stamp={"explain": table_name})
    statement, params = cohort_retention_sql(RetentionQuery(table=table_name, tz="Asia/Hong_Kong"))
    with conn.cursor() as cur:
        cur.execute(statement, params)
        cohort_size = cur.fetchone()[0]
        cur.execute("EXPLAIN (FORMAT JSON) " + cur.mogrify(statement, params).decode())
        plan = cur.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scans = [n for n in _plan_nodes(plan[0]["Plan"]) if n.get("Relation Name") == table_name]
    assert cohort_size > 5_000  # a real cohort, not an empty short-cut
    # Bitmap Heap Scans read only the pages their Bitmap Index Scan child found; a Seq Scan would read all.
    assert scans and all(n["Node Type"] != "Seq Scan" for n in scans), [n["Node Type"] for n in scans]
    indexes = {n["Index Name"] for n in _plan_nodes(plan[0]["Plan"]) if "Index Name" in n}
    assert indexes == {f"{table_name}_install_time_idx", f"{table_name}_uid_time_idx"}
