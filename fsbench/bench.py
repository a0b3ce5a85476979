"""Speed and size of a method's swap network, measured as MobileFSGAN measures it.

Timing covers ``swap_embedded`` only: the source identity is precomputed once (``embed_identity``) and excluded.
Reported: median milliseconds per image after warm-up at batch 1 and at a larger batch, parameters, fp32
weight size, GFLOPs per image (torch's FlopCounterMode), achieved GFLOP/s against this machine's measured
fp32 matmul throughput, peak memory and the device name. Durations are reported, never asserted.
"""
from __future__ import annotations

import os
import resource
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from fsbench.api import Method
from fsbench.faces.crops import EVAL_SIZE, EVAL_TEMPLATE, CropStore, to_tensor
from fsbench.nets import prepack
from fsbench.precision import ComputeDtypes
from fsbench.results import device_name
from fsbench.metrics.definitions import slot_family
from fsbench.scoring import DEFAULT_BACKENDS, backend_features, choose_backends
from fsbench.timing import matmul_gflops, time_ms


def count_flops(method: Method, identity: Any, target: torch.Tensor) -> tuple[int, str]:
    """FLOPs of one ``swap_embedded`` call and the precision its convolutions and matmuls ran in."""
    counter = FlopCounterMode(display=False, custom_mapping=prepack.FLOP_FORMULAS)
    dtypes = ComputeDtypes()
    with counter, dtypes, torch.no_grad():
        method.swap_embedded(identity, target)
    return counter.get_total_flops(), dtypes.precision


def real_crops(template: str, size: int, count: int) -> torch.Tensor:
    """``count`` aligned real faces (mini test stills, repeated if needed): methods that look for a face, such as
    the landmark-based ones, must be timed on faces, not noise."""
    from fsbench.protocols.stills import MiniStills

    items = MiniStills().build(None, 0).gallery
    store = CropStore(template, size)
    store.prepare(items, progress=False)
    crops = [store.method_crop(i) for i in items if i.id in store.crops]
    return to_tensor((crops * (count // len(crops) + 1))[:count])


def bench(method: Method, batch_sizes: tuple[int, ...] = (1, 8), warmup: int = 3, runs: int = 20) -> dict[str, Any]:
    """Measure ``method`` on real aligned faces at its card's template and size; returns a JSON-ready dict."""
    device = method.device
    size = method.card.input_size
    faces = real_crops(method.card.template, size, max(batch_sizes) + 1)
    modules = method.modules()
    params = sum(p.numel() for m in modules.values() for p in m.parameters())
    weight_bytes = sum(t.numel() * t.element_size() for m in modules.values() for t in m.state_dict().values())
    if not modules and method.card.parameters:  # networks outside torch (ONNX graphs): the card's fp32 count
        params, weight_bytes = method.card.parameters, 4 * method.card.parameters
    report: dict[str, Any] = {"method": method.card.name, "version": method.card.version, "input_size": size,
                              "card": method.card.to_dict(),
                              "parameters": params, "weights_mb": weight_bytes / 1e6,
                              "modules": {k: sum(p.numel() for p in m.parameters()) for k, m in modules.items()},
                              "device": str(device), "batches": {}}
    report["device_name"] = device_name(str(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        report["torch_threads"] = torch.get_num_threads()
    flops_per_image = None
    for batch in batch_sizes:
        source = faces[:batch].to(device)
        target = faces[1:batch + 1].to(device)
        with torch.no_grad():
            identity = method.embed_identity(source)
        if flops_per_image is None:
            flops, report["precision"] = count_flops(method, identity, target)
            flops_per_image = flops / batch

        def step() -> None:
            with torch.no_grad():
                method.swap_embedded(identity, target)

        times = time_ms(step, device, warmup, runs)
        median = statistics.median(times)
        report["batches"][str(batch)] = {"median_ms_per_batch": median, "median_ms_per_image": median / batch,
                                         "runs": runs, "warmup": warmup}
    report["gflops_per_image"] = (flops_per_image or 0) / 1e9
    best_ms = min(b["median_ms_per_image"] for b in report["batches"].values())
    report["achieved_gflops_per_s"] = (report["gflops_per_image"] / (best_ms / 1000)
                                       if best_ms > 0 and report["gflops_per_image"] > 0 else None)
    report["matmul_gflops_per_s"] = matmul_gflops(device)
    report["matmul_bf16_gflops_per_s"] = matmul_gflops(device, dtype=torch.bfloat16)
    if device.type == "cuda":
        report["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 1e6
    else:
        # process high-water mark (ru_maxrss is KiB on Linux): an upper bound, labelled as such
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['method']} v{report['version']} @ {report['input_size']}px on {report['device']} "
             f"({report['device_name']}{', %d threads' % report['torch_threads'] if 'torch_threads' in report else ''})",
             f"  parameters        {report['parameters']:,} ({report['weights_mb']:.2f} MB fp32 weights)",
             f"  GFLOPs / image    {report['gflops_per_image']:.3f}"]
    for batch, b in report["batches"].items():
        lines.append(f"  batch {batch:<4}        {b['median_ms_per_image']:.3f} ms/image (median of {b['runs']}, "
                     f"{b['median_ms_per_batch']:.3f} ms/batch)")
    if report["achieved_gflops_per_s"]:
        bf16 = report.get("matmul_bf16_gflops_per_s")
        lines.append(f"  achieved          {report['achieved_gflops_per_s']:.1f} GFLOP/s in "
                     f"{report.get('precision', 'an unrecorded precision')} (device matmul: fp32 "
                     f"{report['matmul_gflops_per_s']:.1f}" + ("" if bf16 is None else f", bf16 {bf16:.1f}")
                     + " GFLOP/s)")
    if "peak_memory_mb" in report:
        lines.append(f"  peak memory       {report['peak_memory_mb']:.1f} MB (allocated on device)")
    else:
        lines.append(f"  peak RSS          {report['peak_rss_mb']:.1f} MB (whole process high-water mark)")
    return "\n".join(lines)


def _detection_stage(faces: int, seed: int) -> tuple[list[Any], dict[str, np.ndarray], dict[str, Any]]:
    """The detect + align stage's items (``faces`` frames and stills of the mini test split), their decoded images
    (decoding is I/O, not the stack) and its description."""
    from fsbench.faces.detect import detection_size
    from fsbench.nets.graph_flops import yunet_flops
    from fsbench.protocols.video import MiniVideo

    items = MiniVideo().build(None, seed).gallery[:faces]
    images = {item.id: item.load() for item in items}
    detect_flops = [yunet_flops(*detection_size(*image.shape[:2])) for image in images.values()]
    return items, images, {"network": "YuNet", "gflops_per_face": statistics.mean(detect_flops) / 1e9}


def _detect(items: list[Any], images: dict[str, np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """Seconds to detect and align every item in a fresh store, and the evaluation crops it gives."""
    store = CropStore(EVAL_TEMPLATE, EVAL_SIZE)
    t0 = time.perf_counter()
    store.add([(item, images[item.id]) for item in items])
    return time.perf_counter() - t0, [store.eval_crop(i) for i in items if i.id in store.crops]


def _backend_stage(name: str, crops: list[np.ndarray]) -> tuple[Any, dict[str, Any]]:
    """One backend, warmed up on a batch of mirrored faces (nothing cached serves the timed ones), and its stage's
    description: what runs its network and the network's GFLOPs per face."""
    from fsbench import registry
    from fsbench.nets.graph_flops import face_landmarker_flops, hopenet_shufflenet_flops
    from fsbench.nets.onnx_graph import TorchExport

    native = {"mediapipe-pose": ("MediaPipe face landmarker", face_landmarker_flops),
              "mediapipe-blendshapes": ("none: reads the pose stage's landmarker call", lambda: 0),
              "hopenet-shufflenet": ("onnxruntime", hopenet_shufflenet_flops)}
    backend = registry.metrics.get(name)(device="cpu")
    backend_features(backend, [np.ascontiguousarray(c[:, ::-1]) for c in crops[:backend.batch_size]], EVAL_TEMPLATE)
    entry: dict[str, Any] = {"backend": name}
    if name in native:
        entry["network"], count = native[name]
        entry["gflops_per_face"] = count() / 1e9
    elif isinstance(getattr(backend, "graph", None), TorchExport):
        entry["network"], entry["gflops_per_face"] = "onnxruntime", backend.graph.flops() / 1e9
    else:
        counter = FlopCounterMode(display=False, custom_mapping=prepack.FLOP_FORMULAS)
        with counter, torch.no_grad():
            backend.features(to_tensor(crops[:1]), EVAL_TEMPLATE)
        entry["network"], entry["gflops_per_face"] = "torch", counter.get_total_flops() / 1e9
    return backend, entry


def bench_metrics(faces: int = 48, seed: int = 0, backends: dict[str, str] | None = None,
                  rounds: int = 5) -> dict[str, Any]:
    """Throughput of the embedded evaluation stack on real faces: detect + align, then every default backend (the
    primary and further ones of each family, as a run uses them; ``backends``: family → primary, as ``fsbench run
    --backend`` chooses).

    Faces are frames and stills of the mini test split. The whole stack runs ``rounds`` times, in the runner's
    order; each stage's time is its median over the rounds, so one round slowed by the rest of a shared machine
    does not set the figure. Backends run in the runner's batches, after a warm-up batch of mirrored faces; per-face
    native work runs on the threads of fsbench.workers. The stack's faces/s is 1 / (sum of per-face stage times).
    Each stage's network FLOPs per face (torch's FlopCounterMode for torch networks; counted from the graph file for
    YuNet and MediaPipe, in the same convention: fsbench.nets.graph_flops) over the measured fp32 matmul GFLOP/s
    gives its FLOP bound, and the stage's percentage of it. MediaPipe's pose and expression share one landmarker call
    per crop (fsbench.metrics.pose.read_faces): the MediaPipe pose stage runs it, the expression stage reads the
    kept result; readings are forgotten at the start of every round. The load average is recorded before and
    after: the figures depend on what else runs.
    """
    from fsbench.metrics.pose import clear_readings

    load_before = os.getloadavg()
    items, images, detect = _detection_stage(faces, seed)
    _, crops = _detect(items, images)  # untimed: every worker thread makes its detector
    stages: dict[str, dict[str, Any]] = {"detect+align": detect}
    nets: dict[str, Any] = {}
    for slot_name, name in choose_backends(backends or {}, DEFAULT_BACKENDS).items():
        stage = f"{slot_family(slot_name)}:{name}"
        nets[stage], stages[stage] = _backend_stage(name, crops)
    times: dict[str, list[float]] = {stage: [] for stage in stages}
    for _ in range(rounds):
        clear_readings()  # each round's MediaPipe stage times the landmarker, not the kept readings
        seconds, crops = _detect(items, images)
        times["detect+align"].append(seconds)
        for stage, backend in nets.items():
            t0 = time.perf_counter()
            backend_features(backend, crops, EVAL_TEMPLATE)
            times[stage].append(time.perf_counter() - t0)
    matmul = matmul_gflops(torch.device("cpu"))
    n = len(crops)
    for stage, entry in stages.items():
        entry["round_seconds"], entry["seconds"] = times[stage], statistics.median(times[stage])
        entry["faces_per_s"] = n / entry["seconds"] if entry["seconds"] else None
        if entry["gflops_per_face"]:
            entry["bound_faces_per_s"] = matmul / entry["gflops_per_face"]
            entry["percent_of_bound"] = 100 * entry["faces_per_s"] / entry["bound_faces_per_s"]
    total = sum(e["seconds"] for e in stages.values())
    return {"faces": n, "rounds": rounds, "stages": stages, "stack_faces_per_s": n / total,
            "matmul_gflops_per_s": matmul, "torch_threads": torch.get_num_threads(),
            "load_average_before": list(load_before), "load_average": list(os.getloadavg())}


def format_metrics_report(report: dict[str, Any]) -> str:
    lines = [f"embedded evaluation stack on {report['faces']} real faces, median of {report['rounds']} rounds, "
             f"{report['torch_threads']} torch threads "
             f"(1-min load average {report['load_average_before'][0]:.1f} before, {report['load_average'][0]:.1f} "
             f"after; fp32 matmul {report['matmul_gflops_per_s']:.1f} GFLOP/s)"]
    for name, e in report["stages"].items():
        bound = (f"  {e['gflops_per_face']:.3f} GFLOPs/face, FLOP bound {e['bound_faces_per_s']:.0f} faces/s "
                 f"({e['percent_of_bound']:.0f} % of it)" if e.get("percent_of_bound") else "")
        if e["network"] != "torch":
            bound += f"  [{e['network']}]"
        lines.append(f"  {name:<34} {e['faces_per_s']:8.1f} faces/s{bound}")
    lines.append(f"  {'whole stack':<34} {report['stack_faces_per_s']:8.1f} faces/s")
    return "\n".join(lines)
