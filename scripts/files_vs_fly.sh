#!/bin/bash
# Issue 14: the whole recipe from exported files vs on the fly, tiny preset, seeds 0-4 (docs/benchmarks/data.md,
# "The whole recipe from files, 5 seeds"). About 10 CPU-minutes per DiT run, 1.5 per VAE, one thread each.
# Resumable: rerun it and it skips what is done. Usage: scripts/files_vs_fly.sh [OUT_DIR]
set -u
cd "$(dirname "$0")/.."; source .venv/bin/activate
export OMP_NUM_THREADS=1
R=${1:-runs/files_vs_fly}
mkdir -p $R
resume() { [ -f $1/train_state.json ] && echo --resume; }
export_once() { local out=$1; shift; [ -f $out/done ] || { camworld dataset "$@" --out $out > $out.log 2>&1 && touch $out/done; }; }
export_once $R/vae_spread --scenes 1500 --frames 8 --size 32 --seed 0 --paths revisits --stride 30
export_once $R/data --scenes 8 --frames 800 --size 32 --paths revisits --heldout 2 --seed 0
for seed in ${SEEDS:-0 1 2 3 4}; do
  for arm in fly files; do
    vae=$R/vae_${arm}_s$seed; dit=$R/dit_${arm}_s$seed; ev=$R/eval_${arm}_s$seed
    vdata=""; ddata=""; [ $arm = files ] && vdata="--data $R/vae_spread" && ddata="--data $R/data"
    [ -f $vae/done ] || { camworld train --stage vae --preset tiny $vdata --out $vae --steps 1500 --threads 1 \
        --log-every 500 --save-every 500 --seed $seed $(resume $vae) > $vae.log 2>&1 && touch $vae/done; }
    [ -f $dit/done ] || { camworld train --stage dit --preset tiny $ddata --vae $vae/model.safetensors --out $dit \
        --steps 6000 --threads 1 --log-every 1000 --save-every 500 --eval-batch 16 --seed $seed $(resume $dit) \
        > $dit.log 2>&1 && touch $dit/done; }
    [ -f $ev/done ] || { camworld eval memory --checkpoint $dit/model.safetensors --episodes 16 --k 3 --ks 3 \
        --kinds rot90 rot180 walk3m --strategies fov+nonadj recent --out $ev --device cpu > $ev.log 2>&1 && touch $ev/done; }
  done
done
python scripts/vae_ceiling.py $R/vae_*_s*/model.safetensors --frames 256 --json $R/vae_ceilings.json
