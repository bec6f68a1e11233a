"""Config mistakes fail early with one line naming the file, the key and a fix."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from holodrive.engine.cli import import_project, prepare_config
from holodrive.engine.config_check import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = 'configs/centerpoint/centerpoint_tiny_synthetic.py'

import_project()


def _prepare(**options):
    return prepare_config(str(ROOT / TINY), cfg_options=options, check_paths=False)


def test_tiny_config_is_valid():
    cfg = _prepare()
    assert cfg.model.type == 'CenterPoint'


@pytest.mark.parametrize('options, expected', [
    ({'model.pts_backbone.type': 'SECONDD'},
     "model.pts_backbone.type: 'SECONDD' is not registered in model/task util (did you mean 'SECOND'?)"),
    ({'model.pts_bbox_head.num_clases': 3},
     "model.pts_bbox_head.num_clases: CenterHead has no argument 'num_clases'"),
    ({'train_dataloader.dataset.pipeline.0.load_dimm': 5},
     "train_dataloader.dataset.pipeline[0].load_dimm: LoadPointsChecked has no argument 'load_dimm' "
     "(did you mean 'load_dim'?)"),
    ({'optim_wrapper.optimizer.type': 'AdamWW'}, "optim_wrapper.optimizer.type: 'AdamWW'"),
])
def test_bad_keys_name_file_key_and_fix(options, expected):
    with pytest.raises(ConfigError) as err:
        _prepare(**options)
    msg = str(err.value)
    assert msg.startswith(str(ROOT / TINY)) and expected in msg
    assert '\n' not in msg


def test_missing_data_root_and_ann_file(tmp_path):
    with pytest.raises(ConfigError, match=r"train_dataloader.dataset.data_root: folder '/nonexistent/' "
                                          r"does not exist \(create the data with tools/create_data.py"):
        prepare_config(str(ROOT / TINY), cfg_options={'train_dataloader.dataset.data_root': '/nonexistent/'})
    with pytest.raises(ConfigError, match=r"ann_file: '.*nuscenes_infos_train.pkl' not found"):
        prepare_config(str(ROOT / TINY), cfg_options={'train_dataloader.dataset.data_root': str(tmp_path) + '/'})


def test_missing_and_broken_config_files(tmp_path):
    with pytest.raises(ConfigError, match='config file not found'):
        prepare_config(str(tmp_path / 'nope.py'))
    bad = tmp_path / 'bad.py'
    bad.write_text("model = dict(type='CenterPoint'\n")
    with pytest.raises(ConfigError, match=r'bad.py:\d+: syntax error'):
        prepare_config(str(bad))


def test_train_cli_prints_one_line_and_exits_2():
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', TINY, '--cfg-options', 'model.pts_backbone.type=SECONDD'],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: ') and "did you mean 'SECOND'" in lines[0]
    assert 'Traceback' not in proc.stderr


README_LINE = ("error: configs/x.py: model.pts_bbox_head.num_heatmap_conv: CenterHead has no "
               "argument 'num_heatmap_conv' (did you mean 'num_heatmap_convs'?)")


def test_readme_error_example_is_real():
    """The line README.md shows is exactly what the checker prints for that typo."""
    from holodrive.engine.config_check import check_config, load_config
    cfg = load_config(str(ROOT / TINY), {'model.pts_bbox_head.num_heatmap_conv': 2})
    with pytest.raises(ConfigError) as err:
        check_config(cfg, 'configs/x.py', check_paths=False)
    assert f'error: {err.value}' == README_LINE


def test_no_wrong_suggestion_and_kwargs_follow_super_only():
    from holodrive.engine.config_check import _accepted_args

    class Parent:
        def __init__(self, alpha=1, init_cfg=None):
            pass

    class Forwards(Parent):
        def __init__(self, beta=2, **kwargs):
            super().__init__(**kwargs)

    class Swallows(Parent):
        def __init__(self, beta=2, **kwargs):
            self.kw = kwargs

    assert _accepted_args(Forwards) == {'alpha', 'beta', 'init_cfg'}
    assert _accepted_args(Swallows) is None  # cannot be decided: accept anything
    with pytest.raises(ConfigError) as err:  # CenterHead has no num_classes: no false hint
        _prepare(**{'model.pts_bbox_head.num_clases': 3})
    assert 'did you mean' not in str(err.value)


def test_single_data_root_switches_every_path(tiny_world):
    root = str(tiny_world.root)
    cfg = prepare_config(str(ROOT / TINY), cfg_options={'data_root': root})
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[split].dataset.data_root == root + '/'
    for split in ('val_evaluator', 'test_evaluator'):
        assert cfg[split].data_root == root + '/'
        assert cfg[split].ann_file == os.path.join(root, 'nuscenes_infos_val.pkl')


def test_stale_evaluator_path_is_one_line_error(tiny_world, tmp_path):
    root = str(tiny_world.root) + '/'
    options = {f'{s}.dataset.data_root': root
               for s in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    with pytest.raises(ConfigError) as err:
        prepare_config(str(ROOT / TINY), cfg_options=options)
    msg = str(err.value)
    assert 'val_evaluator.data_root' in msg and 'data_root=DIR' in msg and '\n' not in msg


def test_run_cli_user_errors_one_line_internal_errors_traceback(capsys, tmp_path):
    from holodrive.engine.cli import UserFileNotFoundError, run_cli

    def user():
        raise UserFileNotFoundError(f'{tmp_path}/x.pth: checkpoint not found')

    with pytest.raises(SystemExit) as ex:
        run_cli(user)
    assert ex.value.code == 2
    assert capsys.readouterr().err.strip() == f'error: {tmp_path}/x.pth: checkpoint not found'

    def internal():
        open(tmp_path / 'deep' / 'inside' / 'library.bin')

    with pytest.raises(FileNotFoundError):  # not swallowed into one line
        run_cli(internal)


def test_checker_resolves_mmcv_ops_names_and_norm_requires_grad():
    """mmdet reads ``roi_layer`` / ``nms`` types by name from mmcv.ops, and mmcv's
    ``build_norm_layer`` consumes ``requires_grad``: real PIIP configs pass, a bad op fails."""
    from holodrive.engine.config_check import check_config, load_config
    path = str(ROOT / 'configs/piip/mask_rcnn/mask_rcnn_vit_b_fpn_1x_coco.py')
    cfg = load_config(path)
    cfg.model.neck.norm_cfg = dict(type='BN', requires_grad=True)
    check_config(cfg, path, check_paths=False)
    cfg.model.roi_head.bbox_roi_extractor.roi_layer.type = 'RoIAlignn'
    with pytest.raises(ConfigError, match=r"roi_layer.type: 'RoIAlignn' is not an mmcv.ops"):
        check_config(cfg, path, check_paths=False)


def test_schedule_warning_when_max_epochs_outruns_the_scheduler():
    from mmengine.config import Config

    from holodrive.engine.cli import prepare_config, schedule_warnings
    path = 'configs/drive_qa/mono_tiny_instruct_synthetic.py'
    cfg = prepare_config(path, cfg_options={'train_cfg.max_epochs': 8}, check_paths=False)
    (line,) = schedule_warnings(cfg)
    assert 'ends at epoch 3' in line and 'max_epochs=8' in line and 'last 5 epochs' in line
    assert schedule_warnings(prepare_config(path, check_paths=False)) == []
    assert schedule_warnings(prepare_config(path, cfg_options={'train_cfg.max_epochs': 2},
                                            check_paths=False)) == []
    open_ended = Config(dict(train_cfg=dict(max_epochs=8),
                             param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=True)]))
    assert schedule_warnings(open_ended) == []


def test_amp_warning_on_a_cpu_without_native_bf16(tmp_path):
    """--amp on a CPU: one warning line when /proc/cpuinfo has neither avx512_bf16 nor
    amx_bf16 (bf16 emulated, several times slower); none with either flag or without --amp."""
    import torch

    from holodrive.engine.cli import amp_warnings, cpu_has_native_bf16, prepare_config
    if torch.cuda.is_available():
        pytest.skip('the CPU bf16 path is only taken without a GPU')
    plain, native = tmp_path / 'plain', tmp_path / 'native'
    plain.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\n'
                     'processor\t: 1\nflags\t\t: fpu sse2 avx2 fma\n')
    native.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n')
    assert cpu_has_native_bf16(str(plain)) is False
    assert cpu_has_native_bf16(str(native)) is True
    assert cpu_has_native_bf16(str(tmp_path / 'missing')) is None
    path = 'configs/drive_qa/mono_tiny_instruct_synthetic.py'
    amp = prepare_config(path, amp=True, check_paths=False)
    (line,) = amp_warnings(amp, cpuinfo=str(plain))
    assert 'bf16 is emulated' in line and 'drop --amp' in line
    assert amp_warnings(amp, cpuinfo=str(native)) == []
    assert amp_warnings(amp, cpuinfo=str(tmp_path / 'missing')) == []
    assert amp_warnings(prepare_config(path, check_paths=False), cpuinfo=str(plain)) == []
