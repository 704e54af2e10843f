"""Writing benchmark figures into Q3a/RESULTS.md: one section per script between ``<!-- BEGIN name -->`` and
``<!-- END name -->`` markers, rewritten in place so several scripts can share the file."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

TITLE = "# Q3a results\n\nWritten by the scripts in `Q3a/benchmarks/`; each owns one section.\n"


def _commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return commit + ("-dirty" if git("status", "--porcelain").strip() else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> str:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError):
        return "unknown memory"


def machine_header(load_before, load_after, command: str) -> str:
    """Lines naming the commit, UTC date, machine, load averages (1/5/15 min) and the command line."""
    fmt = "/".join
    return (
        f"- commit {_commit()}, {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), {_memory_gib()}\n"
        f"- load average before {fmt(f'{x:.1f}' for x in load_before)}, after {fmt(f'{x:.1f}' for x in load_after)}"
        " (the machine is shared; wall times depend on it)\n"
        f"- command: `{command.strip()}`\n"
    )


def write_section(path: Path, name: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of the Markdown file ``path`` with ``body``; returns ``path``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else TITLE
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    return path
