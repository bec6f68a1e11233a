#!/usr/bin/env bash
# The main job on the embedded default, end to end:
#   install -> generate the synthetic nuScenes-format world (+ infos, GT database) -> train the tiny
#   CenterPoint on CPU -> evaluate with the official nuScenes metric -> visualize -> PIIP: a tiny
#   PIIP Mask R-CNN against its single-ViT baseline on the world's COCO export (CocoMetric,
#   FLOPs, CPU speed) and the backbone FLOPs / per-GPU memory of the paper's PIIP-H6B ->
#   LiDAR generation: the tiny LiDAR tokenizer and masked-token generator, one generated sweep
#   and the generation benchmark (reconstruction, trained vs untrained, CenterPoint fidelity) ->
#   camera BEV detection: the tiny PIIP lift-splat detector on a 640x360 twin of the world, scored
#   by the devkit and drawn in the six cameras and in BEV -> camera generation: the tiny VAE and
#   multi-view denoiser on a 320x180 twin, six generated views of a val keyframe -> driving QA:
#   the tiny monolithic head (language stage, then the six-view instruction stage), scored on the
#   held-out scenes' closed questions, and one question answered by tools/qa.py.
#   bash tools/run_demo.sh
# Knobs (environment): SCENES (20), SAMPLES (20 keyframes/scene), EPOCHS (8),
# IMAGE_W/IMAGE_H (800x450), SEED (0), DATA (data/synthetic), WORK (work_dirs/demo),
# PIIP_ITERS (1500 training iterations of each PIIP-stage model; 0 skips the stage),
# LIDAR_GEN (1; 0 skips the LiDAR-generation stage), TOK_EPOCHS (8), GEN_EPOCHS (12),
# BEV_DET_EPOCHS (12; 0 skips camera detection), CAM_DATA (data/synthetic_640x360),
# CAM_GEN (1; 0 skips camera generation), CAM_VAE_EPOCHS (2), CAM_GEN_EPOCHS (3),
# SMALL_DATA (data/synthetic_320x180: the world of the camera-generation and QA stages),
# QA_LANG_EPOCHS (2; 0 skips driving QA), QA_EPOCHS (1, the six-view instruction stage).
# The three worlds share SCENES, SAMPLES and SEED: the same scenes at three camera resolutions.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCENES="${SCENES:-20}" SAMPLES="${SAMPLES:-20}" EPOCHS="${EPOCHS:-8}"
IMAGE_W="${IMAGE_W:-800}" IMAGE_H="${IMAGE_H:-450}" SEED="${SEED:-0}"
DATA="${DATA:-data/synthetic}" WORK="${WORK:-work_dirs/demo}" PIIP_ITERS="${PIIP_ITERS:-1500}"
LIDAR_GEN="${LIDAR_GEN:-1}" TOK_EPOCHS="${TOK_EPOCHS:-8}" GEN_EPOCHS="${GEN_EPOCHS:-12}"
BEV_DET_EPOCHS="${BEV_DET_EPOCHS:-12}" CAM_DATA="${CAM_DATA:-data/synthetic_640x360}"
CAM_GEN="${CAM_GEN:-1}" CAM_VAE_EPOCHS="${CAM_VAE_EPOCHS:-2}" CAM_GEN_EPOCHS="${CAM_GEN_EPOCHS:-3}"
SMALL_DATA="${SMALL_DATA:-data/synthetic_320x180}"
QA_LANG_EPOCHS="${QA_LANG_EPOCHS:-2}" QA_EPOCHS="${QA_EPOCHS:-1}"
CONFIG=configs/centerpoint/centerpoint_tiny_synthetic.py
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
PY=.venv/bin/python

bash tools/install.sh
step() { printf '\n=== %s ===\n' "$*"; }

# make_world DIR W H STALE...: the world of the knobs at W x H camera images in DIR, reused only
# when it was made with the same parameters and world format; else it is rebuilt and the work
# dirs STALE (checkpoints that belong to the old world) are removed.
FORMAT="$($PY -c 'import holodrive.datasets.synthetic as s; print(getattr(s, "WORLD_FORMAT_VERSION", 1))')"
make_world() {
  local dir="$1" w="$2" h="$3"; shift 3
  local stamp="scenes=$SCENES samples=$SAMPLES image=${w}x${h} seed=$SEED format=$FORMAT"
  if [ -f "$dir/nuscenes_infos_val.pkl" ] && [ -z "${REGENERATE:-}" ] \
     && [ "$(cat "$dir/.demo_world_stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "reusing $dir ($stamp; REGENERATE=1 to rebuild)"
  else
    rm -rf "$dir" "$@"
    $PY tools/create_data.py synthetic --root-path "$dir" --num-scenes "$SCENES" --seed "$SEED" \
      --samples-per-scene "$SAMPLES" --image-size "$w" "$h" --workers 2
    printf '%s\n' "$stamp" > "$dir/.demo_world_stamp"
  fi
}
# epoch_opts N [V]: train N epochs, the cosine of the config's warm-up + cosine schedule ending at
# N, validating every V epochs (default N: once at the end; N + 1: never).
epoch_opts() { echo train_cfg.max_epochs="$1" train_cfg.val_interval="${2:-$1}" \
  param_scheduler.1.T_max="$1" param_scheduler.1.end="$1"; }

step "1/9 synthetic world: $SCENES scenes x $SAMPLES keyframes -> $DATA"
make_world "$DATA" "$IMAGE_W" "$IMAGE_H" "$WORK/piip" "$WORK/lidar"

# One override switches every path of the config (datasets, evaluators, GT database).
OPTS=(data_root="$DATA/")
if [ ! -f "$DATA/nuscenes_dbinfos_train.json" ]; then
  echo "GT database for the config's ObjectSample (GT-paste) step"
  $PY tools/create_data.py gt-database --config "$CONFIG" --cfg-options "${OPTS[@]}"
fi

step "2/9 train tiny CenterPoint ($EPOCHS epochs, CPU)"
$PY tools/train.py "$CONFIG" --work-dir "$WORK" --resume \
  --cfg-options $(epoch_opts "$EPOCHS") "${OPTS[@]}"

step "3/9 evaluate (nuscenes-devkit DetectionEval via NuScenesMetric)"
$PY tools/test.py "$CONFIG" "$WORK/epoch_$EPOCHS.pth" --work-dir "$WORK/test" \
  --cfg-options "${OPTS[@]}" test_evaluator.jsonfile_prefix="$WORK/test/results"

step "4/9 visualize: camera views with projected boxes + LiDAR BEV"
$PY tools/visualize.py --data-root "$DATA" --info "$DATA/nuscenes_infos_val.pkl" \
  --results "$WORK/test/results/pred_instances_3d/results_nusc.json" --out-dir "$WORK/vis" --num 3 \
  --open3d
if [ "$PIIP_ITERS" -gt 0 ]; then
  step "5/9 PIIP: tiny PIIP vs its single-ViT baseline ($PIIP_ITERS iterations each), COCO export"
  $PY tools/analysis_tools/piip_benchmark.py --data-root "$DATA" --work-dir "$WORK/piip" \
    --iters "$PIIP_ITERS" --seed "$SEED" --reuse --out "$WORK/piip/piip_benchmark.json"
  $PY tools/analysis_tools/get_flops.py \
    configs/piip/mask_rcnn/mask_rcnn_piip_h6b_1024_512_fpn_1x_coco_fsdp.py
fi
if [ "$LIDAR_GEN" -gt 0 ]; then
  step "6/9 LiDAR generation: tokenizer ($TOK_EPOCHS epochs), generator ($GEN_EPOCHS epochs), benchmark"
  LIDAR=configs/holodrive/lidar
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
if [ "$BEV_DET_EPOCHS" -gt 0 ]; then
  step "7/9 camera BEV detection: tiny PIIP lift-splat, $BEV_DET_EPOCHS epochs on $CAM_DATA (640x360)"
  make_world "$CAM_DATA" 640 360 "$WORK/bev_det"
  BEV=configs/bev_det/bev_det_piip_tiny_512x256_synthetic.py
  $PY tools/train.py "$BEV" --work-dir "$WORK/bev_det" --resume \
    --cfg-options $(epoch_opts "$BEV_DET_EPOCHS" $((BEV_DET_EPOCHS + 1))) data_root="$CAM_DATA/"
  $PY tools/test.py "$BEV" "$WORK/bev_det/epoch_$BEV_DET_EPOCHS.pth" --work-dir "$WORK/bev_det/test" \
    --cfg-options data_root="$CAM_DATA/"
  $PY tools/visualize.py --data-root "$CAM_DATA" --info "$CAM_DATA/nuscenes_infos_val.pkl" \
    --config "$BEV" --checkpoint "$WORK/bev_det/epoch_$BEV_DET_EPOCHS.pth" \
    --out-dir "$WORK/bev_det/vis" --num 2
fi
if [ "$CAM_GEN" -gt 0 ] || [ "$QA_LANG_EPOCHS" -gt 0 ]; then
  make_world "$SMALL_DATA" 320 180 "$WORK/camera_gen" "$WORK/drive_qa"
fi
if [ "$CAM_GEN" -gt 0 ]; then
  step "8/9 camera generation: tiny VAE ($CAM_VAE_EPOCHS epochs), multi-view denoiser ($CAM_GEN_EPOCHS epochs)"
  CAM=configs/holodrive/camera
  SOPTS=(data_root="$SMALL_DATA/")
  if [ ! -f "$SMALL_DATA/.demo_captions_done" ]; then
    $PY tools/create_data.py captions --root-path "$SMALL_DATA" && touch "$SMALL_DATA/.demo_captions_done"
  fi
  $PY tools/train.py $CAM/camera_vae_tiny_synthetic.py --work-dir "$WORK/camera_gen/vae" --resume \
    --cfg-options $(epoch_opts "$CAM_VAE_EPOCHS") "${SOPTS[@]}"
  VAE="$WORK/camera_gen/vae/epoch_$CAM_VAE_EPOCHS.pth"
  # the latent cache is rebuilt only when the VAE checkpoint is newer than it
  if [ ! "$WORK/camera_gen/latents.done" -nt "$VAE" ]; then
    $PY tools/create_data.py latents --config $CAM/camera_gen_tiny_synthetic.py --vae-checkpoint "$VAE" \
      --out-dir "$WORK/camera_gen/latents" --cfg-options "${SOPTS[@]}"
    touch "$WORK/camera_gen/latents.done"
  fi
  $PY tools/train.py $CAM/camera_gen_tiny_synthetic.py --work-dir "$WORK/camera_gen/denoiser" --resume \
    --cfg-options $(epoch_opts "$CAM_GEN_EPOCHS" $((CAM_GEN_EPOCHS + 1))) model.vae_checkpoint="$VAE" \
    model.latent_cache="$WORK/camera_gen/latents" "${SOPTS[@]}"
  $PY tools/generate.py --modality camera $CAM/camera_gen_tiny_synthetic.py \
    "$WORK/camera_gen/denoiser/epoch_$CAM_GEN_EPOCHS.pth" --data-root "$SMALL_DATA" --sample-idx 0 \
    --out-dir "$WORK/camera_gen/generated" --scheduler dpm --steps 25
fi
if [ "$QA_LANG_EPOCHS" -gt 0 ]; then
  step "9/9 driving QA: tiny monolithic head, language ($QA_LANG_EPOCHS epochs) + six-view instruction ($QA_EPOCHS)"
  QA=configs/drive_qa
  SOPTS=(data_root="$SMALL_DATA/")
  if [ ! -f "$SMALL_DATA/.demo_drive_qa_done" ]; then
    $PY tools/create_data.py drive_qa --root-path "$SMALL_DATA" && touch "$SMALL_DATA/.demo_drive_qa_done"
  fi
  $PY tools/train.py $QA/mono_tiny_language_synthetic.py --work-dir "$WORK/drive_qa/language" --resume \
    --cfg-options $(epoch_opts "$QA_LANG_EPOCHS" $((QA_LANG_EPOCHS + 1))) "${SOPTS[@]}"
  # load_from the language stage: only the weights; --allow-partial because the visual parts
  # (patch model, mlp1, visual experts) are new
  $PY tools/train.py $QA/mono_tiny_instruct_synthetic.py --work-dir "$WORK/drive_qa/instruct" --resume \
    --allow-partial --cfg-options $(epoch_opts "$QA_EPOCHS") "${SOPTS[@]}" \
    load_from="$WORK/drive_qa/language/epoch_$QA_LANG_EPOCHS.pth"
  $PY tools/qa.py $QA/mono_tiny_instruct_synthetic.py "$WORK/drive_qa/instruct/epoch_$QA_EPOCHS.pth" \
    --data-root "$SMALL_DATA" --sample-idx 0 --question "How many cars are there?"
fi
echo "done: checkpoints and logs in $WORK: pictures in $WORK/vis, PIIP numbers in $WORK/piip," \
  "LiDAR generation in $WORK/lidar, camera detection in $WORK/bev_det, camera generation in" \
  "$WORK/camera_gen, driving QA in $WORK/drive_qa"
