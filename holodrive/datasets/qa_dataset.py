"""Datasets of the driving-QA head.

- :class:`DriveQADataset`: one item per question of a QA file written by
  ``tools/create_data.py drive_qa`` (NuScenes-QA closed questions or DriveLM QA), joined to its
  keyframe of the info file, so the usual scene pipeline loads the six camera images. The
  question record is in ``results['qa']`` (pack it with ``PackSceneInputs(meta_keys=('qa',
  ...))``): ``question``, ``answer``, ``qa_type``, ``template_type``, ``num_hop``,
  ``question_id``, ``sample_token``, ``scene_token``, ``c_tags``.
- :class:`DriveQATextDataset`: lines of text corpora (language pre-training of the tiny LLM),
  one item ``{'inputs': {}, 'data_samples': {'text': line}}`` each.
"""
import os.path as osp
from typing import List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset

from holodrive.registry import DATASETS
from .errors import InfoFileError
from .scene_dataset import NuScenesSceneDataset


def _resolve(data_root: str, path: str) -> str:
    return path if osp.isabs(path) or osp.exists(path) else osp.join(data_root, path)


@DATASETS.register_module()
class DriveQADataset(NuScenesSceneDataset):
    """Questions of ``qa_file`` on the keyframes of ``ann_file`` (module docstring).

    Args:
        qa_file: a ``nuscenes_qa_{split}.json`` or ``drivelm_{split}.json`` (relative to
            ``data_root`` or absolute).
        qa_types: keep only these ``qa_type`` values (e.g. ``('closed',)``); None: all.
        max_questions: keep the first N questions (after the type filter); None: all.
        **kwargs: :class:`NuScenesSceneDataset`'s (``data_root``, ``ann_file``, ``pipeline``).
    """

    def __init__(self, qa_file: str, qa_types: Optional[Sequence[str]] = None,
                 max_questions: Optional[int] = None, **kwargs):
        self.qa_file = _resolve(kwargs.get('data_root', ''), qa_file)
        self.qa_types = tuple(qa_types) if qa_types else None
        self.max_questions = max_questions
        self._items: List[tuple] = []
        kwargs.setdefault('filter_empty_gt', False)
        super().__init__(**kwargs)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        super().full_init()
        from .drive_qa import load_qa_records
        records = load_qa_records(self.qa_file)
        if self.qa_types:
            records = [r for r in records if r['qa_type'] in self.qa_types]
        if self.max_questions is not None:
            records = records[:self.max_questions]
        row_of = {}
        for row in range(len(self._stream)):
            row_of[self._stream[row].get('token')] = row
        allowed = None if self._rows is None else set(int(r) for r in self._rows)
        for i, record in enumerate(records):
            row = row_of.get(record['sample_token'])
            if row is None:
                raise InfoFileError(
                    f"{self.qa_file}: question {i} asks about sample {record['sample_token']}, "
                    f'which is not in the info file', self._stream.path,
                    'write the QA file from the same info files (tools/create_data.py drive_qa)')
            if allowed is None or row in allowed:
                self._items.append((row, record))

    def __len__(self) -> int:
        self._check_init()
        return len(self._items)

    def get_data_info(self, idx: int) -> dict:
        self._check_init()
        row, record = self._items[idx]
        info = self._parsed(self._raw_record(row))
        info['sample_idx'] = row
        info['qa'] = dict(record)
        return info

    def get_subset_(self, indices) -> None:
        self._check_init()
        self._items = self._select_items(indices)

    def get_subset(self, indices) -> 'DriveQADataset':
        sub = super().get_subset(range(len(self._stream)) if self._rows is None else
                                 range(len(self._rows)))
        sub._items = self._select_items(indices)
        return sub

    def _select_items(self, indices):
        if isinstance(indices, int):
            return self._items[:indices] if indices >= 0 else self._items[indices:]
        return [self._items[i] for i in indices]


@DATASETS.register_module()
class DriveQATextDataset(BaseDataset):
    """Non-empty lines of text files, for language-only pre-training.

    Args:
        text_files: corpus files (relative to ``data_root`` or absolute).
        max_lines: keep the first N lines; None: all.
    """

    def __init__(self, text_files: Union[str, Sequence[str]], data_root: str = '',
                 max_lines: Optional[int] = None, **kwargs):
        files = [text_files] if isinstance(text_files, str) else list(text_files)
        self.text_files = [_resolve(data_root, f) for f in files]
        self.max_lines = max_lines
        super().__init__(ann_file='', data_root=data_root, serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        lines = []
        for path in self.text_files:
            if not osp.isfile(path):
                raise InfoFileError('text corpus not found', path,
                                    'run `python tools/create_data.py drive_qa --root-path '
                                    'DATA_ROOT` first')
            with open(path, encoding='utf-8') as f:
                lines += [line.strip() for line in f if line.strip()]
        if self.max_lines is not None:
            lines = lines[:self.max_lines]
        return [dict(text=line) for line in lines]

    def prepare_data(self, idx: int) -> dict:
        return dict(inputs={}, data_samples=dict(text=self.get_data_info(idx)['text']))
