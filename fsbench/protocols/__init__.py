"""Versioned protocols, registered lazily by name."""
from fsbench.registry import protocols as _protocols

_protocols.register("mini-stills", "fsbench.protocols.stills:MiniStills")
_protocols.register("folder", "fsbench.protocols.stills:FolderStills")
