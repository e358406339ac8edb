"""Thesis figs. 12-13: how many evaluations until the maximum of the 1-D demo function is found.

The thesis (section 3, figs. 12-13; after Martin Krasser's GP blog post) maximizes
``f(x) = -sin(3x) - x^2 + 0.7x`` on ``[-1, 2]`` (maximum 0.50036 at x = -0.3594) with two
start-up points and GP-EI, and reports that the Gaussian predictive needs 8-9 evaluations, the
Gamma (Student-t) one 5-6. Here every sampler gets the same budget over many seeds, and a cell
records the number of evaluations (start-up points included) until the best value so far is
within ``1e-2`` and ``1e-3`` of the maximum:

* ``student_t``, ``gaussian``, ``plugin``: :class:`optuna_gamma.GammaBOSampler` in its three
  predictive modes (defaults otherwise, ``n_startup_trials=2``);
* ``gp``: Optuna's ``GPSampler(n_startup_trials=2)``.

Each sampler runs twice: as a user would call it (``deterministic_objective=False``, the
default) and told that the function is noise-free (``deterministic_objective=True``). A run that
never gets within the tolerance counts as ``budget + 1`` (censored; the table gives the share
that got there).

    python -m benchmarks.thesis.one_d          # 50 seeds x 30 evaluations (~5 min on 1 core)
    python -m benchmarks.thesis.one_d --summary-only
"""

from __future__ import annotations

import math
from pathlib import Path
import time
from typing import Any
from typing import cast

import numpy as np

from benchmarks.sampler.problems import thesis1d_function
from benchmarks.thesis import common as tc


NAME = "thesis_1d"
SAMPLERS = ("student_t", "gaussian", "plugin", "gp")
TOLERANCES = (1e-2, 1e-3)
LOW, HIGH = -1.0, 2.0


def true_maximum() -> tuple[float, float]:
    """``(argmax, max)`` of f on [-1, 2], by a dense grid refined with bounded Brent."""
    from scipy.optimize import minimize_scalar

    xs = np.linspace(LOW, HIGH, 30001)
    x0 = xs[int(np.argmax([thesis1d_function(float(x)) for x in xs]))]
    res = minimize_scalar(
        lambda x: -thesis1d_function(x),
        bounds=(x0 - 1e-3, x0 + 1e-3),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(res.x), float(-res.fun)


def make_sampler(name: str, seed: int, deterministic: bool, mean: str = "constant") -> Any:
    """The sampler of a cell. ``mean``: the GP's prior mean; the stored reproduction
    (``results/thesis_1d.jsonl``) used the GLS constant mean, the sampler's default before
    ``"worst"`` (``--mean worst`` measures the default of now)."""
    import optuna

    if name == "gp":
        return optuna.samplers.GPSampler(
            n_startup_trials=2, seed=seed, deterministic_objective=deterministic
        )
    from optuna_gamma import GammaBOSampler
    from optuna_gamma.gp.settings import Mean
    from optuna_gamma.gp.settings import Predictive

    return GammaBOSampler(
        predictive=cast(Predictive, name),
        mean=cast(Mean, mean),
        n_startup_trials=2,
        seed=seed,
        deterministic_objective=deterministic,
    )


def evaluations_to(values: list[float], maximum: float, tol: float) -> int | None:
    """1-based number of evaluations until ``max(values[:n]) >= maximum - tol`` (None: never)."""
    best = -math.inf
    for n, v in enumerate(values, 1):
        best = max(best, v)
        if best >= maximum - tol:
            return n
    return None


def run_cell(
    sampler: str,
    seed: int,
    deterministic: bool,
    budget: int,
    maximum: float,
    mean: str = "constant",
) -> dict[str, Any]:
    import optuna

    study = optuna.create_study(
        direction="maximize", sampler=make_sampler(sampler, seed, deterministic, mean)
    )
    t0 = time.process_time()
    study.optimize(lambda t: thesis1d_function(t.suggest_float("x", LOW, HIGH)), n_trials=budget)
    cpu = time.process_time() - t0
    values = []
    for t in study.trials:
        if t.value is None:  # optimize() re-raises, so every trial should have a value
            raise RuntimeError(f"trial {t.number} ended {t.state.name} without a value")
        values.append(float(t.value))
    xs = [float(t.params["x"]) for t in study.trials]
    return {
        "sampler": sampler,
        "seed": seed,
        "deterministic": deterministic,
        "budget": budget,
        "values": values,
        "x": xs,
        "cpu_seconds": cpu,
        **{f"evals_{tol:g}": evaluations_to(values, maximum, tol) for tol in TOLERANCES},
    }


def key(sampler: str, seed: int, deterministic: bool, budget: int) -> str:
    return f"{sampler}|det={int(deterministic)}|seed={seed}|budget={budget}"


# statistics
Cell = dict[str, Any]
Groups = dict[tuple[str, bool], list[Cell]]


def _filled(c: Cell, tol: float) -> int:
    """Evaluations to within ``tol``; budget + 1 when never (censored)."""
    return c[f"evals_{tol:g}"] or c["budget"] + 1


def _evaluation_stats(groups: Groups) -> list[dict[str, Any]]:
    """Per (deterministic, sampler): evaluations to each tolerance and CPU per evaluation."""
    out = []
    for det in (False, True):
        for s in SAMPLERS:
            g = groups.get((s, det))
            if not g:
                continue
            per_tol = {}
            for tol in TOLERANCES:
                ev = [c[f"evals_{tol:g}"] for c in g]
                filled = [e if e is not None else c["budget"] + 1 for e, c in zip(ev, g)]
                per_tol[tol] = {
                    "quartiles": tc.quartiles(filled),
                    "mean": float(np.mean(filled)),
                    "reached": sum(e is not None for e in ev),
                    "reached_12": sum(e is not None and e <= 12 for e in ev),
                    "n": len(ev),
                }
            out.append(
                {
                    "sampler": s,
                    "deterministic": det,
                    "seeds": len(g),
                    "tolerances": per_tol,
                    "ms_per_eval": 1000 * tc.median(c["cpu_seconds"] / c["budget"] for c in g),
                }
            )
    return out


def _paired_stats(groups: Groups) -> list[dict[str, Any]]:
    """student_t against each other sampler, paired by seed: differences and a sign test."""
    from scipy.stats import binomtest

    out = []
    for det in (False, True):
        ref = {c["seed"]: c for c in groups.get(("student_t", det), [])}
        for other in SAMPLERS[1:]:
            for tol in TOLERANCES:
                diffs = [
                    _filled(ref[c["seed"]], tol) - _filled(c, tol)
                    for c in groups.get((other, det), [])
                    if c["seed"] in ref
                ]
                if not diffs:
                    continue
                w, t, l_ = (
                    sum(d < 0 for d in diffs),
                    sum(d == 0 for d in diffs),
                    sum(d > 0 for d in diffs),
                )
                out.append(
                    {
                        "other": other,
                        "deterministic": det,
                        "tol": tol,
                        "diffs": diffs,
                        "wtl": (w, t, l_),
                        "p": binomtest(w, w + l_).pvalue if w + l_ else 1.0,
                    }
                )
    return out


# rendering
def _render_intro(maximum: float) -> list[str]:
    return [
        "# Thesis figs. 12-13: evaluations until the maximum of "
        "f(x) = -sin(3x) - x^2 + 0.7x on [-1, 2]",
        "",
        f"Maximum {maximum:.6f}. Evaluations counted with the 2 random start-up points included; "
        "a run that never got within the tolerance counts as budget + 1 (censored), and the "
        "'reached' columns give the share of seeds that got there within the budget and within "
        "12 evaluations (the thesis's 2 start-up + 10 iterations). Thesis: Gaussian 8-9, "
        "Gamma 5-6 evaluations (one run each).",
        "",
    ]


def _render_evaluations(stats: list[dict[str, Any]], budget: int) -> str:
    rows = []
    for r in stats:
        s = r["sampler"]
        row = [s if s != "gp" else "gp (Optuna GPSampler)", "yes" if r["deterministic"] else "no"]
        row.append(r["seeds"])
        for tol in TOLERANCES:
            x = r["tolerances"][tol]
            q1, q2, q3 = x["quartiles"]
            row += [
                f"{q2:g} [{q1:g}, {q3:g}]",
                f"{x['mean']:.1f}",
                f"{x['reached']}/{x['n']}",
                f"{x['reached_12']}/{x['n']}",
            ]
        row.append(f"{r['ms_per_eval']:.0f}")
        rows.append(row)
    headers = ["sampler", "deterministic_objective", "seeds"]
    for tol in TOLERANCES:
        headers += [
            f"evals to {tol:g}: median [Q1, Q3]",
            "mean",
            f"reached (<= {budget})",
            "reached (<= 12)",
        ]
    headers.append("ms CPU / evaluation")
    return tc.md_table(headers, rows)


def _render_paired(stats: list[dict[str, Any]]) -> list[str]:
    rows = [
        [
            f"student_t vs {r['other']}",
            "yes" if r["deterministic"] else "no",
            f"{r['tol']:g}",
            len(r["diffs"]),
            f"{np.mean(r['diffs']):+.2f}",
            "/".join(map(str, r["wtl"])),
            f"{r['p']:.2f}",
        ]
        for r in stats
    ]
    return [
        "",
        "Paired by seed (the three GammaBO modes start from the same two random points for a "
        "seed; GPSampler draws its own): evaluations of student_t minus those of the other "
        "sampler; W/T/L = student_t needed fewer / as many / more; p = two-sided sign test over "
        "the non-tied seeds.",
        "",
        tc.md_table(
            [
                "pair",
                "deterministic_objective",
                "tolerance",
                "seeds",
                "mean difference (evals)",
                "W/T/L",
                "sign test p",
            ],
            rows,
        ),
    ]


def _figures(cells: list[Cell], groups: Groups, maximum: float) -> list[Any]:
    """Evaluations per tolerance (boxes per sampler); median regret against evaluations."""
    import plotly.graph_objects as go

    figs = []
    for tol in TOLERANCES:
        fig = go.Figure()
        for (s, det), g in sorted(
            groups.items(), key=lambda kv: (kv[0][1], SAMPLERS.index(kv[0][0]))
        ):
            ev = [_filled(c, tol) for c in g]
            fig.add_trace(
                go.Box(y=ev, name=f"{s}{' (det)' if det else ''}", boxpoints="all", jitter=0.4)
            )
        fig.update_layout(
            title=f"Evaluations until within {tol:g} of the maximum "
            f"({len(cells) // max(len(groups), 1)} seeds; budget + 1 = not reached)",
            yaxis_title="evaluations",
        )
        figs.append(fig)
    fig = go.Figure()
    for (s, det), g in sorted(groups.items(), key=lambda kv: (kv[0][1], SAMPLERS.index(kv[0][0]))):
        curves = np.array(
            [np.maximum(maximum - np.maximum.accumulate(c["values"]), 1e-12) for c in g]
        )
        fig.add_trace(
            go.Scatter(
                x=list(range(1, curves.shape[1] + 1)),
                y=np.median(curves, axis=0).tolist(),
                mode="lines+markers",
                name=f"{s}{' (det)' if det else ''}",
            )
        )
    fig.update_layout(
        title="Median simple regret (max - best so far) vs evaluations",
        xaxis_title="evaluations",
        yaxis_title="regret",
        yaxis_type="log",
    )
    figs.append(fig)
    return figs


def summarize(cells: list[Cell], maximum: float, out: Path, name: str) -> str:
    """Write ``<name>.md`` (figs. 12-13 as tables) and ``<name>.html``; return the text."""
    groups: Groups = {}
    for c in cells:
        groups.setdefault((c["sampler"], bool(c["deterministic"])), []).append(c)
    budget = max((c["budget"] for c in cells), default=0)
    lines = _render_intro(maximum)
    lines.append(_render_evaluations(_evaluation_stats(groups), budget))
    lines += _render_paired(_paired_stats(groups))
    lines += ["", tc.code_note(cells, lambda c: c["sampler"]), ""]
    text = "\n".join(lines) + "\n"
    tc.write_text(out, name, ".md", text)
    tc.write_figures(
        out, name, _figures(cells, groups, maximum), "Thesis figs. 12-13: the 1-D function"
    )
    return text


def main(argv: list[str] | None = None) -> int:
    p = tc.common_parser(__doc__ or "", seeds="0-49")
    p.add_argument("--budget", type=int, default=30, help="evaluations per run (default 30)")
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--deterministic", choices=("both", "yes", "no"), default="both")
    p.add_argument(
        "--mean",
        choices=("constant", "zero", "worst"),
        default="constant",
        help="GammaBOSampler's mean= (default constant: the stored reproduction's)",
    )
    args, name, cells = tc.start(p, argv, NAME)
    seeds = tc.parse_seeds(args.seeds)
    _, maximum = true_maximum()
    if not args.summary_only:
        tc.write_meta(
            args.out,
            name,
            {"seeds": seeds, "budget": args.budget, "samplers": args.samplers, "mean": args.mean},
        )
        t0 = time.perf_counter()
        dets = {"both": (False, True), "yes": (True,), "no": (False,)}[args.deterministic]
        done = 0
        for det in dets:
            for s in args.samplers:
                for seed in seeds:
                    k = key(s, seed, det, args.budget)
                    done += tc.run_once(
                        cells,
                        k,
                        lambda: run_cell(s, seed, det, args.budget, maximum, args.mean),
                        t0,
                    )
        tc.finish_meta(args.out, name, cells_run=done, wall_seconds=time.perf_counter() - t0)
        print(f"{NAME}: {done} new cells in {tc.elapsed(t0)}")
    print(summarize(cells.values(), maximum, args.out, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
