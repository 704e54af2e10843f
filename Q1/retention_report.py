"""Presentation of the cohort retention table: text, CSV and a PNG heatmap."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPORT_FILES = ("retention_table.csv", "retention_heatmap.png")


class ReportOutputError(ValueError):
    """The ``--report`` files cannot be written where asked; ``str(exc)`` is one line naming the path and the fix."""


def report_paths(out_dir: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Check, before any work, that the report files can be written in ``out_dir``; return ``(csv, png)`` paths.

    ``out_dir`` may not exist yet (it is created when writing), but its nearest existing ancestor must be a
    writable folder. An existing report file is only replaced with ``overwrite``.

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
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ReportOutputError(
            f"--out {out_dir}: folder {existing} is not writable; pass --out with a writable folder"
        )
    paths = tuple(out_dir / name for name in REPORT_FILES)
    for path in paths:
        if path.is_dir():
            raise ReportOutputError(f"--out {out_dir}: {path} is a folder; remove it or choose another --out")
        if path.exists() and not overwrite:
            raise ReportOutputError(f"{path} already exists; pass --overwrite to replace it, or choose another --out")
    return paths


def format_retention_table(table: pd.DataFrame) -> str:
    """Fixed-width text of a :func:`retention.retention_table` frame; shares as percentages, empty cells blank."""
    shown = table.copy()
    for column in shown.columns.drop("cohort_size"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%")
    return shown.to_string()


def colour_scale_max(table: pd.DataFrame) -> float:
    """Top of the heatmap's colour scale, in percent: the largest share on days >= 1.

    Day 0 is 100% by construction and would otherwise squeeze every later day into the dark end of the scale;
    it is still drawn, at the top colour. Falls back to 100 when there is no finite day >= 1 share.
    """
    later = table.drop(columns=["cohort_size", "day_0"], errors="ignore").to_numpy(dtype=float)
    later = later[np.isfinite(later)]
    return float(100 * later.max()) if later.size and later.max() > 0 else 100.0


def write_retention_heatmap(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Draw the day-k shares as a heatmap (cohorts down, day k across, empty cells left white); return ``path``.

    The colour scale spans 0 to the largest day >= 1 share (:func:`colour_scale_max`); the always-100% day 0 is
    shown but does not drive it, as the caption says.
    """
    shares = table.drop(columns="cohort_size").to_numpy(dtype=float)
    vmax = colour_scale_max(table)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * shares.shape[1], 1.6 + 0.45 * max(len(table), 1)))
    image = ax.imshow(np.ma.masked_invalid(shares) * 100, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(shares.shape[1]), [c.replace("day_", "") for c in table.columns.drop("cohort_size")])
    ax.set_yticks(range(len(table)), [f"{d}  (n={n})" for d, n in zip(table.index, table["cohort_size"])])
    ax.set_xlabel(f"days since install\n(colour scale 0-{vmax:.0f}% set by days >= 1; day 0 is 100% by definition)")
    ax.set_title(title)
    for (row, col), value in np.ndenumerate(shares):
        if not np.isnan(value):
            ax.text(
                col,
                row,
                f"{100 * value:.0f}",
                ha="center",
                va="center",
                color="white" if 100 * value < 0.6 * vmax else "black",
                fontsize=8,
            )
    fig.colorbar(image, ax=ax, label="% of cohort active", extend="max" if vmax < 100 else "neither")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
