"""The driving-QA head end to end on the tiny world, in-process: QA data and tokenizer
(tools/create_data.py drive_qa), the language stage, the visual stage with the LLM frozen
(tools/train.py), the LoRA instruction stage (peft), scoring (tools/test.py, DriveQAMetric)
and tools/qa.py, and their errors."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from tests.tool_loader import load_tool

ROOT = Path(__file__).resolve().parents[1]
LANGUAGE = 'configs/drive_qa/mono_tiny_language_synthetic.py'
VISUAL = 'configs/drive_qa/mono_tiny_visual_synthetic.py'
LORA = 'configs/drive_qa/mono_tiny_instruct_lora_synthetic.py'
SMALL = ['model.llm.hidden_size=64', 'model.llm.intermediate_size=128',
         'model.llm.num_hidden_layers=2', 'model.llm.num_attention_heads=4',
         'model.llm.num_key_value_heads=2', 'model.llm.vision_hidden_size=32',
         'train_dataloader.num_workers=0', 'default_hooks.logger.interval=1']


def tool(name):
    return load_tool(f'tools/{name}.py')


def weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.fixture(scope='module')
def trained(tiny_world, tmp_path_factory):
    """A symlinked world with QA files, a 1-epoch language stage and a 1-epoch visual stage."""
    tmp = tmp_path_factory.mktemp('drive_qa')
    world = tmp / 'world'
    world.mkdir()
    for item in Path(tiny_world.root).iterdir():
        (world / item.name).symlink_to(item)
    tool('create_data').main(['drive_qa', '--root-path', str(world), '--vocab-size', '400'])
    opts = [f'data_root={world}/'] + SMALL
    tool('train').main([LANGUAGE, '--work-dir', str(tmp / 'lang'), '--cfg-options', *opts,
                        'train_cfg.max_epochs=1', 'train_dataloader.dataset.max_lines=64'])
    tool('train').main([VISUAL, '--work-dir', str(tmp / 'vis'), '--cfg-options', *opts,
                        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
                        'val_dataloader.num_workers=0',
                        'train_dataloader.dataset.max_questions=12',
                        'val_dataloader.dataset.max_questions=8',
                        f'load_from={tmp}/lang/epoch_1.pth'])
    return world, tmp, opts


def test_visual_stage_keeps_the_llm_and_trains_the_visual_parts(trained):
    _, tmp, _ = trained
    before, after = weights(tmp / 'lang/epoch_1.pth'), weights(tmp / 'vis/epoch_1.pth')
    assert before.keys() == after.keys()
    frozen = [k for k in before if '.mlp.' in k or 'self_attn' in k or 'embed_tokens' in k]
    learned = [k for k in before if '.mlp_vis.' in k or k.startswith('llm.vision_model.')]
    assert frozen and learned
    for key in frozen:
        assert torch.equal(before[key], after[key]), f'{key} changed in the visual stage'
    assert all(not torch.equal(before[k], after[k]) for k in learned if 'norm' not in k)


def test_test_tool_scores_every_type_and_writes_metrics(trained, capsys):
    world, tmp, opts = trained
    tool('test').main([VISUAL, str(tmp / 'vis/epoch_1.pth'), '--work-dir', str(tmp / 'test'),
                       '--cfg-options', *opts, 'test_dataloader.dataset.max_questions=8'])
    (saved,) = (tmp / 'test').glob('*/metrics.json')
    metrics = json.loads(saved.read_text())
    assert metrics['drive_qa/accuracy/num'] == 8
    assert 0.0 <= metrics['drive_qa/accuracy'] <= 1.0
    assert any(k.startswith('drive_qa/closed/') for k in metrics)
    assert 'result: accuracy ' in capsys.readouterr().out


def test_qa_tool_answers_a_question_and_a_questions_file(trained, capsys):
    world, tmp, _ = trained
    qa = tool('qa')
    ckpt = str(tmp / 'vis/epoch_1.pth')
    qa.main([VISUAL, ckpt, '--data-root', str(world), '--sample-idx', '0',
             '--question', 'How many cars are there?', '--cfg-options', *SMALL])
    out = capsys.readouterr().out
    assert 'Q: How many cars are there?' in out and '\nA: ' in out
    qa_file = world / 'drive_qa' / 'drivelm_val.json'
    answers = tmp / 'answers.json'
    qa.main([VISUAL, ckpt, '--data-root', str(world), '--questions-file', str(qa_file),
             '--limit', '5', '--out', str(answers), '--cfg-options', *SMALL])
    rows = json.loads(answers.read_text())
    assert len(rows) == 5 and all(set(r) == {'id', 'question', 'answer'} for r in rows)


def test_lora_stage_trains_adapters_only_and_saves_an_equal_merged_model(trained, capsys):
    from holodrive.models.drive_qa.lora import map_plain_keys
    from holodrive.models.drive_qa.modeling import MonoDriveForCausalLM
    world, tmp, opts = trained
    tool('train').main([LORA, '--work-dir', str(tmp / 'lora'), '--cfg-options', *opts,
                        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
                        'val_dataloader.num_workers=0',
                        'train_dataloader.dataset.max_questions=12',
                        'val_dataloader.dataset.max_questions=8',
                        f'load_from={tmp}/vis/epoch_1.pth'])
    vis, lora = weights(tmp / 'vis/epoch_1.pth'), weights(tmp / 'lora/epoch_1.pth')
    base = [k for k in lora if '.lora_' not in k]
    assert map_plain_keys(vis, base, 'llm.') > 0 and sorted(vis) == sorted(base)
    decoder = [k for k in base if '.layers.' in k or 'embed_tokens' in k]
    assert any('.base_layer.' in k for k in decoder)
    for key in decoder:
        assert torch.equal(vis[key], lora[key]), f'{key} changed under LoRA'
    lora_b = [k for k in lora if '.lora_B.' in k]
    # every B learns, except the last layer's visual FFN expert: its outputs only reach the
    # (unsupervised) visual positions
    last = f'.layers.{max(int(k.split(".layers.")[1].split(".")[0]) for k in lora_b)}.mlp_vis.'
    assert all(lora[k].abs().sum() > 0 for k in lora_b if last not in k), 'LoRA B did not learn'
    assert all(lora[k].abs().sum() == 0 for k in lora_b if last in k)
    assert any(not torch.equal(vis[k], lora[k]) for k in base if '.mlp1.' in k)

    qa = tool('qa')
    question = ['--data-root', str(world), '--sample-idx', '0', '--question',
                'How many cars are there?', '--cfg-options', *SMALL]
    args = qa.parse_args([LORA, str(tmp / 'lora/epoch_1.pth'), *question])
    model, cfg = qa.load_model(args)
    model.save_pretrained(str(tmp / 'merged'))
    assert (tmp / 'merged/lora_adapter/adapter_config.json').is_file()
    merged = MonoDriveForCausalLM.from_pretrained(str(tmp / 'merged')).eval()
    batch = model.processor.collate(['How many cars are there?'], visual=True)
    pixel_values = qa.visual_inputs(model, qa.scene_dataset(cfg, args)[0], 0)['imgs']
    with torch.no_grad():
        adapted = model.llm(**batch, pixel_values=pixel_values).logits
        torch.testing.assert_close(merged(**batch, pixel_values=pixel_values).logits, adapted,
                                   atol=1e-4, rtol=1e-4)
        with model.llm.disable_adapter():
            base = model.llm(**batch, pixel_values=pixel_values).logits
    assert (adapted - base).abs().max() > 1e-2, 'the adapter does not change the logits'
    capsys.readouterr()
    qa.main([LORA, str(tmp / 'merged'), *question])       # the merged directory answers
    assert '\nA: ' in capsys.readouterr().out


def test_lora_config_errors_are_one_line(trained):
    from holodrive.engine.config_check import ConfigError
    from holodrive.models.drive_qa.qa_model import DriveQAModel
    world, _, _ = trained
    llm = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
               num_key_value_heads=2, vision_hidden_size=16)
    tokenizer = str(world / 'drive_qa' / 'tokenizer')
    cases = [(dict(stage='instruction', lora=dict(r=4)), "LoRA goes with stage='instruction_lora'"),
             (dict(stage='instruction_lora'), "LoRA goes with stage='instruction_lora'"),
             (dict(stage='instruction_lora', lora=dict(rank=4)), 'peft.LoraConfig arguments'),
             (dict(stage='instruction_lora', lora=dict(target_modules=['nope_proj'])),
              'model.lora.target_modules')]
    for kwargs, needle in cases:
        with pytest.raises(ConfigError, match=needle) as err:
            DriveQAModel(llm=llm, tokenizer=tokenizer, **kwargs)
        assert '\n' not in str(err.value)


def test_bad_inputs_give_one_line(trained, capsys):
    from holodrive.engine.cli import run_cli
    world, tmp, opts = trained
    ckpt = str(tmp / 'vis/epoch_1.pth')
    qa = tool('qa')
    bad = tmp / 'bad.json'
    bad.write_text(json.dumps({'questions': [{'question': 'q?', 'answer': 'yes'}]}))
    cases = [
        ([VISUAL, ckpt, '--data-root', str(world), '--sample-token', 'nope', '--question', 'q?',
          '--cfg-options', *SMALL],
         'no sample with token'),
        ([VISUAL, ckpt, '--data-root', str(world), '--questions-file', str(bad),
          '--cfg-options', *SMALL], 'bad.json'),
    ]
    for argv, needle in cases:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(lambda: qa.main(argv))
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert needle in err[-1], err
    no_tokens = tmp / 'plain_tokenizer'
    from holodrive.utils.bpe import train_byte_level_bpe
    from transformers import PreTrainedTokenizerFast
    PreTrainedTokenizerFast(tokenizer_object=train_byte_level_bpe(['a b c'] * 5, 300, ['<pad>']),
                            pad_token='<pad>').save_pretrained(no_tokens)
    from holodrive.models.drive_qa.processing import DriveQATokenizerError, load_drive_tokenizer
    with pytest.raises(DriveQATokenizerError, match=r'plain_tokenizer: the tokenizer lacks '
                                                    r'<\|im_start\|>'):
        load_drive_tokenizer(str(no_tokens))
    with pytest.raises(SystemExit):
        run_cli(lambda: tool('train').main([VISUAL, '--work-dir', str(tmp / 'x'),
                                            '--cfg-options', *opts, 'model.image_size=[220,112]']))
    assert 'multiples of 28' in capsys.readouterr().err.strip().splitlines()[-1]
    shutil.rmtree(tmp / 'x', ignore_errors=True)
