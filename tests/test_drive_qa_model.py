"""The monolithic driving-QA head (holodrive/models/drive_qa): routing, visual tokens, the KV
cache, HF save/load, freezing by stage, Llama equivalence. Tiny random models, CPU, seconds."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from holodrive.models.drive_qa.configuration import MonoDriveConfig
from holodrive.models.drive_qa.modeling import MonoDriveForCausalLM, route_tokens
from holodrive.models.drive_qa.visual_tokens import VisualAdapter, pixel_shuffle

IMG = 5                                        # <IMG_CONTEXT> id of the toy vocabulary
LLM = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
           num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
           bos_token_id=1, eos_token_id=2, pad_token_id=0, initializer_range=0.2)


def tiny(**kwargs):
    torch.manual_seed(0)
    cfg = MonoDriveConfig(**LLM, image_token_id=IMG, vision_hidden_size=16, vision_base_grid=4,
                          adapter_in_channels={'bev': 8}, **kwargs)
    return MonoDriveForCausalLM(cfg).eval()


def prompt(num_visual, text=(7, 8, 9, 10)):
    return torch.tensor([[1, 11] + [IMG] * num_visual + list(text)])


def test_sparse_routing_equals_the_masked_dense_formula():
    torch.manual_seed(0)
    text_fn, vis_fn = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    x = torch.randn(2, 7, 6)
    mask = torch.rand(2, 7) > 0.5
    m = mask.unsqueeze(-1).float()
    dense = text_fn(x) * (1 - m) + vis_fn(x) * m
    torch.testing.assert_close(route_tokens(x, mask, text_fn, vis_fn), dense)
    calls = []
    route_tokens(x, torch.zeros(2, 7, dtype=torch.bool), text_fn,
                 lambda t: calls.append(t) or vis_fn(t))
    assert not calls, 'a text-only batch must not run the visual expert'


def test_pixel_shuffle_concatenates_each_2x2_block():
    grid = torch.randn(3, 4, 6, 5)
    out = pixel_shuffle(grid, 0.5)
    assert out.shape == (3, 2, 3, 20)
    for i in range(2):
        for j in range(3):
            expect = torch.cat([grid[:, 2 * i, 2 * j], grid[:, 2 * i, 2 * j + 1],
                                grid[:, 2 * i + 1, 2 * j], grid[:, 2 * i + 1, 2 * j + 1]], -1)
            torch.testing.assert_close(out[:, i, j], expect)


def test_camera_tokens_one_per_28_pixels_and_wrong_sizes_are_named():
    model = tiny()
    px = torch.randn(2, 3, 3, 56, 84)                   # 2 samples x 3 views
    assert model.camera_tokens(px).shape == (2, 3 * 2 * 3, 32)
    with pytest.raises(ValueError, match=r'pixel_values of shape \(2, 3, 3, 50, 84\).*28'):
        model.camera_tokens(torch.randn(2, 3, 3, 50, 84))
    with pytest.raises(ValueError, match=r'\[4\] <IMG_CONTEXT> tokens.*make 18'):
        model(prompt(4), pixel_values=px[:1])
    with pytest.raises(ValueError, match='no pixel_values'):
        model(prompt(4))


def test_adapter_merges_pyramid_levels_on_the_coarsest_grid():
    adapter = VisualAdapter([4, 6], hidden_size=8, fold=2, base_grid=4)
    tokens = adapter([torch.randn(2, 4, 16, 24), torch.randn(2, 6, 8, 12)])
    assert tokens.shape == (2, 4 * 6, 8)
    with pytest.raises(ValueError, match=r'expected \(N, 6, H, W\)'):
        adapter([torch.randn(2, 4, 16, 24), torch.randn(2, 5, 8, 12)])


def test_kv_cache_generation_equals_uncached_generation():
    model = tiny(visual_attention_experts=True)
    px, bev = torch.randn(1, 2, 3, 56, 56), torch.randn(1, 8, 4, 4)
    ids = prompt(2 * 4 + 16)
    kwargs = dict(pixel_values=px, visual_features={'bev': bev}, max_new_tokens=8,
                  do_sample=False, output_scores=True, return_dict_in_generate=True,
                  eos_token_id=None, pad_token_id=0)
    cached = model.generate(ids, use_cache=True, **kwargs)
    uncached = model.generate(ids, use_cache=False, **kwargs)
    assert torch.equal(cached.sequences, uncached.sequences)
    assert len(set(cached.sequences[0, ids.shape[1]:].tolist())) > 1   # not a trivial repeat
    for a, b in zip(cached.scores, uncached.scores):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_answer_loss_equals_the_full_logits_loss_and_its_gradients():
    """answer_loss (LM head only where a labelled token is predicted) == forward(labels).loss,
    for the value and for the gradients, with left padding and visual tokens."""
    model = tiny().train()
    bev = torch.randn(2, 8, 4, 4)
    ids = torch.cat([prompt(16, (7, 8, 9)), prompt(16, (7, 8, 12))])
    ids[0, :2] = 0                                         # left padding of the first row
    mask = (ids != 0).long()
    labels = torch.full_like(ids, -100)
    labels[0, -2:], labels[1, -1:] = ids[0, -2:], ids[1, -1:]
    full = model(ids, attention_mask=mask, visual_features={'bev': bev}, labels=labels).loss
    weights = [model.adapters['bev'].proj[0][1].weight, model.model.layers[0].mlp.up_proj.weight]
    grads = torch.autograd.grad(full, weights)
    part = model.answer_loss(ids, labels, attention_mask=mask, visual_features={'bev': bev})
    torch.testing.assert_close(part, full)
    for a, b in zip(torch.autograd.grad(part, weights), grads):
        torch.testing.assert_close(a, b)
        assert a.abs().sum() > 0


def test_left_padding_does_not_change_the_next_token_logits():
    model = tiny()
    px = torch.randn(1, 1, 3, 28, 56)
    ids = prompt(2)
    single = model(ids, pixel_values=px).logits[:, -1]
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1)
    mask = (padded != 0).long()
    batch = model(padded, attention_mask=mask, pixel_values=px).logits[:, -1]
    torch.testing.assert_close(single, batch, atol=1e-5, rtol=1e-4)


def test_save_pretrained_and_auto_from_pretrained_offline(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    model = tiny(visual_attention_experts=True)
    px = torch.randn(1, 1, 3, 28, 28)
    ids = prompt(1)
    model.save_pretrained(tmp_path)
    assert (tmp_path / 'model.safetensors').is_file()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is MonoDriveForCausalLM and loaded.config.adapter_in_channels == {'bev': 8}
    torch.testing.assert_close(loaded(ids, pixel_values=px).logits,
                               model(ids, pixel_values=px).logits)


def test_with_copied_experts_it_is_a_llama():
    """Text experts copied into the visual ones: the head computes exactly Llama's function,
    on text and on the visual tokens alike (the same Llama names load key for key)."""
    model = tiny(visual_attention_experts=True)
    model.copy_text_experts_to_visual()
    llama = LlamaForCausalLM(LlamaConfig(**LLM)).eval()
    missing, unexpected = llama.load_state_dict(model.state_dict(), strict=False)
    assert not missing and all(k.startswith(('vision_model', 'mlp1', 'adapters')) or '_vis' in k
                               for k in unexpected)
    ids = prompt(2)
    px = torch.randn(1, 1, 3, 28, 56)
    embeds, _ = model.embed(ids, pixel_values=px)
    torch.testing.assert_close(model(ids, pixel_values=px).logits,
                               llama(inputs_embeds=embeds).logits, atol=1e-5, rtol=1e-4)


def test_visual_stage_trains_visual_experts_but_not_the_text_ffns():
    from holodrive.models.drive_qa.training import set_trainable
    model = tiny().train()
    names = set_trainable(model, ['mlp_vis', 'vision_model', 'mlp1', 'adapters'])
    assert names and all('mlp_vis' in n or n.startswith(('vision_model', 'mlp1', 'adapters'))
                         for n in names)
    ids = prompt(2)
    out = model(ids, pixel_values=torch.randn(1, 1, 3, 28, 56), labels=ids)
    out.loss.backward()
    for i, layer in enumerate(model.model.layers):
        assert layer.mlp_vis.down_proj.weight.grad.abs().sum() > 0, i
        assert layer.mlp.down_proj.weight.grad is None, i
        assert layer.self_attn.q_proj.weight.grad is None, i
    assert model.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
    assert model.model.embed_tokens.weight.grad is None
