"""Study analysis: selection percentages (pick) or mean scores (score) per method with bootstrap intervals, and
agreement between raters.

Intervals: a two-way ("pigeonhole", Owen 2007) bootstrap that resamples raters and units independently and
weights each answer by how often its rater and its unit were drawn. Answers of one rater are correlated, and so
are answers on one unit; resampling single answers would ignore both and give intervals that are too narrow.
It fits FaceShifter's design (units nested in raters) and MobileFSGAN's (raters crossed with units) alike.

Agreement: Krippendorff's alpha, nominal for pick (the chosen method is the category) and interval for score
(each result of a unit is an item). Unlike Fleiss' kappa it needs no fixed number of raters per unit, which a
study where each rater draws their own units does not have; units rated by one rater only do not count.
Alpha is 1 for perfect agreement, 0 for agreement at chance level, and None where it is undefined (fewer than
two ratings of any unit, or no variation at all).
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from fsbench.study.design import Study


def _disagreement(values: np.ndarray, metric: str) -> float:
    """Sum over ordered pairs i != j of the squared difference (interval) or of [v_i != v_j] (nominal)."""
    if metric == "interval":
        return float(2 * len(values) * np.sum(values ** 2) - 2 * np.sum(values) ** 2)
    _, counts = np.unique(values, return_counts=True)
    return float(len(values) ** 2 - np.sum(counts.astype(np.float64) ** 2))


def krippendorff_alpha(units: Iterable[list[Any]], metric: str) -> float | None:
    """Krippendorff's alpha of the values given to each unit by different raters (any number per unit).

    alpha = 1 - D_o / D_e, with D_o the disagreement within units and D_e the disagreement between all
    pairable values: alpha = 1 - (n - 1) * sum_u D(u) / (m_u - 1) / D(all values), n = pairable values.
    """
    if metric not in ("nominal", "interval"):
        raise ValueError(f"metric must be 'nominal' or 'interval', got '{metric}'")
    pairable = [np.asarray(vals, dtype=np.float64 if metric == "interval" else object)
                for vals in units if len(vals) >= 2]
    if not pairable:
        return None
    if metric == "nominal":
        pairable = [v.astype(str) for v in pairable]
    everything = np.concatenate(pairable)
    expected = _disagreement(everything, metric)
    if expected == 0:
        return None
    observed = sum(_disagreement(v, metric) / (len(v) - 1) for v in pairable)
    return 1.0 - (len(everything) - 1) * observed / expected


def pigeonhole_bootstrap(raters: np.ndarray, units: np.ndarray, values: np.ndarray, counts: np.ndarray,
                         resamples: int, seed: int) -> np.ndarray:
    """Bootstrap distribution (resamples × columns) of sum(w·values) / sum(w·counts) per column.

    ``raters`` and ``units`` index each answer (0..R-1, 0..U-1); ``values`` and ``counts`` are answers × columns.
    Each resample draws R raters and U units with replacement; an answer's weight is the product of the number
    of times its rater and its unit were drawn. A column that got no weight in a resample is NaN there.
    """
    rng = np.random.default_rng(seed)
    n_raters, n_units = int(raters.max()) + 1, int(units.max()) + 1
    out = np.empty((resamples, values.shape[1]))
    for start in range(0, resamples, 256):  # chunks keep memory at 256 × answers
        b = min(256, resamples - start)
        w_r = rng.multinomial(n_raters, np.full(n_raters, 1 / n_raters), size=b)  # times each rater is drawn
        w_u = rng.multinomial(n_units, np.full(n_units, 1 / n_units), size=b)
        weights = (w_r[:, raters] * w_u[:, units]).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + b] = (weights @ values) / (weights @ counts)
    return out


def _interval(draws: np.ndarray) -> list[float | None]:
    finite = draws[np.isfinite(draws)]
    if len(finite) == 0:
        return [None, None]
    return [float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))]


def _question_stats(study: Study, rows: list[dict[str, Any]], resamples: int, seed: int) -> dict[str, Any]:
    methods = study.methods
    rater_ix = {r: i for i, r in enumerate(sorted({row["rater"] for row in rows}))}
    unit_ix = {u: i for i, u in enumerate(sorted({row["unit"] for row in rows}))}
    raters = np.array([rater_ix[row["rater"]] for row in rows])
    units = np.array([unit_ix[row["unit"]] for row in rows])
    column = np.array([methods.index(row["method"]) for row in rows])
    onehot = np.zeros((len(rows), len(methods)))
    onehot[np.arange(len(rows)), column] = 1.0
    if study.design == "pick":  # share of the answers that chose each method
        values, counts, scale = onehot, np.ones_like(onehot), 100.0
        by_unit: dict[Any, list[Any]] = defaultdict(list)
        for row in rows:
            by_unit[row["unit"]].append(row["method"])
        alpha = krippendorff_alpha(by_unit.values(), "nominal")
    else:  # mean score of each method's results
        values, counts, scale = onehot * np.array([row["value"] for row in rows])[:, None], onehot, 1.0
        by_item: dict[Any, list[Any]] = defaultdict(list)
        for row in rows:
            by_item[(row["unit"], row["method"])].append(row["value"])
        alpha = krippendorff_alpha(by_item.values(), "interval")
    point = values.sum(0) / np.maximum(counts.sum(0), 1)
    draws = pigeonhole_bootstrap(raters, units, values, counts, resamples, seed)
    per_method = {}
    for k, method in enumerate(methods):
        lo, hi = _interval(draws[:, k])
        per_method[method] = {"value": float(point[k] * scale) if counts[:, k].sum() else None,
                              "ci95": None if lo is None else [lo * scale, hi * scale],
                              "n": int(onehot[:, k].sum())}  # times chosen (pick), scores given (score)
    raters_of: dict[Any, set[Any]] = defaultdict(set)
    for row in rows:
        raters_of[row["unit"]].add(row["rater"])
    shared = sum(1 for who in raters_of.values() if len(who) >= 2)
    return {"answers": len(rows), "raters": len(rater_ix), "units": len(unit_ix), "methods": per_method,
            "agreement": {"krippendorff_alpha": alpha,
                          "level": "nominal" if study.design == "pick" else "interval",
                          "units_rated_by_several": shared}}


def report(study: Study, rows: list[dict[str, Any]], resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per question: each method's selection % (pick) or mean score (score) with a 95 % interval, and agreement."""
    out: dict[str, Any] = {"study": study.id, "design": study.design, "methods": study.methods,
                           "statistic": "selection %" if study.design == "pick" else "mean score",
                           "raters": len({r["rater"] for r in rows}), "answers": len(rows),
                           "units_done": len({(r["rater"], r["unit"]) for r in rows if r["unit_done"]}),
                           "questions": {}}
    for question in study.questions:
        subset = [r for r in rows if r["question"] == question]
        out["questions"][question] = _question_stats(study, subset, resamples, seed) if subset else None
    return out


def _fmt(x: float | None, digits: int) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_report(rep: dict[str, Any]) -> str:
    digits = 1 if rep["design"] == "pick" else 2
    lines = [f"study {rep['study']} ({rep['design']}): {rep['raters']} raters, {rep['answers']} answers, "
             f"{rep['units_done']} units finished; {rep['statistic']} with 95% two-way bootstrap intervals"]
    width = max(len(m) for m in rep["methods"])
    for question, stats in rep["questions"].items():
        if stats is None:
            lines.append(f"{question}: no answers yet")
            continue
        agree = stats["agreement"]
        lines.append(f"{question}: {stats['answers']} answers on {stats['units']} units; Krippendorff's alpha "
                     f"({agree['level']}) {_fmt(agree['krippendorff_alpha'], 3)} over "
                     f"{agree['units_rated_by_several']} units rated by several raters")
        for method, m in stats["methods"].items():
            ci = f"[{_fmt(m['ci95'][0], digits)}, {_fmt(m['ci95'][1], digits)}]" if m["ci95"] else ""
            lines.append(f"  {method:<{width}} {_fmt(m['value'], digits):>6} {ci}  n={m['n']}")
    return "\n".join(lines)


def summary_csv(rep: dict[str, Any]) -> str:
    """One row per question and method."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["question", "method", "statistic", "value", "ci95_low", "ci95_high", "n",
                     "krippendorff_alpha", "alpha_level"])
    for question, stats in rep["questions"].items():
        if stats is None:
            continue
        agree = stats["agreement"]
        for method, m in stats["methods"].items():
            low, high = m["ci95"] or (None, None)
            writer.writerow([question, method, rep["statistic"], m["value"], low, high, m["n"],
                             agree["krippendorff_alpha"], agree["level"]])
    return buf.getvalue()


def answers_csv(study: Study, rows: list[dict[str, Any]]) -> str:
    """Every answer with its unit's source and target items; ``position`` is where the result was shown."""
    buf = io.StringIO()
    keys = ("rater", "unit", "question", "method", "value", "position", "answered", "unit_done")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["study", *keys[:2], "source", "target", *keys[2:]])
    for row in rows:
        unit = study.units[row["unit"]]
        writer.writerow([study.id, row["rater"], row["unit"], unit.source, unit.target,
                         *(row[k] for k in keys[2:])])
    return buf.getvalue()
