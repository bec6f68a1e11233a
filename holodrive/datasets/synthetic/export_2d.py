"""2D exports from the camera keyframes: COCO instance detection/segmentation and
ADE20K-layout semantic segmentation. Written incrementally (constant memory)."""
import json
import os

import numpy as np
from pycocotools import mask as mask_utils

from ...utils.io import write_json_lines
from ..constants import DETECTION_CLASSES

#: ADE label values: 0 = other/ignore, then these classes from 1.
ADE_CLASSES = ('road', 'sidewalk', 'lane_marking', 'terrain', 'building', 'vegetation', 'sky') + \
    tuple(DETECTION_CLASSES)
ADE_SPLIT = {'train': 'training', 'val': 'validation'}


def ade_label(detection_name):
    return ADE_CLASSES.index(detection_name) + 1 if detection_name in ADE_CLASSES else 0


def instance_annotations(ids, box_class, box_extra, min_area=4):
    """COCO annotations (without ids) of every detection-class box visible in ``ids``.

    ``ids``: (H, W) int box index or -1; ``box_class``: box index -> detection class or None;
    ``box_extra``: box index -> dict of extra fields.
    """
    anns = []
    area_of = np.bincount(ids[ids >= 0].ravel())        # pixels of each box index
    ids_t = np.ascontiguousarray(ids.T)                 # (W, H): masks of it are Fortran-ordered (H, W)
    for b in np.flatnonzero(area_of).tolist():
        cls = box_class.get(b)
        if cls is None:
            continue
        area = int(area_of[b])
        if area < min_area:
            continue
        rle = mask_utils.encode((ids_t == b).view(np.uint8).T)
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        rle['counts'] = rle['counts'].decode('ascii')
        anns.append(dict(category_id=DETECTION_CLASSES.index(cls) + 1, bbox=bbox, area=area,
                         segmentation=rle, iscrowd=0, **box_extra.get(b, {})))
    return anns


class Export2D:
    """Streams COCO (``ROOT/coco``) and ADE (``ROOT/ade``) exports."""

    def __init__(self, root):
        self.root = root
        self.tmp = {}
        self.next_img = {'train': 1, 'val': 1}
        self.next_ann = {'train': 1, 'val': 1}
        for split in ('train', 'val'):
            os.makedirs(os.path.join(root, 'coco', split), exist_ok=True)
            os.makedirs(os.path.join(root, 'coco', 'annotations'), exist_ok=True)
            os.makedirs(os.path.join(root, 'ade', 'images', ADE_SPLIT[split]), exist_ok=True)
            os.makedirs(os.path.join(root, 'ade', 'annotations', ADE_SPLIT[split]), exist_ok=True)
            for kind in ('images', 'annotations'):
                self.tmp[(split, kind)] = open(os.path.join(root, 'coco', 'annotations',
                                                            f'.{split}.{kind}.tmp'), 'w')

    def add(self, split, items):
        """``items``: list of dict(file_name, width, height, extra, annotations) from a scene,
        whose image/label files were already written by the scene worker."""
        for it in items:
            img_id = self.next_img[split]
            self.next_img[split] += 1
            img = dict(id=img_id, file_name=it['file_name'], width=it['width'], height=it['height'],
                       **it.get('extra', {}))
            write_json_lines(self.tmp[(split, 'images')], [img])
            anns = [dict(id=self.next_ann[split] + j, image_id=img_id, **a) for j, a in enumerate(it['annotations'])]
            self.next_ann[split] += len(anns)
            write_json_lines(self.tmp[(split, 'annotations')], anns)

    def close(self):
        cats = [dict(id=i + 1, name=n, supercategory=n) for i, n in enumerate(DETECTION_CLASSES)]
        for fh in self.tmp.values():
            fh.close()
        d = os.path.join(self.root, 'coco', 'annotations')
        for split in ('train', 'val'):
            with open(os.path.join(d, f'instances_{split}.json'), 'w') as out:
                out.write('{"info": {"description": "HoloDrive synthetic world, camera keyframes", '
                          '"version": "1.0"}, "licenses": [],\n"categories": %s' % json.dumps(cats))
                for kind in ('images', 'annotations'):
                    out.write(',\n"%s": [' % kind)
                    tmp = os.path.join(d, f'.{split}.{kind}.tmp')
                    with open(tmp) as src:
                        for j, line in enumerate(src):
                            out.write(('\n' if j == 0 else ',\n') + line.rstrip('\n'))
                    os.remove(tmp)
                    out.write(']')
                out.write('\n}\n')
        with open(os.path.join(self.root, 'ade', 'classes.json'), 'w') as fh:
            json.dump(list(ADE_CLASSES), fh, indent=1)
