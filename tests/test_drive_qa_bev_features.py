"""Feature-map input of the driving-QA head: the object-level BEV map of the visible objects
(RasterizeSceneObjectsBEV), DriveQAModel(features=...) through the VisualAdapter, and the oracle
BEV config through tools/train.py, tools/test.py and tools/qa.py."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.test_drive_qa_training import SMALL as TINY_LLM_OPTIONS
from tests.tool_loader import load_tool

from holodrive.datasets.drive_qa import scene_objects
from holodrive.datasets.drive_qa.templates import STATUS_ANSWERS
from holodrive.datasets.transforms.scene_objects import RasterizeSceneObjectsBEV, SceneObjectTokens

ROOT = Path(__file__).resolve().parents[1]
ORACLE = 'configs/drive_qa/mono_tiny_oracle_bev_synthetic.py'
SMALL = TINY_LLM_OPTIONS + ['val_dataloader.num_workers=0']


def _records(world):
    from holodrive.registry import DATASETS
    dataset = DATASETS.build(dict(
        type='NuScenesSceneDataset', data_root=str(world.root) + '/',
        ann_file='nuscenes_infos_val.pkl', pipeline=[], test_mode=True,
        modality=dict(use_lidar=False, use_camera=True), filter_empty_gt=False))
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def test_raster_counts_each_visible_object_in_the_cell_of_its_ego_centre(tiny_world):
    raster = RasterizeSceneObjectsBEV(x_range=(-40, 40), y_range=(-40, 40), resolution=2.5)
    checked = 0
    for record in _records(tiny_world)[:6]:
        objects = scene_objects(record)
        out = raster(dict(record))['bev_objects']
        assert out.shape == (10 + len(STATUS_ANSWERS), 32, 32) and out.dtype == np.float32
        expected = np.zeros_like(out)
        for obj in objects:           # the grid formula written out: column from x, row from y
            col, row = math.floor((obj.xy[0] + 40) / 2.5), math.floor((obj.xy[1] + 40) / 2.5)
            if 0 <= row < 32 and 0 <= col < 32:
                expected[record_class(obj), row, col] += 1
                if obj.status is not None:
                    expected[10 + STATUS_ANSWERS.index(obj.status), row, col] += 1
                checked += 1
        np.testing.assert_array_equal(out, expected)
    assert checked >= 5, 'the tiny world has too few visible objects to check the raster'


def record_class(obj):
    from holodrive.datasets.constants import DETECTION_CLASSES
    return DETECTION_CLASSES.index(obj.name)


def test_raster_without_instances_names_the_key():
    with pytest.raises(KeyError, match="has no 'instances'"):
        RasterizeSceneObjectsBEV()(dict(token='t0', images={}))


def test_object_tokens_hold_one_nearest_first_object_per_slot(tiny_world):
    from holodrive.datasets.drive_qa.scene import SECTORS
    tokens = SceneObjectTokens(max_objects=4, radius=40.0)
    checked = dropped = 0
    for record in _records(tiny_world)[:6]:
        objects = sorted(scene_objects(record), key=lambda o: math.hypot(*o.xy))
        results = tokens(dict(record))
        out = results['object_tokens']
        assert out.shape == (10 + len(STATUS_ANSWERS) + 4 + 4, 1, 4) and out.dtype == np.float32
        expected = np.zeros_like(out)
        for slot, obj in enumerate(objects[:4]):
            column = np.zeros(out.shape[0], dtype=np.float32)
            column[record_class(obj)] = 1
            if obj.status is not None:
                column[10 + STATUS_ANSWERS.index(obj.status)] = 1
            bearing = math.degrees(math.atan2(obj.xy[1], obj.xy[0]))
            sector = ('front' if abs(bearing) <= 45 else 'back' if abs(bearing) >= 135
                      else 'left' if bearing > 0 else 'right')
            column[17 + SECTORS.index(sector)] = 1
            column[21:] = [obj.xy[0] / 40, obj.xy[1] / 40, math.hypot(*obj.xy) / 40, 1]
            expected[:, 0, slot] = column
            checked += 1
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
        assert results['object_tokens_dropped'] == max(0, len(objects) - 4)
        dropped += results['object_tokens_dropped']
    assert checked >= 5 and dropped >= 1, 'the tiny world should fill and overflow 4 slots'


def test_object_tokens_reject_a_bad_slot_count_and_name_missing_keys():
    with pytest.raises(ValueError, match='max_objects=0'):
        SceneObjectTokens(max_objects=0)
    with pytest.raises(KeyError, match="has no 'images'"):
        SceneObjectTokens()(dict(token='t0', instances=[]))


@pytest.fixture(scope='module')
def tokenizer_dir(tmp_path_factory):
    from holodrive.models.drive_qa.processing import train_drive_tokenizer
    out = tmp_path_factory.mktemp('bev_tok')
    lines = ['How many cars are there in front of the ego car?', 'yes', 'no', '0 1 2 3 4'] * 20
    train_drive_tokenizer(lines, str(out), vocab_size=300)
    return str(out)


def _model(tokenizer_dir, **kwargs):
    from holodrive.models.drive_qa.qa_model import DriveQAModel
    torch.manual_seed(0)
    llm = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, vision_hidden_size=16, vision_base_grid=4,
               adapter_in_channels={'bev': 17}, adapter_fold=4, initializer_range=0.2)
    args = dict(tokenizer=tokenizer_dir, llm=llm, use_images=False,
                features=dict(bev=dict(key='bev_objects', shape=(16, 16))), max_new_tokens=3)
    args.update(kwargs)
    return DriveQAModel(**args)


def _batch(model, maps):
    from mmengine.structures import BaseDataElement
    samples = [BaseDataElement(metainfo=dict(qa=dict(question='How many cars?', answer='2')))
               for _ in range(len(maps))]
    return model.data_preprocessor(dict(inputs=dict(bev_objects=list(maps)),
                                        data_samples=samples))


def test_model_reads_the_map_through_the_adapter(tokenizer_dir):
    model = _model(tokenizer_dir)
    prompt = model.processor.prompt('How many cars?')
    assert prompt.count('<IMG_CONTEXT>') == 16 and '<BEV>' in prompt   # (16 / 4) ** 2 tokens
    maps = torch.zeros(2, 17, 16, 16)
    maps[1, 0, 3, 5] = 2.0                         # two cars in one cell of the second sample
    data = _batch(model, maps)
    loss = model.loss(data['inputs'], data['data_samples'])['loss']
    loss.backward()
    adapter = model.llm.adapters['bev']
    assert adapter.proj[0][1].weight.grad.abs().sum() > 0
    assert model.llm.model.layers[0].mlp_vis.down_proj.weight.grad.abs().sum() > 0
    # the map is read: the same question on two different maps gives different logits
    batch = model.processor.collate(['How many cars?'] * 2, visual=True)
    with torch.no_grad():
        logits = model.llm(**batch, visual_features={'bev': data['inputs']['bev_objects']}).logits
    assert not torch.allclose(logits[0, -1], logits[1, -1])
    answers = model.answer(['How many cars?'] * 2, inputs=data['inputs'])
    assert len(answers) == 2


def test_wrong_map_shape_and_unknown_source_are_one_line(tokenizer_dir):
    from holodrive.engine.config_check import ConfigError
    model = _model(tokenizer_dir)
    data = _batch(model, torch.zeros(1, 17, 8, 16))
    with pytest.raises(ValueError, match=r"inputs\['bev_objects'\] of shape \(1, 17, 8, 16\), "
                                         r'the model expects \(B, 17, 16, 16\)'):
        model.loss(data['inputs'], data['data_samples'])
    with pytest.raises(ValueError, match="no 'bev_objects' in the batch"):
        model.loss({}, data['data_samples'])
    with pytest.raises(ConfigError, match="model.features.piip: the LLM has no adapter"):
        _model(tokenizer_dir, features=dict(piip=dict(key='x', shape=(16, 16))))
    with pytest.raises(ConfigError, match='not divisible by model.llm.adapter_fold=4'):
        _model(tokenizer_dir, features=dict(bev=dict(key='bev_objects', shape=(18, 16))))


@pytest.fixture(scope='module')
def qa_world(tiny_world, tmp_path_factory):
    """The tiny world (linked) with its driving-QA data and a 400-token BPE."""
    world = tmp_path_factory.mktemp('qa_world')
    for item in Path(tiny_world.root).iterdir():
        (world / item.name).symlink_to(item)
    load_tool('tools/create_data.py').main(['drive_qa', '--root-path', str(world),
                                            '--vocab-size', '400'])
    return world


def _train_one_epoch(config, world, work_dir, train_questions):
    """One epoch of ``config`` through tools/train.py on the QA world; the checkpoint's
    path and state dict."""
    load_tool('tools/train.py').main([
        config, '--work-dir', str(work_dir), '--cfg-options', f'data_root={world}/', *SMALL,
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
        f'train_dataloader.dataset.max_questions={train_questions}',
        'val_dataloader.dataset.max_questions=4'])
    ckpt = work_dir / 'epoch_1.pth'
    return ckpt, torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']


def test_oracle_config_trains_scores_and_answers_through_the_tools(qa_world, tmp_path):
    world = qa_world
    opts = [f'data_root={world}/'] + SMALL
    ckpt, state = _train_one_epoch(ORACLE, world, tmp_path / 'bev', 12)
    assert any(k.startswith('llm.adapters.bev.') for k in state)
    load_tool('tools/test.py').main([ORACLE, str(ckpt), '--work-dir', str(tmp_path / 'test'),
                                     '--cfg-options', *opts,
                                     'test_dataloader.dataset.max_questions=6'])
    (saved,) = (tmp_path / 'test').glob('*/metrics.json')
    metrics = json.loads(saved.read_text())
    assert metrics['drive_qa/accuracy/num'] == 6
    # the ablation answers the same 6 questions: with the map, tools/test.py's exact match
    table = load_tool('tools/analysis_tools/qa_visual_ablation.py').main([
        ORACLE, str(ckpt), '--data-root', str(world), '--out', str(tmp_path / 'abl.json'),
        '--cfg-options', *SMALL, 'test_dataloader.dataset.max_questions=6'])
    assert table['overall']['num'] == 6
    assert table['overall']['exact_match'] == pytest.approx(metrics['drive_qa/accuracy'])
    assert 0.0 <= table['overall']['same_answer'] <= 1.0
    assert sum(row['num'] for key, row in table.items() if key.startswith('hop')) == 6
    # tools/qa.py in a fresh process, as a user runs it (it must register the datasets itself)
    proc = subprocess.run(
        [sys.executable, 'tools/qa.py', ORACLE, str(ckpt), '--data-root', str(world),
         '--sample-idx', '0', '--question', 'How many cars are there?', '--cfg-options', *SMALL],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'Q: How many cars are there?' in proc.stdout and '\nA: ' in proc.stdout


def test_object_token_config_trains_and_scores_one_token_per_object(qa_world, tmp_path):
    config = 'configs/drive_qa/mono_tiny_oracle_objects_synthetic.py'
    opts = [f'data_root={qa_world}/'] + SMALL
    ckpt, state = _train_one_epoch(config, qa_world, tmp_path / 'obj', 8)
    # 25 channels per object, no fold: the adapter's first projection reads 25 features
    assert state['llm.adapters.bev.proj.0.1.weight'].shape[1] == 25
    load_tool('tools/test.py').main([config, str(ckpt), '--work-dir', str(tmp_path / 'test'),
                                     '--cfg-options', *opts,
                                     'test_dataloader.dataset.max_questions=4'])
    (saved,) = (tmp_path / 'test').glob('*/metrics.json')
    assert json.loads(saved.read_text())['drive_qa/accuracy/num'] == 4


def test_pretrained_head_gains_an_adapter_through_overrides(tokenizer_dir, tmp_path):
    """A saved head without a 'bev' adapter gets one from model.pretrained_overrides; every
    weight it had loads unchanged; the system message goes into every prompt."""
    from holodrive.engine.config_check import ConfigError
    from holodrive.models.drive_qa.qa_model import DriveQAModel
    plain = _model(tokenizer_dir, use_images=True, features=None,
                   llm=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, vision_hidden_size=16,
                            vision_base_grid=4, initializer_range=0.2))
    plain.save_pretrained(str(tmp_path))
    model = DriveQAModel(pretrained=str(tmp_path), use_images=False,
                         pretrained_overrides=dict(adapter_in_channels={'bev': 17},
                                                   adapter_fold=4),
                         features=dict(bev=dict(key='bev_objects', shape=(16, 16))),
                         system='Answer with one word.')
    assert set(model.llm.adapters) == {'bev'} and model.llm.config.adapter_fold == 4
    before = plain.llm.state_dict()
    for name, value in model.llm.state_dict().items():
        if not name.startswith('adapters.'):
            torch.testing.assert_close(value, before[name], msg=name)
    prompt = model.processor.prompt('How many cars?')
    assert prompt.startswith('<|im_start|>system\nAnswer with one word.<|im_end|>')
    maps = torch.zeros(1, 17, 16, 16)
    maps[0, 0, 3, 5] = 1.0
    data = _batch(model, maps)
    model.loss(data['inputs'], data['data_samples'])['loss'].backward()
    assert model.llm.adapters['bev'].proj[0][1].weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match='pretrained_overrides.adapter_channels: not a '):
        DriveQAModel(pretrained=str(tmp_path), pretrained_overrides=dict(adapter_channels=1))
    with pytest.raises(ConfigError, match='pretrained_overrides.to_dict: not a '):
        DriveQAModel(pretrained=str(tmp_path), pretrained_overrides=dict(to_dict=1))
    with pytest.raises(ConfigError, match='pretrained_overrides needs model.pretrained'):
        DriveQAModel(tokenizer=tokenizer_dir, llm=dict(hidden_size=32),
                     pretrained_overrides=dict(adapter_fold=2))
