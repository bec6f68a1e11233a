"""Writers and validating loaders of the driving-QA files.

Files (under ``DATA_ROOT/drive_qa/``, one set per split of the info files):

- ``nuscenes_qa_{split}.json`` (NuScenes-QA layout, one question per line)::

      {"info": {"split", "version", "generator", "format_version", "radius", ...},
       "questions": [{"question", "answer", "sample_token", "scene_token", "template_type",
                      "num_hop", "question_id", "query"}, ...]}

  ``query`` (ours, optional) is the structured question the answer was computed from.
- ``drivelm_{split}.json`` (DriveLM-nuScenes schema)::

      {scene_token: {"scene_description": str,
                     "key_frames": {sample_token: {"key_object_infos": {c_tag: {...}},
                                                   "QA": {"perception": [QA], "prediction": [QA],
                                                          "planning": [QA], "behavior": [QA]},
                                                   "image_paths": {CAM_NAME: path}}}}}

  with ``QA = {"Q", "A", "C", "con_up", "con_down", "cluster", "layer", "tag"}``
  (see :mod:`.drivelm`).
- ``corpus_{split}.txt``: text lines for language pre-training.

The loaders return **flat records**, one per question, in file order::

    {"sample_token", "scene_token", "question", "answer", "qa_type", "template_type",
     "num_hop", "c_tags", "question_id", "tag", "query"}

``qa_type`` is ``'closed'`` (NuScenes-QA) or the DriveLM stage (``'perception'``,
``'prediction'``, ``'planning'``, ``'behavior'``); DriveLM records have ``num_hop`` 0, a
``template_type`` naming the question (``'important_objects'``, ``'category'``, ``'status'``,
``'moving'``, ``'in_path'``, ``'next_action'``, ``'attention'``, ``'ego_behavior'``; the stage
for questions written by others), ``c_tags`` the c-tags of question and answer, and
``question_id`` ``'<sample_token>/<qa_type>/<i>'``. A missing or malformed file raises
:class:`~holodrive.datasets.errors.DriveQAFileError` with one line naming the file and the
key / index at fault.
"""
import functools
import json
import os
import os.path as osp
from typing import Collection, Dict, Iterable, List, Optional

from holodrive.utils.io import atomic_open
from ..errors import DriveQAFileError
from .drivelm import IMPORTANT_OBJECTS_Q, QA_TYPES
from .scene import C_TAG_RE, parse_c_tags

REGENERATE = 'regenerate it with `python tools/create_data.py drive_qa --root-path DATA_ROOT`'
NUSCENES_QA_KEYS = {'question': str, 'answer': str, 'sample_token': str, 'template_type': str,
                    'num_hop': int}
RECORD_KEYS = ('sample_token', 'scene_token', 'question', 'answer', 'qa_type', 'template_type',
               'num_hop', 'c_tags', 'question_id', 'tag', 'query')
_KINDS = ((IMPORTANT_OBJECTS_Q, 'important_objects'), ('What is the category of', 'category'),
          ('What is the status of', 'status'), ('Is <c', 'moving'), ('Will <c', 'in_path'),
          ('What should the ego car do next', 'next_action'),
          ('Which object should the ego car pay', 'attention'),
          ('Predict the behavior of the ego vehicle', 'ego_behavior'))


# ----------------------------------------------------------------------------- writers
def write_nuscenes_qa(path: str, questions: List[dict], info: dict) -> str:
    """Write a NuScenes-QA file atomically (one question per line); returns the path."""
    with atomic_open(path, 'w') as f:
        f.write('{"info": ' + json.dumps(info) + ',\n "questions": [\n')
        f.write(',\n'.join(json.dumps(q) for q in questions))
        f.write('\n]}\n')
    return str(path)


def write_drivelm(path: str, scenes: Dict[str, dict]) -> str:
    """Write a DriveLM file atomically; returns the path."""
    with atomic_open(path, 'w') as f:
        json.dump(scenes, f, indent=1)
        f.write('\n')
    return str(path)


def write_corpus(path: str, lines: Iterable[str]) -> str:
    """Write text lines (newlines inside a line become spaces) atomically."""
    with atomic_open(path, 'w') as f:
        for line in lines:
            f.write(' '.join(str(line).split()) + '\n')
    return str(path)


# ----------------------------------------------------------------------------- loaders
def _read_json(path: str):
    path = str(path)
    if not osp.isfile(path):
        raise DriveQAFileError('driving-QA file not found', path, REGENERATE)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DriveQAFileError(f'not valid JSON (line {e.lineno} column {e.colno}: {e.msg})',
                               path, REGENERATE) from None
    except (OSError, UnicodeDecodeError) as e:
        raise DriveQAFileError(f'cannot read it ({type(e).__name__}: {e})', path,
                               REGENERATE) from None


def _type_name(t) -> str:
    return {str: 'a string', int: 'an integer', dict: 'an object', list: 'a list'}.get(
        t, t.__name__)


def _check(path: str, where: str, value, key: str, typ, optional: bool = False):
    """``value[key]`` of type ``typ`` (bool is not an int), or a one-line error."""
    if not isinstance(value, dict):
        raise DriveQAFileError(f'{where} must be an object, got {type(value).__name__}',
                               path, REGENERATE)
    if key not in value:
        if optional:
            return None
        raise DriveQAFileError(f'{where} lacks key "{key}"', path, REGENERATE)
    item = value[key]
    if not isinstance(item, typ) or (typ is int and isinstance(item, bool)):
        raise DriveQAFileError(f'{where}["{key}"] must be {_type_name(typ)}, got '
                               f'{type(item).__name__}', path, REGENERATE)
    return item


def load_nuscenes_qa(path: str, answer_set: Optional[Collection[str]] = None) -> List[dict]:
    """Flat records (module docstring) of a NuScenes-QA file, validated.

    ``scene_token`` and ``question_id`` may be missing (they are ``''`` and
    ``'<file name>:<index>'`` then); ``answer_set``: if given, every answer must be in it.
    """
    return _nuscenes_records(str(path), _read_json(path), answer_set)


def _nuscenes_records(path: str, data, answer_set: Optional[Collection[str]]) -> List[dict]:
    if not isinstance(data, dict):
        raise DriveQAFileError(f'the top level must be an object with "info" and "questions", '
                               f'got {type(data).__name__}', path, REGENERATE)
    _check(path, 'the file', data, 'info', dict)
    questions = _check(path, 'the file', data, 'questions', list)
    records, seen = [], set()
    for i, q in enumerate(questions):
        where = f'questions[{i}]'
        for key, typ in NUSCENES_QA_KEYS.items():
            _check(path, where, q, key, typ)
        scene = _check(path, where, q, 'scene_token', str, optional=True)
        qid = _check(path, where, q, 'question_id', (str, int), optional=True)
        qid = f'{osp.basename(path)}:{i}' if qid is None else str(qid)
        if qid in seen:
            raise DriveQAFileError(f'{where}: duplicate question_id {qid!r}', path, REGENERATE)
        seen.add(qid)
        if answer_set is not None and q['answer'] not in answer_set:
            raise DriveQAFileError(f'{where}["answer"] {q["answer"]!r} is not in the closed '
                                   f'answer set', path, REGENERATE)
        records.append(dict(
            sample_token=q['sample_token'], scene_token=scene or '', question=q['question'],
            answer=q['answer'], qa_type='closed', template_type=q['template_type'],
            num_hop=q['num_hop'], c_tags=[], question_id=qid, tag=[0],
            query=q.get('query')))
    return records


def drivelm_kind(question: str, qa_type: str) -> str:
    """The ``template_type`` of a DriveLM question (module docstring)."""
    return next((kind for prefix, kind in _KINDS if question.startswith(prefix)), qa_type)


def load_drivelm(path: str) -> List[dict]:
    """Flat records (module docstring) of a DriveLM file, validated."""
    return _drivelm_records(str(path), _read_json(path))


def _drivelm_records(path: str, data) -> List[dict]:
    if not isinstance(data, dict):
        raise DriveQAFileError('the top level must be an object {scene_token: scene}, got '
                               f'{type(data).__name__}', path, REGENERATE)
    records = []
    for scene_token, scene in data.items():
        where = f'scene {scene_token}'
        frames = _check(path, where, scene, 'key_frames', dict)
        _check(path, where, scene, 'scene_description', str, optional=True)
        for sample_token, frame in frames.items():
            fw = f'{where} key_frames/{sample_token}'
            stages = _check(path, fw, frame, 'QA', dict)
            objects = _check(path, fw, frame, 'key_object_infos', dict)
            images = _check(path, fw, frame, 'image_paths', dict)
            for tag in objects:
                if not C_TAG_RE.fullmatch(tag):
                    raise DriveQAFileError(f'{fw} key_object_infos key {tag!r} is not a c-tag '
                                           '<cN,CAM_NAME,x,y>', path, REGENERATE)
            for cam, img in images.items():
                if not isinstance(img, str):
                    raise DriveQAFileError(f'{fw} image_paths["{cam}"] must be a string, got '
                                           f'{type(img).__name__}', path, REGENERATE)
            for qa_type, items in stages.items():
                if qa_type not in QA_TYPES:
                    raise DriveQAFileError(f'{fw} QA has unknown stage "{qa_type}" (expected '
                                           f'{", ".join(QA_TYPES)})', path, REGENERATE)
                if not isinstance(items, list):
                    raise DriveQAFileError(f'{fw} QA["{qa_type}"] must be a list, got '
                                           f'{type(items).__name__}', path, REGENERATE)
                for i, item in enumerate(items):
                    qw = f'{fw} QA/{qa_type}[{i}]'
                    question = _check(path, qw, item, 'Q', str)
                    answer = _check(path, qw, item, 'A', str)
                    tag = _check(path, qw, item, 'tag', list, optional=True) or []
                    if not all(isinstance(t, int) and not isinstance(t, bool) for t in tag):
                        raise DriveQAFileError(f'{qw}["tag"] must be a list of integers',
                                               path, REGENERATE)
                    records.append(dict(
                        sample_token=sample_token, scene_token=scene_token, question=question,
                        answer=answer, qa_type=qa_type,
                        template_type=drivelm_kind(question, qa_type), num_hop=0,
                        c_tags=parse_c_tags(question + ' ' + answer),
                        question_id=f'{sample_token}/{qa_type}/{i}', tag=list(tag), query=None))
    return records


def load_qa_records(path: str, answer_set: Optional[Collection[str]] = None) -> List[dict]:
    """Flat records of a NuScenes-QA or a DriveLM file (told apart by their layout)."""
    data = _read_json(path)
    if isinstance(data, dict) and 'questions' in data:
        return _nuscenes_records(str(path), data, answer_set)
    return _drivelm_records(str(path), data)


# ----------------------------------------------------------------------------- info lookup
@functools.lru_cache(maxsize=8)
def _token_rows(info_file: str, size: int, mtime_ns: int) -> Dict[str, int]:
    from ..streaming import load_info_file
    data = load_info_file(info_file)
    return {str(r.get('token')): i for i, r in enumerate(data['data_list'])}


def find_info_sample(info_file: str, sample_token: str) -> dict:
    """The raw info record of ``sample_token`` in ``info_file``.

    Raises :class:`~holodrive.datasets.errors.InfoFileError` for a missing / broken info
    file and a one-line :class:`~holodrive.datasets.errors.DriveQAFileError` naming the info
    file for a token it does not hold.
    """
    from ..streaming import load_info_file, open_info_stream
    info_file = str(info_file)
    if not osp.isfile(info_file):
        load_info_file(info_file)                       # raises the clear InfoFileError
    st = os.stat(info_file)
    rows = _token_rows(osp.abspath(info_file), st.st_size, st.st_mtime_ns)
    if sample_token not in rows:
        raise DriveQAFileError(
            f'no sample with token {sample_token!r} ({len(rows)} samples)', info_file,
            'use the info file of the split the question comes from (the QA files are '
            'written per split from nuscenes_infos_{split}.pkl)')
    return open_info_stream(info_file)[rows[sample_token]]
