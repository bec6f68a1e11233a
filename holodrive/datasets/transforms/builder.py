"""Build transform configs in HoloDrive's scope, whatever the current default scope."""
from typing import Callable, List, Sequence, Union

from holodrive.registry import TRANSFORMS


def build_pipeline(cfgs: Sequence[Union[dict, Callable]]) -> List[Callable]:
    """Instantiate transform configs; our types and mmdet3d's / mmdet's resolve even
    when another default scope (e.g. ``'mmdet3d'``) is active or none is set."""
    out = []
    for cfg in cfgs:
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            cfg.setdefault('_scope_', 'holodrive')
            cfg = TRANSFORMS.build(cfg)
        out.append(cfg)
    return out
