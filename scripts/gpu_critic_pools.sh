#!/bin/bash
# One short GPU lease: the matcher's model and critic checked on the GPU against the CPU
# (scripts/check_match_device.py), while the host's other cores render critic pools
# (scripts/critic_data.py, one process per core) until DEADLINE; the pools come back as a tar in pieces.
#
#   bash scripts/gpu_critic_pools.sh OUT SEED [N=2400] [DEADLINE_S=480]
#   cat OUT/pools.tar.* | tar -x -C data        # here, afterwards: data/critic_sSEED
#
# N caps the targets so the pools fit what a lease returns (about 23 kB each; 64 MB in all).
# A dry run on a CPU:  WORKERS=1 DEVICE=cpu PY=.venv/bin/python bash scripts/gpu_critic_pools.sh /tmp/pools 99 2 120
OUT=${1:?give a folder for the results}; SEED=${2:?give the targets seed}; N=${3:-2400}; DEADLINE=${4:-480}
WORKERS=${WORKERS:-$(( $(nproc) - 2 ))}; DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p $OUT
echo "[$SECONDS s] start; $(nproc) cores, $WORKERS pool processes"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
$PY -c "import torch, numpy, vita; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__)" || exit 1
POOLS=data/critic_s$SEED
for i in $(seq 0 $((WORKERS - 1))); do
  timeout -s TERM $((DEADLINE - SECONDS - 40)) $PY scripts/critic_data.py --seed $SEED --n $N --out $POOLS --part $i/$WORKERS --save-every 4 \
    > /tmp/pools-$i.log 2>&1 &
done
echo "[$SECONDS s] matcher on $DEVICE against the CPU"
timeout 240 $PY scripts/check_match_device.py --device $DEVICE --n 16 2>&1 | tee $OUT/check_match_device.txt
echo "check rc ${PIPESTATUS[0]}"
wait
echo "[$SECONDS s] pools stopped:"; tail -qn1 /tmp/pools-*.log | head -4
$PY - $POOLS <<'PYEOF'
import sys, numpy as np, pathlib
parts = sorted(pathlib.Path(sys.argv[1]).glob("part-*.npz"))
print(f"{sum(len(np.load(p)['index']) for p in parts)} targets in {len(parts)} parts")
PYEOF
tar -C data -cf - critic_s$SEED | split -b 15M - $OUT/pools.tar.
ls -la $OUT; echo "[$SECONDS s] done"
