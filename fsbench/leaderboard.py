"""Results -> leaderboards/: one markdown table, CSV and plots per protocol, built only from results files.

Results files live in ``leaderboards/results/``; a file dropped there (from a plugin package, say) joins the
table when it is valid and measured what the table measures: the protocol's newest version with the default
metric backends. Anything else is rejected with the reason, printed and listed under the table.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsbench import results, samples, wild
from fsbench.metrics.definitions import declared, figure_label, figure_metric, slot_family

ROOT = Path(__file__).resolve().parent.parent / "leaderboards"
RESULTS = ROOT / "results"


@dataclass
class Board:
    protocol: str
    version: int
    header: dict[str, Any]  # variant and backends of the accepted rows
    rows: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)


def _key(result: dict[str, Any]) -> tuple:
    backends = tuple(sorted((f, b["name"], tuple(sorted(b["weights_sha256"].items())))
                            for f, b in result["backends"].items()))
    variant = {k: v for k, v in result["protocol"]["variant"].items() if k != "limit"}
    return backends, tuple(sorted((k, str(v)) for k, v in variant.items()))


def collect(folder: Path = RESULTS) -> tuple[dict[str, Board], list[tuple[Path, str]]]:
    """Group valid results by protocol; the reference for each protocol is its newest version measured with the
    embedded default backends (the committed refresh), so a foreign file cannot redefine the table."""
    loaded: list[tuple[Path, dict[str, Any]]] = []
    rejected: list[tuple[Path, str]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            result = results.load(path)
            if result.get("protocol", {}).get("variant", {}).get("limit"):
                raise results.ResultsError(f"{path}: a --limit run covers only part of the protocol")
            unknown = sorted(m for m in {k.split("@", 1)[0] for k in result["aggregates"]} if not declared(m))
            if unknown:
                raise results.ResultsError(f"{path}: no installed package declares its metrics {', '.join(unknown)}")
            loaded.append((path, result))
        except results.ResultsError as err:
            rejected.append((path, str(err)))
    boards: dict[str, Board] = {}
    for name in sorted({r["protocol"]["name"] for _, r in loaded}):
        group = [(p, r) for p, r in loaded if r["protocol"]["name"] == name]
        version = max(r["protocol"]["version"] for _, r in group)
        defaults = [(p, r) for p, r in group if r["protocol"]["version"] == version and default_stack(r)]
        reference = _key(defaults[0][1]) if defaults else _key(group[0][1])
        ref_result = (defaults or group)[0][1]
        board = Board(name, version, {"variant": ref_result["protocol"]["variant"],
                                      "backends": ref_result["backends"],
                                      "description": ref_result["protocol"]["description"],
                                      "dataset": ref_result["dataset"]})
        seen: dict[tuple, tuple[Path, dict]] = {}
        for path, result in group:
            if result["protocol"]["version"] != version:
                board.rejected.append((path, f"protocol v{result['protocol']['version']}, table is v{version}"))
            elif _key(result) != reference:
                board.rejected.append((path, "; ".join(_backend_differences(ref_result, result)
                                                       + results.comparability(ref_result, result))
                                       or "different protocol variant or backend weights"))
            else:
                card = result["method"]
                row_key = (card["name"], card["version"], card.get("checkpoint_sha256"))
                if row_key in seen and seen[row_key][1]["created"] >= result["created"]:
                    board.rejected.append((path, f"older duplicate of {seen[row_key][0].name}"))
                    continue
                if row_key in seen:
                    board.rejected.append((seen[row_key][0], f"older duplicate of {path.name}"))
                seen[row_key] = (path, result)
        board.rows = sorted(seen.values(), key=lambda pr: pr[1]["method"]["name"])
        boards[name] = board
    return boards, rejected


def default_stack(result: dict[str, Any]) -> bool:
    """Whether a result was measured with the default backends (primary and further) of the families it measured."""
    from fsbench.scoring import chosen_backends, default_backends

    measured = {slot: record["name"] for slot, record in result["backends"].items()}
    families = {slot_family(slot) for slot in measured}
    return families <= set(default_backends()) and measured == chosen_backends(families)


def _backend_differences(table: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Each backend slot whose backend differs between the table's reference result and ``result``."""
    def name(r: dict[str, Any], slot: str) -> str | None:
        return (r["backends"].get(slot) or {}).get("name")

    slots = sorted(set(table["backends"]) | set(result["backends"]))
    return [f"{slot} backend {name(table, slot)} in the table, {name(result, slot)} here" for slot in slots
            if name(table, slot) != name(result, slot)]


def board_figures(board: Board) -> list[str]:
    """The figures of the board's rows in the order they report them; a row without a figure others report (a
    metric another package declares, measured in some rows only) shows it as not measured."""
    return list(dict.fromkeys(key for _, r in board.rows for key in r["aggregates"]))


def _fixed(value: float, places: int) -> str:
    """``value`` to ``places`` decimals, where a value that rounds to zero reads 0 (a distance of two equal sets
    computes to about -1e-9)."""
    return f"{round(value, places) + 0.0:.{places}f}"  # + 0.0 turns -0.0 into 0.0


def _cell(agg: dict[str, Any] | None) -> str:
    if agg is None:
        return "not measured"
    if agg.get("absent"):
        return "— (see below)"
    if agg.get("mean") is None:
        return "n/a"
    ci = f" [{_fixed(agg['ci95'][0], 3)}, {_fixed(agg['ci95'][1], 3)}]" if agg.get("ci95") else ""
    return f"{_fixed(agg['mean'], 3)}{ci}"


def _metric_label(board: Board, figure: str) -> str:
    spec = figure_metric(figure)
    label = figure_label(board.header["backends"], figure)
    return f"{spec.name} {'↑' if spec.higher_is_better else '↓'} ({label})"


def render_csv(board: Board) -> str:
    metrics = board_figures(board)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["method", "version", "checkpoint_sha256", "precision", "pairs_scored", "pairs",
                     *[f"{m}_{s}" for m in metrics for s in ("mean", "ci_low", "ci_high")], "results_file"])
    for path, r in board.rows:
        cells = []
        for m in metrics:
            agg = r["aggregates"].get(m, {})
            ci = agg.get("ci95") or [None, None]
            cells += [agg.get("mean"), ci[0], ci[1]]
        writer.writerow([r["method"]["name"], r["method"]["version"], r["method"].get("checkpoint_sha256") or "",
                         r.get("precision", ""), r["counts"]["pairs_scored"], r["counts"]["pairs"],
                         *["" if c is None else _fixed(c, 6) for c in cells], f"results/{path.name}"])
    return out.getvalue()


def render_markdown(board: Board, plots: list[str], sheet: tuple[str, samples.Sheet] | None = None) -> str:
    h = board.header
    lines = [f"# {board.protocol} (protocol v{board.version})", "",
             "Generated by `fsbench leaderboard build` from the files in `results/`; do not edit by hand.", "",
             f"{h['description']}", "",
             f"- dataset: {h['dataset'].get('name')} (manifest sha256 `{h['dataset'].get('manifest_sha256', '')[:16]}`)",
             "- variant: " + "; ".join(f"{k}: {v}" for k, v in h["variant"].items() if k != "limit"),
             "- backends: " + "; ".join(f"{f}: {b['name']} ({b['kind']}, label {b['label']})"
                                      for f, b in sorted(h["backends"].items())),
             "- cells: mean [95 % bootstrap interval over pairs]; Fréchet distances are one value for the set",
             "- precision: what the method's convolutions and matmuls ran in (a method's `auto` precision, where it "
             "has one, is bf16 on a CPU with native bf16, else fp32); —: a run from before fsbench recorded it", ""]
    if sheet is not None:
        name, drawn = sheet
        lines += [f"![source, target and each method's swap of {len(drawn.cells)} pairs]({name})", "",
                  f"Rows: {len(drawn.cells)} pairs chosen by a seeded rule, the same for every method; crops as "
                  f"scored, re-aligned to ffhq-256, {samples.SIDE} px JPEG (`results/samples/`); grey: no sample.", ""]
        lines += [f"{i}. {caption}" for i, caption in enumerate(drawn.captions, 1)] + [""]
    if board.rows:
        metrics = board_figures(board)
        lines.append("| method | checkpoint | precision | pairs | "
                     + " | ".join(_metric_label(board, m) for m in metrics) + " | results |")
        lines.append("|" + "---|" * (len(metrics) + 5))
        for path, r in board.rows:
            card = r["method"]
            lines.append(f"| {card['name']} v{card['version']} | `{(card.get('checkpoint_sha256') or '—')[:12]}` | "
                         f"{r.get('precision', '—')} | {r['counts']['pairs_scored']}/{r['counts']['pairs']} | "
                         + " | ".join(_cell(r["aggregates"].get(m)) for m in metrics)
                         + f" | [json](results/{path.name}) |")
        lines += _user_files(board)
        absent = {m: r["aggregates"][m]["absent"] for _, r in board.rows for m in metrics
                  if r["aggregates"].get(m, {}).get("absent")}
        if absent:
            lines += ["", "Withheld figures (a top-k retrieval whose gallery is too small to miss is not a figure):"]
            lines += [f"- {m}: {why}" for m, why in absent.items()]
    lines.append("")
    lines += [f"![{p}]({p})" for p in plots]
    if board.rejected:
        lines += ["", "## Rejected results files", ""]
        lines += [f"- `{p.name}`: {why}" for p, why in board.rejected]
    return "\n".join(lines) + "\n"


def _user_files(board: Board) -> list[str]:
    """Lines naming the files of each row whose weights the user supplied (a method card's ``user_files``), with
    their sha256: such a row's checkpoint is the digest of these files, so other files make another row."""
    rows = [(r["method"]["name"], r["method"]["notes"]["user_files"]) for _, r in board.rows
            if isinstance(r["method"].get("notes", {}).get("user_files"), dict)]
    if not rows:
        return []
    lines = ["", "Weights supplied by the user (`fsbench assets add`), per row:"]
    for name, files in rows:
        lines.append(f"- {name}: " + "; ".join(
            f"{f['file']} sha256 `{f['sha256']}` ({f['published'] or 'a hash no publisher lists'})"
            for f in files.values()))
    return lines


def plot_files(board: Board) -> list[str]:
    if not board.rows:
        return []
    tradeoff = {"id_top1_frame", "pose_error"} <= set(board_figures(board))
    return [f"{board.protocol}_metrics.png"] + ([f"{board.protocol}_id_vs_pose.png"] if tradeoff else [])


def render_plots(board: Board, folder: Path) -> None:
    """Per-metric bars with intervals and the ID-retrieval vs pose-error trade-off; PNGs without timestamps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = plot_files(board)
    if not files:
        return
    names = [r["method"]["name"] for _, r in board.rows]
    metrics = [m for m in board_figures(board) if figure_metric(m).per_sample
               and not any(r["aggregates"].get(m, {}).get("absent") for _, r in board.rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        aggs = [r["aggregates"].get(m, {}) for _, r in board.rows]
        means = [a["mean"] if a.get("mean") is not None else 0.0 for a in aggs]
        err = [[max(0.0, mu - a["ci95"][0]) if a.get("ci95") else 0.0 for mu, a in zip(means, aggs)],
               [max(0.0, a["ci95"][1] - mu) if a.get("ci95") else 0.0 for mu, a in zip(means, aggs)]]
        ax.bar(range(len(names)), means, yerr=err, capsize=3, color="#4c72b0")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_title(_metric_label(board, m), fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / files[0], dpi=100, metadata={"Software": None})
    plt.close(fig)
    if len(files) > 1:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        _scatter_with_legend(ax, [(name, r["aggregates"]["pose_error"]["mean"], r["aggregates"]["id_top1_frame"]["mean"])
                                  for name, (_, r) in zip(names, board.rows)])
        ax.set_xlabel(_metric_label(board, "pose_error"), fontsize=7)
        ax.set_ylabel(_metric_label(board, "id_top1_frame"), fontsize=7)
        ax.set_title("identity vs attribute preservation", fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / files[1], dpi=100, metadata={"Software": None})
        plt.close(fig)


MARKERS = "osD^vP*Xph<>"


def _scatter_with_legend(ax: Any, points: list[tuple[str, float | None, float | None]]) -> None:
    """One marker per named point and a legend beside the axes: labels written next to points overlap where
    methods score alike (copy-target and the trained checkpoints sit on one spot)."""
    for i, (name, x, y) in enumerate(points):
        if x is not None and y is not None:
            ax.scatter(x, y, marker=MARKERS[i % len(MARKERS)], s=36, alpha=0.8, label=name)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def outdated(recorded: dict[str, Any]) -> str | None:
    """Why results recorded with method card ``recorded`` no longer describe the registered method (another
    version or checkpoint), or None; methods that are not registered here are not judged."""
    from fsbench import registry

    if recorded["name"] not in registry.methods.names():
        return None
    card = registry.methods.get(recorded["name"]).card
    if (recorded["version"], recorded.get("checkpoint_sha256")) == (card.version, card.checkpoint_sha256):
        return None
    return (f"measured with {recorded['name']} v{recorded['version']} checkpoint "
            f"{str(recorded.get('checkpoint_sha256'))[:12]}, the registered method is v{card.version} checkpoint "
            f"{str(card.checkpoint_sha256)[:12]}: run `fsbench leaderboard refresh --methods {recorded['name']}`")


def build(root: Path = ROOT, check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) every protocol's markdown and CSV; returns the problems found.

    The check compares the markdown and CSV text, and each comparison sheet's recorded digest with the sample
    crops (``fsbench.samples``); plots are regenerated by a build but not compared byte for byte (PNG bytes
    depend on the matplotlib and font versions)."""
    boards, rejected = collect(root / "results")
    problems = [f"rejected {p.name}: {why}" for p, why in rejected]
    expected_files: dict[Path, str] = {}
    stale = [f"{p.relative_to(root.parent)}: {why}" for board in boards.values() for p, r in board.rows
             if (why := outdated(r["method"]))]
    for board in boards.values():
        if not check:
            render_plots(board, root)
        sheet = _sheet(board, root, check, stale)
        expected_files[root / f"{board.protocol}.md"] = render_markdown(board, plot_files(board), sheet)
        expected_files[root / f"{board.protocol}.csv"] = render_csv(board)
        problems += [f"{board.protocol}: rejected {p.name}: {why}" for p, why in board.rejected]
    wild_sheet = _wild_sheet(boards, root, check, stale)
    if wild_sheet is not None:
        expected_files[root / wild.PAGE] = wild.render_page(wild_sheet)
    expected_files[root / "README.md"] = render_index(boards, wild_sheet is not None)
    speed = speed_board(root)
    if speed is not None:
        expected_files[root / "speed.md"], expected_files[root / "speed.csv"] = speed
        if not check:
            render_speed_plot(root)
    problems += stale
    for path, text in expected_files.items():
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(f"{path.relative_to(root.parent)} is not what the results produce")
        else:
            path.write_text(text)
    return stale if check else problems


# the index's headline metrics; each is shown by its family's primary backend and then by each further one
HEADLINE_METRICS = ("id_top1_frame", "id_cosine", "pose_error", "expression_error", "fd")


def headline_figures() -> list[str]:
    """The figure names of the headline table: each of :data:`HEADLINE_METRICS` followed by its figures by the
    further backends every run reports (``scoring.EXTRA_BACKENDS``): dlib's and ArcFace's identity side by side,
    the independent pose, then MediaPipe's."""
    from fsbench.metrics.definitions import figure_key, metric, slot
    from fsbench.scoring import EXTRA_BACKENDS

    return [figure_key(name, slot(metric(name).family, extra)) for name in HEADLINE_METRICS
            for extra in (None, *EXTRA_BACKENDS.get(metric(name).family, ()))]


def render_index(boards: dict[str, Board], wild_page: bool = False) -> str:
    """``leaderboards/README.md``: the headline protocol's main figures, then every page in run order."""
    from fsbench.protocols import EMBEDDED

    order = [p for p in EMBEDDED if p in boards] + sorted(p for p in boards if p not in EMBEDDED)
    lines = ["# Leaderboards", "", "Generated by `fsbench leaderboard build` from the files in `results/`; do not "
             "edit by hand. Each protocol's page has every metric with its interval, the comparison sheet and the "
             "rejected files.", ""]
    if order:
        board = boards[order[0]]
        metrics = [m for m in headline_figures() if m in board_figures(board)]
        lines += [f"## Headline: [{board.protocol}]({board.protocol}.md) (protocol v{board.version})", "",
                  "| method | " + " | ".join(_metric_label(board, m) for m in metrics) + " |",
                  "|" + "---|" * (len(metrics) + 1)]
        lines += [f"| {r['method']['name']} | " + " | ".join(_cell(r["aggregates"].get(m)) for m in metrics) + " |"
                  for _, r in board.rows]
        lines.append("")
    lines += ["## Pages", ""] + [f"- [{p}]({p}.md)" for p in order]
    if wild_page:
        lines.append(f"- [ordinary photos]({wild.PAGE}): every method on photos and video frames of the test "
                     "people, pasted back as `fsbench swap` does (not scored)")
    lines += ["- [speed](speed.md)", "- [figures the papers reported](reported.md) (not measured here)", ""]
    return "\n".join(lines)


def _sheet(board: Board, root: Path, check: bool, stale: list[str]) -> tuple[str, samples.Sheet] | None:
    """Draw (or, with ``check``, compare) the board's comparison sheet; appends to ``stale`` a missing or stale
    sheet and each current row of a registered method without sample crops."""
    from fsbench import registry

    folder = root / "results"
    for path, r in board.rows:
        card = r["method"]
        if (card["name"] in registry.methods.names() and not outdated(card)
                and not samples.has_samples(card, board.protocol, board.version, folder)):
            stale.append(f"{board.protocol}: no sample crops of {card['name']} in "
                         f"{samples.protocol_folder(folder, board.protocol, board.version).relative_to(root.parent)}"
                         f": run `fsbench leaderboard refresh --methods {card['name']}`")
    sheet = samples.Sheet.of(board.protocol, board.version, [r["method"] for _, r in board.rows], folder)
    if sheet is None:
        return None
    path = root / f"{board.protocol}_samples.jpg"
    _draw_or_check(sheet, path, check, stale)
    return path.name, sheet


def _draw_or_check(sheet: samples.Sheet, path: Path, check: bool, stale: list[str]) -> None:
    if not check:
        sheet.draw(path)
    elif samples.recorded_digest(path) != sheet.digest():
        stale.append(f"{path.relative_to(path.parent.parent)} is missing or not what the sample crops produce")


def _wild_sheet(boards: dict[str, Board], root: Path, check: bool, stale: list[str]) -> samples.Sheet | None:
    """Draw (or, with ``check``, compare) ``wild_samples.jpg`` (``fsbench.wild``) with a column per method that
    has a leaderboard row; appends to ``stale`` a missing or stale sheet, stored pairs other than the declared
    ones and each current row of a registered method without wild samples."""
    from fsbench import registry
    from fsbench.swapcache import method_key

    folder = root / "results"
    cards = sorted({method_key(r["method"]): r["method"] for board in boards.values()
                    for _, r in board.rows}.values(), key=lambda card: card["name"])
    hint = "run `fsbench leaderboard refresh --wild-only"
    stored = wild.stored_rows(folder)
    if stored is not None and stored != wild.declared_rows():
        stale.append(f"{wild.folder_of(folder).relative_to(root.parent)}: other pairs than fsbench/wild.py "
                     f"declares: {hint}`")
    for card in cards:
        if card["name"] in registry.methods.names() and not outdated(card) and not wild.has_samples(card, folder):
            stale.append(f"{wild.SHEET}: no wild samples of {card['name']}: {hint} --methods {card['name']}`")
    sheet = wild.sheet(cards, folder)
    if sheet is not None:
        _draw_or_check(sheet, root / wild.SHEET, check, stale)
    return sheet


def speed_board(root: Path) -> tuple[str, str] | None:
    """Markdown and CSV of the committed ``fsbench bench`` reports (results/bench/<method>.json), or None."""
    import json

    reports = [json.loads(p.read_text()) for p in sorted((root / "results" / "bench").glob("*.json"))]
    if not reports:
        return None
    header = ["method", "version", "precision", "parameters", "weights_mb", "gflops_per_image", "ms_per_image_batch1",
              "achieved_gflops_per_s", "matmul_gflops_per_s", "device_name", "torch_threads"]
    rows = [[r["method"], r["version"], r.get("precision", ""), r["parameters"], f"{r['weights_mb']:.2f}", f"{r['gflops_per_image']:.3f}",
             f"{r['batches']['1']['median_ms_per_image']:.2f}",
             "" if r["achieved_gflops_per_s"] is None else f"{r['achieved_gflops_per_s']:.1f}",
             f"{r['matmul_gflops_per_s']:.1f}", r["device_name"], r.get("torch_threads", "")] for r in reports]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    md = ["# Speed and size", "", "Generated by `fsbench leaderboard build` from `results/bench/*.json` "
          "(written by `fsbench bench --json`, run by `fsbench leaderboard refresh`). Timings are of the swap "
          "network only, identity precompute excluded, median after warm-up; they depend on the machine named "
          "in each row. achieved_gflops_per_s is the network's FLOPs over its time in the precision its convolutions "
          "and matmuls ran in (precision; none: no torch network); matmul_gflops_per_s is the machine's measured fp32 matmul.", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    md += ["", "![speed against size](speed_vs_size.png)"]
    return "\n".join(md) + "\n", out.getvalue()


def render_speed_plot(root: Path) -> None:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    reports = [json.loads(path.read_text()) for path in sorted((root / "results" / "bench").glob("*.json"))]
    _scatter_with_legend(ax, [(r["method"], r["weights_mb"], r["batches"]["1"]["median_ms_per_image"])
                              for r in reports])
    ax.set_xlabel("weights (MB, fp32)", fontsize=8)
    ax.set_ylabel("ms per image, batch 1", fontsize=8)
    ax.set_title("speed against size (swap network only)", fontsize=8)
    fig.tight_layout()
    fig.savefig(root / "speed_vs_size.png", dpi=100, metadata={"Software": None})
    plt.close(fig)


# the temporal results of results/temporal/: mini-video on 16 consecutive target frames per clip
TEMPORAL_PROTOCOL, TEMPORAL_FRAMES, TEMPORAL_TAG = "mini-video", "consecutive:16", "consecutive16"


def _rerun(result: dict[str, Any]) -> bool:
    """Whether ``refresh`` runs a results file's method and protocol again: the method changed since, or the file
    was measured with other backends than today's default stack."""
    return outdated(result["method"]) is not None or not default_stack(result)


def refresh(root: Path = ROOT, runs: Path = Path("runs/leaderboard"), methods: list[str] | None = None,
            clean: bool = False, progress: bool = True, wild_only: bool = False) -> list[str]:
    """Re-run the embedded protocols and ``bench`` for every registered method (a method that runs files you supply,
    only when ``methods`` names it), store the sample crops of the comparison sheets (``fsbench.samples``) and the
    cells of the wild sheet (``fsbench.wild``), then build; ``wild_only`` stores only the wild sheet's missing cells
    (no protocol run, no bench; ``clean`` then deletes only those cells).

    A method's temporal results in ``results/temporal/`` (``docs/protocols.md`` writes them) are run again where
    outdated, into that folder as the documented command does.

    Resumable: swaps are cached under ``runs`` and a (method, protocol) whose results file is already in
    ``results/``, of the registered method's version and checkpoint and measured with the default backends, is not
    run again (only its missing sample crops are stored), so an interrupted refresh continues where it stopped;
    ``clean`` starts from nothing.
    """
    import json
    import shutil

    from fsbench import registry
    from fsbench.bench import bench
    from fsbench.protocols import EMBEDDED
    from fsbench.runner import RunConfig, run

    folder = root / "results"
    if clean and (wiped := wild.folder_of(folder) if wild_only else folder).exists():
        shutil.rmtree(wiped)
    (folder / "bench").mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    chosen = methods or [m for m in registry.methods.names()
                         if not registry.methods.get(m).card.notes.get("user_files")]  # yours: only when named
    for method in chosen:
        card = registry.methods.get(method).card
        if card.notes.get("user_files"):  # named after your files once they are loaded: other files, other results
            card = registry.create_method(method).card
        if not wild.has_samples(card.to_dict(), folder) or wild.stored_rows(folder) != wild.declared_rows():
            problems += [f"{wild.SHEET}: {method} on {pair}: {why}" for pair, why in wild.store(method, folder).items()]
        for protocol in () if wild_only else EMBEDDED:
            version = registry.protocols.get(protocol).version
            name = results.file_name(card.name, protocol, version, 0)
            if not (folder / name).is_file() or _rerun(results.load(folder / name)):
                path, _ = run(RunConfig(method=method, protocol=protocol, out=runs, progress=progress))
                if path is None:  # a rank > 0 under torchrun
                    continue
                shutil.copy(path, folder / name)
            if not samples.has_samples(card.to_dict(), protocol, version, folder):
                samples.store(method, protocol, runs, folder)
        temporal = folder / "temporal" / results.file_name(
            card.name, TEMPORAL_PROTOCOL, registry.protocols.get(TEMPORAL_PROTOCOL).version, 0, TEMPORAL_TAG)
        if not wild_only and temporal.is_file() and _rerun(results.load(temporal)):
            run(RunConfig(method=method, protocol=TEMPORAL_PROTOCOL, out=temporal.parent, progress=progress,
                          protocol_options={"frames": TEMPORAL_FRAMES}))
        bench_file = folder / "bench" / f"{card.name}.json"
        recorded = json.loads(bench_file.read_text()).get("card") if bench_file.is_file() else None
        if not wild_only and (recorded is None or outdated(recorded)):
            report = bench(registry.methods.get(method)(device="cpu"))
            bench_file.write_text(json.dumps(report, indent=1) + "\n")
    return problems + build(root)
