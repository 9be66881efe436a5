"""Report plots: each is a function from plain data to a matplotlib `Figure` (no pyplot, no
global state), so they are testable alone and render the same in any process.

`to_svg` turns a figure into an inline-able SVG string: text kept as text (small, searchable,
crisp in print), element ids prefixed per figure so several SVGs can share one HTML page, and a
fixed hash salt so the same data gives the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import functools
from collections.abc import Callable

import matplotlib
from matplotlib.figure import Figure

from tunelab.compare.next_token import prob_text, readable_token  # one token display: console and report

SPLIT_COLORS = {"train": "#1f77b4", "val": "#d62728", "test": "#2ca02c"}
CLASS_COLORS = {"code_keyword": "#08519c", "code_identifier": "#3182bd", "code_literal": "#6baed6",
                "code_punctuation": "#9ecae1", "nl_word": "#e6550d", "nl_punctuation": "#fdae6b",
                "whitespace": "#d9d9d9"}
_RC = {"svg.fonttype": "none", "svg.hashsalt": "tunelab", "font.size": 9, "axes.spines.top": False,
       "axes.spines.right": False}


def label(text: Any) -> str:
    """Text safe for matplotlib: `$` would start mathtext."""
    return str(text).replace("$", r"\$")


def token_label(token: str, limit: int | None = None) -> str:
    """`readable_token`, safe for matplotlib."""
    return label(readable_token(token, limit))


def _styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under the report's rc settings (read when artists are created)."""

    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(_RC):
            return plot(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def to_svg(fig: Figure, prefix: str) -> str:
    """The figure as an `<svg>` element string (no XML prolog) with ids prefixed by `prefix`."""
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)


METRIC_COLOR = "#9467bd"  # an in-training generation metric, on the loss panel's right axis


@_styled
def loss_curves(rows: Sequence[dict[str, Any]], best_step: int | None = None, selected: tuple[int, str] | None = None,
                metric: tuple[str, Sequence[tuple[int, float]]] | None = None) -> Figure:
    """Loss (top) and token accuracy (bottom) of train/val/test against step, shared x axis.

    Args:
        rows: train/metrics.jsonl lines (step, split, loss, token_accuracy).
        best_step: the checkpoint with the best validation loss (dashed line).
        selected: (step, why) of a checkpoint chosen by a task metric, if different (dotted).
        metric: (name, [(step, value)]) of an in-training generation metric (e.g. val chrF),
            drawn on the loss panel's right axis so both read against the same steps.
    """
    fig = _figure(7.5, 4.6)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for split, color in SPLIT_COLORS.items():
        pts = sorted((r["step"], r) for r in rows if r.get("split") == split and r.get("loss") is not None)
        if not pts:
            continue
        steps = [s for s, _ in pts]
        style = {"marker": "o", "markersize": 3} if split != "train" else {}
        ax_loss.plot(steps, [r["loss"] for _, r in pts], color=color, label=split, **style)
        acc = [(s, r["token_accuracy"]) for s, r in pts if r.get("token_accuracy") is not None]
        if acc:
            ax_acc.plot([s for s, _ in acc], [a for _, a in acc], color=color, label=split, **style)
    for ax in (ax_loss, ax_acc):
        if best_step is not None:
            ax.axvline(best_step, color="#555", linestyle="--", linewidth=1)
        if selected is not None and selected[0] != best_step:
            ax.axvline(selected[0], color="#9467bd", linestyle=":", linewidth=1.5)
    if best_step is not None:
        ax_loss.annotate(f"best val loss: step {best_step}", (best_step, 1), xycoords=("data", "axes fraction"),
                         ha="right", va="top", fontsize=8, color="#555", xytext=(-3, -2), textcoords="offset points")
    if selected is not None and selected[0] != best_step:
        ax_loss.annotate(label(f"selected: step {selected[0]} ({selected[1]})"), (selected[0], 0.85),
                         xycoords=("data", "axes fraction"), ha="left", fontsize=8, color="#9467bd",
                         xytext=(3, 0), textcoords="offset points")
    ax_loss.set_ylabel("loss (per label token)")
    ax_acc.set_ylabel("token accuracy")
    ax_acc.set_xlabel("optimizer step")
    handles, labels = ax_loss.get_legend_handles_labels()
    if metric is not None and metric[1]:
        name, pts = metric[0], sorted(metric[1])
        ax_metric = ax_loss.twinx()
        (line,) = ax_metric.plot([p[0] for p in pts], [p[1] for p in pts], color=METRIC_COLOR, marker="s",
                                 markersize=3, linestyle="-.", label=label(name))
        ax_metric.set_ylabel(label(name), color=METRIC_COLOR)
        ax_metric.tick_params(axis="y", colors=METRIC_COLOR)
        handles, labels = [*handles, line], [*labels, label(name)]
    ax_loss.legend(handles, labels, loc="upper right", fontsize=8, frameon=False, ncols=4, bbox_to_anchor=(1, 0.9))
    return fig


@_styled
def metric_curve(points: Sequence[tuple[int, float]], name: str) -> Figure:
    """A generation metric logged during training (e.g. val chrF) against step."""
    fig = _figure(7.5, 2.4)
    ax = fig.subplots()
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, color="#9467bd")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(label(name))
    return fig


@_styled
def checkpoint_scores(points: Sequence[dict[str, Any]], metric: str, base: dict[str, Any] | None = None,
                      selected_step: int | None = None) -> Figure:
    """Score with CI per checkpoint step; the base model as a horizontal band.

    Args:
        points: {"step", "value", "ci_low", "ci_high"} per checkpoint, any order.
        base: {"value", "ci_low", "ci_high"} of the base model, or None.
    """
    fig = _figure(7.5, 2.8)
    ax = fig.subplots()
    pts = sorted(points, key=lambda p: p["step"])
    xs, ys = [p["step"] for p in pts], [p["value"] for p in pts]
    lo = [max(0.0, p["value"] - p["ci_low"]) if p.get("ci_low") is not None else 0.0 for p in pts]
    hi = [max(0.0, p["ci_high"] - p["value"]) if p.get("ci_high") is not None else 0.0 for p in pts]
    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", markersize=4, capsize=3, color="#1f77b4", label="checkpoint")
    if base is not None and base.get("value") is not None:
        ax.axhline(base["value"], color="#7f7f7f", linestyle="--", linewidth=1, label="base")
        if base.get("ci_low") is not None and base.get("ci_high") is not None:
            ax.axhspan(base["ci_low"], base["ci_high"], color="#7f7f7f", alpha=0.15, linewidth=0)
    if selected_step is not None and selected_step in xs:
        ax.plot([selected_step], [ys[xs.index(selected_step)]], marker="*", markersize=13, color="#9467bd",
                linestyle="none", label="selected")
    ax.set_xlabel("checkpoint step")
    ax.set_ylabel(label(metric))
    ax.legend(fontsize=8, frameon=False)
    return fig


TOKEN_CHARS = 12  # longer tokens are cut in the bar labels; tables show them whole


@_styled
def next_token_bars(tops: dict[str, Sequence[dict[str, Any]]]) -> Figure:
    """Top-k first-token probabilities, one panel per variant, each bar labelled with its
    probability, on one x scale for every panel (0 .. the largest probability of any variant)
    so that bar lengths compare across variants; tokens made readable and cut at TOKEN_CHARS."""
    k = max((len(v) for v in tops.values()), default=1)
    fig = _figure(3.2 * max(1, len(tops)) + 0.6, 0.22 * k + 0.9)
    axes = fig.subplots(1, max(1, len(tops)), squeeze=False)[0]
    colors = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    top = max((t["prob"] for toks in tops.values() for t in toks), default=0.0)
    for i, (ax, (variant, toks)) in enumerate(zip(axes, tops.items())):
        probs = [t["prob"] for t in toks][::-1]
        bars = ax.barh(range(len(probs)), probs, color=colors[i % len(colors)])
        ax.bar_label(bars, [prob_text(p) for p in probs], padding=2, fontsize=7)
        ax.set_yticks(range(len(probs)), [token_label(t["token"], TOKEN_CHARS) for t in toks][::-1], fontsize=8,
                      family="monospace")
        ax.set_xlim(0, max(top, 1e-9) * 1.3)  # the headroom holds the largest bar's label
        ax.set_title(label(variant), fontsize=9)
        ax.set_xlabel("probability")
    return fig


@_styled
def class_shares(rows: Sequence[tuple[str, dict[str, float]]], classes: Sequence[str]) -> Figure:
    """Stacked horizontal bars of token-class shares, one bar per (label, shares) row."""
    fig = _figure(7.5, 0.35 * len(rows) + 1.2)
    ax = fig.subplots()
    left = [0.0] * len(rows)
    ys = list(range(len(rows)))[::-1]
    for c in classes:
        vals = [r[1].get(c, 0.0) for r in rows]
        ax.barh(ys, vals, left=left, color=CLASS_COLORS.get(c, "#999"), label=c.replace("_", " "))
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(ys, [label(r[0]) for r in rows], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of tokens")
    fig.legend(fontsize=7, frameon=False, ncols=4, loc="outside lower center")
    return fig


@_styled
def pareto(points: Sequence[dict[str, Any]], cost_name: str, score_name: str, higher_is_better: bool) -> Figure:
    """Score against cost per trial, the Pareto front joined by a line.

    Args:
        points: {"name", "cost", "score", "ci_low", "ci_high", "front": bool} per trial.
    """
    fig = _figure(7.5, 3.6)
    ax = fig.subplots()
    for p in points:
        color = "#d62728" if p.get("front") else "#1f77b4"
        err = None
        if p.get("ci_low") is not None and p.get("ci_high") is not None:
            err = [[max(0.0, p["score"] - p["ci_low"])], [max(0.0, p["ci_high"] - p["score"])]]
        ax.errorbar([p["cost"]], [p["score"]], yerr=err, marker="o", color=color, capsize=3)
        ax.annotate(label(p["name"]), (p["cost"], p["score"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    front = sorted((p for p in points if p.get("front")), key=lambda p: p["cost"])
    if len(front) > 1:
        ax.plot([p["cost"] for p in front], [p["score"] for p in front], color="#d62728", linewidth=1,
                linestyle="--", label="Pareto front")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(label(cost_name) + " (lower is cheaper)")
    ax.set_ylabel(label(score_name) + (" ↑" if higher_is_better else " ↓"))
    return fig


@_styled
def val_loss_overlay(curves: dict[str, Sequence[tuple[int, float]]], ylabel: str = "validation loss") -> Figure:
    """A value against step (validation loss by default), one line per run or trial."""
    fig = _figure(7.5, 3.0)
    ax = fig.subplots()
    for name, pts in curves.items():
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) <= 40 else None, markersize=3,
                    label=label(name))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(label(ylabel))
    if curves:
        ax.legend(fontsize=7, frameon=False)
    return fig
