"""``MultiViewDrivePipeline``: samples the six camera views of a scene jointly (composition only).

Components (diffusers conventions, so ``save_pretrained`` / ``from_pretrained`` work on the
whole): ``vae`` (``AutoencoderKL``), ``denoiser`` (``MultiViewUNet``), ``layout_adapter``
(``LayoutAdapter`` or None), ``text_encoder`` (``CLIPTextModel`` or None) + ``tokenizer``, and
``scheduler``: any diffusers scheduler (DDIM, DPM-Solver++ multistep, Euler, UniPC ...; swap it
with ``pipe.scheduler = X.from_config(pipe.scheduler.config)``).

Guidance. With ``C`` the kept conditions (``condition_scales[c] == 0`` drops ``c``), the
prediction at each step is::

    e = e(C) + (s - 1) (e(C) - e(none)) + sum_{c in C, s_c != 1} (s_c - 1) (e(C) - e(C - c))

``s`` = ``guidance_scale`` (joint classifier-free guidance; 1: off) and ``s_c`` the
per-condition scales; every term with a scale of 1 costs no evaluation, the others are batched
into one denoiser call. Conditions: ``text``, ``boxes``, ``map``, ``camera`` (the CFG
dropout of :class:`~holodrive.models.camera_gen.MultiViewDiffusion`).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from diffusers import DiffusionPipeline

CONDITIONS = ('text', 'boxes', 'map', 'camera')
# the sampler names of tools/generate.py, tools/test.py configs and the benchmark
SCHEDULERS = {'ddim': 'DDIMScheduler', 'dpm': 'DPMSolverMultistepScheduler',
              'euler': 'EulerDiscreteScheduler', 'unipc': 'UniPCMultistepScheduler'}


def make_scheduler(name: str, train_config):
    """The diffusers scheduler ``name`` (``SCHEDULERS``) on a training noise schedule
    (a scheduler ``config``); DPM-Solver++ multistep is diffusers' default ``dpmsolver++``."""
    import diffusers
    if name not in SCHEDULERS:
        raise ValueError(f'scheduler {name!r}: use one of {sorted(SCHEDULERS)}')
    return getattr(diffusers, SCHEDULERS[name]).from_config(train_config)


class MultiViewDrivePipeline(DiffusionPipeline):
    """Multi-view layout/camera/text-to-image sampling (module docstring)."""

    _optional_components = ['layout_adapter', 'text_encoder', 'tokenizer']

    def __init__(self, vae, denoiser, scheduler, layout_adapter=None, text_encoder=None,
                 tokenizer=None, scaling_factor: Optional[float] = None,
                 shift_factor: float = 0.0, num_map_channels: int = 0, caption_max_length: int = 77):
        super().__init__()
        self.register_modules(vae=vae, denoiser=denoiser, scheduler=scheduler,
                              layout_adapter=layout_adapter, text_encoder=text_encoder,
                              tokenizer=tokenizer)
        self.register_to_config(
            scaling_factor=float(scaling_factor if scaling_factor is not None
                                 else vae.config.scaling_factor),
            shift_factor=float(shift_factor),
            num_map_channels=int(num_map_channels), caption_max_length=int(caption_max_length))

    @classmethod
    def from_model(cls, model, scheduler=None) -> 'MultiViewDrivePipeline':
        """The pipeline of a trained ``MultiViewDiffusion`` (its modules, not copies); the
        scheduler defaults to DDIM with the training noise schedule."""
        from diffusers import DDIMScheduler
        text = model.text_encoder
        if text is not None and text.tokenizer.model_max_length != text.max_length:
            text.tokenizer.model_max_length = text.max_length
        return cls(vae=model.vae.vae, denoiser=model.denoiser,
                   scheduler=scheduler or DDIMScheduler.from_config(model.scheduler.config),
                   layout_adapter=model.layout_adapter,
                   text_encoder=None if text is None else text.text_model,
                   tokenizer=None if text is None else text.tokenizer,
                   scaling_factor=model.vae.scaling_factor,
                   shift_factor=model.vae.shift_factor,
                   num_map_channels=model.num_map_channels,
                   caption_max_length=text.max_length if text is not None else 77)

    # ------------------------------------------------------------------ conditions
    def _text(self, captions: Optional[Sequence[str]], b: int) -> torch.Tensor:
        from holodrive.models.camera_gen.text_encoder import encode_captions
        if self.text_encoder is None:
            return torch.zeros(b, 1, self.denoiser.unet.config.cross_attention_dim,
                               device=self.device)
        texts = list(captions) if captions is not None else [''] * b
        return encode_captions(self.tokenizer, self.text_encoder, texts + [''] * b,
                               self.config.caption_max_length)          # (2B, L, D)

    def _residuals(self, layout: Optional[torch.Tensor], keep_boxes: torch.Tensor,
                   keep_map: torch.Tensor) -> Optional[List[torch.Tensor]]:
        if self.layout_adapter is None or layout is None:
            return None
        m = self.config.num_map_channels
        mask = torch.ones_like(layout[:, 0, :, :1, :1]).float()
        mask[:, :m] *= keep_map.float()[:, None, None, None]
        mask[:, m:] *= keep_boxes.float()[:, None, None, None]
        return self.layout_adapter(layout.float() * mask[:, None])

    @staticmethod
    def _variants(scales: Dict[str, float], guidance_scale: float) -> List[Dict[str, bool]]:
        kept = {c: scales.get(c, 1.0) != 0 for c in CONDITIONS}
        variants = [dict(kept)]                                     # e(C)
        if guidance_scale != 1:
            variants.append({c: False for c in CONDITIONS})         # e(none)
        for c in CONDITIONS:
            if kept[c] and scales.get(c, 1.0) != 1:
                variants.append(dict(kept, **{c: False}))           # e(C - c)
        return variants

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(self, cam2img: torch.Tensor, cam2lidar: torch.Tensor,
                 img_aug_matrix: Optional[torch.Tensor] = None,
                 layout_images: Optional[torch.Tensor] = None,
                 captions: Optional[Sequence[str]] = None,
                 neighbours: Optional[torch.Tensor] = None,
                 image_size: Optional[Sequence[int]] = None, num_inference_steps: int = 25,
                 guidance_scale: float = 1.0, condition_scales: Optional[Dict[str, float]] = None,
                 generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
                 latents: Optional[torch.Tensor] = None, output_type: str = 'pt',
                 progress: bool = False) -> dict:
        """Sample ``B`` scenes of ``V`` views.

        Args:
            cam2img, cam2lidar, img_aug_matrix: ``(B, V, 4, 4)`` camera geometry.
            layout_images: ``(B, V, C_map + G, H, W)`` (``ProjectLayoutToCameras``) or None.
            captions: ``B`` strings or None.
            neighbours: ``(B, V, 2)`` ring neighbours (``neighbour_views``) or None.
            image_size: ``(H, W)``; default the layout images' size.
            guidance_scale, condition_scales: see the module docstring.
            generator: seeds the initial noise (and stochastic schedulers).

        Returns:
            dict ``images`` ``(B, V, 3, H, W)`` in [0, 1] (``output_type='pt'``),
            ``depth_logits`` ``(B, V, D, h, w)`` or None, ``latents`` ``(B, V, C, h, w)``.
        """
        from diffusers.utils.torch_utils import randn_tensor
        scales = dict(condition_scales or {})
        unknown = set(scales) - set(CONDITIONS)
        if unknown:
            raise ValueError(f'condition_scales: unknown condition(s) {sorted(unknown)}; use '
                             f'{list(CONDITIONS)}')
        b, v = cam2img.shape[:2]
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        if image_size is None:
            if layout_images is None:
                raise ValueError('give image_size=(H, W) or layout_images')
            image_size = layout_images.shape[-2:]
        h, w = int(image_size[0]) // factor, int(image_size[1]) // factor
        shape = (b, v, self.denoiser.in_channels, h, w)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=self.device,
                                   dtype=self.denoiser.dtype)
        latents = latents * self.scheduler.init_noise_sigma
        variants = self._variants(scales, guidance_scale)
        n = len(variants)
        text_cond, text_null = self._text(captions, b).chunk(2) \
            if self.text_encoder is not None else (self._text(None, b),) * 2
        text = torch.cat([text_cond if var['text'] else text_null for var in variants])

        def keep(c):
            return torch.cat([torch.full((b,), var[c], dtype=torch.bool, device=self.device)
                              for var in variants])

        def rep(x):
            return None if x is None else x.repeat(n, *([1] * (x.dim() - 1)))
        residuals = self._residuals(rep(layout_images), keep('boxes'), keep('map'))
        kw = dict(cam2img=rep(cam2img), cam2lidar=rep(cam2lidar),
                  img_aug_matrix=rep(img_aug_matrix), neighbours=rep(neighbours),
                  residuals=residuals, camera_keep=keep('camera'))
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        import inspect
        step_kw = dict(generator=generator) if 'generator' in inspect.signature(
            self.scheduler.step).parameters else {}          # stochastic schedulers only
        depth = None
        for t in self.progress_bar(self.scheduler.timesteps) if progress else \
                self.scheduler.timesteps:
            x_in = self.scheduler.scale_model_input(rep(latents), t)
            pred, depth_all, _ = self.denoiser(x_in, t, text, **kw)
            preds = pred.chunk(n)
            eps = preds[0].clone()
            k = 1
            if guidance_scale != 1:
                eps += (guidance_scale - 1) * (preds[0] - preds[1])
                k = 2
            for c in CONDITIONS:
                if variants[0][c] and scales.get(c, 1.0) != 1:
                    eps += (scales[c] - 1) * (preds[0] - preds[k])
                    k += 1
            depth = None if depth_all is None else depth_all.chunk(n)[0]
            latents = self.scheduler.step(eps.flatten(0, 1), t, latents.flatten(0, 1),
                                          **step_kw).prev_sample.unflatten(0, (b, v))
        z = latents.flatten(0, 1) / self.config.scaling_factor + self.config.shift_factor
        images = self.vae.decode(z).sample
        images = ((images.unflatten(0, (b, v)) + 1) / 2).clamp(0, 1)
        if output_type == 'np':
            images = images.permute(0, 1, 3, 4, 2).cpu().numpy()
        return dict(images=images, depth_logits=depth, latents=latents)
