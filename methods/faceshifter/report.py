"""Figures for MODEL_CARD.md, each from one command. An evaluation tool beside the plugin: ``selfswap`` reads the mini
set through fsbench's data and face modules (the plugin itself uses only fsbench.api).

    python -m methods.faceshifter.report sizes [--widths W ...]   # parameters, fp32 MB, GFLOPs per configuration
    python -m methods.faceshifter.report losses RUN_DIR        # steps, training time, final losses of a run
    python -m methods.faceshifter.report selfswap [--weights PATH]   # X_s = X_t reconstruction PSNR
    python -m methods.faceshifter.report swap-identity [--weights PATH] [--aei CHECKPOINT]   # SFace cosines
    python -m methods.faceshifter.report layouts               # bf16 swap: prepacked channels-last or not, by width
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch.utils.flop_counter import FlopCounterMode

from fsbench.api import interleaved_ms
from methods.faceshifter.configs import CONFIGS, Architecture, get_config
from methods.faceshifter.method import PREPACK_MIN_WIDTH, FaceShifter, FastFaceShifter
from methods.faceshifter.net import TEMPLATE, FaceShifterNet


def sizes(widths: list[float]) -> None:
    """Counted and traced on the meta device: nothing is allocated or run. ``widths``: also ``cpu-portraits`` at
    each of these widths (rows ``cpu-portraits@W``), the sizes a wider CPU-resolution network would have."""
    configs = {name: cfg.arch for name, cfg in CONFIGS.items()}
    configs.update({f"cpu-portraits@{w:g}": get_config("cpu-portraits", {"arch.width": w}).arch for w in widths})
    print(f"{'config':<18} {'net':<5} {'parameters':>12} {'MB fp32':>9} {'MiB fp32':>9} {'GFLOPs/image':>13}")
    for name, cfg in configs.items():
        with torch.device("meta"):
            net = FaceShifterNet(cfg).eval()
            x, z = torch.empty(1, 3, cfg.size, cfg.size), torch.empty(1, cfg.id_dim)
            calls = {"aei": lambda: net.aei(x, z), "hear": lambda: net.hear(x, x), "swap": lambda: net(x, z, z)}
            for part, call in calls.items():
                with FlopCounterMode(display=False) as counter:
                    call()
                module = net if part == "swap" else getattr(net, part)
                n = sum(p.numel() for p in module.parameters())
                print(f"{name:<18} {part:<5} {n:>12,} {n * 4 / 1e6:>9.1f} {n * 4 / 2**20:>9.1f} "
                      f"{counter.get_total_flops() / 1e9:>13.2f}")


def losses(run: Path, last: int) -> None:
    """Steps, training seconds and the mean of the last ``last`` logged entries of each phase."""
    for phase in ("aei", "hear"):
        log = run / phase / "losses.jsonl"
        if not log.is_file():
            print(f"{phase}: no log")
            continue
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        tail = rows[-last:]
        keys = [k for k in tail[-1] if k not in ("step", "seconds", "step_s")]
        means = ", ".join(f"{k} {np.mean([r[k] for r in tail if k in r]):.4f}" for k in keys)  # a key some records lack
        step_s = np.median([r["step_s"] for r in rows])
        with safe_open(str(run / phase / "checkpoint.safetensors"), framework="pt") as f:
            meta = f.metadata()
        minutes = json.loads(meta["extra"])["elapsed_s"] / 60
        print(f"{phase}: {meta['step']} steps (checkpoint), {minutes:.1f} min, median {step_s:.2f} s/step; "
              f"mean of the last {len(tail)} logged entries (steps {tail[0]['step']}-{tail[-1]['step']}): {means}")


def test_still_crops(size: int) -> torch.Tensor:
    """Every mini test still, aligned to ffhq-256 at ``size``, ``N×3×S×S`` in [0, 1]."""
    from fsbench import assets
    from fsbench.data import mini
    from fsbench.faces import io
    from fsbench.faces.align import align_face
    from fsbench.faces.detect import detect_face

    crops = []
    for item in mini.load_manifest().items(split="test", kind="still"):
        image = io.read_image(assets.path(item.asset))
        face = detect_face(image, index=item.face_index, source=item.id)
        crops.append(align_face(image, face.landmarks, "ffhq-256", size)[0])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div_(255.0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [0, 1]."""
    return 10 * torch.log10(1 / (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-12))


def selfswap(weights: str | None) -> None:
    method = FaceShifter(weights=weights)
    crops = test_still_crops(method.arch.size)
    out = torch.cat([method.swap(c[None], c[None]) for c in crops])
    values = psnr(out, crops)
    print(f"self-swap PSNR on {len(crops)} mini test stills (ffhq-256 crops at {crops.shape[-1]} px): "
          f"mean {values.mean():.2f} dB, min {values.min():.2f}, max {values.max():.2f}")


def swap_identity(weights: str | None, aei_checkpoint: str | None, count: int) -> None:
    """SFace cosines of swaps of random training-identity pairs: whether the identity moves in the training
    encoder's own space (the protocols report the evaluation recogniser, dlib, on test identities)."""
    from fsbench.train.data import mini_train_crops
    from fsbench.train import checkpoint
    from fsbench.train import step_rng
    from methods.faceshifter.train import BalancedPairs

    method = FaceShifter(weights=weights)
    if aei_checkpoint:  # AEI-Net alone, from a training checkpoint of the weights' configuration
        checkpoint.load(Path(aei_checkpoint), {"aei": method.net.aei}, {})
    crops = mini_train_crops(TEMPLATE, method.arch.size)
    pairs = BalancedPairs(crops)(step_rng(999, 0), count, 0.0)
    src, tgt = pairs.src, pairs.tgt
    with torch.no_grad():
        z_s, z_t = method.encoder.embed(src, TEMPLATE), method.encoder.embed(tgt, TEMPLATE)
        y = ((method.net.aei(tgt * 2 - 1, z_s)[0] + 1) / 2 if aei_checkpoint else method.swap_embedded(z_s, tgt))
        z_y = method.encoder.embed(y.clamp(0, 1), TEMPLATE)
    cos = lambda a, b: float(F.cosine_similarity(a, b).mean())  # noqa: E731
    print(f"{count} random training-identity pairs, SFace cosine (mean): source-target {cos(z_s, z_t):.3f}, "
          f"swap-source {cos(z_y, z_s):.3f}, swap-target {cos(z_y, z_t):.3f}")


def layouts() -> None:
    """Milliseconds per image of the bf16 swap (random weights) with and without the prepacked channels-last
    path, across widths: where :data:`~methods.faceshifter.method.PREPACK_MIN_WIDTH` comes from."""
    print(f"bf16, {torch.get_num_threads()} thread(s); the method prepacks from width {PREPACK_MIN_WIDTH}")
    for size, width in ((128, 1 / 8), (128, 1 / 4), (128, 1 / 2), (128, 1.0), (256, 1 / 8), (256, 1 / 2)):
        torch.manual_seed(0)
        net = FaceShifterNet(Architecture(size=size, width=width)).eval()
        paths = {packed: FastFaceShifter(net, torch.bfloat16, prepacked=packed) for packed in (False, True)}
        for batch in (1, 8):
            x = torch.rand(batch, 3, size, size) * 2 - 1
            z = F.normalize(torch.randn(batch, net.arch.id_dim), dim=1)
            times = interleaved_ms({packed: (lambda f=f: f(x, z, z)) for packed, f in paths.items()}, 5, 1)
            plain, packed = (float(np.median(times[k])) / batch for k in (False, True))
            print(f"  {size}px width {width:<6.3f} batch {batch}: plain {plain:7.1f}  prepacked {packed:7.1f} "
                  f"ms/image  ({packed / plain:.2f}x the time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("sizes")
    p.add_argument("--widths", type=float, nargs="*", default=[], help="also cpu-portraits at these widths")
    p = sub.add_parser("losses")
    p.add_argument("run", type=Path)
    p.add_argument("--last", type=int, default=20, help="logged entries to average")
    p = sub.add_parser("selfswap")
    p.add_argument("--weights", help="a FaceShifter safetensors file (default: the shipped one)")
    p = sub.add_parser("swap-identity")
    p.add_argument("--weights", help="a FaceShifter safetensors file (default: the shipped one)")
    p.add_argument("--aei", help="an AEI-Net training checkpoint to use instead of the weights' AEI-Net (no HEAR)")
    p.add_argument("--pairs", type=int, default=64)
    sub.add_parser("layouts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "sizes":
        sizes(args.widths)
    elif args.what == "losses":
        losses(args.run, args.last)
    elif args.what == "swap-identity":
        swap_identity(args.weights, args.aei, args.pairs)
    elif args.what == "layouts":
        layouts()
    else:
        selfswap(args.weights)


if __name__ == "__main__":
    main()
