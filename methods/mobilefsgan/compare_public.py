"""Side-by-side CPU speed of the public MobileFSGAN generator and fsbench's fast paths, identical weights.

The public network definition is read from the user's checkout of HoiM/MobileFSGAN (never part of fsbench)::

    git clone https://github.com/HoiM/MobileFSGAN /tmp/MobileFSGAN
    OMP_NUM_THREADS=1 python -m methods.mobilefsgan.compare_public --public /tmp/MobileFSGAN --size 256

fsbench's weights (same state-dict keys) are loaded strictly into the public ``EncoderDecoder``. Variants are
timed in interleaved rounds so that all see the same machine load; the load average is printed with the numbers.
Differences are the full-size head's max |Δ| against the public network in its [-1, 1] range.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from fsbench.api import interleaved_ms, matmul_gflops
from methods.mobilefsgan.export import OnnxGenerator, export_onnx, fold
from methods.mobilefsgan.method import CHECKPOINT, WEIGHTS_DIR, load_generator


def variants(public: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor, e: torch.Tensor,
             workdir: Path) -> dict[str, Callable[[], torch.Tensor]]:
    folded = fold(ours)
    channels_last = fold(ours).to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)
    ort = OnnxGenerator(export_onnx(ours, workdir / "g.onnx", x.shape[-1]))
    out: dict[str, Callable[[], torch.Tensor]] = {
        "public (eager fp32)": lambda: public(x, e)[0],
        "fsbench folded fp32": lambda: folded(x, e)[0],
        "fsbench folded channels-last fp32": lambda: channels_last(xc, e)[0],
        "fsbench folded onnxruntime fp32": lambda: ort(x, e),
    }
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        bf16 = fold(ours).to(torch.bfloat16).to(memory_format=torch.channels_last)
        xb, eb = xc.bfloat16(), e.bfloat16()
        out["fsbench folded channels-last bf16 (method default)"] = lambda: bf16(xb, eb)[0].float()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--public", required=True, type=Path, help="checkout of github.com/HoiM/MobileFSGAN")
    ap.add_argument("--weights", type=Path, default=WEIGHTS_DIR / CHECKPOINT)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=4, help="timed forwards per variant per round")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(args.public))
    from modules.EncoderDecoder import EncoderDecoder as Public  # the public definition, from the user's checkout

    ours, _ = load_generator(args.weights)
    width, dim = ours.encoder_head.conv_image.out_channels, ours.identity_encoder.b256_down.fc_mean.in_features
    public = Public(width, dim).eval()
    public.load_state_dict(ours.state_dict(), strict=True)
    torch.manual_seed(0)
    x = torch.rand(1, 3, args.size, args.size) * 2 - 1
    e = torch.nn.functional.normalize(torch.randn(1, dim), dim=1)
    load_before = os.getloadavg()
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        runs = variants(public, ours, x, e, Path(tmp))
        reference = public(x, e)[0]
        diffs = {k: (f().float() - reference).abs().max().item() for k, f in runs.items()}
        counter = FlopCounterMode(display=False)
        with counter:
            public(x, e)
        gflops = counter.get_total_flops() / 1e9
        times = interleaved_ms(runs, args.rounds, args.runs)
    matmul = matmul_gflops(torch.device("cpu"))
    print(f"batch 1, {args.size}px, {args.threads} thread(s), torch {torch.__version__}; "
          f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"GFLOPs per forward (public definition, FlopCounterMode): {gflops:.2f}; fp32 matmul {matmul:.1f} GFLOP/s")
    base = statistics.median(times["public (eager fp32)"])
    for k, t in times.items():
        med = statistics.median(t)
        print(f"  {k:<50} {med:8.1f} ms  {base / med:5.2f}x  {gflops / med * 1000:6.1f} GFLOP/s "
              f"({gflops / med * 1000 / matmul:5.1%} of matmul)  max|diff| {diffs[k]:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
