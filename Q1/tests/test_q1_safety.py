"""Safe on someone's real database: refusals, replace, reruns, injection, atomic seeding, clean errors."""

import json

import pandas as pd
import pytest

import sql as q1_cli
from event_generator import generate_events
from q1_testing import events_frame, load_events, read_back
from seed import SeedRefused, seed_events

ROWS = events_frame([("2017-04-01 10:00:00", "a", "FIRST_INSTALL"), ("2017-04-02 10:00:00", "a", "APP_OPEN")])


def _count(conn, table):
    with conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{table}"')
        return cur.fetchone()[0]


def _table_exists(conn, table):
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{table}"',))
        return cur.fetchone()[0]


@pytest.mark.slow
def test_refuses_non_empty_foreign_table_and_leaves_it_intact(conn, table_name):
    with conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{table_name}" (time timestamp, uid text, event_name text, note text)')
        cur.execute(f"""INSERT INTO "{table_name}" VALUES ('2020-01-01', 'x', 'FIRST_INSTALL', 'keep me')""")
    conn.commit()
    with pytest.raises(SeedRefused, match="--replace"):
        seed_events(conn, table_name, [ROWS], stamp={"v": 1})
    with conn.cursor() as cur:
        cur.execute(f'SELECT note FROM "{table_name}"')
        assert cur.fetchall() == [("keep me",)]


@pytest.mark.slow
def test_replace_reseeds_and_identical_rerun_reuses(conn, table_name):
    load_events(conn, table_name, events_frame([("2017-04-01 00:00:00", "old", "A")]))
    report = seed_events(conn, table_name, [ROWS], stamp={"v": 2}, replace=True)
    assert (report.action, report.rows) == ("replaced", 2)
    assert set(read_back(conn, table_name)["uid"]) == {"a"}
    again = seed_events(conn, table_name, iter(()), stamp={"v": 2})  # same stamp: nothing is loaded
    assert again.action == "reused" and _count(conn, table_name) == 2


@pytest.mark.slow
def test_fills_existing_empty_table_without_touching_its_schema(conn, table_name):
    with conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{table_name}" (time timestamp, uid text, event_name text)')
    conn.commit()
    assert seed_events(conn, table_name, [ROWS], stamp={"v": 3}).action == "filled existing empty table"
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", (table_name,))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT obj_description(%s::regclass, 'pg_class')", (f'"{table_name}"',))
        assert cur.fetchone()[0] is None
    assert _count(conn, table_name) == 2


@pytest.mark.slow
def test_failure_mid_seed_leaves_no_table(conn, table_name):
    def frames_then_failure():
        yield ROWS
        raise RuntimeError("generator failed after the first chunk")

    with pytest.raises(RuntimeError):
        seed_events(conn, table_name, frames_then_failure(), stamp={"v": 4})
    assert not _table_exists(conn, table_name)


@pytest.mark.slow
def test_hostile_table_name_is_refused_and_nothing_runs(conn, table_name, pg_dsn, capsys):
    load_events(conn, table_name, ROWS)
    code = q1_cli.main(["--dsn", pg_dsn, "--table", f"x; DROP TABLE {table_name}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "not a plain identifier" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _table_exists(conn, table_name)


def _one_line_error(capsys) -> str:
    """The single stderr line of a user mistake (no traceback, nothing on stdout)."""
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_unreachable_server_is_one_line_exit_2(capsys):
    code = q1_cli.main(["--dsn", "postgresql://nobody:secret@127.0.0.1:1/offsite"])
    err = _one_line_error(capsys)
    assert code == 2
    assert err.startswith(
        "error: cannot connect to PostgreSQL at 127.0.0.1:1/offsite (connection refused; from --dsn). "
    )
    assert "Is the server running" not in err and "?." not in err and "\t" not in err
    for needed in ("embedded", "docker compose up -d", "DATABASE_URL"):
        assert needed in err


def test_invalid_dsn_is_one_line_exit_2(capsys):
    code = q1_cli.main(["--dsn", "not a dsn"])
    err = _one_line_error(capsys)
    assert code == 2
    assert err.startswith('error: invalid PostgreSQL DSN from --dsn (missing "=" after "not"')
    for needed in ("postgresql://user:password@host:5432/db", "embedded", "docker compose up -d", "DATABASE_URL"):
        assert needed in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tz", "Mars/Olympus"], "unknown time zone"),
        (["--window-start", "2017-03-30"], "before the cohort's first day"),
        (["--no-seed", "--table", "no_such_table"], "does not exist"),
    ],
)
@pytest.mark.slow
def test_user_mistakes_are_one_line_exit_2(pg_dsn, capsys, argv, message):
    assert q1_cli.main(["--dsn", pg_dsn, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_default_run_twice_then_json_matches_library(pg_dsn, table_name, capsys, conn):
    argv = ["--dsn", pg_dsn, "--table", table_name]
    assert q1_cli.main(argv) == 0
    first = capsys.readouterr().out
    assert "WITH cohort AS" in first and "retained:" in first
    assert q1_cli.main(argv + ["--json", "--list-users"]) == 0  # rerun: reuses the identical seed
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {
        *("cohort_start", "period", "window_start", "window_end"),
        *("cohort_size", "retained_users", "retention_rate", "retained_uids"),
    }
    stored = read_back(conn, table_name)
    expected = pd.concat(generate_events("app"))
    assert len(stored) == len(expected) and set(stored["uid"]) == set(expected["uid"])
    assert out["retained_users"] == len(out["retained_uids"])
    assert out["retention_rate"] == pytest.approx(out["retained_users"] / out["cohort_size"])


@pytest.mark.slow
def test_cli_report_writes_csv_and_png(pg_dsn, table_name, tmp_path, capsys):
    argv = ["--dsn", pg_dsn, "--table", table_name, "--report", "--days", "3", "--out", str(tmp_path)]
    assert q1_cli.main(argv) == 0
    table = pd.read_csv(tmp_path / "retention_table.csv", index_col="cohort_start")
    assert list(table.columns) == ["cohort_size", "period_0", "period_1", "period_2", "period_3"]
    cohorts, overall = table.drop(index="all cohorts"), table.loc["all cohorts"]
    assert (cohorts["period_0"] == 1.0).all() and overall["cohort_size"] == cohorts["cohort_size"].sum() == 1_000
    known = cohorts["period_3"].notna()
    weighted = (cohorts["period_3"] * cohorts["cohort_size"])[known].sum() / cohorts["cohort_size"][known].sum()
    assert overall["period_3"] == pytest.approx(weighted, abs=1e-6)
    assert (tmp_path / "retention_heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert "period_3" in capsys.readouterr().out


@pytest.mark.slow
def test_report_out_is_a_file_is_one_line_exit_2_before_seeding(pg_dsn, conn, table_name, tmp_path, capsys):
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    code = q1_cli.main(["--dsn", pg_dsn, "--table", table_name, "--report", "--out", str(a_file)])
    err = _one_line_error(capsys)
    assert code == 2
    assert err == f"error: --out {a_file}: {a_file} is a file, not a folder; pass --out with a folder"
    assert a_file.read_text() == "root:x:0:0\n"
    assert not _table_exists(conn, table_name)  # refused before seeding


@pytest.mark.slow
def test_report_refuses_to_replace_its_files_without_overwrite(pg_dsn, conn, table_name, tmp_path, capsys):
    argv = ["--dsn", pg_dsn, "--table", table_name, "--report", "--days", "2", "--out", str(tmp_path)]
    assert q1_cli.main(argv) == 0
    capsys.readouterr()
    csv_path, png_path = tmp_path / "retention_table.csv", tmp_path / "retention_heatmap.png"
    csv_path.write_text("keep me\n")  # a hand-edited result must survive a rerun
    png_before = png_path.read_bytes()

    assert q1_cli.main(argv) == 2
    err = _one_line_error(capsys)
    assert err == (f"error: {csv_path} already exists; pass --overwrite to replace it, or choose another --out")
    assert csv_path.read_text() == "keep me\n" and png_path.read_bytes() == png_before

    csv_path.unlink()  # only the PNG is left: still refused, naming it
    assert q1_cli.main(argv) == 2
    assert _one_line_error(capsys).startswith(f"error: {png_path} already exists; pass --overwrite")
    assert not csv_path.exists() and png_path.read_bytes() == png_before

    assert q1_cli.main(argv + ["--overwrite"]) == 0
    assert pd.read_csv(csv_path, index_col="cohort_start").columns[-1] == "period_2"
    assert q1_cli.main(argv + ["--json"]) == 0  # JSON writes no files, so needs no --overwrite


@pytest.mark.slow
def test_report_existing_file_is_refused_before_seeding(pg_dsn, conn, table_name, tmp_path, capsys):
    (tmp_path / "retention_heatmap.png").write_bytes(b"mine")
    code = q1_cli.main(["--dsn", pg_dsn, "--table", table_name, "--report", "--out", str(tmp_path)])
    assert code == 2 and "--overwrite" in _one_line_error(capsys)
    assert not _table_exists(conn, table_name) and (tmp_path / "retention_heatmap.png").read_bytes() == b"mine"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["--cohort-date", "2017-13-01"],
            "sql.py: error: argument --cohort-date: expected a date as YYYY-MM-DD, got '2017-13-01' (see --help)",
        ),
        (["--days", "x"], "sql.py: error: argument --intervals/--days: invalid int value: 'x' (see --help)"),
        (["--bogus"], "sql.py: error: unrecognized arguments: --bogus (see --help)"),
    ],
)
def test_argument_errors_are_one_line_exit_2(capsys, argv, expected):
    with pytest.raises(SystemExit) as exited:
        q1_cli.main(argv)
    assert exited.value.code == 2
    assert _one_line_error(capsys) == expected  # no usage block


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--tz", "localtime"], "error: unknown time zone 'localtime'; use an IANA name such as UTC or Asia/Hong_Kong"),
        (["--tz", "posix/Asia/Hong_Kong"], "error: unknown time zone 'posix/Asia/Hong_Kong'; use an IANA name"),
        (["--report", "--out", "/proc/q1-report"], "error: --out /proc/q1-report: cannot write there ("),
        (["--table", "events\n"], "error: table name 'events\\n' is not a plain identifier"),
        (["--user-col", "uid; DROP TABLE x"], "error: --user-col 'uid; DROP TABLE x' is not a plain column name"),
        (["--mode", "on-or-after", "--window-end", "2017-04-05"], "error: --window-end does not apply with --mode"),
        (["--returning-event", ""], "error: --returning-event '' is not a usable event name"),
        (["--timeout", "0"], "sql.py: error: argument --timeout: expected a number of seconds > 0, got '0'"),
    ],
)
@pytest.mark.slow
def test_bad_options_are_one_line_exit_2_before_seeding(pg_dsn, conn, table_name, capsys, argv, expected):
    try:
        code = q1_cli.main(["--dsn", pg_dsn, "--table", table_name, *argv])  # a later --table wins
    except SystemExit as exited:  # argparse's own errors
        code = exited.code
    assert code == 2
    line = _one_line_error(capsys)
    assert line.startswith(expected), line
    assert "\n" not in line and not _table_exists(conn, table_name)


@pytest.mark.slow
def test_list_users_prints_whole_bigint_uids(pg_dsn, conn, table_name, capsys):
    with conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{table_name}" (time timestamp, uid bigint, event_name text)')
        cur.execute(
            f"""INSERT INTO "{table_name}" VALUES ('2017-04-01 10:00', 9007199254740993, 'FIRST_INSTALL'),
                ('2017-04-03 10:00', 9007199254740993, 'APP_OPEN'), ('2017-04-01 11:00', 12, 'FIRST_INSTALL')"""
        )
    conn.commit()
    argv = ["--dsn", pg_dsn, "--table", table_name, "--no-seed", "--list-users"]
    assert q1_cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "retained uids: 9007199254740993"
    assert q1_cli.main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["retained_uids"] == ["9007199254740993"] and (out["cohort_size"], out["retained_users"]) == (2, 1)


@pytest.mark.slow
def test_report_over_3000_days_works_and_keeps_the_png_small(pg_dsn, table_name, tmp_path, capsys):
    argv = ["--dsn", pg_dsn, "--table", table_name, "--report", "--days", "3000", "--out", str(tmp_path), "--json"]
    assert q1_cli.main(argv) == 0
    cohorts = json.loads(capsys.readouterr().out)["cohorts"]
    assert len(cohorts) == 10 and len(cohorts[0]) == 3_003  # cohort_start, cohort_size, period_0..period_3000
    assert q1_cli.main(argv[:-1]) == 0
    header = (tmp_path / "retention_heatmap.png").read_bytes()[:24]
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert width <= 2_400 and height <= 3_000
    assert pd.read_csv(tmp_path / "retention_table.csv", index_col="cohort_start").shape == (11, 3_002)


@pytest.mark.parametrize(
    "argv",
    [
        ["--intervals", "999999999"],
        ["--intervals", "3000000"],
        ["--period", "month", "--intervals", "200000"],
        ["--cohort-date", "9999-12-31"],
        ["--window-end", "9999-12-31"],
    ],
)
def test_dates_past_the_calendar_are_one_line_exit_2(capsys, argv):
    assert q1_cli.main(["--no-seed", *argv]) == 2
    assert _one_line_error(capsys).startswith("error: the cohort or its window reaches past 9999-12-30")


@pytest.mark.slow
def test_report_without_any_cohort_event_says_so_and_draws_no_empty_heatmap(
    pg_dsn, conn, table_name, tmp_path, capsys, recwarn
):
    load_events(conn, table_name, events_frame([("2017-04-01 10:00:00", "a", "first_open")]))
    conn.commit()
    out = tmp_path / "report"
    argv = ["--dsn", pg_dsn, "--no-seed", "--table", table_name, "--report", "--out", str(out)]
    assert q1_cli.main(argv) == 0
    assert f"no cohort: {table_name} has no FIRST_INSTALL event" in capsys.readouterr().err
    assert not out.exists() and [str(w.message) for w in recwarn] == []
