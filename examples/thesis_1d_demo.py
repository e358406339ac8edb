"""The thesis's 1-D demonstration (figs. 3-4 and 12-13): Gamma (Student-t) search beside Gaussian.

    python examples/thesis_1d_demo.py --output thesis_1d_demo.html --n-trials 12

Maximizes ``f(x) = -sin(3x) - x^2 + 0.7x`` on ``[-1, 2]`` with :class:`GammaBOSampler`, once with
``predictive="student_t"`` (the Gamma conjugate prior on the output precision, integrated out)
and once with ``predictive="gaussian"`` (plain GP-EI, the thesis's "Gaussian search"), both from
the same two start-up points. The sampler is driven step by step with Optuna's ask-and-tell
interface. Before each model-based proposal the script draws

* the GP posterior: location and a central 95% band (Student-t quantiles with ``nu = 2 a_n``
  degrees of freedom for the Gamma model, Gaussian quantiles for the plain GP), the true function
  and the observations so far;
* the expected improvement over ``x``, and the point the sampler then proposed,

into one self-contained HTML page, with a slider over the iterations (Gamma left, Gaussian
right) and a convergence plot. It prints how many evaluations each mode needed to come within
``--tolerance`` (default 1e-2) of the maximum.

The drawn posterior is a **refit**: the sampler's internal GP is not part of its public API, so
the script fits :func:`optuna_gamma.gp.fit_gp` again on the same data, transformed the way the
sampler transforms it (``x`` mapped linearly to the unit interval, ``y`` standardized), with the
sampler's own settings (``sampler.gp_settings``). The demo runs the thesis's model as
docs/design.md §2 states it (zero mean, no output warping; the sampler's defaults add a constant
mean and a Yeo-Johnson warp of the outputs), so that the drawn band is in the objective's units.
The sampler warm-starts its hyperparameter fit from the previous trial, so its fit can differ
slightly from the refit; the proposal marked on the plot is the sampler's own.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
import time
from typing import cast
from typing import TYPE_CHECKING

import numpy as np
import optuna
from scipy import stats

from optuna_gamma import GammaBOSampler
from optuna_gamma.gp import fit_gp
from optuna_gamma.gp.acquisition import expected_improvement
from optuna_gamma.gp.settings import Predictive


if TYPE_CHECKING:
    import plotly.graph_objects as go


LOW, HIGH = -1.0, 2.0
MODES = {"student_t": "Gamma search (Student-t EI)", "gaussian": "Gaussian search (Gaussian EI)"}
GRID = np.linspace(LOW, HIGH, 601)


def f(x: float | np.ndarray) -> float | np.ndarray:
    """The thesis's 1-D test function ``-sin(3x) - x^2 + 0.7x``."""
    return -np.sin(3 * x) - x**2 + 0.7 * x


def true_maximum() -> tuple[float, float]:
    """The global maximum of ``f`` on ``[LOW, HIGH]`` (dense grid, then a bounded refinement)."""
    from scipy.optimize import minimize_scalar

    xs = np.linspace(LOW, HIGH, 30001)
    x0 = xs[np.argmax(f(xs))]
    h = (HIGH - LOW) / 30000
    res = minimize_scalar(lambda x: -f(x), bounds=(x0 - h, x0 + h), method="bounded")
    return float(res.x), float(-res.fun)


def posterior_snapshot(xs: np.ndarray, ys: np.ndarray, sampler_kwargs: dict) -> dict:
    """Refit the GP on the observations and evaluate posterior band and EI on ``GRID``."""
    u = (xs - LOW) / (HIGH - LOW)  # the sampler's unit-cube transform for a linear float
    mean, std = ys.mean(), ys.std()
    std = std if std > 0 else 1.0
    z = (ys - mean) / std  # standardized, larger is better (direction maximize)
    gp = fit_gp(u[:, None], z, sampler_kwargs["settings"])
    ug = (GRID - LOW) / (HIGH - LOW)
    loc, scale = gp.predict(ug[:, None])
    q = stats.norm.ppf(0.975) if math.isinf(gp.dof) else stats.t.ppf(0.975, gp.dof)
    ei = expected_improvement(loc, scale, float(z.max()), xi=sampler_kwargs["xi"], dof=gp.dof)
    return {
        "mean": mean + std * loc,
        "lower": mean + std * (loc - q * scale),
        "upper": mean + std * (loc + q * scale),
        "ei": ei,
        "dof": gp.dof,
    }


def run_mode(
    predictive: str,
    n_trials: int,
    x_init: list[float],
    seed: int,
    xi: float,
    *,
    snapshots: bool = True,
) -> dict:
    """Drive one GammaBOSampler with ask-and-tell; snapshot the posterior before each proposal."""
    sampler = GammaBOSampler(
        predictive=cast(Predictive, predictive),
        xi=xi,
        mean="zero",
        warp_output=False,
        deterministic_objective=True,  # f is noise-free
        n_startup_trials=len(x_init),
        seed=seed,
    )
    sampler_kwargs = {"settings": sampler.gp_settings, "xi": xi}
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for x in x_init:
        study.enqueue_trial({"x": x})
    xs: list[float] = []
    ys: list[float] = []
    snaps: list[dict] = []
    seconds = 0.0  # time spent in the sampler (ask/suggest/tell), not in the pictures' refits
    for i in range(n_trials):
        snap = None
        if snapshots and i >= len(x_init):  # a model-based proposal follows: draw its basis
            snap = posterior_snapshot(np.array(xs), np.array(ys), sampler_kwargs)
        start = time.perf_counter()
        trial = study.ask()
        x = trial.suggest_float("x", LOW, HIGH)
        y = float(f(x))
        study.tell(trial, y)
        seconds += time.perf_counter() - start
        if snap is not None:
            snap.update(x_obs=list(xs), y_obs=list(ys), x_next=x, y_next=y, iteration=i + 1)
            snaps.append(snap)
        xs.append(x)
        ys.append(y)
    return {"x": xs, "y": ys, "snapshots": snaps, "seconds": seconds}


def evaluations_to_reach(ys: list[float], target: float) -> int | None:
    """1-based index of the first evaluation with ``y >= target`` (None if never)."""
    for i, y in enumerate(ys, start=1):
        if y >= target:
            return i
    return None


def build_figure(results: dict[str, dict], x_star: float, f_star: float) -> go.Figure:
    """Two columns (Gamma, Gaussian) x two rows (posterior, EI), a slider over the iterations."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    modes = list(results)
    fig = make_subplots(
        rows=2,
        cols=len(modes),
        shared_xaxes=True,
        row_heights=[0.65, 0.35],
        vertical_spacing=0.08,
        subplot_titles=[MODES[m] for m in modes] + ["expected improvement"] * len(modes),
    )
    for col, _ in enumerate(modes, start=1):
        fig.add_trace(
            go.Scatter(
                x=GRID,
                y=f(GRID),
                mode="lines",
                name="f(x)",
                showlegend=col == 1,
                line={"color": "black", "dash": "dot"},
            ),
            row=1,
            col=col,
        )
    n_static = len(fig.data)
    n_steps = max(len(results[m]["snapshots"]) for m in modes)
    step_traces: list[list[int]] = [[] for _ in range(n_steps)]
    for col, m in enumerate(modes, start=1):
        snaps = results[m]["snapshots"]
        for s in range(n_steps):
            snap = snaps[min(s, len(snaps) - 1)]
            first = col == 1
            visible = s == 0
            traces = [
                (
                    go.Scatter(
                        x=GRID,
                        y=snap["upper"],
                        mode="lines",
                        line={"width": 0},
                        showlegend=False,
                        hoverinfo="skip",
                    ),
                    1,
                ),
                (
                    go.Scatter(
                        x=GRID,
                        y=snap["lower"],
                        mode="lines",
                        line={"width": 0},
                        fill="tonexty",
                        fillcolor="rgba(31,119,180,0.2)",
                        name="95% band",
                        showlegend=first,
                        hoverinfo="skip",
                    ),
                    1,
                ),
                (
                    go.Scatter(
                        x=GRID,
                        y=snap["mean"],
                        mode="lines",
                        name="posterior location",
                        line={"color": "rgb(31,119,180)"},
                        showlegend=first,
                    ),
                    1,
                ),
                (
                    go.Scatter(
                        x=snap["x_obs"],
                        y=snap["y_obs"],
                        mode="markers",
                        name="observed",
                        marker={"color": "black", "size": 8},
                        showlegend=first,
                    ),
                    1,
                ),
                (
                    go.Scatter(
                        x=[snap["x_next"]],
                        y=[snap["y_next"]],
                        mode="markers",
                        name="next proposal",
                        showlegend=first,
                        marker={"color": "red", "size": 12, "symbol": "star"},
                    ),
                    1,
                ),
                (
                    go.Scatter(
                        x=GRID,
                        y=snap["ei"],
                        mode="lines",
                        name="EI (standardized)",
                        line={"color": "green"},
                        showlegend=first,
                    ),
                    2,
                ),
                (
                    go.Scatter(
                        x=[snap["x_next"], snap["x_next"]],
                        y=[0, float(np.max(snap["ei"]))],
                        mode="lines",
                        line={"color": "red", "dash": "dash"},
                        showlegend=False,
                        hoverinfo="skip",
                    ),
                    2,
                ),
            ]
            for trace, row in traces:
                trace.visible = visible
                fig.add_trace(trace, row=row, col=col)
                step_traces[s].append(len(fig.data) - 1)
    steps = []
    for s in range(n_steps):
        vis = [True] * n_static + [False] * (len(fig.data) - n_static)
        for idx in step_traces[s]:
            vis[idx] = True
        it = results[modes[0]]["snapshots"][min(s, len(results[modes[0]]["snapshots"]) - 1)]
        steps.append(
            {"method": "update", "args": [{"visible": vis}], "label": str(it["iteration"])}
        )
    fig.update_layout(
        title={
            "text": f"thesis 1-D demo: f(x) = -sin(3x) - x² + 0.7x, max {f_star:.4f} at "
            f"x = {x_star:.4f}; slider: evaluation number of the proposal"
        },
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": "evaluation "}}],
        height=760,
    )
    fig.update_xaxes(title_text="x", row=2)
    fig.update_yaxes(title_text="f(x)", row=1, col=1)
    return fig


def convergence_figure(results: dict[str, dict], f_star: float) -> go.Figure:
    """Best value so far against the number of evaluations, both modes."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for m, res in results.items():
        best = np.maximum.accumulate(res["y"])
        regret = np.maximum(f_star - best, 1e-12)  # log axis
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(best) + 1)), y=regret, mode="lines+markers", name=MODES[m]
            )
        )
    fig.update_layout(
        title={"text": "regret f* - best so far"},
        xaxis={"title": {"text": "evaluations"}},
        yaxis={"title": {"text": "regret"}, "type": "log"},
    )
    return fig


def main(argv: list[str] | None = None) -> dict[str, int | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("thesis_1d_demo.html"))
    parser.add_argument("--n-trials", type=int, default=12, help="evaluations per mode (>= 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--xi", type=float, default=0.01, help="EI trade-off (standardized units)")
    parser.add_argument("--tolerance", type=float, default=1e-2)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="also rerun with seeds seed+1 .. seed+repeat-1 (no pictures) and summarize",
    )
    args = parser.parse_args(argv)
    if args.n_trials < 3:
        parser.error(f"--n-trials must be >= 3, got {args.n_trials}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")

    from optuna_gamma.tuner.reporting.plots import write_html

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x_star, f_star = true_maximum()
    x_init = np.random.default_rng(args.seed).uniform(LOW, HIGH, size=2).round(6).tolist()
    results = {m: run_mode(m, args.n_trials, x_init, args.seed, args.xi) for m in MODES}

    needed: dict[str, int | None] = {}
    print(f"max f = {f_star:.6f} at x = {x_star:.6f}; start-up points {x_init}")
    for m, res in results.items():
        n = evaluations_to_reach(res["y"], f_star - args.tolerance)
        needed[m] = n
        i_best = int(np.argmax(res["y"]))
        reached = f"{n} evaluations" if n is not None else f"not within {args.n_trials}"
        print(
            f"{MODES[m]:32s} within {args.tolerance:g} of the max after {reached}; "
            f"best f = {res['y'][i_best]:.6f} at x = {res['x'][i_best]:.6f} "
            f"(sampler time {res['seconds']:.2f} s)"
        )
    write_html(
        [build_figure(results, x_star, f_star), convergence_figure(results, f_star)],
        args.output,
        title="optuna-gamma: thesis 1-D demo",
    )
    print(f"wrote {args.output}")
    if args.repeat > 1:
        summarize_seeds(args, f_star)
    return needed


def summarize_seeds(args: argparse.Namespace, f_star: float) -> None:
    """Evaluations to reach the tolerance over several seeds (same start-up points per seed)."""
    counts: dict[str, list[int]] = {m: [] for m in MODES}
    for seed in range(args.seed, args.seed + args.repeat):
        x_init = np.random.default_rng(seed).uniform(LOW, HIGH, size=2).round(6).tolist()
        for m in MODES:
            ys = run_mode(m, args.n_trials, x_init, seed, args.xi, snapshots=False)["y"]
            n = evaluations_to_reach(ys, f_star - args.tolerance)
            counts[m].append(n if n is not None else args.n_trials + 1)
    print(f"over {args.repeat} seeds (not reached counts as {args.n_trials + 1}):")
    for m, c in counts.items():
        print(f"{MODES[m]:32s} mean {np.mean(c):.2f}, median {np.median(c):g} evaluations: {c}")


if __name__ == "__main__":
    main()
