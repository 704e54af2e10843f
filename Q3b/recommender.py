"""Command line for Q3b: user-user nearest-neighbour artist recommendations on Last.fm 360K.

    python Q3b/recommender.py generate --users 359347 --out-dir Q3b/data/full
    python Q3b/recommender.py batch [--plays F --profiles F] [--out recs.parquet] [--store URL] [--engine spark]
    python Q3b/recommender.py evaluate [--data-dir DIR | --plays F [--profiles F]] [--format hetrec] [--max-users 5000]
    python Q3b/recommender.py demo
    python Q3b/recommender.py serve --store URL --bind 127.0.0.1:8000
    python Q3b/recommender.py versions|promote VERSION|rollback --store URL

Only argument parsing, printing and exit codes live here; the work is in lastfm_data, user_knn, rec_evaluation,
and for the store and the server in rec_store, rec_api and rec_serve.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import sqlite3
import sys
import time
from pathlib import Path

import lastfm_data
import lastfm_generator
import neighbours
import q3b_features
import user_knn

HERE = Path(__file__).resolve().parent

DATA_DIR = HERE / "data"
OUT_DIR = HERE / "out"
DEMO_DIR = DATA_DIR / "demo"
DEMO_USERS = 3000
REFERENCE_PROFILES = HERE.parent.parent / "shared" / "data" / "lastfm" / "profile_sample.tsv"


TABLE_SUFFIXES = (".parquet", ".tsv", ".txt")
STORE_ENV = "RECS_STORE"


class UserError(Exception):
    """A mistake in the command line or the input files: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse printing one line instead of the usage block for a bad command line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows '(default: X)' for options with a real default (not for None/False ones)."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _progress() -> bool:
    return sys.stderr.isatty()


def _input_paths(args) -> tuple[Path, Path | None]:
    """(plays file, profile file or None). HetRec (``--format hetrec``, or detected: ``user_artists.dat`` in
    --data-dir, or a --plays file starting with the HetRec header) has no profile file."""
    folder = Path(args.data_dir)
    hetrec_file = folder / lastfm_data.HETREC_PLAYS_FILE
    plays = Path(args.plays) if args.plays else folder / lastfm_data.PLAYS_FILE
    detected = args.format == "auto" and not plays.is_file() and hetrec_file.is_file()
    if not args.plays and (args.format == "hetrec" or detected):
        plays = hetrec_file
    if not plays.is_file():
        raise UserError(
            f"{plays}: no such file; pass --plays/--profiles or create it with "
            f"'python Q3b/recommender.py generate --out-dir {folder}'"
        )
    hetrec = args.format == "hetrec" or (args.format == "auto" and lastfm_data.is_hetrec(plays))
    if hetrec:
        if args.profiles:
            raise UserError(f"--profiles {args.profiles}: HetRec data has no profile file; leave --profiles out")
        return plays, None
    profiles = Path(args.profiles) if args.profiles else folder / lastfm_data.PROFILES_FILE
    if not profiles.is_file():
        raise UserError(
            f"{profiles}: no such file; pass --plays/--profiles or create it with "
            f"'python Q3b/recommender.py generate --out-dir {folder}'"
        )
    return plays, profiles


def load_inputs(plays_path, profiles_path, verbose: bool = True):
    """Both files through the accounting loaders (``profiles_path`` None: a HetRec plays file, no profiles);
    reports printed; ValueError becomes a UserError."""
    try:
        if profiles_path is None:
            plays, plays_report = lastfm_data.load_hetrec(plays_path)
            profiles, profiles_report = lastfm_data.empty_profiles(), None
        else:
            plays, plays_report = lastfm_data.load_plays(plays_path)
            profiles, profiles_report = lastfm_data.load_profiles(profiles_path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    except (OSError, EOFError) as exc:  # e.g. a truncated .gz ("Compressed file ended ...")
        failed = plays_path if "plays_report" not in locals() else profiles_path
        raise UserError(f"{failed}: cannot be read to the end ({exc}); fetch or decompress it again") from None
    if verbose:
        print(plays_report.summary())
        print(profiles_report.summary() if profiles_report else "no profile file: every user is plays-only")
    return plays, profiles


def check_output(path: Path, force: bool, suffixes=TABLE_SUFFIXES) -> None:
    """Before any long work: ``path`` must have an allowed suffix, not be a folder, be writable, and not exist
    unless ``force``. Raises UserError."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name ending in {' or '.join(suffixes)}")
    if path.suffix not in suffixes:
        raise UserError(f"{path}: unknown output type; use a name ending in {' or '.join(suffixes)}")
    if path.exists() and not force:
        raise UserError(f"{path}: exists; pass --force to overwrite it")
    check_output_folder(path)


def check_output_folder(path: Path) -> None:
    """The folder of the output ``path`` must exist (or be one of our scratch folders, made on writing) and be
    writable. Raises UserError."""
    folder = path.parent
    if not folder.is_dir():
        if folder.resolve() not in (OUT_DIR, OUT_DIR / "demo"):  # only our scratch folders are created
            raise UserError(f"{path}: folder {folder} does not exist; create it first or choose another output")
        folder = next(p for p in folder.resolve().parents if p.is_dir())  # where the scratch folder will be made
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write into {folder}; choose an output in a writable folder")


def check_not_input(outputs, inputs) -> None:
    """Refuse (UserError) an output path that is one of the input files, whatever --force says."""
    for out in outputs:
        for source in inputs:
            if source is not None and Path(out).resolve() == Path(source).resolve():
                raise UserError(f"{out}: is an input file; choose another output name")


def _write_table(frame, path: Path, force: bool) -> None:
    check_output(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)  # only Q3b/out passes check_output without existing
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:  # like the input files: tabs, quoting off (names contain '"'); tabs/newlines cannot occur in fields
        frame.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)


def _recommend_options(args) -> dict:
    return {
        "profile_weight": args.profile_weight,
        "k": args.neighbours,
        "method": args.method,
        "play_weighting": args.play_weighting,
    }


def _build_batch(plays, profiles, n, options, progress):
    """user_knn.build_batch; a model ValueError (e.g. fewer users with plays than --neighbours) is a UserError."""
    try:
        return user_knn.build_batch(plays, profiles, n, progress=progress, **options)
    except ValueError as exc:
        raise UserError(f"{exc}; pass a smaller --neighbours") from None


def _coverage_line(cover: dict, n: int) -> str:
    """One line: users with n rows, fewer, none, and why the short ones are short."""
    line = f"{cover['full']:,} users got {n} rows, {cover['fewer']:,} fewer, {cover['none']:,} none"
    if cover["fewer"] or cover["none"]:
        line += (
            f" ({cover['no_artist_left']:,} with no artist left that they have not played, "
            f"{cover['no_popularity_data']:,} with no popularity data for the artists left)"
        )
    return line


def _profile_reference(path) -> tuple:
    """(ProfileReference, what shaped it) for the generator: ``path``, or when None the real sample if present,
    else the built-in distributions. Raises UserError when a given ``path`` is not a file."""
    if path is None:
        path = REFERENCE_PROFILES if REFERENCE_PROFILES.is_file() else None
    elif not Path(path).is_file():
        raise UserError(
            f"--reference {path}: no such file; give a usersha1-profile.tsv-format file or leave --reference out"
        )
    shaped = f"profiles shaped by {path}" if path else "built-in profile distributions"
    return lastfm_generator.profile_reference(path), shaped


def cmd_generate(args) -> int:
    out = Path(args.out_dir)
    targets = [out / lastfm_data.PLAYS_FILE, out / lastfm_data.PROFILES_FILE]
    if any(p.exists() for p in targets) and not args.force:
        raise UserError(f"{out}: already holds Last.fm files; pass --force to overwrite them")
    reference, shaped = _profile_reference(args.reference)
    start = time.perf_counter()
    counts = lastfm_generator.generate_lastfm(out, args.users, random_state=args.seed, reference=reference)
    print(
        f"wrote {counts['users']:,} users, {counts['plays_rows']:,} play rows, {counts['artists']:,} artists "
        f"to {out} in {time.perf_counter() - start:.1f} s ({shaped})"
    )
    return 0


def _spark_search(args):
    """--engine spark: the Spark neighbour search (q3b_spark) for user_knn.build_batch; a missing pyspark or Java, or
    a master Spark cannot start with, is a UserError."""
    try:
        import q3b_spark
    except ImportError as exc:
        raise UserError(
            f"--engine spark needs pyspark ({exc.name} not found): pip install -r requirements-spark.txt"
        ) from None
    try:
        spark = q3b_spark.spark_session(args.master)
    except q3b_spark.SparkUnavailableError as exc:
        raise UserError(str(exc)) from None
    return q3b_spark.SparkNeighbourSearch(spark, posting_cap=None if args.method == "exact" else neighbours.POSTING_CAP)


def _spark_job_errors(search) -> tuple:
    """The errors of a failed Spark job, to be shown as one line (none without --engine spark)."""
    if search is None:
        return ()
    import q3b_spark

    return (q3b_spark.SparkJobError,)


def _check_spark_output(path: Path, force: bool) -> None:
    """--engine spark writes a Parquet folder: a .parquet name, not existing unless --force, in an existing folder
    (Hadoop URIs are Spark's to check), as check_output_folder says."""
    if "://" in str(path):
        return
    if path.suffix != ".parquet":
        raise UserError(f"{path}: --engine spark writes a Parquet folder; use a name ending in .parquet")
    if path.exists() and not force:
        raise UserError(f"{path}: exists; pass --force to overwrite it")
    check_output_folder(path)


def cmd_batch(args) -> int:
    if args.engine == "local" and (args.master or args.partitions):
        option = "--master" if args.master else "--partitions"
        raise UserError(f"{option} goes with --engine spark; add --engine spark or leave {option} out")
    out = Path(args.out)
    check = _check_spark_output if args.engine == "spark" else check_output
    check(out, args.force)  # first: an empty name has no sibling for the fallbacks
    fallback_out = out.with_name(f"{out.stem}_fallbacks{out.suffix}")
    check(fallback_out, args.force)
    if not args.store:
        return _batch(args, out, fallback_out, None)
    import rec_store

    with contextlib.ExitStack() as held:
        try:
            store = rec_store.open_store(args.store)
            held.enter_context(store.lock())  # before any work: a second batch stops here, not after minutes
        except (rec_store.StoreBusyError, rec_store.StoreUnreachableError) as exc:
            raise UserError(f"--store: {exc}") from None
        except (ValueError, OSError, sqlite3.Error) as exc:  # e.g. an unwritable folder, a file that is no database
            raise UserError(f"--store {args.store}: {exc}") from None
        return _batch(args, out, fallback_out, store)


def _batch(args, out: Path, fallback_out: Path, store) -> int:
    """The batch proper; with ``store`` its writer lock is held by the caller."""
    inputs = _input_paths(args)
    check_not_input((out, fallback_out), inputs)
    search = _spark_search(args) if args.engine == "spark" else None
    start = time.perf_counter()
    plays, profiles = load_inputs(*inputs)
    if len(plays) == 0:
        raise UserError(f"{inputs[0]}: no usable row (see the line above); nothing written")
    loaded = time.perf_counter()
    options = _recommend_options(args) | ({"neighbour_search": search} if search else {})
    try:
        recommendations, fallbacks = _build_batch(plays, profiles, args.n, options, _progress())
    except _spark_job_errors(search) as exc:
        raise UserError(f"{exc}; nothing written") from None
    done = time.perf_counter()
    prepared = None
    if store is not None:  # check the batch against the serving contract before any file is written
        import rec_store

        try:
            prepared = rec_store.prepare_batch(recommendations, fallbacks)
        except ValueError as exc:
            raise UserError(f"the batch cannot be stored: {exc}; nothing written") from None
    if search is None:
        _write_table(recommendations, out, args.force)
        _write_table(fallbacks, fallback_out, args.force)
    else:  # Parquet folders of part files, as a cluster job writes them
        import q3b_spark

        try:
            for frame, path, key in ((recommendations, out, "user"), (fallbacks, fallback_out, "country")):
                q3b_spark.write_parquet(search.spark, frame, str(path), key, args.partitions or 8, args.force)
        except q3b_spark.SparkJobError as exc:
            raise UserError(str(exc)) from None
    cover = recommendations.attrs["coverage"]
    print(
        f"{cover['users']:,} users (of either file), {len(recommendations):,} recommendations "
        f"(load {loaded - start:.1f} s, recommend {done - loaded:.1f} s) -> {out}, {fallback_out}"
    )
    print(_coverage_line(cover, args.n))
    if len(recommendations):
        print("rows by source: " + ", ".join(f"{k} {v:,}" for k, v in recommendations["source"].value_counts().items()))
    if store is not None:
        version = store.write_prepared(prepared)
        print(f"stored as version {version} in {args.store}")
    return 0


def _open_store(url):
    """The store at ``url`` for reading (it must exist); errors become a UserError."""
    import rec_store

    if not url:
        raise UserError(f"give --store URL or set {STORE_ENV}")
    try:
        return rec_store.open_store(url, create=False)
    except (ValueError, ConnectionError, FileNotFoundError, sqlite3.Error) as exc:
        raise UserError(f"--store: {exc}") from None


def cmd_versions(args) -> int:
    import rec_api

    store = _open_store(args.store)
    body, _ = rec_api.ready_body(store)
    for v in store.versions():
        mark = "  <- served" if v["current"] else ""
        print(f"version {v['version']:>5}  written {v['created_at']}  {v['n_users']:>9,} users{mark}")
    if body.get("status") == "ok":
        print(f"served version {body['version']} is {body['age_seconds']:,.0f} s old; newest {body['newest_version']}")
    else:
        print("no version is served yet")
    return 0


def cmd_promote(args) -> int:
    import rec_store

    store = _open_store(args.store)
    try:
        version = store.rollback() if args.command == "rollback" else store.promote(args.version)
    except (LookupError, rec_store.StoreBusyError) as exc:  # NoVersionError is a LookupError
        raise UserError(str(exc)) from None
    print(f"readers now get version {version}")
    return 0


def cmd_serve(args) -> int:
    import rec_serve

    try:
        return rec_serve.serve(
            _store_url(args.store),
            args.bind,
            workers=args.workers,
            threads=args.threads,
            access_log=args.access_log,
            on_ready=lambda url: print(f"serving {url} (nginx -> gunicorn); Ctrl-C stops", file=sys.stderr, flush=True),
        )
    except rec_serve.ServeError as exc:
        raise UserError(str(exc)) from None


def _store_url(url):
    if not url:
        raise UserError(f"give --store URL or set {STORE_ENV}")
    return url


EVALUATION_FILES = ("evaluation.csv", "evaluation.png")


def fixed_models(n_neighbours: int, weights, has_profiles: bool) -> dict:
    """User-user rows shown next to the tuned one: name -> UserUserKNN parameters, one per profile weight
    (a single plays-only row for data without profiles)."""
    weights = weights if has_profiles else (0.0,)
    return {
        f"user-user (k={n_neighbours}, profile weight {w:g})": {"k": n_neighbours, "profile_weight": w}
        for w in dict.fromkeys(weights)
    }


def run_evaluation(
    plays_path,
    profiles_path,
    out_dir,
    *,
    max_users,
    weights,
    n_neighbours,
    baselines=True,
    verbose=True,
    force=False,
    source=None,
):
    """Load, evaluate (rec_evaluation.evaluate), write evaluation.csv + evaluation.png into out_dir; the table.

    Existing outputs are refused (UserError, before any work) unless ``force``. ``source`` (default: the plays
    file's path) is named in the PNG's title."""
    import rec_evaluation

    for name in EVALUATION_FILES:
        check_output(Path(out_dir) / name, force, suffixes=(Path(name).suffix,))
    plays, profiles = load_inputs(plays_path, profiles_path, verbose)
    data = q3b_features.build_user_artist_data(plays, profiles)
    try:
        table = rec_evaluation.evaluate(
            data,
            max_users=max_users or None,
            baselines=baselines,
            extra_models=fixed_models(n_neighbours, weights, profiles_path is not None),
        )
    except ValueError as exc:  # no holdout users, or too few users for the neighbours asked
        raise UserError(str(exc)) from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # only Q3b/out(/demo) passes check_output without existing
    table.to_csv(out_dir / EVALUATION_FILES[0], index=False)
    rec_evaluation.plot_evaluation(table, out_dir / EVALUATION_FILES[1], source=source or f"data: {plays_path}")
    return table


def _print_table(table) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(table.round(4).to_string(index=False))
    print(
        f"({table.attrs.get('users_evaluated')} users evaluated, 20% of each user's artists hidden; settings tuned on "
        "a separate validation split; ndcg_diff = tuned user-user minus the row, with its paired standard error)"
    )


def cmd_evaluate(args) -> int:
    table = run_evaluation(
        *_input_paths(args),
        args.out_dir,
        max_users=args.max_users,
        weights=args.weights,
        n_neighbours=args.neighbours,
        baselines=not args.no_baselines,
        force=args.force,
    )
    _print_table(table)
    print(f"wrote {Path(args.out_dir) / 'evaluation.csv'} and evaluation.png")
    return 0


def cmd_demo(args) -> int:
    plays_path, profiles_path = DEMO_DIR / lastfm_data.PLAYS_FILE, DEMO_DIR / lastfm_data.PROFILES_FILE
    if not (plays_path.exists() and profiles_path.exists()):
        reference, shaped = _profile_reference(None)
        lastfm_generator.generate_lastfm(DEMO_DIR, DEMO_USERS, reference=reference)
        print(f"generated {DEMO_USERS:,} demo users into {DEMO_DIR} ({shaped})")
    plays, profiles = load_inputs(plays_path, profiles_path)
    start = time.perf_counter()
    recommendations, _ = _build_batch(plays, profiles, 20, {}, False)
    print(
        f"recommended 20 artists to each of {recommendations['user'].nunique():,} users in "
        f"{time.perf_counter() - start:.1f} s; rows by source: "
        + ", ".join(f"{k} {v:,}" for k, v in recommendations["source"].value_counts().items())
    )
    for user in recommendations["user"].drop_duplicates().head(3):
        top = recommendations[recommendations["user"] == user].head(5)
        print(f"  {user[:10]}...: " + "; ".join(f"{r.artist_name} ({r.source})" for r in top.itertuples()))
    _print_table(
        run_evaluation(
            plays_path,
            profiles_path,
            OUT_DIR / "demo",
            max_users=1000,
            weights=(user_knn.DEFAULT_PROFILE_WEIGHT, 1.0),
            n_neighbours=user_knn.DEFAULT_NEIGHBOURS,
            verbose=False,
            force=True,
            source=f"generated look-alike Last.fm data ({DEMO_USERS:,} users, {DEMO_DIR})",
        )
    )
    print(f"wrote {OUT_DIR / 'demo'}/evaluation.csv and evaluation.png (scratch output, replaced on every demo run)")
    return 0


def _weight(text: str) -> float:
    """A profile weight: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


_weight.__name__ = "weight"


def _weights(text: str):
    """Comma-separated profile weights, each checked by :func:`_weight`."""
    return tuple(_weight(x) for x in text.split(","))


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="recommender.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write look-alike Last.fm 360K files")
    gen.add_argument("--users", type=_int_at_least(1), default=DEMO_USERS, help="number of users (full size: 359347)")
    gen.add_argument("--out-dir", default=str(DATA_DIR / "generated"))
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--reference",
        help="real profile file whose gender/age/country/signup distributions to "
        f"copy (default: {REFERENCE_PROFILES} if present, else built-in distributions)",
    )
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.set_defaults(func=cmd_generate)

    def inputs(p):
        p.add_argument(
            "--data-dir",
            default=str(DATA_DIR / "generated"),
            help=f"folder with both Last.fm 360K files, or with HetRec's {lastfm_data.HETREC_PLAYS_FILE}",
        )
        p.add_argument("--plays", help=f"plays file (default: DATA_DIR/{lastfm_data.PLAYS_FILE})")
        p.add_argument("--profiles", help=f"profile file (default: DATA_DIR/{lastfm_data.PROFILES_FILE})")
        p.add_argument(
            "--format",
            choices=("auto", "lastfm", "hetrec"),
            default="auto",
            help="input format; auto: HetRec when the plays file starts with 'userID<TAB>artistID<TAB>weight'",
        )
        p.add_argument(
            "--neighbours", type=_int_at_least(1), default=user_knn.DEFAULT_NEIGHBOURS, help="k nearest users"
        )

    batch = sub.add_parser(
        "batch", help="top-n artists for every user, written as Parquet or TSV", formatter_class=_DefaultsFormatter
    )
    inputs(batch)
    batch.add_argument("-n", type=_int_at_least(1), default=20, help="artists per user")
    batch.add_argument(
        "--out",
        default=str(OUT_DIR / "recommendations.parquet"),
        help="output (.parquet or .tsv); fallbacks go to <name>_fallbacks.<ext>",
    )
    batch.add_argument("--store", help="also write a version into this rec_store URL")
    batch.add_argument(
        "--profile-weight",
        type=_weight,
        default=user_knn.DEFAULT_PROFILE_WEIGHT,
        help="weight of the age/country features (finite, >= 0)",
    )
    batch.add_argument(
        "--play-weighting",
        choices=("share", "log"),
        default="share",
        help="plays block: share of the user's plays, or of log(1 + plays)",
    )
    batch.add_argument(
        "--method",
        choices=neighbours.METHODS,
        default="auto",
        help=f"neighbour search; auto: exact up to {neighbours.EXACT_MAX_USERS:,} users, else inverted (with "
        "--engine spark auto is always inverted, the capped route: exact compares all pairs, for small data only)",
    )
    batch.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="spark: the neighbour search on Apache Spark (needs Java and requirements-spark.txt; see SCALING.md); "
        "--out is then a Parquet folder",
    )
    batch.add_argument("--master", help="Spark master URL with --engine spark (default: spark-submit's, else local[*])")
    batch.add_argument(
        "--partitions", type=_int_at_least(1), help="Parquet part files per output with --engine spark (default 8)"
    )
    batch.add_argument("--force", action="store_true", help="overwrite existing outputs")
    batch.set_defaults(func=cmd_batch)

    ev = sub.add_parser(
        "evaluate", help="holdout metrics vs. baselines; table, CSV and PNG", formatter_class=_DefaultsFormatter
    )
    inputs(ev)
    ev.add_argument(
        "--max-users",
        type=_int_at_least(0),
        default=5000,
        help="evaluate a fixed sample of this many users (0: all users)",
    )
    ev.add_argument(
        "--weights",
        type=_weights,
        default=(user_knn.DEFAULT_PROFILE_WEIGHT, 1.0),
        help="profile weights of the fixed user-user rows shown next to the tuned one (finite, >= 0)",
    )
    ev.add_argument("--no-baselines", action="store_true")
    ev.add_argument("--out-dir", default=str(OUT_DIR))
    ev.add_argument("--force", action="store_true", help="overwrite evaluation.csv/.png in --out-dir")
    ev.set_defaults(func=cmd_evaluate)

    demo = sub.add_parser(
        "demo",
        help="small generated data set: recommendations and evaluation (< 1 min); "
        "replaces its scratch output Q3b/out/demo on every run",
    )
    demo.set_defaults(func=cmd_demo)

    def store_option(p):
        p.add_argument("--store", default=os.environ.get(STORE_ENV), help=f"store URL (default: ${STORE_ENV})")

    serve = sub.add_parser(
        "serve",
        help="run the HTTP API (nginx in front of gunicorn) until Ctrl-C or SIGTERM",
        formatter_class=_DefaultsFormatter,
    )
    store_option(serve)
    serve.add_argument("--bind", default="127.0.0.1:8000", help="HOST:PORT nginx listens on")
    serve.add_argument("--workers", type=_int_at_least(1), default=2, help="gunicorn worker processes")
    serve.add_argument("--threads", type=_int_at_least(1), default=4, help="threads per worker")
    serve.add_argument("--access-log", default="-", help="JSON access log file ('-': stdout)")
    serve.set_defaults(func=cmd_serve)

    versions = sub.add_parser("versions", help="list the versions kept in the store and the one served")
    store_option(versions)
    versions.set_defaults(func=cmd_versions)
    promote = sub.add_parser("promote", help="serve a kept VERSION (roll forward or back)")
    promote.add_argument("version", type=_int_at_least(1))
    store_option(promote)
    promote.set_defaults(func=cmd_promote)
    rollback = sub.add_parser("rollback", help="serve the newest kept version older than the served one")
    store_option(rollback)
    rollback.set_defaults(func=cmd_promote)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, FileNotFoundError) as exc:
        print(f"recommender.py {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
