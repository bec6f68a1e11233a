"""The camera branch's parts: the autoencoder, the multi-view UNet's zero-initialised additions
(cross-view attention, camera embedding, residual injection, depth branch) and the layout
adapter, checked against a plain diffusers UNet and against the formulas."""
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from holodrive.models.camera_gen import CameraAutoencoder, CameraGenConfigError
from holodrive.models.camera_gen.layout_adapter import LayoutAdapter
from holodrive.models.camera_gen.multiview_unet import (CrossViewAttention, MultiViewUNet,
                                                        camera_embedding_input, neighbour_views)

TINY_UNET = dict(
    sample_size=(8, 16), in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(32, 64), down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
    up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'), cross_attention_dim=32,
    attention_head_dim=4, norm_num_groups=16)
TINY_VAE = dict(latent_channels=4, layers_per_block=1, norm_num_groups=8,
                block_out_channels=(8, 16), down_block_types=('DownEncoderBlock2D',) * 2,
                up_block_types=('UpDecoderBlock2D',) * 2, mid_block_add_attention=False)


def _cameras(b=1, v=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    cam2img = torch.eye(4).repeat(b, v, 1, 1)
    cam2img[..., 0, 0] = cam2img[..., 1, 1] = 100.0
    cam2img[..., 0, 2], cam2img[..., 1, 2] = 64.0, 32.0
    cam2lidar = torch.eye(4).repeat(b, v, 1, 1)
    cam2lidar[..., :3, 3] = torch.randn(b, v, 3, generator=g)
    return cam2img, cam2lidar, torch.eye(4).repeat(b, v, 1, 1)


def _ring_neighbours(b=1, v=6):
    ring = torch.arange(v).repeat(b, 1)
    idx = torch.arange(v)
    adj = torch.stack([(idx - 1) % v, (idx + 1) % v], 1).repeat(b, 1, 1)
    return neighbour_views(ring, adj)


def test_neighbour_views_maps_ring_positions_to_view_indices():
    # views stored in the order F, FR, BR, B, BL, FL; ring order FL, F, FR, BR, B, BL
    ring = torch.tensor([[5, 0, 1, 2, 3, 4]])
    idx = torch.arange(6)
    adj = torch.stack([(idx - 1) % 6, (idx + 1) % 6], 1)[None]
    nb = neighbour_views(ring, adj)[0]
    assert nb[0].tolist() == [5, 1]          # front: front-left and front-right
    assert nb[5].tolist() == [4, 0]          # front-left: back-left and front
    assert nb[3].tolist() == [2, 4]


def test_zero_initialised_additions_leave_a_loaded_single_view_unet_unchanged(tmp_path):
    torch.manual_seed(0)
    base = UNet2DConditionModel(**TINY_UNET)
    with torch.no_grad():                    # a "trained" UNet: no zero layers anywhere
        for p in base.parameters():
            p.add_(0.02 * torch.randn_like(p))
    base.save_pretrained(tmp_path / 'unet')
    mv = MultiViewUNet(pretrained=str(tmp_path / 'unet'), crossview_heads=4,
                       camera_conditioning=True,
                       depth_net_config=dict(mid_channels=16, context_channels=8, num_depth_bins=10,
                                      num_res_blocks=1))
    mv.eval()
    base.eval()
    latents = torch.randn(2, 6, 4, 8, 16)
    text = torch.randn(2, 5, 32)
    cam2img, cam2lidar, aug = _cameras(2)
    res = [torch.zeros(2, 6, c, 8 // s, 16 // s)
           for c, s in zip(mv.residual_channels, mv.residual_strides)]
    with torch.no_grad():
        pred, depth, feats = mv(latents, torch.tensor([10, 500]), text, cam2img, cam2lidar, aug,
                                neighbours=_ring_neighbours(2), residuals=res)
        ref = base(latents.flatten(0, 1), torch.tensor([10, 500]).repeat_interleave(6),
                   text.repeat_interleave(6, 0)).sample
    assert torch.allclose(pred.flatten(0, 1), ref, atol=1e-5)
    assert depth.shape == (2, 6, 10, 8, 16)
    assert [f.shape[2] for f in feats] == mv.residual_channels == [32, 32, 64]
    assert mv.residual_strides == [1, 2, 2]
    # the saved multi-view denoiser rebuilds without the base directory
    mv.save_pretrained(tmp_path / 'mv')
    (tmp_path / 'unet' / 'config.json').unlink()
    again = MultiViewUNet.from_pretrained(tmp_path / 'mv').eval()
    with torch.no_grad():
        pred2 = again(latents, torch.tensor([10, 500]), text, cam2img, cam2lidar, aug,
                      neighbours=_ring_neighbours(2))[0]
    assert torch.allclose(pred2, pred, atol=1e-5)


def test_cross_view_attention_follows_the_formula():
    """Once its output projection is non-zero, a view's update is attention over the tokens
    of exactly its two neighbours (changing a non-neighbour view changes nothing)."""
    torch.manual_seed(0)
    block = CrossViewAttention(16, num_heads=4, norm_groups=8)
    torch.nn.init.normal_(block.attn.to_out[0].weight, std=0.2)
    x = torch.randn(6, 16, 3, 4)
    nb = _ring_neighbours()
    out = block(x, nb)
    tok = block.norm(x).flatten(2).transpose(1, 2)                 # (V, hw, C)
    a = block.attn
    for v in (0, 3):
        ctx = torch.cat([tok[nb[0, v, 0]], tok[nb[0, v, 1]]], 0)
        q, k, val = a.to_q(tok[v]), a.to_k(ctx), a.to_v(ctx)
        # 4 heads of width 4: softmax(q_h k_h^T / sqrt(4)) v_h, heads concatenated
        heads = [torch.softmax(q.view(12, 4, 4)[:, h] @ k.view(24, 4, 4)[:, h].T / 2.0, -1)
                 @ val.view(24, 4, 4)[:, h] for h in range(4)]
        upd = a.to_out[0](torch.stack(heads, 1).flatten(1))
        assert torch.allclose(out[v], x[v] + upd.T.reshape(16, 3, 4), atol=1e-5)
    x2 = x.clone()
    x2[3] = torch.randn(16, 3, 4)                                   # not a neighbour of view 0
    assert torch.allclose(block(x2, nb)[0], out[0], atol=1e-6)
    assert not torch.allclose(block(x2, nb)[2], out[2])            # a neighbour of view 3


def test_residuals_enter_after_conv_in_and_each_down_block():
    torch.manual_seed(0)
    mv = MultiViewUNet(unet_config=TINY_UNET, crossview_heads=None,
                       camera_conditioning=False).eval()
    latents, text = torch.randn(1, 2, 4, 8, 16), torch.randn(1, 5, 32)
    zero = [torch.zeros(1, 2, c, 8 // s, 16 // s)
            for c, s in zip(mv.residual_channels, mv.residual_strides)]
    with torch.no_grad():
        _, _, f0 = mv(latents, 3, text, residuals=zero)
        bump = [z.clone() for z in zero]
        bump[0] += 0.5
        p1, _, f1 = mv(latents, 3, text, residuals=bump)
        p0 = mv(latents, 3, text)[0]
    assert torch.allclose(f1[0], f0[0] + 0.5, atol=1e-6)         # conv_in output + residual
    assert not torch.allclose(p1, p0)
    with pytest.raises(CameraGenConfigError, match='residual 1 has shape'):
        bad = list(zero)
        bad[1] = torch.zeros(1, 2, 7, 4, 8)
        mv(latents, 3, text, residuals=bad)


def test_camera_embedding_changes_the_output_once_trained():
    torch.manual_seed(0)
    mv = MultiViewUNet(unet_config=TINY_UNET, crossview_heads=None).eval()
    latents, text = torch.randn(1, 2, 4, 8, 16), torch.randn(1, 5, 32)
    cam2img, cam2lidar, aug = _cameras(1, 2)
    with torch.no_grad():
        p0 = mv(latents, 3, text, cam2img, cam2lidar, aug)[0]
        p_moved = mv(latents, 3, text, cam2img, cam2lidar + 1.0, aug)[0]
        assert torch.equal(p0, p_moved)                       # zero-initialised: no effect
        torch.nn.init.normal_(mv.unet.class_embedding.linear_2.weight, std=0.1)
        p1 = mv(latents, 3, text, cam2img, cam2lidar, aug)[0]
        p1_moved = mv(latents, 3, text, cam2img, cam2lidar + 1.0, aug)[0]
    assert not torch.allclose(p1, p1_moved)
    vec = camera_embedding_input(cam2img, cam2lidar, aug, (64, 128))
    assert vec.shape == (1, 2, 18)
    assert torch.allclose(vec[0, 0, :6], torch.tensor([100 / 128, 0, 64 / 128, 0, 100 / 64,
                                                       32 / 64]))


def test_latent_channel_mismatch_is_one_clear_error():
    mv = MultiViewUNet(unet_config=TINY_UNET, crossview_heads=None, camera_conditioning=False)
    with pytest.raises(CameraGenConfigError, match="in_channels is 4.*latent_channels"):
        mv(torch.randn(1, 2, 8, 8, 16), 3, torch.randn(1, 5, 32))


def test_layout_adapter_is_zero_at_init_and_matches_the_injection_points():
    mv = MultiViewUNet(unet_config=TINY_UNET, crossview_heads=None, camera_conditioning=False)
    ad = LayoutAdapter(10, mv.residual_channels, mv.residual_strides, downscale=8, channels=16,
                       norm_groups=8)
    layout = (torch.rand(1, 6, 10, 64, 128) > 0.5).to(torch.uint8)
    res = ad(layout)
    assert [tuple(r.shape[2:]) for r in res] == [(32, 8, 16), (32, 4, 8), (64, 4, 8)]
    assert all(float(r.detach().abs().max()) == 0.0 for r in res)
    with pytest.raises(CameraGenConfigError, match='not divisible by 8'):
        ad(torch.zeros(1, 6, 10, 60, 128))
    with pytest.raises(CameraGenConfigError, match='in_channels'):
        ad(torch.zeros(1, 6, 7, 64, 128))


def test_autoencoder_round_trip_shapes_scaling_and_errors(tmp_path):
    torch.manual_seed(0)
    ae = CameraAutoencoder(vae=dict(TINY_VAE, scaling_factor=0.5)).eval()
    imgs = torch.rand(1, 2, 3, 32, 64) * 2 - 1
    z = ae.encode(imgs)
    assert z.shape == (1, 2, 4, 16, 32)
    with torch.no_grad():
        raw = ae.vae.encode(imgs.flatten(0, 1)).latent_dist.mode()
    assert torch.allclose(z.flatten(0, 1), 0.5 * raw, atol=1e-6)
    assert ae.decode(z).shape == imgs.shape
    losses = ae.train()(dict(imgs=imgs), mode='loss')
    assert set(losses) >= {'loss_rec', 'loss_kl', 'psnr'}
    with pytest.raises(CameraGenConfigError, match='not divisible by the latent factor 2'):
        ae.encode(torch.zeros(1, 2, 3, 33, 64))
    with pytest.raises(CameraGenConfigError, match='latent_channels'):
        ae.decode(torch.zeros(1, 2, 3, 16, 32))
    with pytest.raises(CameraGenConfigError, match='model.pretrained.*does not exist'):
        CameraAutoencoder(pretrained=str(tmp_path / 'missing'))
    # a VAE in diffusers' layout loads from a local directory
    AutoencoderKL(**TINY_VAE).save_pretrained(tmp_path / 'vae')
    loaded = CameraAutoencoder(pretrained=str(tmp_path / 'vae'))
    assert loaded.scaling_factor == pytest.approx(0.18215)


def _grads_of_one_step(gradient_checkpointing: bool, autocast: bool = False):
    """Loss and parameter gradients of one step of a tiny UNet with every addition on."""
    torch.manual_seed(0)
    mv = MultiViewUNet(unet_config=TINY_UNET, crossview_heads=2,
                       depth_net_config=dict(mid_channels=16, context_channels=8,
                                             num_depth_bins=10, num_res_blocks=1,
                                             aspp_dilations=(1, 2)),
                       gradient_checkpointing=gradient_checkpointing).train()
    for p in mv.parameters():       # leave the zero initialisation: gradients everywhere
        torch.nn.init.normal_(p, std=0.05) if p.dim() > 1 else None
    g = torch.Generator().manual_seed(1)
    latents, text = torch.randn(1, 6, 4, 8, 16, generator=g), torch.randn(1, 5, 32, generator=g)
    residuals = [torch.randn(1, 6, c, 8 // s, 16 // s, generator=g)
                 for c, s in zip(mv.residual_channels, mv.residual_strides)]
    calls = []
    # a pre-hook: the recomputation stops early, after the last saved tensor it needs
    mv.unet.down_blocks[0].resnets[0].register_forward_pre_hook(lambda *a: calls.append(1))
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        pred, depth, _ = mv(latents, 7, text, *_cameras(1, 6), neighbours=_ring_neighbours(1, 6),
                            residuals=residuals)
        loss = pred.float().square().mean() + depth.float().logsumexp(2).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in mv.named_parameters()
                           if p.grad is not None}, len(calls)


def test_gradient_checkpointing_gives_the_plain_gradients():
    """diffusers' checkpointing of the UNet blocks leaves the cross-view hooks, residual
    injection and depth branch outside the recomputed parts: same loss and gradients."""
    loss0, grads0, calls0 = _grads_of_one_step(False)
    loss1, grads1, calls1 = _grads_of_one_step(True)
    assert (calls0, calls1) == (1, 2)                 # the ResNet ran again in the backward
    assert torch.equal(loss0, loss1)
    assert grads0.keys() == grads1.keys() and any('crossview' in n for n in grads0)
    for name in grads0:
        assert torch.allclose(grads0[name], grads1[name], rtol=1e-4, atol=1e-6), name


def test_bf16_autocast_step_is_finite_and_close_to_fp32():
    """The step the configs' bf16 switch runs (``AmpOptimWrapper`` bfloat16, or on CPU
    holodrive's autocast wrapper): finite, within bf16 precision of the fp32 step."""
    loss32, grads32, _ = _grads_of_one_step(False)
    loss16, grads16, _ = _grads_of_one_step(True, autocast=True)
    assert torch.isfinite(loss16) and abs(loss16 - loss32) < 0.02 * abs(loss32)
    flat32 = torch.cat([g.flatten() for g in grads32.values()])
    flat16 = torch.cat([grads16[n].flatten() for n in grads32])
    assert torch.isfinite(flat16).all()
    assert torch.nn.functional.cosine_similarity(flat32, flat16, dim=0) > 0.99
