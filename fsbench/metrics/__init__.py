"""Metric backends, registered lazily by name (see fsbench/metrics/base.py for the contract)."""
from fsbench.registry import metrics as _metrics

for _name, _target in {
    # identity
    "sface": "fsbench.metrics.identity:SFace",
    "dlib": "fsbench.metrics.identity:DlibResNet",
}.items():
    _metrics.register(_name, _target)
