"""Presentation of the cohort retention table: text, CSV and a PNG heatmap."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no global backend or figure state to set up

REPORT_FILES = ("retention_table.csv", "retention_heatmap.png")


class ReportOutputError(ValueError):
    """The ``--report`` files cannot be written where asked; ``str(exc)`` is one line naming the path and the fix."""


def report_paths(out_dir: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Check, before any work, that the report files can be written in ``out_dir``; return ``(csv, png)`` paths.

    ``out_dir`` may not exist yet (it is created when writing), but it must be possible to create it and write in
    it (checked by doing so and undoing it). An existing report file is only replaced with ``overwrite``.

    Raises
    ------
    ReportOutputError
        ``out_dir`` (or an ancestor) is a file, the folder is not writable, a report path is a folder, or a
        report file exists and ``overwrite`` is false.
    """
    out_dir = Path(out_dir)
    existing = next(folder for folder in (out_dir, *out_dir.absolute().parents) if folder.exists())
    if not existing.is_dir():
        raise ReportOutputError(f"--out {out_dir}: {existing} is a file, not a folder; pass --out with a folder")
    paths = tuple(out_dir / name for name in REPORT_FILES)
    for path in paths:
        if path.is_dir():
            raise ReportOutputError(f"--out {out_dir}: {path} is a folder; remove it or choose another --out")
        if path.exists() and not overwrite:
            raise ReportOutputError(f"{path} already exists; pass --overwrite to replace it, or choose another --out")
    _probe_writable(out_dir)
    return paths


def _probe_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and a scratch file in it, then remove both: permission bits alone do not tell (``/proc``,
    read-only mounts, full disks)."""
    missing = [folder for folder in (out_dir, *out_dir.parents) if not folder.exists()]
    created = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise ReportOutputError(
            f"--out {out_dir}: cannot write there ({exc.strerror or exc}); pass --out with a writable folder"
        ) from None
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()


def format_retention_table(table: pd.DataFrame) -> str:
    """Fixed-width text of a :func:`retention.retention_table` frame; shares as percentages, empty cells blank."""
    shown = table.copy()
    for column in shown.columns.drop("cohort_size"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%")
    return shown.to_string()


# A share of a cohort smaller than this is mostly noise (one user is >3%); it does not set the colour scale.
MIN_COLOUR_COHORT = 30
MAX_FIGURE_INCHES = (24.0, 30.0)  # width, height at 100 dpi: at most 2,400 x 3,000 pixels whatever the table
MAX_ANNOTATED_CELLS = 400
MAX_TICK_LABELS = 40


def colour_scale_max(table: pd.DataFrame) -> float:
    """Top of the heatmap's colour scale, in percent: the largest share in periods >= 1 of cohorts with at least
    :data:`MIN_COLOUR_COHORT` users (of every cohort if none is that large).

    Period 0 is 100% by construction (with any-event returns) and would otherwise squeeze every later period into
    the dark end of the scale; it is still drawn, at the top colour. A tiny cohort's 1-of-2 = 50% would do the
    same. Falls back to 100 when there is no positive share.
    """
    later = table.drop(columns=["cohort_size", "period_0"], errors="ignore")
    large = table["cohort_size"] >= MIN_COLOUR_COHORT
    if large.any():
        later = later[large]
    values = later.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return float(100 * values.max()) if values.size and values.max() > 0 else 100.0


def _tick_positions(n: int) -> np.ndarray:
    return np.arange(0, n, max(1, -(-n // MAX_TICK_LABELS)))


def write_retention_heatmap(table: pd.DataFrame, path: Path, title: str, period: str = "day") -> Path:
    """Draw the period-k shares as a heatmap (cohorts down, period k across, empty cells left white); return ``path``.

    The colour scale spans 0 to :func:`colour_scale_max`; the figure is at most 2,400 x 3,000 pixels whatever the
    number of cohorts and periods (cell values are written only when there are few cells, labels thinned).
    """
    shares = table.drop(columns="cohort_size").to_numpy(dtype=float)
    n_rows, n_cols = shares.shape
    vmax = colour_scale_max(table)
    width = min(1.5 + 0.8 * n_cols, MAX_FIGURE_INCHES[0])
    height = min(1.8 + 0.4 * max(n_rows, 1), MAX_FIGURE_INCHES[1])
    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(shares) * 100, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    xs, ys = _tick_positions(n_cols), _tick_positions(n_rows)
    ax.set_xticks(xs, [str(k) for k in xs])
    labels = [f"{d}  (n={n})" for d, n in zip(table.index, table["cohort_size"])]
    ax.set_yticks(ys, [labels[i] for i in ys], fontsize=8 if n_rows > 20 else None)
    ax.set_xlabel(
        f"{period}s since the cohort's {period}\n(colour scale 0-{vmax:.0f}% set by {period}s >= 1 of cohorts of "
        f">= {MIN_COLOUR_COHORT} users; period 0 is 100% when any event counts as a return)"
    )
    ax.set_title(title)
    if n_rows * n_cols <= MAX_ANNOTATED_CELLS:
        for (row, col), value in np.ndenumerate(shares):
            if not np.isnan(value):
                colour = "white" if 100 * value < 0.6 * vmax else "black"
                ax.text(col, row, f"{100 * value:.0f}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, label="% of cohort active", extend="max" if vmax < 100 else "neither")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
