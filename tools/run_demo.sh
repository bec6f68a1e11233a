#!/usr/bin/env bash
# The main job on the embedded default, end to end:
#   install -> generate the synthetic nuScenes-format world (+ infos) -> train the tiny
#   CenterPoint on CPU -> evaluate with the official nuScenes metric -> visualize.
#   bash tools/run_demo.sh
# Knobs (environment): SCENES (20), SAMPLES (20 keyframes/scene), EPOCHS (8),
# IMAGE_W/IMAGE_H (800x450), DATA (data/synthetic), WORK (work_dirs/demo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCENES="${SCENES:-20}" SAMPLES="${SAMPLES:-20}" EPOCHS="${EPOCHS:-8}"
IMAGE_W="${IMAGE_W:-800}" IMAGE_H="${IMAGE_H:-450}"
DATA="${DATA:-data/synthetic}" WORK="${WORK:-work_dirs/demo}"
CONFIG=configs/centerpoint/centerpoint_tiny_synthetic.py
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
PY=.venv/bin/python

bash tools/install.sh
step() { printf '\n=== %s ===\n' "$*"; }

step "1/4 synthetic world: $SCENES scenes x $SAMPLES keyframes -> $DATA"
if [ -f "$DATA/nuscenes_infos_val.pkl" ] && [ -z "${REGENERATE:-}" ]; then
  echo "reusing $DATA (REGENERATE=1 to rebuild)"
else
  rm -rf "$DATA"
  $PY tools/create_data.py synthetic --root-path "$DATA" --num-scenes "$SCENES" --seed 0 \
    --samples-per-scene "$SAMPLES" --image-size "$IMAGE_W" "$IMAGE_H" --workers 2
fi

OPTS=(train_dataloader.dataset.data_root="$DATA/" val_dataloader.dataset.data_root="$DATA/"
      test_dataloader.dataset.data_root="$DATA/" val_evaluator.data_root="$DATA/"
      val_evaluator.ann_file="$DATA/nuscenes_infos_val.pkl" test_evaluator.data_root="$DATA/"
      test_evaluator.ann_file="$DATA/nuscenes_infos_val.pkl")

step "2/4 train tiny CenterPoint ($EPOCHS epochs, CPU)"
$PY tools/train.py "$CONFIG" --work-dir "$WORK" --resume \
  --cfg-options train_cfg.max_epochs="$EPOCHS" train_cfg.val_interval="$EPOCHS" \
  param_scheduler.1.T_max="$EPOCHS" param_scheduler.1.end="$EPOCHS" "${OPTS[@]}"

step "3/4 evaluate (nuscenes-devkit DetectionEval via NuScenesMetric)"
$PY tools/test.py "$CONFIG" "$WORK/epoch_$EPOCHS.pth" --work-dir "$WORK/test" \
  --cfg-options "${OPTS[@]}" test_evaluator.jsonfile_prefix="$WORK/test/results"

step "4/4 visualize: camera views with projected boxes + LiDAR BEV"
$PY tools/visualize.py --data-root "$DATA" --info "$DATA/nuscenes_infos_val.pkl" \
  --results "$WORK/test/results/pred_instances_3d/results_nusc.json" --out-dir "$WORK/vis" --num 3 \
  --open3d
echo "done: checkpoints and logs in $WORK, pictures in $WORK/vis"
