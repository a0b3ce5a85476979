"""`fsbench study create|report`: parse, call fsbench.study, print."""
from __future__ import annotations

import argparse
from pathlib import Path

from fsbench import argtypes


def _create(args: argparse.Namespace) -> int:
    from fsbench.study import design
    from fsbench.study.storage import Storage

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    out = Path(args.out) if args.out else Path("studies") / f"{args.protocol}-{args.design}"
    study = design.create(Path(args.results), out, args.protocol, methods, args.design, args.per_rater,
                          seed=args.seed, run_seed=args.run_seed, image_size=args.image_size,
                          data_root=args.data_root,
                          protocol_options=argtypes.key_values(args.protocol_option, "--protocol-option", "compression=c23"))
    Storage(study).close()  # the answers database exists before the first raters arrive at once
    print(f"study {study.id}: {len(study.units)} units, {study.per_rater} per rater, design {study.design}, "
          f"methods {', '.join(study.methods)}")
    print(f"serve it: FSBENCH_STUDY_TOKEN=<organiser token> streamlit run app.py -- {out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from fsbench.study import analysis
    from fsbench.study.design import Study
    from fsbench.study.storage import Storage

    study = Study.load(args.study)
    with Storage(study) as db:
        rows = db.all_answers()
    rep = analysis.report(study, rows, resamples=args.resamples, seed=args.seed)
    print(analysis.format_report(rep))
    if args.answers_csv:
        Path(args.answers_csv).write_text(analysis.answers_csv(study, rows))
        print(f"answers: {args.answers_csv}")
    if args.summary_csv:
        Path(args.summary_csv).write_text(analysis.summary_csv(rep))
        print(f"summary: {args.summary_csv}")
    return 0


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    """Register `fsbench study create|report` on the `fsbench` subcommand parser."""
    p = sub.add_parser("study", help="human-rating studies: create one from results, report its answers")
    ssub = p.add_subparsers(dest="action", required=True)

    c = ssub.add_parser("create", help="a study folder (definition + images) from the results of several methods")
    c.add_argument("--protocol", required=True)
    c.add_argument("--methods", required=True, help="comma-separated method names, e.g. faceshifter,mobilefsgan")
    c.add_argument("--design", choices=["pick", "score"], default="pick",
                   help="pick: choose the best result per question (FaceShifter); score: 0-5 each (MobileFSGAN)")
    c.add_argument("--per-rater", type=argtypes.positive_int, default=20, help="units per rater, drawn without repeats (default 20)")
    c.add_argument("--results", default="runs", help="the results folder of `fsbench run` (default: runs)")
    c.add_argument("--out", help="study folder (default: studies/<protocol>-<design>)")
    c.add_argument("--seed", type=argtypes.non_negative_int, default=0, help="study seed: with a rater's code it fixes their units")
    c.add_argument("--run-seed", type=argtypes.non_negative_int, help="which results to use when a method has several runs")
    c.add_argument("--data-root", type=Path, help="the data set the runs used, for protocols that need one")
    c.add_argument("--protocol-option", action="append", default=[], metavar="KEY=VALUE",
                   help="the protocol options the runs used (repeatable)")
    c.add_argument("--image-size", type=argtypes.positive_int, default=256, help="side of every image shown (default 256)")
    c.set_defaults(func=_create)

    r = ssub.add_parser("report", help="selection %% or mean scores with 95%% intervals, rater agreement, CSV")
    r.add_argument("study", help="the study folder")
    r.add_argument("--answers-csv", help="write every answer to this CSV file")
    r.add_argument("--summary-csv", help="write the per-method figures to this CSV file")
    r.add_argument("--resamples", type=argtypes.positive_int, default=2000, help="bootstrap resamples (default 2000)")
    r.add_argument("--seed", type=argtypes.non_negative_int, default=0, help="bootstrap seed")
    r.set_defaults(func=_report)
