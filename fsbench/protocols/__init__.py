"""Versioned protocols, registered lazily by name."""
from fsbench.registry import protocols as _protocols

EMBEDDED = ("portraits", "mini-stills", "mini-video")  # what `fsbench run` and `fsbench leaderboard refresh` run by default

for _name, _target in {
    "portraits": "fsbench.protocols.stills:Portraits",
    "mini-stills": "fsbench.protocols.stills:MiniStills",
    "mini-video": "fsbench.protocols.video:MiniVideo",
    "ffpp": "fsbench.protocols.video:FFPP",
    "lfw": "fsbench.protocols.lfw:LFW",
    "folder": "fsbench.protocols.stills:FolderStills",
}.items():
    _protocols.register(_name, _target)
