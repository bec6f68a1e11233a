"""train.py / dist_train.sh machinery on a toy model: checkpoints, resume, DDP, compat fixes."""
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from holodrive.compat import apply_runtime_fixes

apply_runtime_fixes()  # mmengine checkpoints load with weights_only=True after this
ROOT = Path(__file__).resolve().parents[1]
TOY = 'tests/configs/toy_regression.py'


def _run(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, **kw)


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    work = tmp_path_factory.mktemp('toy')
    proc = _run(['tools/train.py', TOY, '--work-dir', str(work)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return work


def test_runner_checkpoints_load_with_weights_only(toy_run):
    ckpt = torch.load(toy_run / 'epoch_3.pth', map_location='cpu', weights_only=True)
    assert {'state_dict', 'optimizer', 'message_hub', 'meta'} <= set(ckpt)
    assert ckpt['meta']['epoch'] == 3
    assert (toy_run / 'last_checkpoint').read_text().strip().endswith('epoch_3.pth')
    # no temporary files are left behind by the atomic writer
    assert not [p for p in os.listdir(toy_run) if p.endswith('.tmp')]


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_untrusted_pickle_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': _Evil()}, f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


class _Harmless:
    def __reduce__(self):
        return (str, ('unpickled',))


def test_mmengine_loader_passes_weights_only_explicitly(tmp_path, monkeypatch):
    """load_from / resume go through mmengine's loader; it must refuse pickled globals even
    when the environment switches torch's weights_only default off."""
    from mmengine.runner.checkpoint import CheckpointLoader
    path = tmp_path / 'pickled.pth'
    torch.save({'state_dict': _Harmless()}, path)      # a real torch zip file with a global in it
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_resume_continues_to_the_same_weights(toy_run, tmp_path):
    """Resume from epoch 2 of a 3-epoch run ends with the weights of the full run."""
    work = tmp_path / 'resumed'
    work.mkdir()
    (work / 'epoch_2.pth').write_bytes((toy_run / 'epoch_2.pth').read_bytes())
    proc = _run(['tools/train.py', TOY, '--work-dir', str(work), '--resume'])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'resumed epoch: 2' in proc.stdout + proc.stderr
    full, resumed = _weights(toy_run / 'epoch_3.pth'), _weights(work / 'epoch_3.pth')
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def test_resume_in_an_empty_work_dir_keeps_load_from(toy_run, tmp_path):
    """``--resume`` with no checkpoint yet starts from the config's load_from weights (a staged
    run restarted with the same command), and once the work dir has one it resumes that."""
    work = tmp_path / 'staged'
    args = ['tools/train.py', TOY, '--work-dir', str(work), '--resume', '--cfg-options',
            'train_cfg.max_epochs=1', 'optim_wrapper.optimizer.lr=0.0',
            f'load_from={toy_run / "epoch_3.pth"}']
    proc = _run(args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'starting from the weights of load_from' in proc.stderr
    # lr 0: the one epoch keeps the loaded weights, so epoch_1 equals the source's epoch_3
    src, out = _weights(toy_run / 'epoch_3.pth'), _weights(work / 'epoch_1.pth')
    for k in src:
        assert torch.equal(src[k], out[k]), k
    again = _run(args)     # epoch_1.pth exists now: resumed, nothing left to train
    assert again.returncode == 0, again.stderr[-2000:]
    assert 'resumed epoch: 1' in again.stdout + again.stderr


def test_one_ddp_step_equals_one_single_process_step(tmp_path):
    """2 ranks x batch 1 (gloo) == 1 rank x batch 2 after one SGD step."""
    opts = ['--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.dataset.num=2']
    single = _run(['tools/train.py', TOY, '--work-dir', str(tmp_path / 'single'), *opts])
    assert single.returncode == 0, single.stderr[-2000:]
    env_port = str(29600 + os.getpid() % 300)
    ddp = subprocess.run(
        ['bash', 'tools/dist_train.sh', TOY, '2', '--work-dir', str(tmp_path / 'ddp'), *opts,
         'train_dataloader.batch_size=1'],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PORT=env_port, PYTHON=sys.executable, OMP_NUM_THREADS='1'))
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert 'Distributed launcher: pytorch' in ddp.stdout + ddp.stderr
    assert "'backend': 'gloo'" in ddp.stdout + ddp.stderr
    a, b = _weights(tmp_path / 'single/epoch_1.pth'), _weights(tmp_path / 'ddp/epoch_1.pth')
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7)
    # and the step really changed the weights (the comparison is not vacuous)
    fresh = _run(['tools/train.py', TOY, '--work-dir', str(tmp_path / 'zero'), '--cfg-options',
                  'train_cfg.max_epochs=1', 'train_dataloader.dataset.num=2',
                  'optim_wrapper.optimizer.lr=0.0'])
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    init = _weights(tmp_path / 'zero/epoch_1.pth')
    assert any(not torch.allclose(init[k], a[k]) for k in a)


def test_atomic_checkpoint_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    from mmengine.fileio.backends.local_backend import LocalBackend
    target = tmp_path / 'epoch_1.pth'
    LocalBackend().put(b'old complete checkpoint', target)

    def boom(fd):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'fsync', boom)
    with pytest.raises(OSError, match='disk full'):
        LocalBackend().put(b'new half-written checkpoint', target)
    assert target.read_bytes() == b'old complete checkpoint'
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_spconv_runs_forward_and_backward_on_cpu():
    """Our SubMConv3d (Native algorithm on CPU) equals a dense conv3d at active sites."""
    import spconv.pytorch as spconv
    from mmengine.registry import MODELS
    torch.manual_seed(0)
    conv = MODELS.build(dict(type='SubMConv3d', in_channels=3, out_channels=4, kernel_size=3,
                             padding=1, bias=False, indice_key='t')).double()
    idx = torch.unique(torch.randint(0, 6, (40, 3)), dim=0)
    coords = torch.cat([torch.zeros(len(idx), 1, dtype=torch.int64), idx], 1).int()
    feats = torch.randn(len(idx), 3, dtype=torch.float64, requires_grad=True)
    out = conv(spconv.SparseConvTensor(feats, coords, [6, 6, 6], 1))
    assert conv.algo == spconv.ConvAlgo.Native
    out.features.sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()
    dense_in = torch.zeros(1, 3, 6, 6, 6, dtype=torch.float64)
    dense_in[0, :, idx[:, 0], idx[:, 1], idx[:, 2]] = feats.detach().T
    weight = conv.weight.detach().permute(0, 4, 1, 2, 3)  # KRSC -> (out, in, k, k, k)
    dense_out = torch.nn.functional.conv3d(dense_in, weight, padding=1)
    expected = dense_out[0, :, idx[:, 0], idx[:, 1], idx[:, 2]].T
    got = out.features[torch.argsort(torch.argsort(out.indices[:, 1:].long() @ torch.tensor([36, 6, 1])))]
    order = torch.argsort(idx.long() @ torch.tensor([36, 6, 1]))
    torch.testing.assert_close(got[order], expected[order])


def test_spconv_algo_is_chosen_per_forward_from_the_input_device(monkeypatch):
    """A model that ran on CPU uses its GPU algorithm again once its input is on CUDA."""
    import spconv.pytorch as spconv
    from mmengine.registry import MODELS
    conv = MODELS.build(dict(type='SubMConv3d', in_channels=3, out_channels=4, kernel_size=3,
                             padding=1, bias=False, indice_key='t'))
    assert conv.device_algo != spconv.ConvAlgo.Native  # the GPU choice is kept
    idx = torch.unique(torch.randint(0, 6, (20, 3)), dim=0)
    coords = torch.cat([torch.zeros(len(idx), 1, dtype=torch.int64), idx], 1).int()
    conv(spconv.SparseConvTensor(torch.randn(len(idx), 3), coords, [6, 6, 6], 1))
    assert conv.algo == spconv.ConvAlgo.Native
    seen = []
    monkeypatch.setattr(spconv.SubMConv3d.__mro__[1], 'forward',
                        lambda self, x, *a, **k: seen.append(self.algo))

    class FakeCuda:  # a CUDA input, mocked (no GPU needed)
        features = types.SimpleNamespace(is_cuda=True)
    conv(FakeCuda())
    assert seen == [conv.device_algo]


def test_numpy_1_and_2_scalar_names_are_allowed():
    import io
    import numpy as np
    buf = io.BytesIO()
    torch.save({'x': np.float64(2.5)}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    for name in (b'numpy.core.multiarray', b'numpy._core.multiarray'):
        other = data.replace(b'numpy.core.multiarray', name) if b'numpy.core.multiarray' in data \
            else data.replace(b'numpy._core.multiarray', name)
        assert float(torch.load(io.BytesIO(other), weights_only=True)['x']) == 2.5


def test_synthetic_world_import_does_not_patch_torch():
    proc = _run(['-c', 'import sys, holodrive, holodrive.datasets.synthetic; '
                 'print("holodrive.compat" in sys.modules)'])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == 'False'
    proc = _run(['-c', 'import sys, holodrive.models; print("holodrive.compat" in sys.modules)'])
    assert proc.stdout.strip() == 'True'


def test_patch_is_skipped_with_a_warning_on_another_version(monkeypatch):
    from holodrive import compat
    monkeypatch.setitem(compat.PATCHED_VERSIONS, 'mmengine', ('9.9.',))
    with pytest.warns(RuntimeWarning, match='skipping atomic_local_writes: written for mmengine'):
        assert not compat._version_ok('mmengine', 'atomic_local_writes')


def test_checkpoints_follow_umask_and_stale_tmp_is_cleaned(tmp_path):
    from mmengine.fileio.backends.local_backend import LocalBackend
    old = os.umask(0o022)
    try:
        LocalBackend().put(b'ckpt', tmp_path / 'epoch_1.pth')
    finally:
        os.umask(old)
    assert (tmp_path / 'epoch_1.pth').stat().st_mode & 0o777 == 0o644
    work = tmp_path / 'work'
    work.mkdir()
    stale = work / '.epoch_2.pth.abc123.tmp'
    stale.write_bytes(b'half')
    proc = _run(['tools/train.py', TOY, '--work-dir', str(work),
                 '--cfg-options', 'train_cfg.max_epochs=1'])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not stale.exists()


def test_resume_refuses_a_changed_schedule(toy_run, tmp_path):
    work = tmp_path / 'changed'
    work.mkdir()
    (work / 'epoch_2.pth').write_bytes((toy_run / 'epoch_2.pth').read_bytes())
    proc = _run(['tools/train.py', TOY, '--work-dir', str(work), '--resume',
                 '--cfg-options', 'train_cfg.max_epochs=5'])
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and 'train_cfg.max_epochs changed' in lines[0]
    assert 'new --work-dir' in lines[0] and 'Traceback' not in proc.stderr


def test_checkpoint_of_another_model_fails_unless_partial(toy_run, tmp_path):
    from holodrive.engine.checkpoint import check_checkpoint_matches
    from holodrive.engine.config_check import ConfigError
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': torch.nn.Linear(3, 5).state_dict()}, other)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
    with pytest.raises(ConfigError, match=r'4 missing, 2 unexpected.*different model; pass '
                                          r'--allow-partial'):
        check_checkpoint_matches(model, other)
    report = check_checkpoint_matches(model, other, allow_partial=True)[0]
    assert report.endswith('4 missing, 2 unexpected, 0 shape-mismatched keys of 4')
    torch.save({'state_dict': model.state_dict()}, other)
    assert check_checkpoint_matches(model, other)[1:] == ([], [], [])
    wrong_shape = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    with pytest.raises(ConfigError, match='1 missing|2 shape-mismatched'):
        check_checkpoint_matches(wrong_shape, other)


def test_refused_pickle_is_one_clear_line(tmp_path):
    from holodrive.engine.checkpoint import load_weights_only
    from holodrive.engine.config_check import ConfigError
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': types.SimpleNamespace(a=1)}, path)
    with pytest.raises(ConfigError) as err:
        load_weights_only(path)
    msg = str(err.value)
    assert msg.startswith(f'checkpoint {path} contains pickled objects that weights_only '
                          'loading refuses (GLOBAL types.SimpleNamespace')
    assert "torch.save({'state_dict': ...})" in msg and 'tools/convert/' in msg
    assert '\n' not in msg


def test_config_formatting_is_memoised_with_the_same_text():
    """pretty_text is formatted by yapf once per distinct config; the text is yapf's own."""
    import mmengine.config.config as config_module
    from mmengine.config import Config
    from yapf.yapflib.yapf_api import FormatCode
    cache = config_module.FormatCode.cache        # the memoising wrapper is in place
    cfg = Config(dict(model=dict(type='ToyRegressor', hidden=8), lr=0.02, note='memo-test'))
    before = len(cache)
    first = cfg.pretty_text
    assert len(cache) == before + 1
    assert cfg.pretty_text == first and len(cache) == before + 1     # served from the memo
    raw = Config(cfg._cfg_dict.to_dict(), format_python_code=False).pretty_text
    style = dict(based_on_style='pep8', blank_line_before_nested_class_or_def=True,
                 split_before_expression_after_opening_paren=True)
    assert first == FormatCode(raw, style_config=style)[0]


def test_safetensors_checkpoints_load_through_mmengine(tmp_path):
    """``load_from`` / ``init_cfg=Pretrained`` accept a converted ``.safetensors`` file."""
    from mmengine.runner import load_checkpoint
    from safetensors.torch import save_file
    src, dst = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    path = tmp_path / 'converted.safetensors'
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    assert not torch.equal(src.weight, dst.weight)
    load_checkpoint(dst, str(path), map_location='cpu', strict=True)
    assert torch.equal(src.weight, dst.weight) and torch.equal(src.bias, dst.bias)


def test_single_process_argument_parsing_leaves_local_rank_unset(monkeypatch):
    """Only an explicit --local-rank (torch.distributed.launch) exports LOCAL_RANK: an
    in-process tools/train.py run must not make later child processes think they are rank 0."""
    import argparse

    from holodrive.engine.cli import add_runner_args, parse_runner_args
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    parse_runner_args(add_runner_args(argparse.ArgumentParser()), [])
    assert 'LOCAL_RANK' not in os.environ
    parse_runner_args(add_runner_args(argparse.ArgumentParser()), ['--local-rank', '3'])
    assert os.environ['LOCAL_RANK'] == '3'
