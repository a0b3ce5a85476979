"""Data sets, registered lazily by name, each with the line `fsbench list datasets` prints for it."""
from fsbench.registry import datasets as _datasets

DESCRIPTIONS = {
    "mini": "embedded stills and videos of a few people (fsbench/data/mini.json): mini-stills, mini-video, training",
    "portraits": "embedded portraits, one per person, in train/validation/test splits (fsbench/data/portraits.json): "
                 "the portraits protocol, training",
    "ffpp": "your FaceForensics++ (original_sequences/youtube/<compression>/videos): the ffpp protocol (--data-root)",
    "lfw": "your LFW folder (Name/Name_0001.jpg); pairs.txt from it or rebuilt from the embedded LFW database: "
           "the lfw protocol (--data-root)",
    "folder": "your own faces as DIR/<identity>/<image>: the folder protocol (--data-root)",
}

for _name, _target in {
    "mini": "fsbench.data.mini:load_manifest",
    "portraits": "fsbench.data.portraits:load_manifest",
    "ffpp": "fsbench.data.ffpp:FFPPDataset",
    "lfw": "fsbench.data.lfw:LFWDataset",
    "folder": "fsbench.data.folder:FolderDataset",
}.items():
    _datasets.register(_name, _target)
