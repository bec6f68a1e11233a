#!/usr/bin/env bash
# The main job on the embedded default, end to end:
#   install -> generate the synthetic nuScenes-format world (+ infos, GT database) -> train the tiny
#   CenterPoint on CPU -> evaluate with the official nuScenes metric -> visualize -> PIIP: a tiny
#   PIIP Mask R-CNN against its single-ViT baseline on the world's COCO export (CocoMetric,
#   FLOPs, CPU speed) and the backbone FLOPs / per-GPU memory of the paper's PIIP-H6B ->
#   LiDAR generation: the tiny LiDAR tokenizer and masked-token generator, one generated sweep
#   and the generation benchmark (reconstruction, trained vs untrained, CenterPoint fidelity).
#   bash tools/run_demo.sh
# Knobs (environment): SCENES (20), SAMPLES (20 keyframes/scene), EPOCHS (8),
# IMAGE_W/IMAGE_H (800x450), SEED (0), DATA (data/synthetic), WORK (work_dirs/demo),
# PIIP_ITERS (1500 training iterations of each PIIP-stage model; 0 skips the stage),
# LIDAR_GEN (1; 0 skips the LiDAR-generation stage), TOK_EPOCHS (8), GEN_EPOCHS (12).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCENES="${SCENES:-20}" SAMPLES="${SAMPLES:-20}" EPOCHS="${EPOCHS:-8}"
IMAGE_W="${IMAGE_W:-800}" IMAGE_H="${IMAGE_H:-450}" SEED="${SEED:-0}"
DATA="${DATA:-data/synthetic}" WORK="${WORK:-work_dirs/demo}" PIIP_ITERS="${PIIP_ITERS:-1500}"
LIDAR_GEN="${LIDAR_GEN:-1}" TOK_EPOCHS="${TOK_EPOCHS:-8}" GEN_EPOCHS="${GEN_EPOCHS:-12}"
CONFIG=configs/centerpoint/centerpoint_tiny_synthetic.py
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
PY=.venv/bin/python

bash tools/install.sh
step() { printf '\n=== %s ===\n' "$*"; }

step "1/6 synthetic world: $SCENES scenes x $SAMPLES keyframes -> $DATA"
# The world is reused only when it was made with the same parameters and world format.
FORMAT="$($PY -c 'import holodrive.datasets.synthetic as s; print(getattr(s, "WORLD_FORMAT_VERSION", 1))')"
STAMP="scenes=$SCENES samples=$SAMPLES image=${IMAGE_W}x${IMAGE_H} seed=$SEED format=$FORMAT"
if [ -f "$DATA/nuscenes_infos_val.pkl" ] && [ -z "${REGENERATE:-}" ] \
   && [ "$(cat "$DATA/.demo_world_stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "reusing $DATA ($STAMP; REGENERATE=1 to rebuild)"
else
  rm -rf "$DATA" "$WORK/piip" "$WORK/lidar"   # later-stage checkpoints belong to the old world
  $PY tools/create_data.py synthetic --root-path "$DATA" --num-scenes "$SCENES" --seed "$SEED" \
    --samples-per-scene "$SAMPLES" --image-size "$IMAGE_W" "$IMAGE_H" --workers 2
  printf '%s\n' "$STAMP" > "$DATA/.demo_world_stamp"
fi

# One override switches every path of the config (datasets, evaluators, GT database).
OPTS=(data_root="$DATA/")
if [ ! -f "$DATA/nuscenes_dbinfos_train.json" ]; then
  echo "GT database for the config's ObjectSample (GT-paste) step"
  $PY tools/create_data.py gt-database --config "$CONFIG" --cfg-options "${OPTS[@]}"
fi

step "2/6 train tiny CenterPoint ($EPOCHS epochs, CPU)"
$PY tools/train.py "$CONFIG" --work-dir "$WORK" --resume \
  --cfg-options train_cfg.max_epochs="$EPOCHS" train_cfg.val_interval="$EPOCHS" \
  param_scheduler.1.T_max="$EPOCHS" param_scheduler.1.end="$EPOCHS" "${OPTS[@]}"

step "3/6 evaluate (nuscenes-devkit DetectionEval via NuScenesMetric)"
$PY tools/test.py "$CONFIG" "$WORK/epoch_$EPOCHS.pth" --work-dir "$WORK/test" \
  --cfg-options "${OPTS[@]}" test_evaluator.jsonfile_prefix="$WORK/test/results"

step "4/6 visualize: camera views with projected boxes + LiDAR BEV"
$PY tools/visualize.py --data-root "$DATA" --info "$DATA/nuscenes_infos_val.pkl" \
  --results "$WORK/test/results/pred_instances_3d/results_nusc.json" --out-dir "$WORK/vis" --num 3 \
  --open3d
if [ "$PIIP_ITERS" -gt 0 ]; then
  step "5/6 PIIP: tiny PIIP vs its single-ViT baseline ($PIIP_ITERS iterations each), COCO export"
  $PY tools/analysis_tools/piip_benchmark.py --data-root "$DATA" --work-dir "$WORK/piip" \
    --iters "$PIIP_ITERS" --seed "$SEED" --reuse --out "$WORK/piip/piip_benchmark.json"
  $PY tools/analysis_tools/get_flops.py \
    configs/piip/mask_rcnn/mask_rcnn_piip_h6b_1024_512_fpn_1x_coco_fsdp.py
fi
if [ "$LIDAR_GEN" -gt 0 ]; then
  step "6/6 LiDAR generation: tokenizer ($TOK_EPOCHS epochs), generator ($GEN_EPOCHS epochs), benchmark"
  LIDAR=configs/holodrive/lidar
  epoch_opts() { echo train_cfg.max_epochs="$1" train_cfg.val_interval="$1" \
    param_scheduler.1.T_max="$1" param_scheduler.1.end="$1"; }
  $PY tools/train.py $LIDAR/lidar_tokenizer_tiny_synthetic.py --work-dir "$WORK/lidar/tokenizer" \
    --resume --cfg-options $(epoch_opts "$TOK_EPOCHS") "${OPTS[@]}"
  TOK="$WORK/lidar/tokenizer/epoch_$TOK_EPOCHS.pth"
  $PY tools/train.py $LIDAR/lidar_generator_tiny_synthetic.py --work-dir "$WORK/lidar/generator" \
    --resume --cfg-options $(epoch_opts "$GEN_EPOCHS") model.tokenizer_checkpoint="$TOK" "${OPTS[@]}"
  GEN="$WORK/lidar/generator/epoch_$GEN_EPOCHS.pth"
  $PY tools/generate.py --modality lidar $LIDAR/lidar_generator_tiny_synthetic.py "$GEN" \
    --data-root "$DATA" --sample-idx 0 --out-dir "$WORK/lidar/generated" --open3d
  $PY tools/analysis_tools/lidar_gen_benchmark.py --data-root "$DATA" --tokenizer "$TOK" \
    --generator "$GEN" --centerpoint "$WORK/epoch_$EPOCHS.pth" --work-dir "$WORK/lidar/bench"
fi
echo "done: checkpoints and logs in $WORK, pictures in $WORK/vis, PIIP numbers in $WORK/piip," \
  "LiDAR generation in $WORK/lidar"
