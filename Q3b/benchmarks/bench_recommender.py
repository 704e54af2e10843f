"""Benchmarks of the Q3b recommender (speed and quality are measured here, never in tests); writes its section of
Q3b/RESULTS.md.

    make bench-q3b ARGS="[--data-dir data/full] [--subset 20000] [--skip-full]"
    (= cd Q3b && ../.venv/bin/python -m benchmarks.bench_recommender ...)

Stages, each in its own process so its peak RSS is its own (wait4):

1. ``batch``: the full generated 360K-like data (made first if absent): load + top 20 for every user, wall and CPU
   seconds, peak RSS; ``batch_before``: the same with the code before the model rewrite (``neighbours.py`` of commit
   BEFORE_COMMIT, loaded from git), side by side in the same run.
2. ``compare``: on the first ``--subset`` users with plays: CPU seconds of the original prototype method (sklearn
   brute-force NearestNeighbors on the stacked features, profile weight 1, a per-user Python loop) against the
   model's default path (median of three runs) and the code before; neighbour recall and holdout NDCG@10 of the
   production (inverted) route against the exact route.
3. ``quality``: the evaluation table (tuned on a validation split, paired standard errors) on the real HetRec 2011
   data and on the generated subset.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import lastfm_data
import lastfm_generator
import q3b_features
import rec_evaluation
import user_knn

HERE = Path(__file__).resolve().parent
Q3B = HERE.parent
HETREC = Q3B.parent.parent / "shared" / "data" / "lastfm" / "hetrec2011-2k" / "user_artists.dat"
BEFORE_COMMIT = "f562a8b"  # the last commit with the previous neighbours.py
SECTION = "bench_recommender"


def _paths(data_dir: Path):
    return data_dir / lastfm_data.PLAYS_FILE, data_dir / lastfm_data.PROFILES_FILE


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _load(data_dir: str):
    plays_path, profiles_path = _paths(Path(data_dir))
    plays, _ = lastfm_data.load_plays(plays_path)
    profiles, _ = lastfm_data.load_profiles(profiles_path)
    return plays, profiles


def _warm_up(recommend) -> None:
    """Compile (or load from numba's cache) the kernels on a tiny input, so the stages time the work."""
    folder = Q3B / "out" / "bench_warm_up"
    if not _paths(folder)[0].exists():
        lastfm_generator.generate_lastfm(folder, 6000, random_state=1)
    plays, profiles = _load(str(folder))
    recommend(plays, profiles)


def _before_module():
    """The previous ``neighbours.py`` (git show BEFORE_COMMIT) imported as ``neighbours_before``."""
    folder = Q3B / "out" / "bench_before"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "neighbours_before.py"
    source = subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:Q3b/neighbours.py"], capture_output=True, check=True, cwd=Q3B
    ).stdout
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("neighbours_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["neighbours_before"] = module  # numba's cache finds a kernel's module by name
    spec.loader.exec_module(module)
    return module


def stage_generate(data_dir: str, users: str) -> dict:
    reference = Q3B.parent.parent / "shared" / "data" / "lastfm" / "profile_sample.tsv"
    counts = lastfm_generator.generate_lastfm(
        Path(data_dir),
        int(users),
        reference=lastfm_generator.profile_reference(reference if reference.exists() else None),
    )
    return dict(counts)


def _timed_batch(data_dir: str, build_batch) -> dict:
    _warm_up(lambda plays, profiles: build_batch(plays, profiles, 20))
    start, cpu = time.perf_counter(), _cpu_seconds()
    plays, profiles = _load(data_dir)
    loaded, cpu_loaded = time.perf_counter(), _cpu_seconds()
    frame, _ = build_batch(plays, profiles, 20)
    done, cpu_done = time.perf_counter(), _cpu_seconds()
    return {
        "load_seconds": loaded - start,
        "recommend_seconds": done - loaded,
        "recommend_cpu_seconds": cpu_done - cpu_loaded,
        "total_seconds": done - start,
        "total_cpu_seconds": cpu_done - cpu,
        "users": int(frame["user"].nunique()),
        "rows": len(frame),
    }


def stage_batch(data_dir: str) -> dict:
    return _timed_batch(data_dir, user_knn.build_batch)


def stage_batch_before(data_dir: str) -> dict:
    return _timed_batch(data_dir, _before_module().build_batch)


def original_method(data: q3b_features.UserArtistData, n: int = 20, k: int = user_knn.DEFAULT_NEIGHBOURS):
    """The prototype: stacked features with profile weight 1, sklearn brute-force NearestNeighbors (Euclidean),
    then for each user a Python loop step: similarity-weighted neighbour plays, played removed, top n."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import normalize

    features = q3b_features.user_features(data.plays, data.age, data.country, len(data.countries), 1.0)
    plays_l1 = normalize(data.plays, norm="l1")
    distances, idx = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(features).kneighbors(features)
    out = np.full((data.plays.shape[0], n), -1)
    for row in range(data.plays.shape[0]):
        others = idx[row] != row
        weights = 1.0 / (1.0 + distances[row][others][:k])
        scores = np.asarray(plays_l1[idx[row][others][:k]].T @ weights).ravel()
        scores[data.plays[row].indices] = 0
        best = np.argsort(-scores, kind="stable")[:n]
        best = best[scores[best] > 0]
        out[row, : len(best)] = best
    return out


def _subset(data_dir: str, n_users: int) -> q3b_features.UserArtistData:
    full = q3b_features.build_user_artist_data(*_load(data_dir))
    users = np.flatnonzero(np.diff(full.plays.indptr) > 0)[:n_users]
    return q3b_features.UserArtistData(
        full.users[users], full.artists, full.plays[users], full.age[users], full.country[users], full.countries
    )


def _median_cpu(run, times: int = 3) -> tuple[float, list]:
    cpu = []
    for _ in range(times):
        start = _cpu_seconds()
        run()
        cpu.append(_cpu_seconds() - start)
    return float(np.median(cpu)), cpu


def stage_compare(data_dir: str, subset: str) -> dict:
    data = _subset(data_dir, int(subset))
    users = np.arange(len(data.users))
    before = _before_module()

    def ours(method="auto"):
        model = user_knn.UserUserKNN(method=method).fit(data.plays, data.profiles)
        return model.recommend(users, data.plays, N=20)[0]

    ours(), before.recommend_users(data, 20)  # warm-up: kernels compiled or loaded from the cache
    start = _cpu_seconds()
    original_method(data)
    original_cpu = _cpu_seconds() - start
    ours_cpu, ours_runs = _median_cpu(ours)
    before_cpu, before_runs = _median_cpu(lambda: before.recommend_users(data, 20))

    exact_model = user_knn.UserUserKNN(method="exact").fit(data.plays, data.profiles)
    inverted_model = user_knn.UserUserKNN(method="inverted").fit(data.plays, data.profiles)
    sample = users[:: max(1, len(users) // 2000)]
    recall = np.mean(
        [
            len(set(inverted_model.similar_users(u, 50)[0]) & set(exact_model.similar_users(u, 50)[0])) / 50
            for u in sample
        ]
    )
    train, test = rec_evaluation.holdout_split(data.plays)
    held = np.flatnonzero(np.diff(test.indptr) > 0)
    ndcg = {}
    for method in ("exact", "inverted"):
        model = user_knn.UserUserKNN(method=method).fit(train, data.profiles)
        ndcg[method] = rec_evaluation.ndcg_at_k(model.recommend(held, train[held], N=10)[0], test[held], 10)
    return {
        "users": len(users),
        "original_cpu_seconds": original_cpu,
        "ours_cpu_seconds": ours_cpu,
        "ours_cpu_runs": ours_runs,
        "before_cpu_seconds": before_cpu,
        "before_cpu_runs": before_runs,
        "speedup_vs_original": original_cpu / ours_cpu,
        "neighbour_recall_inverted_vs_exact": float(recall),
        "ndcg10_exact": ndcg["exact"],
        "ndcg10_inverted": ndcg["inverted"],
    }


def stage_quality(data_dir: str, subset: str) -> dict:
    tables = {}
    if HETREC.is_file():
        plays, _ = lastfm_data.load_hetrec(HETREC)
        hetrec = q3b_features.build_user_artist_data(plays, lastfm_data.empty_profiles())
        tables["real: HetRec 2011 Last.fm 2K (1,892 users, all evaluated)"] = rec_evaluation.evaluate(
            hetrec, max_users=None, extra_models={"user-user (k=50, raw shares)": {"k": 50, "profile_weight": 0.0}}
        )
    data = _subset(data_dir, int(subset))
    tables[f"generated 360K look-alike, first {len(data.users):,} users (2,000 evaluated)"] = rec_evaluation.evaluate(
        data,
        max_users=2000,
        extra_models={"user-user (prototype: profile weight 1)": {"k": 50, "profile_weight": 1.0}},
    )
    out = {}
    for name, table in tables.items():
        shown = table.drop(columns=["seconds"]).assign(params=table["params"].astype(str))
        out[name] = {"users_evaluated": table.attrs["users_evaluated"], "table": shown.round(4).to_dict("records")}
    return out


STAGES = {
    "generate": stage_generate,
    "batch": stage_batch,
    "batch_before": stage_batch_before,
    "compare": stage_compare,
    "quality": stage_quality,
}


def run_stage(name: str, *args) -> dict:
    """Run one stage in a child process; returns its JSON result plus wall seconds and peak RSS (GB)."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "benchmarks.bench_recommender", "--stage", name, *map(str, args)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=Q3B)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"stage {name} failed with exit code {os.waitstatus_to_exitcode(status)}")
    result = json.loads(output.decode().strip().splitlines()[-1])
    result.update(wall_seconds=time.perf_counter() - start, peak_rss_gb=usage.ru_maxrss / 1024**2)
    print(f"{name}: {json.dumps(result)[:600]}", flush=True)
    return result


def _machine() -> str:
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"nproc {os.cpu_count()} ({cpu}), {memory:.0f} GiB memory, Python {platform.python_version()}"


def _commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Q3B).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", "--", ".") else "")


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return header + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in frame.itertuples(index=False))


def write_results(results: dict, command: str, load_before, load_after) -> Path:
    """Rewrite this script's section of Q3b/RESULTS.md (other scripts' sections are kept)."""
    lines = [
        f"<!-- BEGIN {SECTION} -->",
        "## Recommender: speed, memory, quality (`benchmarks/bench_recommender.py`)",
        "",
        f"commit {_commit()}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {_machine()}; load average "
        f"before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, after "
        f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} (the machine is shared: wall times are "
        "inflated, CPU seconds less so)",
        "",
        f"`{command}`",
        "",
    ]
    if "batch" in results:
        rows = []
        for name, key in (("this model", "batch"), (f"code before ({BEFORE_COMMIT})", "batch_before")):
            r = results.get(key)
            if r:
                rows.append(
                    {
                        "full batch (load + top 20 for all)": name,
                        "users": f"{r['users']:,}",
                        "wall s": f"{r['wall_seconds']:.1f}",
                        "load s": f"{r['load_seconds']:.1f}",
                        "recommend s": f"{r['recommend_seconds']:.1f}",
                        "CPU s": f"{r['total_cpu_seconds']:.1f}",
                        "peak RSS GB": f"{r['peak_rss_gb']:.2f}",
                    }
                )
        lines += [_markdown(pd.DataFrame(rows))]
        if results.get("batch_before"):
            change = results["batch"]["total_cpu_seconds"] / results["batch_before"]["total_cpu_seconds"] - 1
            lines += [f"CPU seconds of this model against the code before: {change:+.0%}.", ""]
    c = results.get("compare")
    if c:
        lines += [
            f"Side by side on the first {c['users']:,} users with plays (CPU seconds, fit + top 20 for all):",
            "",
            _markdown(
                pd.DataFrame(
                    [
                        {
                            "method": "original prototype (sklearn brute force + Python loop)",
                            "CPU s": c["original_cpu_seconds"],
                        },
                        {"method": "this model, default route (median of 3)", "CPU s": c["ours_cpu_seconds"]},
                        {"method": f"code before ({BEFORE_COMMIT}, median of 3)", "CPU s": c["before_cpu_seconds"]},
                    ]
                ).round(2)
            ),
            f"Speed-up against the original method: {c['speedup_vs_original']:.0f}x in CPU seconds. Production "
            "(inverted) route against the exact route: neighbour recall@50 "
            f"{c['neighbour_recall_inverted_vs_exact']:.3f}; "
            f"holdout NDCG@10 {c['ndcg10_inverted']:.4f} vs {c['ndcg10_exact']:.4f} "
            f"({c['ndcg10_inverted'] / c['ndcg10_exact'] - 1:+.1%}).",
            "",
        ]
    for name, q in (results.get("quality") or {}).items():
        if not isinstance(q, dict) or "table" not in q:
            continue
        lines += [
            f"Evaluation, {name}: 20% of each user's artists held out (test); settings chosen on a separate "
            "validation split; `ndcg_diff` = tuned user-user minus the row (per user, averaged) with its paired "
            "standard error.",
            "",
            _markdown(pd.DataFrame(q["table"])),
        ]
    lines.append(f"<!-- END {SECTION} -->")
    section = "\n".join(lines) + "\n"
    path = Q3B / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Q3b results (written by the benchmark scripts)\n\n"
    begin, end = f"<!-- BEGIN {SECTION} -->", f"<!-- END {SECTION} -->\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(Q3B / "data" / "full"))
    parser.add_argument("--users", type=int, default=359_347, help="users to generate when --data-dir is empty")
    parser.add_argument("--subset", type=int, default=20_000)
    parser.add_argument("--skip-full", action="store_true", help="no full batch (side by side and quality only)")
    parser.add_argument("--skip-before", action="store_true", help="no full batch of the code before")
    parser.add_argument("--stage", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        print(json.dumps(STAGES[args.stage[0]](*args.stage[1:])))
        return 0
    data_dir = Path(args.data_dir).resolve()
    load_before = os.getloadavg()
    print(f"load average at start: {load_before}", flush=True)
    results = {}
    if not all(p.exists() for p in _paths(data_dir)):
        results["generate"] = run_stage("generate", data_dir, args.users)
    if not args.skip_full:
        results["batch"] = run_stage("batch", data_dir)
        if not args.skip_before:
            results["batch_before"] = run_stage("batch_before", data_dir)
    results["compare"] = run_stage("compare", data_dir, args.subset)
    results["quality"] = run_stage("quality", data_dir, args.subset)
    command = "python -m benchmarks.bench_recommender " + " ".join(argv if argv is not None else sys.argv[1:])
    path = write_results(results, command.strip(), load_before, os.getloadavg())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
