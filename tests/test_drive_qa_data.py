"""Driving-QA data (holodrive.datasets.drive_qa, tools/create_data.py drive_qa) on the tiny world.

The answers are recomputed here from the raw info records with an independent implementation
of the documented rules (visible = detection class, within RADIUS m of the ego, visibility >=
MIN_VISIBILITY, centre projecting into a camera image), so a wrong frame, filter or relation in
the generator shows up as a wrong answer.
"""
import json
import math
import os
import pickle
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tests.tool_loader import load_tool

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ('train', 'val')
STATUS_OF_ATTR = ('with rider', 'without rider', 'moving', 'standing', 'sitting', 'moving',
                  'parked', 'stopped')
FAMILY = {**{c: 'vehicle' for c in ('car', 'truck', 'trailer', 'bus', 'construction_vehicle')},
          'bicycle': 'cycle', 'motorcycle': 'cycle', 'pedestrian': 'pedestrian'}
FAMILY_STATUSES = {'vehicle': ('moving', 'parked', 'stopped'),
                   'cycle': ('with rider', 'without rider'),
                   'pedestrian': ('moving', 'standing', 'sitting')}
PLAN = re.compile(r'^(Keep lane|Turn left|Turn right|Stop|Stop because of <c\d+,CAM_[A-Z_]+,'
                  r'[\d.]+,[\d.]+>|Yield to <c\d+,CAM_[A-Z_]+,[\d.]+,[\d.]+>)\.$')


def _tool(name):
    return load_tool(f'tools/{name}.py')


@pytest.fixture(scope='module')
def qa_data(tiny_world, tmp_path_factory):
    from holodrive.datasets.drive_qa import write_drive_qa
    from holodrive.engine.cli import import_project
    import_project()
    out = tmp_path_factory.mktemp('drive_qa')
    summaries = write_drive_qa(str(tiny_world.root), SPLITS, questions_per_type=3,
                               out_dir=str(out), progress=False)
    infos = {}
    for split in SPLITS:
        with open(tiny_world.root / f'nuscenes_infos_{split}.pkl', 'rb') as f:
            infos[split] = {r['token']: r for r in pickle.load(f)['data_list']}
    return dict(out=out, summaries=summaries, infos=infos, root=tiny_world.root)


def _nuscenes_qa(qa_data, split):
    with open(qa_data['out'] / f'nuscenes_qa_{split}.json') as f:
        return json.load(f)


def _drivelm(qa_data, split):
    with open(qa_data['out'] / f'drivelm_{split}.json') as f:
        return json.load(f)


# ----------------------------------------------------------------------------- independent facts
def _pad(mat):
    out = np.eye(4)
    m = np.asarray(mat, dtype=np.float64)
    out[:m.shape[0], :m.shape[1]] = m
    return out


def _pixel(record, cam, centre):
    view = record['images'][cam]
    p = (_pad(view['lidar2cam']) @ np.append(centre, 1.0))[:3]
    uvw = np.asarray(view['cam2img'], dtype=np.float64)[:3, :3] @ p
    return uvw[0] / p[2], uvw[1] / p[2], p[2]


def _visible(record):
    """[(class, status, x_ego, y_ego)] of the objects the questions may be about."""
    from holodrive.datasets.constants import DETECTION_CLASSES
    from holodrive.datasets.drive_qa import MIN_VISIBILITY, RADIUS
    lidar2ego = _pad(record['lidar_points']['lidar2ego'])
    out = []
    for inst in record['instances']:
        label = inst['bbox_label_3d']
        if not 0 <= label < 10 or int(inst['visibility']) < MIN_VISIBILITY:
            continue
        centre = np.asarray(inst['bbox_3d'][:3], dtype=np.float64)
        x, y = (lidar2ego @ np.append(centre, 1.0))[:2]
        if math.hypot(x, y) > RADIUS:
            continue
        inside = False
        for cam, view in record['images'].items():
            u, v, d = _pixel(record, cam, centre)
            inside |= d >= 0.5 and 0 <= u < view['width'] and 0 <= v < view['height']
        if not inside:
            continue
        name = DETECTION_CLASSES[label]
        attr = inst['attr_label']
        status = STATUS_OF_ATTR[attr] if 0 <= attr < 8 else None
        if status not in FAMILY_STATUSES.get(FAMILY.get(name), ()):
            status = None
        out.append((name, status, float(x), float(y)))
    return out


def _matches(objs, q):
    def sector_ok(x, y):
        b = math.degrees(math.atan2(y, x))
        return {'front': abs(b) <= 45, 'back': abs(b) >= 135,
                'left': 45 < b < 135, 'right': -135 < b < -45}[q['relation']]
    from holodrive.datasets.drive_qa import NEAR_RADIUS
    out = []
    for i, (name, status, x, y) in enumerate(objs):
        if q['class'] and name != q['class'] or q['status'] and status != q['status']:
            continue
        if q['relation'] == 'near':
            if not any(j != i and o[0] == q['anchor'] and math.hypot(o[2] - x, o[3] - y)
                       <= NEAR_RADIUS for j, o in enumerate(objs)):
                continue
        elif q['relation'] and not sector_ok(x, y):
            continue
        out.append(objs[i])
    return out


def _expected(objs, ttype, q):
    if ttype == 'exist':
        return 'yes' if _matches(objs, q) else 'no'
    if ttype == 'count':
        return str(min(len(_matches(objs, q)), 10))
    if ttype == 'object':
        found = _matches(objs, q)
        if q['nearest']:
            return min(found, key=lambda o: math.hypot(o[2], o[3]))[0].replace('_', ' ')
        assert len({o[0] for o in found}) == 1
        return found[0][0].replace('_', ' ')
    if ttype == 'status':
        (status,) = {o[1] for o in _matches(objs, q)}
        return status
    na, nb = len(_matches(objs, q['a'])), len(_matches(objs, q['b']))
    if q['op'] == 'more':
        return 'yes' if na > nb else 'no'
    if q['op'] == 'same_count':
        return 'yes' if na == nb else 'no'
    (sa,), (sb,) = {o[1] for o in _matches(objs, q['a'])}, {o[1] for o in _matches(objs, q['b'])}
    return 'yes' if sa == sb else 'no'


# ----------------------------------------------------------------------------- closed questions
def test_closed_answers_closed_set_and_recomputed(qa_data):
    from holodrive.datasets.drive_qa import CLOSED_ANSWERS, TEMPLATE_TYPES
    assert len(CLOSED_ANSWERS) == len(set(CLOSED_ANSWERS)) == 30
    kinds = {'exist': {'yes', 'no'}, 'comparison': {'yes', 'no'},
             'count': {str(i) for i in range(11)}}
    for split in SPLITS:
        data = _nuscenes_qa(qa_data, split)
        questions = data['questions']
        assert data['info']['split'] == split and data['info']['num_questions'] == len(questions)
        assert Counter(q['template_type'] for q in questions) == {t: 12 for t in TEMPLATE_TYPES}
        per_type = Counter()
        for q in questions:
            assert q['answer'] in CLOSED_ANSWERS, q
            assert q['num_hop'] == (1 if (q['query'].get('relation') or any(
                q['query'].get(k, {}).get('relation') for k in ('a', 'b'))) else 0)
            if q['template_type'] in kinds:
                assert q['answer'] in kinds[q['template_type']]
            record = qa_data['infos'][split][q['sample_token']]
            assert q['scene_token'] == record['scene_token']
            assert q['answer'] == _expected(_visible(record), q['template_type'], q['query']), q
            per_type[q['template_type']] += 1
        counts = [q for q in questions if q['template_type'] == 'count']
        for q in counts:          # the text asks what the query says
            noun = q['query']['class'].replace('_', ' ')
            assert noun in q['question'] and q['question'].endswith('?')
        yes_no = Counter(q['answer'] for q in questions if q['answer'] in ('yes', 'no'))
        assert yes_no['yes'] and yes_no['no']


def test_count_answers_equal_matching_boxes(qa_data):
    """The count questions again, counted straight from the info boxes (not via _matches)."""
    checked = 0
    for split in SPLITS:
        for q in _nuscenes_qa(qa_data, split)['questions']:
            query = q['query']
            if q['template_type'] != 'count' or query['relation'] not in (None, 'front', 'back'):
                continue
            objs = _visible(qa_data['infos'][split][q['sample_token']])
            n = 0
            for name, status, x, y in objs:
                ahead = abs(math.degrees(math.atan2(y, x))) <= 45
                behind = abs(math.degrees(math.atan2(y, x))) >= 135
                n += (name == query['class'] and query['status'] in (None, status)
                      and {None: True, 'front': ahead, 'back': behind}[query['relation']])
            assert q['answer'] == str(min(n, 10)), q
            checked += 1
    assert checked >= 2


def test_balanced_and_deterministic_sampling():
    from holodrive.datasets.drive_qa import SceneObject, closed_questions
    rng = random.Random(0)
    objects = []
    for i in range(30):
        name = rng.choice(['car', 'pedestrian', 'bicycle', 'bus', 'traffic_cone'])
        status = {'car': 'parked', 'bus': 'moving', 'pedestrian': 'standing',
                  'bicycle': 'with rider'}.get(name)
        objects.append(SceneObject(index=i, name=name, status=status,
                                   xy=(rng.uniform(-30, 30), rng.uniform(-30, 30)),
                                   velocity=(0.0, 0.0), size=(4.0, 2.0, 1.5), camera='CAM_FRONT',
                                   pixel=(10.0, 10.0), bbox2d=[0, 0, 20, 20]))
    answers, hops = Counter(), Counter()
    for k in range(100):
        qs = closed_questions(objects, f'token{k}', 2, template_types=('exist',))
        assert qs == closed_questions(objects, f'token{k}', 2, template_types=('exist',))
        answers.update(q['answer'] for q in qs)
        hops.update(q['num_hop'] for q in qs)
    assert 0.35 < answers['yes'] / sum(answers.values()) < 0.65, answers
    assert 0.35 < hops[0] / sum(hops.values()) < 0.65, hops
    phrasings = {q['question'].split(' ')[0] for k in range(30)
                 for q in closed_questions(objects, f't{k}', 3)}
    assert len(phrasings) >= 5                     # several phrasings are used


# ----------------------------------------------------------------------------- DriveLM
def test_ctags_are_projected_box_centres(qa_data):
    from holodrive.datasets.drive_qa import C_TAG_RE, find_info_sample
    n = 0
    for split in SPLITS:
        info_file = qa_data['root'] / f'nuscenes_infos_{split}.pkl'
        for scene_token, scene in _drivelm(qa_data, split).items():
            for token, frame in scene['key_frames'].items():
                record = find_info_sample(info_file, token)
                assert record['token'] == token and record['scene_token'] == scene_token
                texts = ' '.join(f"{qa['Q']} {qa['A']}" for stage in frame['QA'].values()
                                 for qa in stage)
                # the QA names exactly the key objects (the first answer lists them all)
                assert set(re.findall(r'<c\d+,[^>]+>', texts)) == set(frame['key_object_infos'])
                for tag, obj in frame['key_object_infos'].items():
                    _, cam, x, y = C_TAG_RE.fullmatch(tag).groups()
                    x, y = float(x), float(y)
                    view = record['images'][cam]
                    assert 0 <= x < view['width'] and 0 <= y < view['height']
                    hits = []
                    for inst in record['instances']:
                        u, v, d = _pixel(record, cam, np.asarray(inst['bbox_3d'][:3]))
                        if d > 0 and abs(u - x) <= 0.05 + 1e-6 and abs(v - y) <= 0.05 + 1e-6:
                            hits.append(inst)
                    assert hits, tag
                    x1, y1, x2, y2 = obj['2d_bbox']
                    assert x1 <= x <= x2 and y1 <= y <= y2
                    n += 1
                for cam, path in frame['image_paths'].items():
                    assert not os.path.isabs(path) and (qa_data['root'] / path).is_file()
                assert 1 <= len(frame['key_object_infos']) <= 6
    assert n >= 8


def test_planning_follows_the_ego_trajectory(qa_data):
    for split in SPLITS:
        for scene in _drivelm(qa_data, split).values():
            for token, frame in scene['key_frames'].items():
                record = qa_data['infos'][split][token]
                (plan, *_), (behavior,) = frame['QA']['planning'], frame['QA']['behavior']
                assert PLAN.match(plan['A']), plan['A']
                traj = np.asarray(record['ego_fut_traj'])[np.asarray(record['ego_fut_valid'])]
                if not len(traj):
                    steps = np.arange(1, 7)[:, None] / 2          # constant velocity, 3 s
                    traj = np.asarray(record['ego_velocity'][:2])[None] * steps
                moved = np.abs(traj).max() > 1.0
                assert plan['A'].startswith('Stop') != moved
                assert ('not moving' in behavior['A']) != moved
                for qa in frame['QA']['prediction']:
                    assert qa['A'] in ('Yes.', 'No.')


def test_splits_are_disjoint_by_scene(qa_data):
    scenes = {}
    for split in SPLITS:
        info_scenes = {r['scene_token'] for r in qa_data['infos'][split].values()}
        closed = {q['scene_token'] for q in _nuscenes_qa(qa_data, split)['questions']}
        drivelm = set(_drivelm(qa_data, split))
        assert closed == drivelm == info_scenes
        frames = {t for s in _drivelm(qa_data, split).values() for t in s['key_frames']}
        assert frames == set(qa_data['infos'][split])
        scenes[split] = info_scenes
    assert not scenes['train'] & scenes['val']


# ----------------------------------------------------------------------------- loaders
def test_loaders_round_trip(qa_data):
    from holodrive.datasets.drive_qa import (CLOSED_ANSWERS, RECORD_KEYS, load_drivelm,
                                             load_nuscenes_qa, load_qa_records)
    for split in SPLITS:
        path = qa_data['out'] / f'nuscenes_qa_{split}.json'
        records = load_nuscenes_qa(path, answer_set=CLOSED_ANSWERS)
        questions = _nuscenes_qa(qa_data, split)['questions']
        assert records == load_qa_records(path)
        assert len(records) == len(questions)
        for rec, q in zip(records, questions):
            assert tuple(rec) == RECORD_KEYS and rec['qa_type'] == 'closed'
            assert all(rec[k] == q[k] for k in ('question', 'answer', 'sample_token',
                                                'scene_token', 'template_type', 'num_hop',
                                                'question_id', 'query'))
        path = qa_data['out'] / f'drivelm_{split}.json'
        records = load_drivelm(path)
        assert records == load_qa_records(path)
        data = _drivelm(qa_data, split)
        items = [(s, t, stage, qa) for s, scene in data.items()
                 for t, frame in scene['key_frames'].items()
                 for stage, qas in frame['QA'].items() for qa in qas]
        assert len(records) == len(items)
        assert {r['qa_type'] for r in records} == {'perception', 'prediction', 'planning',
                                                   'behavior'}
        for rec, (s, t, stage, qa) in zip(records, items):
            assert (rec['scene_token'], rec['sample_token'], rec['qa_type'], rec['question'],
                    rec['answer'], rec['tag']) == (s, t, stage, qa['Q'], qa['A'], qa['tag'])
            assert rec['c_tags'] == list(dict.fromkeys(re.findall(r'<c\d+,[^>]+>',
                                                                  qa['Q'] + ' ' + qa['A'])))
            assert rec['template_type'] != stage           # our questions are all named
        assert len({r['question_id'] for r in records}) == len(records)


def _one_line_error(fn, *args):
    from holodrive.datasets.errors import DriveQAFileError, HoloDriveDataError
    with pytest.raises(DriveQAFileError) as err:
        fn(*args)
    assert isinstance(err.value, HoloDriveDataError) and isinstance(err.value, ValueError)
    msg = str(err.value)
    assert '\n' not in msg and 'fix:' in msg
    return msg


def test_malformed_files_give_one_line(qa_data, tmp_path):
    from holodrive.datasets.drive_qa import load_qa_records
    qa = _nuscenes_qa(qa_data, 'train')
    del qa['questions'][3]['answer']
    bad = tmp_path / 'no_answer.json'
    bad.write_text(json.dumps(qa))
    msg = _one_line_error(load_qa_records, bad)
    assert str(bad) in msg and 'questions[3]' in msg and '"answer"' in msg

    qa = _nuscenes_qa(qa_data, 'train')
    qa['questions'][5]['num_hop'] = '1'
    bad.write_text(json.dumps(qa))
    msg = _one_line_error(load_qa_records, bad)
    assert 'questions[5]["num_hop"] must be an integer' in msg

    text = (qa_data['out'] / 'nuscenes_qa_val.json').read_text()
    bad.write_text(text[:len(text) // 2])
    msg = _one_line_error(load_qa_records, bad)
    assert str(bad) in msg and 'not valid JSON' in msg and 'line' in msg

    lm = _drivelm(qa_data, 'val')
    scene, frame = next(iter(lm.items()))
    token = next(iter(frame['key_frames']))
    del frame['key_frames'][token]['QA']['planning'][0]['A']
    bad.write_text(json.dumps(lm))
    msg = _one_line_error(load_qa_records, bad)
    assert scene in msg and token in msg and 'QA/planning[0]' in msg and '"A"' in msg

    lm = _drivelm(qa_data, 'val')
    del next(iter(lm.values()))['key_frames'][token]['QA']
    bad.write_text(json.dumps(lm))
    assert 'lacks key "QA"' in _one_line_error(load_qa_records, bad)

    lm = _drivelm(qa_data, 'val')
    infos = next(iter(lm.values()))['key_frames'][token]['key_object_infos']
    infos['<c1,FRONT,1,2>'] = infos.popitem()[1]
    bad.write_text(json.dumps(lm))
    assert "'<c1,FRONT,1,2>' is not a c-tag" in _one_line_error(load_qa_records, bad)

    missing = tmp_path / 'missing.json'
    assert str(missing) in _one_line_error(load_qa_records, missing)


def test_unknown_sample_token_names_the_info_file(qa_data):
    from holodrive.datasets.drive_qa import find_info_sample
    info_file = qa_data['root'] / 'nuscenes_infos_val.pkl'
    train_token = next(iter(qa_data['infos']['train']))
    msg = _one_line_error(find_info_sample, info_file, train_token)
    assert str(info_file) in msg and train_token in msg


# ----------------------------------------------------------------------------- CLI, corpus
def test_cli_writes_identical_bytes(qa_data, tmp_path, capsys):
    root = tmp_path / 'world'
    root.mkdir()
    for name in ('nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl', 'samples'):
        (root / name).symlink_to(qa_data['root'] / name)
    _tool('create_data').main(['drive_qa', '--root-path', str(root)])
    out = capsys.readouterr().out
    for split in SPLITS:
        for name in (f'nuscenes_qa_{split}.json', f'drivelm_{split}.json', f'corpus_{split}.txt'):
            assert str(root / 'drive_qa' / name) in out
            assert (root / 'drive_qa' / name).read_bytes() == (qa_data['out'] / name).read_bytes()
    assert '60 questions on 4 keyframes' in out and 'exist 12, count 12' in out
    assert 'yes/no' in out and 'QA (perception' in out
    assert not list((root / 'drive_qa').glob('*.tmp')) and not list(
        (root / 'drive_qa').glob('.*.tmp'))


def test_corpus_holds_captions_and_every_question(qa_data):
    for split in SPLITS:
        lines = (qa_data['out'] / f'corpus_{split}.txt').read_text().splitlines()
        qa = _nuscenes_qa(qa_data, split)['questions']
        lm = [qa for s in _drivelm(qa_data, split).values() for f in s['key_frames'].values()
              for stage in f['QA'].values() for qa in stage]
        assert len(lines) == len(qa_data['infos'][split]) + len(qa) + len(lm)
        assert {f"{q['question']} {q['answer']}" for q in qa} <= set(lines)
        assert {f"{q['Q']} {q['A']}" for q in lm} <= set(lines)
        qa_lines = {f"{q['question']} {q['answer']}" for q in qa} | {
            f"{q['Q']} {q['A']}" for q in lm}
        captions = [line for line in lines if line not in qa_lines]
        assert len(captions) == len(qa_data['infos'][split]) and all(captions)
        assert qa_data['summaries'][split]['corpus_lines'] == len(lines)
