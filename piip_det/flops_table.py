"""The paper's PIIP variants and ViT baselines as backbone dicts, with the README's FLOPs.

Every row of the FLOPs table in ``piip.md`` (section 11.3) plus the other
released variants (sections 2, 7 and 12), so the counter can be checked
without config files. A row is ``Variant(name, backbone, size, paper, ...)``:
``backbone`` is a dict for :func:`piip_det.flops.build_backbone`
(``type='piip_det.PIIP'`` with branch dicts, largest model first, or a single
``type='ViT'``), ``size`` the square input side of the paper convention (the
top resolution), ``paper`` the README backbone GMACs or None where the
reference gives none.

Settings (reference sections 2, 4 and 6): DeiT branches use patch 16, window
attention in every block, window 14 for TSB and 28 for SBL / TSBL, global
attention in the ImageNet rows; interactions after every block of a 12-layer
branch, every 2 blocks of ViT-L, groups of 2-3 of ViT-H and 4 of InternViT-6B
(12 stages); deformable attention 16 heads, 4 points, ratio 0.5; ConvFFN 0.25.
The baselines repeat 2 windowed (14) + 1 global block. Assumptions where the
reference is silent are in each row's ``note``.
"""
import dataclasses

#: relative tolerance of the ``checked`` rows (every ViT-B, ViT-L, PIIP-TSB and PIIP-SBL row)
TOLERANCE = 0.02


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    backbone: dict
    size: int
    paper: float = None
    checked: bool = False
    note: str = ''


def groups(depth, size):
    """Inclusive ``[start, end]`` ranges of ``size`` blocks covering ``depth`` blocks."""
    return [[i, i + size - 1] for i in range(0, depth, size)]


#: ViT-H (32 layers) in 12 stages: four of 2 blocks, then eight of 3
VIT_H_SCHEDULE = groups(8, 2) + [[8 + 3 * i, 10 + 3 * i] for i in range(8)]
SCHEDULES = {'deit-t': groups(12, 1), 'deit-s': groups(12, 1), 'deit-b': groups(12, 1),
             'deit-l': groups(24, 2), 'vit-h': VIT_H_SCHEDULE, 'internvit-6b': groups(48, 4)}
DEIT_DROP_PATH = {'tsb': {'deit-b': 0.15, 'deit-s': 0.05, 'deit-t': 0.05},
                  'sbl': {'deit-l': 0.4, 'deit-b': 0.15, 'deit-s': 0.05}}


def branch(arch, real_size, window=0, drop_path_rate=0.0):
    """One branch dict; ``window=0`` means global attention in every block."""
    cfg = dict(arch=arch, real_size=real_size, interaction_indexes=SCHEDULES[arch],
               drop_path_rate=drop_path_rate)
    if window:
        cfg.update(window_attn=True, window_size=window)
    return cfg


def piip(archs, sizes, window=0, recipe=None):
    """A PIIP backbone dict; ``archs`` and ``sizes`` largest model (smallest image) first."""
    rates = DEIT_DROP_PATH.get(recipe, {})
    return dict(type='piip_det.PIIP', interaction_drop_path_rate=0.4,
                branches=[branch(a, s, window, rates.get(a, 0.0)) for a, s in zip(archs, sizes)])


def vit_baseline(arch, pattern_repeats, window=14):
    """Single-branch baseline: ``pattern_repeats`` x (2 windowed + 1 global) blocks."""
    return dict(type='ViT', arch=arch, window_attn=[True, True, False] * pattern_repeats,
                window_size=window)


TSB, SBL = ('deit-b', 'deit-s', 'deit-t'), ('deit-l', 'deit-b', 'deit-s')
TSBL = ('deit-l', 'deit-b', 'deit-s', 'deit-t')
H6B = ('internvit-6b', 'vit-h')
NO_WINDOW_6B = 'no window attention (the repo\'s InternViT runs use none, reference section 12)'


def _rows():
    det = 'COCO Mask R-CNN, README'
    rows = [
        Variant('ViT-B @1024 (8 win-14 + 4 global)', vit_baseline('deit-b', 4), 1024, 463, True, det),
        Variant('ViT-L @1024 (16 win-14 + 8 global)', vit_baseline('deit-l', 8), 1024, 1542, True,
                det + '; block pattern inferred from the FLOPs match (reference section 2)'),
    ]
    for sizes, paper in (((672, 1120, 1568), 453), ((448, 896, 1568), 287), ((448, 896, 1120), 243)):
        name = 'PIIP-TSB ' + '/'.join(map(str, sizes[::-1]))
        rows.append(Variant(name, piip(TSB, sizes, 14, 'tsb'), sizes[-1], paper, True, det))
    for sizes, paper in (((672, 896, 1568), 1464), ((448, 896, 1344), 1002), ((448, 672, 1120), 727)):
        name = 'PIIP-SBL ' + '/'.join(map(str, sizes[::-1]))
        rows.append(Variant(name, piip(SBL, sizes, 28, 'sbl'), sizes[-1], paper, True, det))
    cls = ('ImageNet-1K classification model (cls tokens, separate heads, no merge) counted '
           'as the detection backbone with global attention')
    for name, archs, sizes, paper in (('TSB 368/192/128', TSB, (128, 192, 368), 17.4),
                                      ('SBL 384/192/128', SBL, (128, 192, 384), 61.2),
                                      ('SBL 320/160/96', SBL, (96, 160, 320), 39.0)):
        rows.append(Variant('ImageNet PIIP-' + name, piip(archs, sizes), sizes[-1], paper, True, cls))
    rows += [
        Variant('PIIP-TSBL 1568/1120/672/448', piip(TSBL, (448, 672, 1120, 1568), 28), 1568,
                note='window 28 (reference section 2); no README FLOPs'),
        Variant('PIIP-SBL 1792/1120/672 (DINO)', piip(SBL, (672, 1120, 1792), 28, 'sbl'), 1792,
                note='DINO 4-scale; window 28 assumed as in the other SBL configs'),
        Variant('PIIP-H6B 1024/512', piip(H6B, (512, 1024)), 1024, note=NO_WINDOW_6B),
        Variant('PIIP-H6B 1024/768 (DINO)', piip(H6B, (768, 1024)), 1024, note=NO_WINDOW_6B),
        Variant('PIIP-LH6B 1536/1024/512', piip(H6B + ('deit-l',), (512, 1024, 1536)), 1536,
                note=NO_WINDOW_6B + '; ViT-L global as well (assumed)'),
        Variant('InternViT-6B @1024 (baseline)', dict(type='ViT', arch='internvit-6b'), 1024,
                note=NO_WINDOW_6B + '; resolution 1024 assumed'),
    ]
    for low in (192, 256, 384, 512):
        rows.append(Variant(f'PIIP-H6B 512/{low} (ADE20K UperNet)', piip(H6B, (low, 512)), 512,
                            note=NO_WINDOW_6B))
    return rows


VARIANTS = _rows()
