#!/usr/bin/env bash
# Ship the trained model and measure it (run after the DiT stage is stopped).
set -euo pipefail
cd "$(dirname "$0")/.."
STEP=$(python3 -c "import json;print(json.load(open('runs/dit/model.json'))['record']['step'])")
.venv/bin/camworld train --stage export --dit runs/dit/model.safetensors --vae runs/vae_dec/model.safetensors \
  --out camworld/checkpoints/default --half --set diffusion.shift=3.0 \
  --record "{\"data_split\": \"train scenes: seeds 0..999 (TrainConfig.scenes); held-out: seeds >= 1000000\", \"dit_step\": $STEP}"
.venv/bin/camworld eval memory --episodes 32 --out eval_out > runs/eval.log 2> runs/eval.err
