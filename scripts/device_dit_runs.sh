#!/usr/bin/env bash
# The DiT fine-tunes that need a GPU's budget (docs/benchmarks/fidelity.md, "Adversarial training of the decoder
# and of the DiT" and "The warp start in latent space, trained for"), as ONE device call: three fine-tunes of the
# shipped model at once on one GPU, each its own process with render workers on the spare cores, for MINUTES
# minutes; then each run's last save is exported (half precision) and comes back under OUT (8 files at most:
# per run default.safetensors + default.json, and one log file holding every run's CSV log and output tail).
#
#   scripts/device_dit_runs.sh OUT [MINUTES]            # on the device: run(command="scripts/device_dit_runs.sh $OUT 8")
#   SMOKE=1 scripts/device_dit_runs.sh /tmp/out 2       # here, on CPU: a few tiny steps of the same commands
#
# Back here, per run NAME: copy the shipped default.json's config.diffusion section into OUT/NAME/default.json and
# camworld/checkpoints/depth.* beside it, then `camworld eval fidelity --checkpoint OUT/NAME/default.safetensors ...`
# (the paired protocol in docs/benchmarks/fidelity.md). Every run saves every 100 steps and resumes with --resume.
set -u
OUT=${1:?usage: scripts/device_dit_runs.sh OUT [MINUTES]}
MIN=${2:-8}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT" runs
# the three recipes, each from the shipped default (itself the eleventh session's 1,500-step CPU fine-tune on latent
# warp starts): the masked adversarial DiT (tenth session's best CPU trade), more latent-start training at a GPU's
# batch, and their control (warp-start training on pixel starts alone)
names=(adv latwarp warp)
declare -A extra=(
  [adv]="train.warp_train_prob=0.5 train.dit_adv_weight=1.0 train.dit_adv_start=200 train.dit_disc_strides=1,2,1 train.dit_adv_unseen=true"
  [latwarp]="train.warp_train_prob=0.75 train.warp_train_space=latents"
  [warp]="train.warp_train_prob=0.5"
)
steps=100000; batch=64; every=100; workers=4; evalb=16
if [ -n "${SMOKE:-}" ]; then steps=3; batch=4; every=3; workers=0; evalb=4; fi
for n in "${names[@]}"; do
  # SIGINT at the deadline: the loop stops like a Ctrl-C; the last save (every $every steps) is what counts
  timeout --signal=INT "$((MIN * 60))" "$PY" -m camworld.train --stage dit --preset cpu \
    --init camworld/checkpoints/default.safetensors --vae camworld/checkpoints/default.safetensors \
    --steps "$steps" --seed 21 --threads 1 --workers "$workers" --log-every "$every" --save-every "$every" \
    --eval-batch "$evalb" --out "runs/dev_$n" \
    --set "train.batch_size=$batch" train.lr=1e-4 train.warmup=100 diffusion.shift=3.0 train.ema=0.995 ${extra[$n]} \
    > "runs/dev_$n.log" 2>&1 &
done
wait
log="$OUT/logs.txt"
: > "$log"
for n in "${names[@]}"; do
  { echo "=== $n: ${extra[$n]}"; cat "runs/dev_$n/log.csv" 2>/dev/null; echo "--- output tail";
    tr '\r' '\n' < "runs/dev_$n.log" | grep -v "%|" | tail -n 15; } >> "$log"
  if [ -f "runs/dev_$n/model.safetensors" ]; then
    mkdir -p "$OUT/$n"
    "$PY" -m camworld.train --stage export --dit "runs/dev_$n/model.safetensors" \
      --vae camworld/checkpoints/default.safetensors --out "$OUT/$n/default" --half >> "$log" 2>&1
  else
    echo "$n: no save (see its output tail above)" >> "$log"
  fi
done
ls -l "$OUT" "$OUT"/* >> "$log"
cat "$log"
