#!/usr/bin/env bash
# Rebuild the shipped default models from the project's own synthetic data, with the project's own
# commands. Deterministic by seed; about 20 minutes on 2 idle CPU cores.
# The results are committed once (models/*.onnx); rerun only when the networks or the data change.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DATA=${DATA:-cache/synth-train}
RUNS=${RUNS:-runs/default}
SIZE=64          # deployment image size: real time on 2 CPU cores
UIT_WIDTH=8      # generator base width (paper: 64); ONNX Runtime CPU cost grows with its square
UIT_STEPS=${UIT_STEPS:-3000}

# 1. Synthetic NIR drivers: labelled frontal source crops, non-frontal target frames' frontal renders.
[ -f "$DATA/manifest.json" ] || $PY -m train synth --out "$DATA" --seed 7 --per-class 240 --drivers 16 --video-seconds 0

# 2. The source classifier C^s (paper 3.2.1), split by driver.
$PY -m train classifier --data "$DATA/source.csv" --backbone small --image-size $SIZE \
    --epochs 12 --balanced --seed 7 --out "$RUNS/classifier"

# 3. ExprADA UIT (paper 3.2): G^{t->s} translates the frontal renders into the source domain.
#    lr 2e-4 (paper 1e-4): a narrow model, few steps; everything else the paper's defaults.
$PY -m train exprada --mode uit --source "$DATA/source" --target "$DATA/target" --width $UIT_WIDTH \
    --image-size $SIZE --steps $UIT_STEPS --lr 2e-4 --seed 7 --out "$RUNS/uit"

# 4. Export both for the runtime.
$PY -m engines export --checkpoint "$RUNS/classifier/checkpoints/best.pt" --out models/classifier.onnx
$PY -m engines export --checkpoint "$RUNS/uit/checkpoints/last.pt" --out models/uit_generator.onnx
