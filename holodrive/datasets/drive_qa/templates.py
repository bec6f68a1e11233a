"""NuScenes-QA-style closed questions about the visible objects of one keyframe.

Five template types (``template_type``), each with several phrasings, every answer in the
closed set :data:`CLOSED_ANSWERS`:

- ``exist``: "Are there any moving cars in front of the ego car?" -> yes / no
- ``count``: "How many pedestrians are there to the left of the ego car?" -> '0' .. '10'
  (counts above 10 are answered '10')
- ``object``: "What is the closest object behind the ego car?" / "What are the parked
  objects near a bus?" -> a class name (only asked when every matching object has that class,
  or the closest one is at least :data:`NEAREST_MARGIN` m closer than the closest of another
  class)
- ``status``: "What is the status of the bicycle on the right side of the ego car?" -> a
  status (only asked when all matching objects share it)
- ``comparison``: "Are there more cars than trucks?", "Are there the same number of buses and
  trailers behind the ego car?" (the relation applies to both groups), "Do the car in front
  of the ego car and the pedestrians near a bus have the same status?" -> yes / no

``num_hop`` is the number of relation clauses: 0 (the whole visible scene) or 1 (a relation:
a sector of the ego car, "in front of" |bearing| <= 45 deg, "to the left of" 45..135 deg,
"behind" >= 135 deg, "to the right of", or "near a <class>": within :data:`NEAR_RADIUS` m,
BEV centre to centre, of another visible object of that class). "closest" is not a hop.

Only the objects of :func:`~holodrive.datasets.drive_qa.scene.scene_objects` exist for the
questions (visible in a camera, within ``RADIUS`` m). Sampling is balanced and deterministic:
for each template type the candidate questions of the frame are grouped by ``num_hop`` and
then by answer; each pick draws a hop, then an answer, then a question uniformly, with
``random.Random(f'{sample_token}/{template_type}')``, without repeating a question.
"""
import random
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from ..constants import DETECTION_CLASSES
from .scene import CLASS_STATUSES, SECTORS, SceneObject

TEMPLATE_TYPES = ('exist', 'count', 'object', 'status', 'comparison')
MAX_COUNT = 10
#: "near a <class>": BEV centre distance (metres).
NEAR_RADIUS = 5.0
#: "the closest object": the runner-up of another class must be this much farther (metres).
NEAREST_MARGIN = 2.0
STATUS_ANSWERS = ('moving', 'parked', 'stopped', 'standing', 'sitting', 'with rider',
                  'without rider')


def class_answer(name: str) -> str:
    """The answer word of a class name: ``'traffic_cone'`` -> ``'traffic cone'``."""
    return name.replace('_', ' ')


#: The closed answer set (30 answers, like NuScenes-QA's): yes/no, counts, classes, statuses.
CLOSED_ANSWERS = (('yes', 'no') + tuple(str(i) for i in range(MAX_COUNT + 1))
                  + tuple(class_answer(c) for c in DETECTION_CLASSES) + STATUS_ANSWERS)

RELATION_PHRASES = {
    'front': ('in front of the ego car', 'ahead of the ego car'),
    'back': ('behind the ego car', 'to the back of the ego car'),
    'left': ('to the left of the ego car', 'on the left side of the ego car'),
    'right': ('to the right of the ego car', 'on the right side of the ego car'),
    'near': ('near {a} {anchor}', 'close to {a} {anchor}',
             'within %g meters of {a} {anchor}' % NEAR_RADIUS),
}
#: template type -> sub-template -> phrasings. Slots: {objs}/{obj} plural/singular noun
#: phrase, {rel} the relation (leading space) or '', {subj}/{the_np} a definite noun phrase,
#: {be}/{do} agreeing verbs, {a}/{b} the two groups of a comparison.
TEMPLATES = {
    'exist': {'exist': ('Are there any {objs}{rel}?', 'Is there any {obj}{rel}?',
                        'Can you see any {objs}{rel}?', 'Does the scene contain any {objs}{rel}?')},
    'count': {'count': ('How many {objs} are there{rel}?', 'What number of {objs} are there{rel}?',
                        'How many {objs} can be seen{rel}?', 'What is the number of {objs}{rel}?')},
    'object': {'object': ('What {be} {subj}{rel}?', 'What kind of object {be} {subj}{rel}?',
                          'What type of object {be} {subj}{rel}?',
                          'Which category {do} {subj}{rel} belong to?')},
    'status': {'status': ('What is the status of {the_np}{rel}?',
                          'What state {be} {the_np}{rel} in?',
                          'What status {do} {the_np}{rel} have?',
                          '{The_np}{rel} {be} in what status?')},
    'comparison': {
        'same_count': ('Are there the same number of {a} and {b}{rel}?',
                       'Are there as many {a} as {b}{rel}?',
                       'Is the number of {a} the same as the number of {b}{rel}?'),
        'more': ('Are there more {a} than {b}{rel}?',
                 'Is the number of {a} greater than the number of {b}{rel}?',
                 'Do the {a} outnumber the {b}{rel}?'),
        'same_status': ('Do {a} and {b} have the same status?',
                        'Is the status of {a} the same as the status of {b}?',
                        'Are {a} and {b} in the same status?'),
    },
}


# ----------------------------------------------------------------------------- phrases
def _noun(name: str, plural: bool) -> str:
    word = class_answer(name) if name else 'object'
    if not plural:
        return word
    return word + ('es' if word.endswith('s') else 's')


def _article(word: str) -> str:
    return 'an' if word[:1] in 'aeiou' else 'a'


def noun_phrase(name: Optional[str], status: Optional[str], plural: bool) -> str:
    """'moving cars', 'bicycle with a rider', 'parked object' ..."""
    noun = _noun(name, plural)
    if status in ('with rider', 'without rider'):
        return f"{noun} {status.replace('rider', 'a rider')}"
    return f'{status} {noun}' if status else noun


def relation_phrase(query: dict, rng: random.Random) -> str:
    rel = query.get('relation')
    if not rel:
        return ''
    phrase = rng.choice(RELATION_PHRASES[rel])
    if rel == 'near':
        anchor = class_answer(query['anchor'])
        phrase = phrase.format(a=_article(anchor), anchor=anchor)
    return ' ' + phrase


def _definite(query: dict, n: int, rng: random.Random) -> str:
    """'the car in front of the ego car', 'the pedestrians near a bus'."""
    return 'the ' + noun_phrase(query['class'], None, n > 1) + relation_phrase(query, rng)


# ----------------------------------------------------------------------------- facts
class _Facts:
    """Index sets of the visible objects of one frame, for fast query evaluation."""

    def __init__(self, objects: Sequence[SceneObject]):
        self.objects = list(objects)
        self.all = frozenset(range(len(self.objects)))
        self.by_class, self.by_status, self.by_sector = (defaultdict(set) for _ in range(3))
        for i, o in enumerate(self.objects):
            self.by_class[o.name].add(i)
            self.by_status[o.status].add(i)
            self.by_sector[o.sector].add(i)
        self.present = sorted(self.by_class)
        self.near = {}
        for anchor in self.present:
            members = [self.objects[j] for j in self.by_class[anchor]]
            self.near[anchor] = {
                i for i, o in enumerate(self.objects)
                if any(a is not o and (a.xy[0] - o.xy[0]) ** 2 + (a.xy[1] - o.xy[1]) ** 2
                       <= NEAR_RADIUS ** 2 for a in members)}

    def select(self, query: dict) -> List[int]:
        ids = set(self.all)
        if query.get('class'):
            ids &= self.by_class.get(query['class'], set())
        if query.get('status'):
            ids &= self.by_status.get(query['status'], set())
        rel = query.get('relation')
        if rel == 'near':
            ids &= self.near.get(query['anchor'], set())
        elif rel:
            ids &= self.by_sector.get(rel, set())
        return sorted(ids)

    def relations(self, with_near: bool = True) -> List[tuple]:
        rels = [(None, None)] + [(s, None) for s in SECTORS]
        return rels + ([('near', a) for a in self.present] if with_near else [])


def make_query(cls=None, status=None, relation=None, anchor=None, nearest=False) -> dict:
    return {'class': cls, 'status': status, 'relation': relation, 'anchor': anchor,
            'nearest': bool(nearest)}


# ----------------------------------------------------------------------------- candidates
def _exist_count(facts: _Facts, classes, kind: str) -> List[dict]:
    out = []
    for cls in classes:
        for status in (None,) + CLASS_STATUSES.get(cls, ()):
            for rel, anchor in facts.relations():
                q = make_query(cls, status, rel, anchor)
                n = len(facts.select(q))
                answer = ('yes' if n else 'no') if kind == 'exist' else str(min(n, MAX_COUNT))
                out.append(dict(sub=kind, query=q, answer=answer, hop=int(rel is not None)))
    return out


def _object(facts: _Facts) -> List[dict]:
    out = []
    for status in (None,) + STATUS_ANSWERS:
        for rel, anchor in facts.relations():
            for nearest in (False, True):
                if status is None and rel is None and not nearest:
                    continue
                q = make_query(None, status, rel, anchor, nearest)
                ids = facts.select(q)
                if not ids:
                    continue
                objs = [facts.objects[i] for i in ids]
                if nearest:
                    objs.sort(key=lambda o: o.distance)
                    rival = next((o for o in objs if o.name != objs[0].name), None)
                    if rival is not None and rival.distance - objs[0].distance < NEAREST_MARGIN:
                        continue
                    answer, n = objs[0].name, 1
                else:
                    names = {o.name for o in objs}
                    if len(names) != 1:
                        continue
                    answer, n = names.pop(), len(objs)
                out.append(dict(sub='object', query=q, answer=class_answer(answer),
                                hop=int(rel is not None), n=n))
    return out


def _status_groups(facts: _Facts) -> List[dict]:
    """(class, relation) groups whose matching objects all share one status."""
    out = []
    for cls in facts.present:
        if cls not in CLASS_STATUSES:
            continue
        for rel, anchor in facts.relations():
            q = make_query(cls, None, rel, anchor)
            ids = facts.select(q)
            statuses = {facts.objects[i].status for i in ids}
            if ids and len(statuses) == 1 and None not in statuses:
                out.append(dict(sub='status', query=q, answer=statuses.pop(),
                                hop=int(rel is not None), n=len(ids)))
    return out


def _comparison(facts: _Facts, classes, groups: List[dict]) -> List[dict]:
    out = []
    for rel, anchor in facts.relations(with_near=False):
        for a in classes:
            for b in classes:
                if a == b:
                    continue
                qa, qb = make_query(a, None, rel, anchor), make_query(b, None, rel, anchor)
                na, nb = len(facts.select(qa)), len(facts.select(qb))
                if na == nb == 0:
                    continue
                hop = int(rel is not None)
                query = dict(op='more', a=qa, b=qb)
                out.append(dict(sub='more', query=query, answer='yes' if na > nb else 'no',
                                hop=hop))
                if a < b:
                    query = dict(op='same_count', a=qa, b=qb)
                    out.append(dict(sub='same_count', query=query,
                                    answer='yes' if na == nb else 'no', hop=hop))
    for i, ga in enumerate(groups):
        for gb in groups[i + 1:]:
            ca, cb = ga['query']['class'], gb['query']['class']
            if CLASS_STATUSES[ca] != CLASS_STATUSES[cb]:
                continue
            query = dict(op='same_status', a=ga['query'], b=gb['query'], n_a=ga['n'],
                         n_b=gb['n'])
            out.append(dict(sub='same_status', query=query,
                            answer='yes' if ga['answer'] == gb['answer'] else 'no',
                            hop=max(ga['hop'], gb['hop'])))
    return out


def candidate_questions(objects: Sequence[SceneObject], template_type: str,
                        classes: Sequence[str] = DETECTION_CLASSES) -> List[dict]:
    """Every well-posed question spec of one type for a frame: dicts ``sub`` (sub-template),
    ``query``, ``answer``, ``hop`` (and ``n``, the number of objects it refers to)."""
    facts = _Facts(objects)
    if template_type in ('exist', 'count'):
        return _exist_count(facts, classes, template_type)
    if template_type == 'object':
        return _object(facts)
    if template_type == 'status':
        return _status_groups(facts)
    if template_type == 'comparison':
        return _comparison(facts, classes, _status_groups(facts))
    raise ValueError(f'unknown template type {template_type!r} (one of {TEMPLATE_TYPES})')


# ----------------------------------------------------------------------------- rendering
def render(template_type: str, spec: dict, rng: random.Random) -> str:
    """The question text of a candidate spec, in a phrasing drawn with ``rng``."""
    phrasing = rng.choice(TEMPLATES[template_type][spec['sub']])
    q = spec['query']
    if template_type in ('exist', 'count'):
        return phrasing.format(objs=noun_phrase(q['class'], q['status'], True),
                               obj=noun_phrase(q['class'], q['status'], False),
                               rel=relation_phrase(q, rng))
    n = spec.get('n', 1)
    verbs = dict(be='are' if n > 1 else 'is', do='do' if n > 1 else 'does')
    if template_type == 'object':
        subj = 'the ' + ('closest ' if q['nearest'] else '') + noun_phrase(None, q['status'], n > 1)
        return phrasing.format(subj=subj, rel=relation_phrase(q, rng), **verbs)
    if template_type == 'status':
        the_np = 'the ' + noun_phrase(q['class'], None, n > 1)
        return phrasing.format(the_np=the_np, The_np=the_np.capitalize(),
                               rel=relation_phrase(q, rng), **verbs)
    if spec['sub'] == 'same_status':
        return phrasing.format(a=_definite(q['a'], q['n_a'], rng),
                               b=_definite(q['b'], q['n_b'], rng))
    return phrasing.format(a=noun_phrase(q['a']['class'], None, True),
                           b=noun_phrase(q['b']['class'], None, True),
                           rel=relation_phrase(q['a'], rng))


def _sample(cands: List[dict], k: int, rng: random.Random) -> List[dict]:
    groups: Dict[int, Dict[str, List[dict]]] = defaultdict(lambda: defaultdict(list))
    for c in cands:
        groups[c['hop']][c['answer']].append(c)
    picked = []
    for _ in range(k):
        hops = sorted(h for h, by in groups.items() if any(by.values()))
        if not hops:
            break
        by_answer = groups[rng.choice(hops)]
        answer = rng.choice(sorted(a for a, lst in by_answer.items() if lst))
        lst = by_answer[answer]
        picked.append(lst.pop(rng.randrange(len(lst))))
    return picked


def closed_questions(objects: Sequence[SceneObject], sample_token: str,
                     questions_per_type: int = 3,
                     template_types: Sequence[str] = TEMPLATE_TYPES,
                     classes: Sequence[str] = DETECTION_CLASSES) -> List[dict]:
    """Up to ``questions_per_type`` closed questions per template type for one frame.

    Returns dicts ``question``, ``answer`` (in :data:`CLOSED_ANSWERS`), ``template_type``,
    ``num_hop`` and ``query`` (the structured question: ``class``, ``status``, ``relation``,
    ``anchor``, ``nearest``; comparisons ``op``, ``a``, ``b``), deterministic in
    ``sample_token`` (module docstring).
    """
    out = []
    for ttype in template_types:
        rng = random.Random(f'{sample_token}/{ttype}')
        for spec in _sample(candidate_questions(objects, ttype, classes), questions_per_type, rng):
            query = {k: v for k, v in spec['query'].items() if k not in ('n_a', 'n_b')}
            out.append(dict(question=render(ttype, spec, rng), answer=spec['answer'],
                            template_type=ttype, num_hop=spec['hop'], query=query))
    return out
