"""Driving-QA scores (registered ``DriveQAMetric``; protocol in ``docs/drive_qa.md``).

- **Exact match** (NuScenes-QA): the answer and the prediction are lower-cased, stripped of
  surrounding white space and a final period, then compared as strings; accuracy overall, per
  ``template_type`` and per ``num_hop`` (closed questions), and per ``qa_type`` (all).
- **c-tag match** (DriveLM): c-tags ``<cN,CAM,x,y>`` are parsed from answer and prediction; a
  predicted tag matches a ground-truth tag of the same camera when the L1 pixel distance is
  below 16 (one-to-one, greedy by distance); micro precision / recall / F1 over the questions
  whose reference answer has c-tags.
- **Language** (open questions, DriveLM's ``tag 2``): BLEU-1..4, ROUGE-L and CIDEr of
  ``pycocoevalcap`` (its pure-Python scorers) on lower-cased, punctuation-split words (the
  Java PTB tokenizer of the COCO toolkit is not used).
- The GPT score needs the OpenAI API and is reported as not available.
"""
import json
import os
import os.path as osp
import re
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from holodrive.registry import METRICS

CTAG = re.compile(r'<c(\d+),\s*(CAM_[A-Z_]+),\s*(-?[\d.]+),\s*(-?[\d.]+)>')
CTAG_MATCH_PX = 16.0
WORD = re.compile(r"<c\d+,[^>]*>|[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def normalize_answer(text: str) -> str:
    """Exact-match normal form: lower case, outer white space and a final period removed."""
    text = str(text).strip().lower()
    return text[:-1].rstrip() if text.endswith('.') else text


def parse_ctags(text: str) -> List[tuple]:
    """``[(camera, x, y)]`` of the c-tags in ``text``."""
    return [(m.group(2), float(m.group(3)), float(m.group(4))) for m in CTAG.finditer(text)]


def match_ctags(pred: Sequence[tuple], ref: Sequence[tuple],
                threshold: float = CTAG_MATCH_PX) -> int:
    """Number of one-to-one matches (same camera, L1 distance < ``threshold`` px)."""
    pairs = sorted((abs(p[1] - r[1]) + abs(p[2] - r[2]), i, j)
                   for i, p in enumerate(pred) for j, r in enumerate(ref) if p[0] == r[0])
    used_p, used_r, hits = set(), set(), 0
    for dist, i, j in pairs:
        if dist < threshold and i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            hits += 1
    return hits


def language_scores(preds: List[str], refs: List[str]) -> Dict[str, float]:
    """BLEU-1..4, ROUGE-L, CIDEr (pycocoevalcap) of predictions against one reference each."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    def words(text):
        return ' '.join(WORD.findall(str(text).lower())) or '<empty>'
    res = {i: [words(p)] for i, p in enumerate(preds)}
    gts = {i: [words(r)] for i, r in enumerate(refs)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    out = {f'BLEU-{n + 1}': float(b) for n, b in enumerate(bleu)}
    out.update({'ROUGE-L': float(rouge), 'CIDEr': float(cider)})
    return out


def score_answers(rows: List[dict]) -> Dict[str, float]:
    """All scores of the module docstring for ``rows`` of ``{qa, pred_answer}``."""
    metrics: Dict[str, float] = {}
    groups = defaultdict(list)
    open_preds, open_refs = [], []
    tag_tp = tag_pred = tag_ref = 0
    for row in rows:
        qa, pred = row['qa'], row['pred_answer']
        hit = float(normalize_answer(pred) == normalize_answer(qa['answer']))
        groups['accuracy'].append(hit)
        groups[f"accuracy/{qa['qa_type']}"].append(hit)
        if qa['qa_type'] == 'closed':
            groups['closed/overall'].append(hit)
            groups[f"closed/{qa.get('template_type')}"].append(hit)
            groups[f"closed/hop{qa.get('num_hop', 0)}"].append(hit)
        else:
            open_preds.append(pred)
            open_refs.append(qa['answer'])
        ref_tags = parse_ctags(qa['answer'])
        if ref_tags:
            pred_tags = parse_ctags(pred)
            tag_tp += match_ctags(pred_tags, ref_tags)
            tag_pred += len(pred_tags)
            tag_ref += len(ref_tags)
    for key, hits in sorted(groups.items()):
        metrics[key] = sum(hits) / len(hits)
        metrics[key + '/num'] = float(len(hits))
    if tag_ref:
        precision = tag_tp / tag_pred if tag_pred else 0.0
        recall = tag_tp / tag_ref
        metrics.update({'ctag/precision': precision, 'ctag/recall': recall,
                        'ctag/F1': 2 * precision * recall / (precision + recall)
                        if precision + recall else 0.0})
    if open_preds:
        metrics.update({f'lang/{k}': v for k, v in language_scores(open_preds,
                                                                    open_refs).items()})
    return metrics


@METRICS.register_module()
class DriveQAMetric(BaseMetric):
    """Exact match per type / hop, c-tag F1 and language scores (module docstring).

    Args:
        answers_file: also write every prediction (question id, sample token, question,
            answer, prediction) as JSON here.
    """

    default_prefix = 'drive_qa'

    def __init__(self, answers_file: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.answers_file = answers_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            meta = sample.get('metainfo', sample)
            self.results.append(dict(qa=meta['qa'], pred_answer=meta['pred_answer']))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = score_answers(results)
        logger = MMLogger.get_current_instance()
        lines = [f'{k}: {v:.4f}' if not k.endswith('/num') else f'{k}: {int(v)}'
                 for k, v in metrics.items()]
        logger.info('driving QA (exact match after lower-casing; c-tags matched within '
                    f'{CTAG_MATCH_PX:g} px; GPT score: not available offline)\n  '
                    + '\n  '.join(lines))
        if self.answers_file:
            os.makedirs(osp.dirname(osp.abspath(self.answers_file)), exist_ok=True)
            tmp = self.answers_file + '.tmp'
            with open(tmp, 'w') as f:
                json.dump([dict(question_id=r['qa'].get('question_id'),
                                sample_token=r['qa'].get('sample_token'),
                                question=r['qa']['question'], answer=r['qa']['answer'],
                                pred_answer=r['pred_answer']) for r in results], f, indent=1)
            os.replace(tmp, self.answers_file)
        return metrics
