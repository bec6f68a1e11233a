"""Driving-QA data: NuScenes-QA-style closed questions, DriveLM-style QA and a text corpus,
generated from a world's info files (``python tools/create_data.py drive_qa``).

- :mod:`.scene`: the visible objects of a keyframe (ego frame, camera, c-tag pixel);
- :mod:`.templates`: closed questions (``exist``, ``count``, ``object``, ``status``,
  ``comparison``; :data:`CLOSED_ANSWERS`);
- :mod:`.drivelm`: perception / prediction / planning / behaviour QA with c-tags;
- :mod:`.generator`: the per-split files; :mod:`.io`: writers and validating loaders.

Nothing here imports torch or mmdet3d until :func:`write_drive_qa` reads the info files.
See ``docs/drive_qa.md``.
"""
from .drivelm import MAX_KEY_OBJECTS, QA_TYPES, drivelm_frame, ego_motion
from .generator import (format_summary, generate_split, split_frames, split_summary,
                        write_drive_qa)
from .io import (RECORD_KEYS, find_info_sample, load_drivelm, load_nuscenes_qa,
                 load_qa_records, write_corpus, write_drivelm, write_nuscenes_qa)
from .scene import (C_TAG_RE, MIN_VISIBILITY, RADIUS, SceneObject, c_tag, parse_c_tags,
                    project_points, scene_objects, sector_of)
from .templates import (CLOSED_ANSWERS, NEAR_RADIUS, TEMPLATE_TYPES, TEMPLATES, class_answer,
                        closed_questions)

__all__ = [
    'CLOSED_ANSWERS', 'C_TAG_RE', 'MAX_KEY_OBJECTS', 'MIN_VISIBILITY', 'NEAR_RADIUS',
    'QA_TYPES', 'RADIUS', 'RECORD_KEYS', 'TEMPLATES', 'TEMPLATE_TYPES', 'SceneObject',
    'c_tag', 'class_answer', 'closed_questions', 'drivelm_frame', 'ego_motion',
    'find_info_sample', 'format_summary', 'generate_split', 'load_drivelm', 'load_nuscenes_qa',
    'load_qa_records', 'parse_c_tags', 'project_points', 'scene_objects', 'sector_of',
    'split_frames', 'split_summary', 'write_corpus', 'write_drivelm', 'write_drive_qa',
    'write_nuscenes_qa',
]
