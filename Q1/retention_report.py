"""Presentation of the cohort retention table: text, CSV and a PNG heatmap."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def format_retention_table(table: pd.DataFrame) -> str:
    """Fixed-width text of a :func:`retention.retention_table` frame; shares as percentages, empty cells blank."""
    shown = table.copy()
    for column in shown.columns.drop("cohort_size"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%")
    return shown.to_string()


def write_retention_heatmap(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Draw the day-k shares as a heatmap (cohorts down, day k across, empty cells left white); return ``path``."""
    shares = table.drop(columns="cohort_size").to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * shares.shape[1], 1.2 + 0.45 * max(len(table), 1)))
    image = ax.imshow(np.ma.masked_invalid(shares) * 100, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(shares.shape[1]), [c.replace("day_", "") for c in table.columns.drop("cohort_size")])
    ax.set_yticks(range(len(table)), [f"{d}  (n={n})" for d, n in zip(table.index, table["cohort_size"])])
    ax.set_xlabel("days since install")
    ax.set_title(title)
    for (row, col), value in np.ndenumerate(shares):
        if not np.isnan(value):
            ax.text(col, row, f"{100 * value:.0f}", ha="center", va="center",
                    color="white" if value < 0.6 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label="% of cohort active")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
