"""Training bundles: what training one recipe needs, in one folder, for a machine with no network and no asset cache
(a lent GPU that receives the repository and a few carried folders).

``fsbench bundle METHOD --config NAME --out DIR`` writes one; ``fsbench train --bundle DIR --out RUN`` trains from it
(:func:`use`): it checks every file against its recorded sha256, forbids fetching (``FSBENCH_OFFLINE``), installs the
bundle's files into the asset cache (``$FSBENCH_HOME``) where training looks for them, and trains the bundled recipe.
Nothing else changes for the training code: it reads the cache as on any machine.

A bundle holds

- ``bundle.json``: the method, the recipe file, every file with its sha256 and size, the crops' cache key;
- ``recipe/NAME.json``: the resolved recipe (the export is named after NAME, as for the preset);
- ``crops.npz``: the training crops as WebP images (lossless unless ``quality`` is given) with their identities;
  they enter the crops cache unless the cache has its own crops of that key, which are exact and win;
- ``assets/NAME/FILE``: the embedded files the training loads, as the asset cache lays them out (checked against
  their pinned sha256 when installed): the recognisers of the recipe's identity input and loss, never an
  evaluation one (:mod:`fsbench.train.identity`), and media such as occluder photos;
- ``run/``: files a fresh run folder starts with (FaceShifter's pose prior, fitted where MediaPipe, its labeller,
  is installed), copied into the run folder unless it has them.

The training monitor is not bundled: it scores with dlib, an evaluation recogniser, on the validation media; a run
from a bundle scores its exported weights afterwards with ``fsbench monitor score``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fsbench import assets
from fsbench.errors import UsageError
from fsbench.train.data import FaceCrops, crops_cache_file, crops_key, save_npz, training_crops

FORMAT = 1
MANIFEST = "bundle.json"
CROPS = "crops.npz"
RUN = "run"  # files a fresh run folder starts with
LOSSLESS = 101  # OpenCV's WebP quality above 100: lossless


@dataclass(frozen=True)
class BundleSpec:
    """What a method's recipe trains on: its crops (``data``, ``template``, ``size``, as :func:`training_crops`
    takes them), the embedded files it loads (:func:`recogniser_assets` for its recognisers), and what writes the
    files a fresh run folder starts with (given that folder and the crops; None: nothing)."""

    method: str
    config: str  # the preset's name or the recipe file's path: the export's name comes from its stem
    recipe: Any  # the resolved recipe, a dataclass
    data: str | None
    template: str
    size: int
    assets: tuple[str, ...]
    run_files: Callable[[Path, FaceCrops], None] | None = None


def recogniser_assets(names: tuple[str, ...]) -> tuple[str, ...]:
    """The embedded files the recognisers ``names`` load; a recogniser from the user's file cannot be bundled."""
    from fsbench import registry

    out = []
    for name in names:
        for asset in registry.metrics.get(name).info.assets:
            if assets.get(asset).kind != "embedded":
                raise UsageError(f"recogniser '{name}' runs from your file '{asset}': a bundle carries embedded files "
                                 "only")
            out.append(asset)
    return tuple(dict.fromkeys(out))


def _encode(crops: FaceCrops, quality: int) -> tuple[dict[str, np.ndarray], float]:
    """The crops as concatenated WebP bytes with offsets; returns the arrays and the mean absolute error of the
    decoded crops (0 when lossless)."""
    import cv2

    blobs = [cv2.imencode(".webp", image[..., ::-1], [cv2.IMWRITE_WEBP_QUALITY, quality])[1] for image in crops.images]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    arrays = {"webp": np.concatenate(blobs).astype(np.uint8), "offsets": offsets,
              "identities": crops.identities, "names": np.array(crops.names)}
    return arrays, float(np.abs(_decode(arrays).astype(np.int16) - crops.images).mean())


def _decode(arrays: Any) -> np.ndarray:
    import cv2

    data, offsets = arrays["webp"], arrays["offsets"]
    return np.stack([cv2.imdecode(data[a:b], cv2.IMREAD_COLOR)[..., ::-1] for a, b in zip(offsets[:-1], offsets[1:])])


def _write_crops(spec: BundleSpec, folder: Path, quality: int) -> tuple[FaceCrops, dict[str, Any]]:
    key = crops_key(spec.data, spec.template, spec.size)
    if key is None:
        raise UsageError(f"recipe data {spec.data!r} is an image folder: a bundle carries the embedded training sets "
                         "only (data \"portraits\", or none for the mini training identities)")
    crops = training_crops(spec.data, spec.template, spec.size)
    arrays, error = _encode(crops, quality)
    np.savez(folder / CROPS, **arrays)
    return crops, {"key": key, "count": len(crops), "size": spec.size, "template": spec.template,
                   "quality": "lossless" if quality == LOSSLESS else quality, "mean_abs_error": round(error, 3)}


def _stage(spec: BundleSpec, folder: Path, quality: int) -> dict[str, Any]:
    """Write the bundle's files into ``folder``; returns its manifest without the file list."""
    crops, crops_entry = _write_crops(spec, folder, quality)
    files = {}
    for name in dict.fromkeys(spec.assets):
        source = assets.path(name)
        target = folder / "assets" / name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        files[name] = target.relative_to(folder).as_posix()
    recipe = folder / "recipe" / f"{Path(spec.config).stem}.json"
    recipe.parent.mkdir(parents=True)
    recipe.write_text(json.dumps(asdict(spec.recipe), indent=1) + "\n")
    if spec.run_files:
        spec.run_files(folder / RUN, crops)
    return {"format": FORMAT, "method": spec.method, "recipe": recipe.relative_to(folder).as_posix(),
            "assets": files, "crops": crops_entry}


def write(spec: BundleSpec, out: Path, quality: int | None = None) -> Path:
    """Write the bundle of ``spec`` to the folder ``out`` (replaced whole if it holds a bundle; any other non-empty
    folder is refused). ``quality`` (1–100): lossy WebP crops, smaller; default lossless."""
    if quality is not None and not 1 <= quality <= 100:
        raise UsageError(f"--quality must lie in 1..100 (lossy WebP), got {quality}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UsageError(f"--out {out}: a folder that holds something other than a bundle; name a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        manifest = _stage(spec, staging, LOSSLESS if quality is None else quality)
        manifest["files"] = {p.relative_to(staging).as_posix(): {"sha256": assets.sha256_file(p), "bytes": p.stat().st_size}
                             for p in sorted(staging.rglob("*")) if p.is_file()}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def read_manifest(bundle: Path) -> dict[str, Any]:
    """``bundle.json`` of the bundle folder ``bundle``; a UsageError when it is not a bundle of this format."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise UsageError(f"--bundle {bundle}: not a training bundle (it has no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path}: not a bundle manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UsageError(f"{path}: not a bundle manifest of format {FORMAT}, which this fsbench reads")
    return manifest


def _verify(bundle: Path, manifest: dict[str, Any]) -> None:
    """Every file of the manifest is there, whole: a bundle that came over a network or a size limit may not be."""
    for name, entry in manifest["files"].items():
        path = bundle / name
        if not path.is_file() or path.stat().st_size != entry["bytes"] or assets.sha256_file(path) != entry["sha256"]:
            raise UsageError(f"{path}: missing or not the file the bundle recorded ({entry['bytes']} bytes, sha256 "
                             f"{entry['sha256'][:12]}…); copy the bundle again")


def _install_crops(bundle: Path, entry: dict[str, Any]) -> None:
    target = crops_cache_file(entry["key"])
    if target.is_file():
        return
    with np.load(bundle / CROPS) as arrays:
        save_npz(target, images=_decode(arrays), identities=arrays["identities"], names=arrays["names"])


def _start_run_folder(bundle: Path, run: Path) -> None:
    for source in sorted((bundle / RUN).rglob("*")):
        target = run / source.relative_to(bundle / RUN)
        if source.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def use(bundle: Path, run: Path, method: str | None = None) -> tuple[str, str]:
    """Make this process train from the bundle folder ``bundle`` alone: verify it, forbid fetching, install its files
    into the asset cache and its run files into the run folder ``run``. Returns (method, recipe file) to train;
    ``method``, where given, must be the bundle's."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    if method and method != manifest["method"]:
        raise UsageError(f"--bundle {bundle} trains '{manifest['method']}', not '{method}'")
    _verify(bundle, manifest)
    os.environ[assets.OFFLINE_VARIABLE] = "1"  # this process and its children: the bundle is all there is
    for name, file in manifest["assets"].items():
        assets.install(name, bundle / file)
    _install_crops(bundle, manifest["crops"])
    _start_run_folder(bundle, Path(run))
    return manifest["method"], str(bundle / manifest["recipe"])


def describe(bundle: Path) -> str:
    """A few lines on a bundle: what it trains, its files and their total size."""
    manifest = read_manifest(bundle)
    crops = manifest["crops"]
    total = sum(f["bytes"] for f in manifest["files"].values())
    lines = [f"{bundle}: {manifest['method']} {manifest['recipe']}, {assets.megabytes(total)} in "
             f"{len(manifest['files'])} files",
             f"  crops: {crops['count']} at {crops['size']} px ({crops['template']}), WebP {crops['quality']}, mean "
             f"absolute error {crops['mean_abs_error']}"]
    width = max(map(len, manifest["files"]))
    lines += [f"  {name:<{width}}  {assets.megabytes(f['bytes'])}" for name, f in manifest["files"].items()]
    return "\n".join(lines)
