"""The caption corpus of a world and the tiny caption tokenizer trained on it.

``write_caption_corpus(data_root)`` writes, next to the info files,

- ``captions_{split}.txt``: one ``sample_token<TAB>caption`` line per keyframe of the split
  (the captions of :class:`~holodrive.datasets.transforms.GenerateCaption`, the ones the
  camera generator is trained with);
- ``caption_tokenizer/``: a byte-level BPE trained on the train captions only
  (``AutoTokenizer.from_pretrained`` loads it; see
  :func:`holodrive.models.camera_gen.text_encoder.train_caption_tokenizer`).

Run by ``python tools/create_data.py captions --root-path DATA_ROOT``.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence

from .errors import InfoFileError

CAPTION_PIPELINE = [
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=True),
    dict(type='GenerateCaption'),
]


def split_captions(data_root: str, split: str, progress: bool = False) -> List[tuple]:
    """``[(sample_token, caption)]`` of every keyframe of ``split`` (info order)."""
    from mmengine.registry import init_default_scope
    from tqdm import tqdm

    from holodrive.registry import DATASETS
    ann_file = osp.join(data_root, f'nuscenes_infos_{split}.pkl')
    if not osp.isfile(ann_file):
        raise InfoFileError('info file not found', ann_file,
                            f'run `python tools/create_data.py synthetic` (or `nuscenes`) for '
                            f'{data_root} first')
    init_default_scope('holodrive')
    dataset = DATASETS.build(dict(
        type='NuScenesSceneDataset', data_root=data_root, ann_file=ann_file,
        pipeline=CAPTION_PIPELINE, test_mode=False, filter_empty_gt=False,
        modality=dict(use_lidar=True, use_camera=False)))
    out = []
    for idx in tqdm(range(len(dataset)), desc=f'captions {split}', unit='sample',
                    disable=not progress):
        results = dataset[idx]
        token = results.get('token') or results.get('sample_idx')
        out.append((str(token), results['caption']))
    return out


def write_caption_corpus(data_root: str, splits: Sequence[str] = ('train', 'val'),
                         vocab_size: int = 1000, progress: bool = True) -> Dict[str, str]:
    """Write the corpus and the tokenizer (module docstring); returns ``{name: path}``."""
    from holodrive.models.camera_gen.text_encoder import train_caption_tokenizer
    paths, train_texts = {}, None
    for split in splits:
        rows = split_captions(data_root, split, progress)
        path = osp.join(data_root, f'captions_{split}.txt')
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            f.writelines(f'{token}\t{caption}\n' for token, caption in rows)
        os.replace(tmp, path)
        paths[split] = path
        if split == 'train':
            train_texts = [c for _, c in rows]
    if train_texts is None:
        raise ValueError('write_caption_corpus: the tokenizer is trained on the train split: '
                         'include "train" in splits')
    out_dir = osp.join(data_root, 'caption_tokenizer')
    train_caption_tokenizer(train_texts, out_dir, vocab_size=vocab_size)
    paths['tokenizer'] = out_dir
    return paths
