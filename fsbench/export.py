"""`fsbench export --method NAME --format onnx --out FILE`: a method's swap network as a deployable file.

The harness knows no method by name: a method that can be exported overrides ``Method.export_onnx(path) -> Path``;
any other gets a clear error. The written file is checked by running it once with onnxruntime.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fsbench.errors import UsageError
from fsbench import argtypes

FORMATS = ("onnx",)


def export(method_name: str, fmt: str, out: Path, device: str = "cpu") -> Path:
    from fsbench import registry

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}' (known: {', '.join(FORMATS)})")
    method = registry.methods.get(method_name)(device=device)
    path = Path(method.export_onnx(Path(out)))
    _check_onnx(path)
    return path


def _check_onnx(path: Path) -> None:
    """Load with onnxruntime and run once on zeros of the declared input shapes (dynamic axes as 1)."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in session.get_inputs()}
    session.run(None, feeds)


def _cmd_export(args: argparse.Namespace) -> int:
    path = export(args.method, args.format, Path(args.out or f"{args.method}.{args.format}"), args.device)
    print(f"exported: {path} (runs in onnxruntime)")
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    """Register `fsbench export` on the `fsbench` subcommand parser."""
    p = sub.add_parser("export", help="write a method's swap network as a deployable file (ONNX)")
    p.add_argument("--method", required=True)
    p.add_argument("--format", default="onnx", choices=FORMATS)
    p.add_argument("--out", help="output file (default: METHOD.FORMAT)")
    p.add_argument("--device", type=argtypes.device, default="cpu")
    p.set_defaults(func=_cmd_export)
