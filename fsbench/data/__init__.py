"""Data sets, registered lazily by name."""
from fsbench.registry import datasets as _datasets

_datasets.register("mini", "fsbench.data.mini:load_manifest")
_datasets.register("folder", "fsbench.data.folder:FolderDataset")
