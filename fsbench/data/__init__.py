"""Data sets, registered lazily by name."""
from fsbench.registry import datasets as _datasets

for _name, _target in {
    "mini": "fsbench.data.mini:load_manifest",
    "portraits": "fsbench.data.portraits:load_manifest",
    "ffpp": "fsbench.data.ffpp:FFPPDataset",
    "lfw": "fsbench.data.lfw:LFWDataset",
    "folder": "fsbench.data.folder:FolderDataset",
}.items():
    _datasets.register(_name, _target)
