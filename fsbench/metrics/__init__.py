"""Metric backends, registered lazily by name (see fsbench/metrics/base.py for the contract)."""
from fsbench.registry import metrics as _metrics

for _name, _target in {
    # identity
    "sface": "fsbench.metrics.identity:SFace",
    "facenet": "fsbench.metrics.identity:FaceNet",
    "dlib": "fsbench.metrics.identity:DlibResNet",
    "arcface-mbf": "fsbench.metrics.identity:ArcFaceMBF",
    "cosface-sphere20": "fsbench.metrics.identity:CosFaceSphere20",
    "arcface-ir-se50": "fsbench.metrics.identity:ArcFaceIRSE50",
    "insightface": "fsbench.metrics.identity:InsightFaceONNX",
    # pose
    "mediapipe-pose": "fsbench.metrics.pose:MediaPipePose",
    "whenet": "fsbench.metrics.pose:WHENetPose",
    "hopenet": "fsbench.metrics.pose:HopenetPose",
    "hopenet-shufflenet": "fsbench.metrics.pose:HopenetShuffleNetPose",
    # expression
    "mediapipe-blendshapes": "fsbench.metrics.expression:MediaPipeBlendshapes",
    "deep3d": "fsbench.metrics.expression:Deep3DExpression",
    # distribution (Fréchet distance)
    "mobilenet-v2": "fsbench.metrics.distribution:MobileNetV2Backend",
    "inception": "fsbench.metrics.distribution:InceptionBackend",
}.items():
    _metrics.register(_name, _target)
