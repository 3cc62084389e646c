#!/bin/bash
# One short GPU lease, end to end: training data made on the machine's own cores, the training step timed,
# and configs/train/gpu_scratch.yaml and gpu_scratch_rotations.yaml trained from scratch side by side on
# the GPU for whatever time is left (steps from the timed rate; validation at every quarter, so a run cut
# short keeps a checkpoint). data/core (11 GB) cannot travel to a leased machine, hence the generation.
#
#   bash scripts/gpu_scratch_pair.sh OUT [DEADLINE_S=480] [GEN_S=200]
#
# OUT receives each run's log and last checkpoint, and the generated data's manifest.
# Times count from the script's start. A dry run on a CPU (tiny batches):
#   DEVICE=cpu WORKERS=2 N=1200 SHARD=40 BENCH_ARGS="--batch-size 8 --steps 2 --warmup 1" BATCH=16 STEPS=8 \
#     PY=.venv/bin/python bash scripts/gpu_scratch_pair.sh /tmp/pair 300 60
OUT=${1:?give a folder for the results}; DEADLINE=${2:-480}; GEN_S=${3:-200}; DEVICE=${DEVICE:-cuda}; WORKERS=${WORKERS:-14}; N=${N:-60000}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
PY=${PY:-python3}
mkdir -p $OUT runs
echo "[$SECONDS s] start; $(nproc) cores"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
$PY -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__)"
for c in gpu_scratch gpu_scratch_rotations; do  # never train over an earlier run's checkpoints
  [ -e runs/$c ] && { echo "runs/$c exists: move it away first (this script trains into it from scratch)"; exit 1; }
done
rm -f /tmp/bench.txt  # data/gpu, if there, is resumed (generate refuses one made with other settings)
timeout -s TERM $GEN_S $PY -m agents.cli dataset generate --config configs/dataset/core.yaml --n $N --shard-size ${SHARD:-100} --workers $WORKERS --out data/gpu > /tmp/gen.log 2>&1 &
GEN=$!
echo "[$SECONDS s] bench: shipped architecture, batch 256"
timeout 150 $PY scripts/bench_train.py ${BENCH_ARGS:---batch-size 256 --steps 30 --warmup 5} --device $DEVICE 2>&1 | tee /tmp/bench.txt | grep -v Warning
echo "[$SECONDS s] bench: switch-conditioned, batch 256"
timeout 100 $PY scripts/bench_train.py --config configs/train/supervised_cpu_switches.yaml ${BENCH_ARGS:---batch-size 256 --steps 30 --warmup 5} --device $DEVICE 2>&1 | tee -a /tmp/bench.txt | grep -v Warning
wait $GEN
echo "[$SECONDS s] generation stopped:"; tail -c 400 /tmp/gen.log | tr '\r' '\n' | tail -3
ls data/gpu/*.npz | wc -l
RATE=$(grep -m1 -o '[0-9]* samples/s' /tmp/bench.txt | grep -o '^[0-9]*'); RATE=${RATE:-2000}
LEFT=$((DEADLINE - SECONDS - 90))
# Two runs side by side each reached ~0.35x the rate of one alone over a whole run on an H100 (compile and
# validation included); 0.45 made its runs end 6 s past DEADLINE, inside the 30 s grace.
STEPS=${STEPS:-$($PY -c "s = int(0.35 * $RATE * $LEFT / ${BATCH:-256}); print(max(4, min(4000, s // 100 * 100 if s >= 100 else s)))")}
echo "[$SECONDS s] one run alone: $RATE samples/s; $LEFT s left for training: $STEPS steps each"
for c in gpu_scratch gpu_scratch_rotations; do
  $PY - $c $STEPS $DEVICE $BATCH <<'PYEOF'
import sys, yaml
name, steps, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = yaml.safe_load(open(f"configs/train/{name}.yaml"))
d.update(steps=steps, val_every=max(1, steps // 4), device=device)
if len(sys.argv) > 4: d.update(batch_size=int(sys.argv[4]), num_workers=1, val_render_items=4)
yaml.safe_dump(d, open(f"runs/{name}.yaml", "w"))
PYEOF
  timeout $((DEADLINE - SECONDS + 30)) $PY -m agents.supervised.train --config runs/$c.yaml > $OUT/$c.log 2>&1 &
done
wait
echo "[$SECONDS s] trained"
for c in gpu_scratch gpu_scratch_rotations; do
  echo "== $c"; grep -m1 trainable $OUT/$c.log; grep "samples/s)$" $OUT/$c.log | tail -1; grep validation $OUT/$c.log | tail -1
  mkdir -p $OUT/$c && cp runs/$c/last/model.safetensors runs/$c/last/config.json $OUT/$c/ 2>/dev/null || { echo "$c: no checkpoint"; tail -5 $OUT/$c.log; }
done
cp data/gpu/manifest.json $OUT/manifest.json
echo "[$SECONDS s] done"
