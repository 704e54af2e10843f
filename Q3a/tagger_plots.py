"""Report figures of the tagger: the out-of-fold confusion matrix and accuracy by text length, as PNG files.

Tags are drawn as written when a CJK font is installed, else in Jyutping (matplotlib's bundled DejaVu Sans has no
Chinese glyphs).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pycantonese

CJK_FONTS = [
    "Noto Sans CJK TC",
    "Noto Sans CJK HK",
    "Noto Sans CJK SC",
    "WenQuanYi Zen Hei",
    "AR PL UMing TW",
    "PingFang HK",
    "Microsoft JhengHei",
]


def _installed_cjk_font() -> str | None:
    from matplotlib import font_manager

    for family in CJK_FONTS:
        try:
            font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            return family
        except ValueError:
            continue
    return None


def romanise_tag(tag: str) -> str:
    """Jyutping of a tag for plots without a CJK font ("拜登" -> "baai3 dang1"); Latin tags unchanged."""
    return " ".join(jyutping or word for word, jyutping in pycantonese.characters_to_jyutping(tag))


def plot_labels(tags) -> dict:
    """{tag: label drawn in the confusion-matrix PNG}: the tag itself with a CJK font, else its Jyutping."""
    font = _installed_cjk_font()
    return {str(t): str(t) if font else romanise_tag(str(t)) for t in tags}


def plot_confusion_matrix(confusion: pd.DataFrame, path: Path) -> Path:
    """Write the confusion matrix (rows true tag, columns predicted tag, article counts) as a PNG.

    Tags are drawn as written when a CJK font is installed, else in Jyutping (matplotlib's bundled DejaVu Sans
    has no Chinese glyphs). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    font = _installed_cjk_font()
    labels = list(plot_labels(confusion.index).values())
    with plt.rc_context({"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"]}):
        fig, ax = plt.subplots(figsize=(6.5, 6), dpi=120)
        ConfusionMatrixDisplay(confusion.values, display_labels=labels).plot(
            ax=ax, cmap="Blues", colorbar=False, xticks_rotation=30
        )
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        ax.set_title("Out-of-fold confusion matrix (articles)")
        if not font:
            fig.text(
                0.01,
                0.01,
                "Tags in Jyutping (no CJK font installed); the text report lists Jyutping -> tag.",
                fontsize=8,
            )
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
    return Path(path)


def plot_accuracy_by_length(by_length: dict[str, dict], path: Path) -> Path:
    """Write CV accuracy by text length as a PNG: one line per model, x = first 30, 60, 120 characters and full
    text, error bars = standard deviation over folds.

    by_length : {model name: {version: {"mean": float, "std": float}}} with versions "30", "60", "120", "full".
    Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for name, scores in by_length.items():
        versions = list(scores)
        labels = [f"first {v}" if v != "full" else "full text" for v in versions]
        ax.errorbar(
            labels,
            [scores[v]["mean"] for v in versions],
            yerr=[scores[v]["std"] for v in versions],
            marker="o",
            capsize=4,
            label=name,
        )
    ax.set_ylabel("CV accuracy (articles unseen by the fold model)")
    ax.set_xlabel("text given to the tagger (characters)")
    ax.set_ylim(min(0.8, ax.get_ylim()[0]), 1.005)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Accuracy by text length")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
