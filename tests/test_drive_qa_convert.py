"""Official Mono-InternVL (InternLM2-VE) checkpoints convert to the driving-QA head: random
weights in the official key layout, written as the HF repo would be."""
import json

import pytest
import torch
from safetensors.torch import save_file

from holodrive.models.drive_qa.convert import convert_mono_internvl, split_wqkv
from tests.tool_loader import load_tool

HEADS, KV, DIM, HIDDEN, LAYERS, VIS, VOCAB = 4, 2, 8, 32, 2, 16, 300


def run_tool(argv):
    """The CLI in-process, through run_cli as ``python tools/convert/mono_internvl.py``."""
    from holodrive.engine.cli import run_cli
    tool = load_tool('tools/convert/mono_internvl.py')
    run_cli(lambda: tool.main(argv))


def fused_wqkv(q, k, v):
    """The official layout, built the other way round: per kv head, its query group, k, v."""
    groups = HEADS // KV
    rows = []
    for h in range(KV):
        rows += [q[(h * groups + g) * DIM:(h * groups + g + 1) * DIM] for g in range(groups)]
        rows += [k[h * DIM:(h + 1) * DIM], v[h * DIM:(h + 1) * DIM]]
    return torch.cat(rows)


def official_checkpoint():
    torch.manual_seed(0)
    state, parts = {}, {}
    for i in range(LAYERS):
        q, k, v = torch.randn(HEADS * DIM, HIDDEN), torch.randn(KV * DIM, HIDDEN), \
            torch.randn(KV * DIM, HIDDEN)
        parts[i] = (q, k, v)
        p = f'language_model.model.layers.{i}.'
        state[p + 'attention.wqkv.weight'] = fused_wqkv(q, k, v)
        state[p + 'attention.wo.weight'] = torch.randn(HIDDEN, HEADS * DIM)
        state[p + 'attention_norm.weight'] = torch.rand(HIDDEN)
        state[p + 'ffn_norm.weight'] = torch.rand(HIDDEN)
        for ffn in ('feed_forward', 'feed_forward_ve'):
            state[p + f'{ffn}.w1.weight'] = torch.randn(48, HIDDEN)
            state[p + f'{ffn}.w3.weight'] = torch.randn(48, HIDDEN)
            state[p + f'{ffn}.w2.weight'] = torch.randn(HIDDEN, 48)
    state['language_model.model.tok_embeddings.weight'] = torch.randn(VOCAB, HIDDEN)
    state['language_model.model.norm.weight'] = torch.rand(HIDDEN)
    state['language_model.output.weight'] = torch.randn(VOCAB, HIDDEN)
    state['vision_model.embeddings.class_embedding'] = torch.randn(1, 1, VIS)
    state['vision_model.embeddings.patch_embedding.weight'] = torch.randn(VIS, 3, 14, 14)
    state['vision_model.embeddings.patch_embedding.bias'] = torch.randn(VIS)
    state['vision_model.embeddings.position_embedding'] = torch.randn(1, 1 + 16, VIS)
    state['mlp1.0.weight'], state['mlp1.0.bias'] = torch.rand(4 * VIS), torch.rand(4 * VIS)
    state['mlp1.1.weight'], state['mlp1.1.bias'] = torch.randn(HIDDEN, 4 * VIS), torch.randn(HIDDEN)
    state['mlp1.3.weight'], state['mlp1.3.bias'] = torch.randn(HIDDEN, HIDDEN), torch.randn(HIDDEN)
    config = dict(downsample_ratio=0.5,
                  vision_config=dict(hidden_size=VIS, patch_size=14, image_size=56),
                  llm_config=dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=48,
                                  num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                  num_key_value_heads=KV, rope_theta=1e6, rms_norm_eps=1e-5,
                                  bias=False, tie_word_embeddings=False))
    return state, parts, config


def test_split_wqkv_inverts_the_internlm2_fusion():
    q, k, v = torch.randn(HEADS * DIM, HIDDEN), torch.randn(KV * DIM, HIDDEN), \
        torch.randn(KV * DIM, HIDDEN)
    for a, b in zip(split_wqkv(fused_wqkv(q, k, v), HEADS, KV, DIM), (q, k, v)):
        assert torch.equal(a, b)


def test_every_official_key_maps_and_unknown_keys_are_reported():
    state, parts, _ = official_checkpoint()
    state['language_model.model.layers.0.attention.rotary_emb.inv_freq'] = torch.zeros(4)
    out, unmatched = convert_mono_internvl(state, HEADS, KV, DIM)
    assert unmatched == ['language_model.model.layers.0.attention.rotary_emb.inv_freq']
    assert torch.equal(out['model.layers.1.self_attn.k_proj.weight'], parts[1][1])
    assert torch.equal(out['model.layers.0.mlp_vis.down_proj.weight'],
                       state['language_model.model.layers.0.feed_forward_ve.w2.weight'])


def test_cli_converts_a_checkpoint_directory_that_auto_loads(tmp_path, monkeypatch, capsys):
    from transformers import AutoModelForCausalLM

    from holodrive.models.drive_qa import train_drive_tokenizer
    state, parts, config = official_checkpoint()
    src = tmp_path / 'Mono-InternVL-tiny'
    src.mkdir()
    save_file(state, str(src / 'model.safetensors'))
    (src / 'config.json').write_text(json.dumps(config))
    train_drive_tokenizer(['is there a car ahead? yes'] * 10, str(tmp_path / 'tok'),
                          vocab_size=280)
    out = tmp_path / 'converted'
    run_tool([str(src), str(out), '--tokenizer', str(tmp_path / 'tok')])
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    model = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(model.model.layers[0].self_attn.q_proj.weight, parts[0][0])
    assert model.config.rope_parameters['rope_theta'] == 1e6
    with pytest.raises(SystemExit) as exit_info:
        run_tool([str(tmp_path), str(out), '--tokenizer', str(tmp_path / 'tok')])
    assert exit_info.value.code == 2
    assert 'needs config.json' in capsys.readouterr().err.strip().splitlines()[-1]
