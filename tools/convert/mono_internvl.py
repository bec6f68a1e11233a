"""Convert an official Mono-InternVL checkpoint directory to our driving-QA head.

    python tools/convert/mono_internvl.py SRC_DIR OUT_DIR --tokenizer TOKENIZER_DIR

SRC_DIR: a local copy of the HF repo (``config.json`` + ``*.safetensors``, e.g.
OpenGVLab/Mono-InternVL-2B). TOKENIZER_DIR: a tokenizer ``AutoTokenizer`` loads without remote
code (the InternLM2 tokenizer converted to a fast tokenizer); it is extended with the
driving-QA tokens and the embeddings resized. Keys are mapped by
:mod:`holodrive.models.drive_qa.convert`; every unmatched official key and every key of ours
left without a value is printed, and nothing is written unless both lists are empty (the
exit status is 1 otherwise). OUT_DIR loads with ``AutoModelForCausalLM.from_pretrained``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from holodrive.engine.cli import UserFileNotFoundError, run_cli  # noqa: E402


def main(argv=None):
    from safetensors.torch import load_file

    from holodrive.models.drive_qa import (MonoDriveConfig, MonoDriveForCausalLM,
                                           add_drive_tokens)
    from holodrive.models.drive_qa.convert import config_from_official, convert_mono_internvl
    from holodrive.models.drive_qa.pretrained import save_pretrained_atomic
    from holodrive.models.drive_qa.processing import IMG_CONTEXT
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('src')
    parser.add_argument('out')
    parser.add_argument('--tokenizer', required=True)
    args = parser.parse_args(argv)
    cfg_path = osp.join(args.src, 'config.json')
    files = sorted(glob.glob(osp.join(args.src, '*.safetensors')))
    if not osp.isfile(cfg_path) or not files:
        raise UserFileNotFoundError(f'{args.src}: needs config.json and *.safetensors (a local '
                                    'copy of the Mono-InternVL HF repository)')
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    add_drive_tokens(tokenizer)
    with open(cfg_path) as f:
        kwargs = config_from_official(json.load(f))
    state = {}
    for path in files:
        state.update(load_file(path))
    head_dim = kwargs['hidden_size'] // kwargs['num_attention_heads']
    converted, unmatched = convert_mono_internvl(state, kwargs['num_attention_heads'],
                                                 kwargs['num_key_value_heads'], head_dim)
    config = MonoDriveConfig(**kwargs, image_token_id=0,
                             pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.convert_tokens_to_ids('<|im_end|>'))
    model = MonoDriveForCausalLM(config)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [k for k in missing if not k.startswith('adapters.') and
               not (config.tie_word_embeddings and k == 'lm_head.weight')]
    for key in unmatched + list(unexpected):
        print(f'unmatched official key: {key}')
    for key in missing:
        print(f'missing in the checkpoint: {key}')
    if unmatched or unexpected or missing:
        print(f'{len(unmatched) + len(unexpected)} unmatched, {len(missing)} missing: '
              'nothing written')
        raise SystemExit(1)
    if len(tokenizer) > config.vocab_size:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.image_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    save_pretrained_atomic(model, tokenizer, args.out)
    total = sum(p.numel() for p in model.parameters()) / 1e6
    print(f'wrote {args.out}: {len(converted)} tensors, {total:.1f}M parameters')


if __name__ == '__main__':
    run_cli(main)
