"""Metric backends, registered lazily by name (see fsbench/metrics/base.py for the contract)."""
from fsbench.registry import metrics as _metrics

for _name, _target in {
    # identity
    "sface": "fsbench.metrics.identity:SFace",
    "dlib": "fsbench.metrics.identity:DlibResNet",
    # distribution (Fréchet distance)
    "mobilenet-v2": "fsbench.metrics.distribution:MobileNetV2Backend",
    "inception": "fsbench.metrics.distribution:InceptionBackend",
}.items():
    _metrics.register(_name, _target)
