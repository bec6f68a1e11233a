"""Driving-QA data of a world, derived from its info files.

``write_drive_qa(data_root)`` writes, for each split (``nuscenes_infos_{split}.pkl``; the
splits are by scene, so no scene is in two splits), under ``DATA_ROOT/drive_qa/``:

- ``nuscenes_qa_{split}.json``: :mod:`.templates`' closed questions, up to
  ``questions_per_type`` per template type per keyframe;
- ``drivelm_{split}.json``: :mod:`.drivelm`'s QA of every keyframe, grouped by scene;
- ``corpus_{split}.txt``: per keyframe its caption (the ``GenerateCaption`` transform), then
  each closed and each DriveLM question with its answer (``"<question> <answer>"``), one a line.

(file layouts in :mod:`.io`). The keyframes are read through ``NuScenesSceneDataset`` with
``LoadSceneAnnotations3D`` + ``GenerateCaption``, in info order. Everything is deterministic:
two runs write identical bytes.

Run by ``python tools/create_data.py drive_qa --root-path DATA_ROOT``.
"""
import os.path as osp
from collections import Counter
from typing import Dict, Iterator, List, Optional, Sequence

from ..errors import InfoFileError
from .drivelm import QA_TYPES, drivelm_frame
from .io import write_corpus, write_drivelm, write_nuscenes_qa
from .scene import MIN_VISIBILITY, RADIUS, scene_objects
from .templates import CLOSED_ANSWERS, NEAR_RADIUS, TEMPLATE_TYPES, closed_questions

FORMAT_VERSION = 1
QA_PIPELINE = [
    dict(type='LoadSceneAnnotations3D', with_bbox_3d=True, with_label_3d=True,
         with_attr_label=True),
    dict(type='GenerateCaption'),
]
OUT_DIR = 'drive_qa'


def split_frames(data_root: str, split: str, progress: bool = False) -> Iterator[dict]:
    """The keyframes of ``split`` (pipeline results with ``instances``, ``images``,
    ``caption``, the ego trajectory...), in info order; ``classes`` and ``version`` (of
    the dataset's metainfo) are added."""
    from mmengine.registry import init_default_scope
    from tqdm import tqdm

    from holodrive.registry import DATASETS
    ann_file = osp.join(data_root, f'nuscenes_infos_{split}.pkl')
    if not osp.isfile(ann_file):
        raise InfoFileError('info file not found', ann_file,
                            'run `python tools/create_data.py synthetic` (or `nuscenes`) for '
                            f'{data_root} first')
    init_default_scope('holodrive')
    dataset = DATASETS.build(dict(
        type='NuScenesSceneDataset', data_root=data_root, ann_file=ann_file,
        pipeline=QA_PIPELINE, test_mode=False, filter_empty_gt=False,
        modality=dict(use_lidar=True, use_camera=True)))
    classes = tuple(dataset.metainfo['classes'])
    version = dataset.metainfo.get('version')
    for idx in tqdm(range(len(dataset)), desc=f'drive_qa {split}', unit='sample',
                    disable=not progress):
        results = dataset[idx]
        results['classes'] = classes
        results.setdefault('version', version)
        yield results


def _image_paths(results: dict, data_root: str) -> Dict[str, str]:
    root = osp.abspath(data_root)
    return {cam: osp.relpath(osp.abspath(view['img_path']), root)
            for cam, view in (results.get('images') or {}).items() if view.get('img_path')}


def generate_split(data_root: str, split: str, questions_per_type: int = 3,
                   progress: bool = False) -> dict:
    """``{'questions', 'drivelm', 'corpus', 'info'}`` of one split (not written)."""
    questions: List[dict] = []
    scenes: Dict[str, dict] = {}
    corpus: List[str] = []
    version, num_frames = None, 0
    for results in split_frames(data_root, split, progress):
        num_frames += 1
        token = str(results.get('token'))
        scene_token = str(results.get('scene_token', ''))
        version = version or results.get('version')
        objects = scene_objects(results, classes=results['classes'])
        if results.get('caption'):
            corpus.append(results['caption'])
        per_type = Counter()
        for q in closed_questions(objects, token, questions_per_type,
                                  classes=results['classes']):
            k = per_type[q['template_type']]
            per_type[q['template_type']] += 1
            questions.append(dict(
                question=q['question'], answer=q['answer'], sample_token=token,
                scene_token=scene_token, template_type=q['template_type'],
                num_hop=q['num_hop'], question_id=f"{token}/{q['template_type']}/{k}",
                query=q['query']))
            corpus.append(f"{q['question']} {q['answer']}")
        frame = drivelm_frame(objects, results, _image_paths(results, data_root))
        scene = scenes.setdefault(scene_token, {
            'scene_description': str(results.get('scene_description', '')), 'key_frames': {}})
        scene['key_frames'][token] = frame
        corpus += [f"{item['Q']} {item['A']}" for stage in QA_TYPES
                   for item in frame['QA'][stage]]
    info = dict(split=split, version=version, generator='holodrive.datasets.drive_qa',
                format_version=FORMAT_VERSION, info_file=f'nuscenes_infos_{split}.pkl',
                num_frames=num_frames, num_questions=len(questions),
                questions_per_type=questions_per_type, radius=RADIUS,
                min_visibility=MIN_VISIBILITY, near_radius=NEAR_RADIUS,
                template_types=list(TEMPLATE_TYPES), answers=list(CLOSED_ANSWERS))
    return dict(questions=questions, drivelm=scenes, corpus=corpus, info=info)


def split_summary(split: str, data: dict, paths: Dict[str, str]) -> dict:
    """Counts of one generated split (what ``tools/create_data.py drive_qa`` prints)."""
    questions = data['questions']
    stages = Counter({s: 0 for s in QA_TYPES})
    for scene in data['drivelm'].values():
        for frame in scene['key_frames'].values():
            for stage in QA_TYPES:
                stages[stage] += len(frame['QA'][stage])
    return dict(split=split, paths=paths, num_frames=data['info']['num_frames'],
                num_scenes=len(data['drivelm']), num_questions=len(questions),
                per_template=Counter({t: 0 for t in TEMPLATE_TYPES}) +
                Counter(q['template_type'] for q in questions),
                per_hop=Counter(q['num_hop'] for q in questions),
                answers=Counter(q['answer'] for q in questions),
                drivelm=stages, corpus_lines=len(data['corpus']))


def write_drive_qa(data_root: str, splits: Sequence[str] = ('train', 'val'),
                   questions_per_type: int = 3, out_dir: Optional[str] = None,
                   progress: bool = True) -> Dict[str, dict]:
    """Write the files of the module docstring; returns ``{split: split_summary}``."""
    if questions_per_type < 0:
        raise ValueError(f'questions_per_type must be >= 0, got {questions_per_type}')
    out_dir = out_dir or osp.join(data_root, OUT_DIR)
    summaries = {}
    for split in splits:
        data = generate_split(data_root, split, questions_per_type, progress)
        paths = dict(
            nuscenes_qa=write_nuscenes_qa(osp.join(out_dir, f'nuscenes_qa_{split}.json'),
                                          data['questions'], data['info']),
            drivelm=write_drivelm(osp.join(out_dir, f'drivelm_{split}.json'), data['drivelm']),
            corpus=write_corpus(osp.join(out_dir, f'corpus_{split}.txt'), data['corpus']))
        summaries[split] = split_summary(split, data, paths)
    return summaries


def format_summary(summary: dict, top: int = 10) -> List[str]:
    """Printable lines of a :func:`split_summary`."""
    n = max(summary['num_questions'], 1)
    answers = summary['answers']
    yes, no = answers.get('yes', 0), answers.get('no', 0)
    lines = [
        f"{summary['paths']['nuscenes_qa']}: {summary['num_questions']} questions on "
        f"{summary['num_frames']} keyframes of {summary['num_scenes']} "
        f"scene{'s' if summary['num_scenes'] != 1 else ''} ("
        + ', '.join(f'{t} {c}' for t, c in summary['per_template'].items()) + '; '
        + ', '.join(f'{h}-hop {c}' for h, c in sorted(summary['per_hop'].items())) + ')',
        f'  answers: {len(answers)} distinct; yes/no {yes}/{no}; top: '
        + ', '.join(f'{a} {c} ({100 * c / n:.0f}%)' for a, c in answers.most_common(top)),
        f"{summary['paths']['drivelm']}: {sum(summary['drivelm'].values())} QA ("
        + ', '.join(f'{s} {c}' for s, c in summary['drivelm'].items()) + ')',
        f"{summary['paths']['corpus']}: {summary['corpus_lines']} lines",
    ]
    return lines
