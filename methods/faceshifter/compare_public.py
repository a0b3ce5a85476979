"""Side-by-side CPU speed and outputs of a public FaceShifter AEI-Net and fsbench's, identical weights.

The public network definition is read from the user's checkout of taotaonice/FaceShifter (never part of fsbench)::

    git clone https://github.com/taotaonice/FaceShifter /tmp/FaceShifter
    OMP_NUM_THREADS=1 python -m methods.faceshifter.compare_public --public /tmp/FaceShifter

Random ``paper`` weights (no paper-scale checkpoint exists) with non-trivial BatchNorm statistics are mapped onto
the public ``AEI_Net``: our fused γ/β convolution and FC are split into its ``conv1``/``conv2`` and ``fc1``/``fc2``,
and our ResBlk convolution biases are zeroed (it has none). Its bilinear upsampling uses ``align_corners=True``;
the differences are printed as published and with that one argument set to ours (``False``). The full swap runs
our HEAR-Net after either AEI-Net: the public one twice (Ŷ_s,t and AEI(X_t, X_t)), ours once with the attribute
modulations shared, both as defined (fp32) and on the method's inference path (:class:`FastFaceShifter`: BN
folded, in fp32 and in bf16). Variants are timed in interleaved rounds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from methods.faceshifter.configs import get_config
from methods.faceshifter.method import FastFaceShifter
from methods.faceshifter.net import FaceShifterNet


def public_state(ours: FaceShifterNet) -> dict[str, torch.Tensor]:
    """Our AEI-Net state dict in the public AEI_Net's keys."""
    out: dict[str, torch.Tensor] = {}
    for k, v in ours.aei.state_dict().items():
        parts = k.split(".")
        if parts[:2] == ["encoder", "down"]:
            out[f"encoder.conv{int(parts[2]) + 1}.{'.'.join(parts[3:])}"] = v
        elif parts[:2] == ["encoder", "up"]:
            layer = {"0": "deconv", "1": "bn"}[parts[3]]
            out[f"encoder.deconv{int(parts[2]) + 1}.{layer}.{'.'.join(parts[4:])}"] = v
        elif parts[:2] == ["generator", "init"]:
            out[f"generator.up1.{parts[2]}"] = v
        else:  # generator.blocks.<k>.<module>.<...>
            block = f"generator.AADBlk{int(parts[2]) + 1}"
            module, rest = parts[3], parts[4:]
            if module.startswith("aad"):
                aad = f"{block}.AAD{module[3:]}"
                if rest[0] == "mask":
                    out[f"{aad}.conv_h.{rest[1]}"] = v
                else:  # γ first, β second, as our forward chunks them
                    first, second = {"att": ("conv1", "conv2"), "id": ("fc1", "fc2")}[rest[0]]
                    out[f"{aad}.{first}.{rest[1]}"], out[f"{aad}.{second}.{rest[1]}"] = v.chunk(2)
            elif rest[0] == "weight":  # conv1, conv2, shortcut (the public conv3)
                out[f"{block}.{'conv3' if module == 'shortcut' else module}.weight"] = v
    return out


def _random_paper_net() -> FaceShifterNet:
    torch.manual_seed(0)
    net = FaceShifterNet(get_config("paper").arch)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.bias is not None:
                m.bias.zero_()  # the ResBlk convolutions: the public ones have no bias
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--public", required=True, type=Path, help="checkout of github.com/taotaonice/FaceShifter")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=1, help="timed forwards per variant per round")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(args.public))
    import network.AEI_Net as public_module  # the public definition, from the user's checkout

    from fsbench.api import interleaved_ms

    ours = _random_paper_net()
    dim = ours.arch.id_dim
    public = public_module.AEI_Net(c_id=dim).eval()
    public.load_state_dict(public_state(ours), strict=True)
    torch.manual_seed(1)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    z_s, z_t = (F.normalize(torch.randn(1, dim), dim=1) for _ in range(2))

    def public_swap() -> torch.Tensor:
        y_st, y_tt = public(x, z_s)[0], public(x, z_t)[0]
        return ours.hear(y_st, x - y_tt)

    load_before = os.getloadavg()
    with torch.no_grad():
        diffs = {"public vs fsbench AEI-Net, as published": (public(x, z_s)[0] - ours.aei(x, z_s)[0]).abs().max().item()}
        public_module.F = types.SimpleNamespace(  # the same module with align_corners=False, as ours
            interpolate=lambda *a, **k: F.interpolate(*a, **{**k, "align_corners": False}))
        diffs["public vs fsbench AEI-Net, align_corners=False"] = (public(x, z_s)[0] - ours.aei(x, z_s)[0]).abs().max().item()
        diffs["public vs fsbench full swap, align_corners=False"] = (public_swap() - ours(x, z_s, z_t)).abs().max().item()
        fast = {"fp32": FastFaceShifter(ours, torch.float32), "bf16": FastFaceShifter(ours, torch.bfloat16)}
        for name, net in fast.items():
            diffs[f"public vs fsbench full swap, {name} path"] = (public_swap() - net(x, z_s, z_t)).abs().max().item()
        diffs["fsbench full swap, bf16 path vs fp32 path"] = (fast["bf16"](x, z_s, z_t)
                                                        - fast["fp32"](x, z_s, z_t)).abs().max().item()
        times = interleaved_ms({"public AEI-Net": lambda: public(x, z_s), "fsbench AEI-Net": lambda: ours.aei(x, z_s),
                                "public full swap": public_swap, "fsbench full swap": lambda: ours(x, z_s, z_t),
                                "fsbench full swap fp32 path": lambda: fast["fp32"](x, z_s, z_t),
                                "fsbench full swap bf16 path": lambda: fast["bf16"](x, z_s, z_t)},
                               args.rounds, args.runs)
    print(f"paper config (z_id {dim}-d), random weights, batch 1, 256px, {args.threads} thread(s), torch "
          f"{torch.__version__}; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    for name, d in diffs.items():
        print(f"  max |Δ| {name:<56} {d:.1e}  (outputs in [-1, 1])")
    med = {k: statistics.median(t) for k, t in times.items()}
    for what, ours_name in (("AEI-Net", "AEI-Net"), ("full swap", "full swap"), ("full swap", "full swap fp32 path"),
                            ("full swap", "full swap bf16 path")):
        print(f"  {ours_name:<20} public {med['public ' + what]:8.1f} ms  fsbench {med['fsbench ' + ours_name]:8.1f} ms  "
              f"{med['public ' + what] / med['fsbench ' + ours_name]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
