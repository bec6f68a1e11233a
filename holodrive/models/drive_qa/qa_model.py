"""``DriveQAModel``: the mmengine model around :class:`MonoDriveForCausalLM` (train / test
through ``tools/train.py`` and ``tools/test.py``), and its data preprocessor.

Batches come from :class:`~holodrive.datasets.qa_dataset.DriveQADataset` (six camera images
and/or feature maps such as ``bev_objects`` + a question record in ``metainfo['qa']``) or from
``DriveQATextDataset`` (``{'text': line}``: language modelling on the whole line). ``loss``
scores the answer tokens (teacher forcing); ``predict`` answers greedily and sets
``pred_answer`` on each data sample.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor, BaseModel

from holodrive.datasets.constants import CAMERA_NAMES
from holodrive.engine.config_check import ConfigError
from holodrive.registry import MODELS
from .configuration import MonoDriveConfig
from .lora import LORA_PARAMS, add_lora, map_plain_keys, merged_copy
from .modeling import MonoDriveForCausalLM
from .processing import DriveQAProcessor, load_drive_tokenizer
from .training import set_trainable, stage_patterns

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


@MODELS.register_module()
class DriveQADataPreprocessor(BaseDataPreprocessor):
    """uint8 BGR views ``[(V, 3, H, W)] * B`` -> RGB, ImageNet-normalised ``imgs (B, V, 3, H, W)``;
    every other packed input (a feature map ``[(C, H, W)] * B``) is stacked as float32."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN_RGB,
                 std: Sequence[float] = IMAGENET_STD_RGB, bgr_to_rgb: bool = True):
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 1, 3, 1, 1), persistent=False)
        self.bgr_to_rgb = bgr_to_rgb

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = dict(data.get('inputs') or {})
        samples = data.get('data_samples')
        out = {}
        if inputs.get('img') is not None:
            imgs = torch.stack(list(inputs['img'])).to(self.mean.device).float()
            if self.bgr_to_rgb:
                imgs = imgs.flip(-3)
            out['imgs'] = (imgs - self.mean) / self.std
        for key, value in inputs.items():
            if key != 'img' and value is not None:
                value = value if torch.is_tensor(value) else torch.stack(list(value))
                out[key] = value.to(self.mean.device).float()
        return dict(inputs=out, data_samples=samples)


def _qa(sample) -> dict:
    meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
    if 'qa' not in meta:
        raise KeyError("a data sample without 'qa' metainfo: pack it with "
                       "PackSceneInputs(meta_keys=(..., 'qa')) (see configs/drive_qa/)")
    return meta['qa']


@MODELS.register_module()
class DriveQAModel(BaseModel):
    """The driving-QA head for mmengine (module docstring).

    Args:
        tokenizer: a local tokenizer directory with the driving-QA tokens; None: the one saved
            in ``pretrained``.
        llm: ``MonoDriveConfig`` keyword arguments for a model built from scratch
            (``vocab_size``, ``pad_token_id``, ``eos_token_id`` and ``image_token_id`` default
            to the tokenizer's).
        pretrained: a local ``save_pretrained`` directory of ``MonoDriveForCausalLM`` (e.g. the
            SmolLM2 head written by ``tools/convert/smollm2_gguf.py``); exclusive with ``llm``.
        pretrained_overrides: ``MonoDriveConfig`` fields changed on the ``pretrained`` model,
            e.g. ``dict(adapter_in_channels=dict(bev=25))`` to give it an adapter for a new
            feature source (modules the checkpoint lacks start from their fresh init).
        system: a system message of every prompt (e.g. asking for one-word answers); None:
            the chat template's default.
        image_size: ``(W, H)`` of every camera image, multiples of 28.
        use_images: False: no camera images (with no ``features`` either: the same LLM
            without visual input, the no-vision baseline).
        features: ``{source: dict(key=INPUT_KEY, shape=(H, W))}``: feature maps of the batch
            (``inputs[INPUT_KEY] (B, C, H, W)``, e.g. ``bev_objects`` of
            ``RasterizeSceneObjectsBEV``) turned into visual tokens by the LLM's adapter of that
            source (``llm.adapter_in_channels[source] = C``, ``llm.adapter_fold``); their
            tokens follow the camera views' in the prompt, under the source's tag (``<BEV>``).
        stage: ``'language' | 'visual' | 'alignment' | 'instruction' | 'instruction_lora'``
            (which parameters learn, :mod:`holodrive.models.drive_qa.training`), or
            ``trainable``: name patterns.
        lora: ``peft.LoraConfig`` arguments (:mod:`holodrive.models.drive_qa.lora`): the
            decoder is wrapped by peft; needs ``stage='instruction_lora'`` or ``trainable``. A
            checkpoint written without LoRA (``load_from`` the visual stage) fills the base
            weights (:meth:`rename_checkpoint_keys`); ``save_pretrained`` writes the merged
            model plus the adapter.
        max_new_tokens: answer length limit of ``predict``.
        gradient_checkpointing: recompute the decoder layers in backward.
    """

    def __init__(self, tokenizer: Optional[str] = None, llm: Optional[dict] = None,
                 pretrained: Optional[str] = None, pretrained_overrides: Optional[dict] = None,
                 system: Optional[str] = None, image_size: Sequence[int] = (224, 112),
                 cameras: Sequence[str] = CAMERA_NAMES, use_images: bool = True,
                 features: Optional[Dict[str, dict]] = None,
                 stage: str = 'instruction', trainable: Optional[Sequence[str]] = None,
                 lora: Optional[dict] = None, max_new_tokens: int = 24,
                 gradient_checkpointing: bool = False,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or
                         dict(type=DriveQADataPreprocessor), init_cfg=init_cfg)
        if (llm is None) == (pretrained is None):
            raise ConfigError('DriveQAModel: give exactly one of model.llm (a config to build '
                              'from scratch) and model.pretrained (a local directory)')
        if pretrained is not None and not osp.isdir(pretrained):
            raise ConfigError(f'model.pretrained={pretrained}: directory not found (for the '
                              'SmolLM2 head: bash tools/install.sh --with-smollm2)')
        if pretrained_overrides and pretrained is None:
            raise ConfigError('model.pretrained_overrides needs model.pretrained (for a model '
                              'built from scratch put the fields in model.llm)')
        self.tokenizer = load_drive_tokenizer(tokenizer or pretrained)
        if pretrained is not None:
            self.llm = self._load_pretrained(pretrained, pretrained_overrides or {})
        else:
            cfg = dict(llm)
            tok = self.tokenizer
            cfg.setdefault('vocab_size', len(tok))
            cfg.setdefault('pad_token_id', tok.pad_token_id)
            cfg.setdefault('eos_token_id', tok.convert_tokens_to_ids('<|im_end|>'))
            cfg.setdefault('bos_token_id', None)
            cfg.setdefault('image_token_id', tok.convert_tokens_to_ids('<IMG_CONTEXT>'))
            self.llm = MonoDriveForCausalLM(MonoDriveConfig(**cfg))
        config = self.llm.config
        if config.vocab_size < len(self.tokenizer):
            raise ConfigError(f'the tokenizer has {len(self.tokenizer)} tokens but the model\'s '
                              f'vocabulary {config.vocab_size}: use the tokenizer saved with the '
                              'model (or resize the model)')
        side = config.pixels_per_visual_token
        width, height = image_size
        if width % side or height % side:
            raise ConfigError(f'model.image_size={tuple(image_size)}: W and H must be multiples '
                              f'of {side} (patch {config.vision_patch_size} / pixel shuffle '
                              f'{config.downsample_ratio})')
        self.image_size = (int(width), int(height))
        self.use_images = use_images
        self.features = self._check_features(features or {})
        self.processor = DriveQAProcessor(
            self.tokenizer, tokens_per_view=(width // side) * (height // side) if use_images
            else 0, cameras=cameras,
            sources={name: spec['tokens'] for name, spec in self.features.items()},
            system=system)
        self.visual = use_images or bool(self.features)
        self.max_new_tokens = max_new_tokens
        self.stage = stage
        if (lora is not None) != (stage == 'instruction_lora') and not trainable:
            raise ConfigError(f'model.stage={stage!r} with model.lora={lora}: LoRA goes with '
                              "stage='instruction_lora' (or explicit model.trainable patterns)")
        if lora is not None:
            self.llm = add_lora(self.llm, lora)
            self._register_load_state_dict_pre_hook(self._rename_plain_llm_keys)
        patterns = trainable or stage_patterns(stage, config.visual_attention_experts)
        self.trainable_names = set_trainable(self.llm, patterns)
        if gradient_checkpointing:
            self.llm.gradient_checkpointing_enable()

    @staticmethod
    def _load_pretrained(path: str, overrides: dict) -> MonoDriveForCausalLM:
        """``MonoDriveForCausalLM.from_pretrained(path)`` with ``overrides`` set on its config;
        an unknown field is one ConfigError line."""
        config = MonoDriveConfig.from_pretrained(path)
        fields = config.to_dict()
        for key, value in overrides.items():
            if key not in fields:
                raise ConfigError(f'model.pretrained_overrides.{key}: not a MonoDriveConfig '
                                  f'field of {path}')
            setattr(config, key, value)
        return MonoDriveForCausalLM.from_pretrained(path, config=config)

    def _check_features(self, features: Dict[str, dict]) -> Dict[str, dict]:
        """``model.features`` checked against the LLM's adapters; adds ``channels``, ``tokens``."""
        config, out = self.llm.config, {}
        adapters = config.adapter_in_channels or {}
        for name, spec in features.items():
            if name not in adapters:
                raise ConfigError(f'model.features.{name}: the LLM has no adapter for this '
                                  f'source (model.llm.adapter_in_channels={adapters})')
            if set(spec) != {'key', 'shape'} or len(spec['shape']) != 2:
                raise ConfigError(f'model.features.{name}={spec}: give dict(key=INPUT_KEY, '
                                  'shape=(H, W))')
            height, width = (int(v) for v in spec['shape'])
            fold = config.adapter_fold
            if height % fold or width % fold:
                raise ConfigError(f'model.features.{name}.shape={(height, width)} is not '
                                  f'divisible by model.llm.adapter_fold={fold}')
            out[name] = dict(key=spec['key'], shape=(height, width), channels=adapters[name],
                             tokens=(height // fold) * (width // fold))
        return out

    def _rename_plain_llm_keys(self, state_dict, prefix, *args):
        """load_state_dict pre-hook (LoRA only): :meth:`rename_checkpoint_keys` under prefix."""
        self.rename_checkpoint_keys(state_dict, prefix)

    def rename_checkpoint_keys(self, state_dict: dict, prefix: str = '') -> int:
        """In place: a checkpoint of the unwrapped LLM gets the LoRA-wrapped names, so that it
        fills the base weights (:func:`.lora.map_plain_keys`), and, holding no LoRA matrices,
        gets this model's fresh ones (``B = 0``: the loaded model computes what the
        checkpoint's did). Nothing to do without LoRA. Returns how many keys were renamed."""
        if not hasattr(self.llm, 'peft_config'):
            return 0
        own = {prefix + k: v for k, v in self.state_dict().items()}
        renamed = map_plain_keys(state_dict, own, prefix + 'llm.')
        if renamed and not any(p in k for k in state_dict for p in LORA_PARAMS):
            state_dict.update({k: v.detach().clone() for k, v in own.items()
                               if any(p in k for p in LORA_PARAMS)})
        return renamed

    def init_weights(self):
        """The HF model initialised (or loaded) itself at construction: nothing to redo."""

    # ---------------------------------------------------------------- batches
    def _pixel_values(self, inputs: dict, num: int):
        if not self.use_images:
            return None
        imgs = inputs.get('imgs')
        if imgs is None:
            raise ValueError('DriveQAModel(use_images=True) got a batch without camera images: '
                             'add LoadMultiViewImagesChecked + MultiViewImageAug to the pipeline')
        if tuple(imgs.shape[-2:]) != self.image_size[::-1]:
            raise ValueError(f'camera images of {tuple(imgs.shape[-2:])} (H, W), the model '
                             f'expects {self.image_size[::-1]}: set MultiViewImageAug.final_size '
                             '= model.image_size')
        return imgs[:num]

    def _visual_features(self, inputs: dict, num: int) -> Optional[Dict[str, torch.Tensor]]:
        """``{source: (B, C, H, W)}`` of ``model.features`` from the batch, checked."""
        if not self.features:
            return None
        out = {}
        for name, spec in self.features.items():
            value = inputs.get(spec['key'])
            if value is None:
                raise ValueError(f"DriveQAModel: no {spec['key']!r} in the batch (model.features."
                                 f"{name}): add the transform that makes it and pack it with "
                                 f"PackSceneInputs(keys=[..., {spec['key']!r}])")
            expected = (spec['channels'],) + spec['shape']
            if value.dim() != 4 or tuple(value.shape[1:]) != expected:
                raise ValueError(f"inputs[{spec['key']!r}] of shape {tuple(value.shape)}, the "
                                 f'model expects (B, {", ".join(map(str, expected))}) '
                                 f'(model.features.{name} / llm.adapter_in_channels)')
            out[name] = value[:num].to(self.llm.device)
        return out

    def _visual_inputs(self, inputs: Optional[dict], num: int) -> dict:
        inputs = inputs or {}
        return dict(pixel_values=self._pixel_values(inputs, num),
                    visual_features=self._visual_features(inputs, num))

    def _text_batch(self, texts: List[str]) -> Dict[str, torch.Tensor]:
        tok = self.tokenizer
        rows = [tok(t, add_special_tokens=False)['input_ids'] + [self.processor.end_id]
                for t in texts]
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return dict(input_ids=ids, attention_mask=mask, labels=labels)

    def _device(self, batch: dict) -> dict:
        device = self.llm.device
        return {k: v.to(device) for k, v in batch.items()}

    # ---------------------------------------------------------------- mmengine API
    def forward(self, inputs: dict, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'DriveQAModel: mode {mode!r} is not supported (loss / predict)')

    def loss(self, inputs: dict, data_samples) -> dict:
        if isinstance(data_samples, dict) and 'text' in data_samples:   # collated text items
            batch = self._text_batch(list(data_samples['text']))
            out = self.llm(**self._device(batch))
            return dict(loss=out.loss)
        qas = [_qa(s) for s in data_samples]
        batch = self.processor.collate([q['question'] for q in qas], [q['answer'] for q in qas],
                                       visual=self.visual)
        return dict(loss=self.llm.answer_loss(**self._device(batch),
                                              **self._visual_inputs(inputs, len(qas))))

    @torch.no_grad()
    def answer(self, questions: List[str], pixel_values: Optional[torch.Tensor] = None,
               max_new_tokens: Optional[int] = None, inputs: Optional[dict] = None) -> List[str]:
        """Greedy answers to ``questions``, one per sample of ``pixel_values (B, V, 3, H, W)``
        or of the preprocessed ``inputs`` (``imgs`` and the ``model.features`` maps)."""
        batch = self._device(self.processor.collate(questions, visual=self.visual))
        visual = self._visual_inputs(inputs, len(questions)) if inputs is not None else dict(
            pixel_values=pixel_values if self.use_images else None)
        generated = self.llm.generate(
            **batch, **visual,
            max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
            eos_token_id=self.processor.end_id, pad_token_id=self.tokenizer.pad_token_id)
        return self.processor.decode_answers(generated, batch['input_ids'].shape[1])

    def predict(self, inputs: dict, data_samples) -> list:
        qas = [_qa(s) for s in data_samples]
        answers = self.answer([q['question'] for q in qas], inputs=inputs)
        for sample, answer in zip(data_samples, answers):
            sample.set_field(answer, 'pred_answer', field_type='metainfo')
        return data_samples

    def save_pretrained(self, out_dir: str) -> None:
        """The HF model + tokenizer (``AutoModelForCausalLM.from_pretrained(out_dir)``); with
        LoRA the merged model, and the adapter alone in ``out_dir/lora_adapter`` (peft format:
        ``PeftModel.from_pretrained(base, out_dir/lora_adapter)``)."""
        if hasattr(self.llm, 'peft_config'):
            merged_copy(self.llm).save_pretrained(out_dir)
            self.llm.save_pretrained(osp.join(out_dir, 'lora_adapter'))
        else:
            self.llm.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
