#!/bin/bash
# One short GPU lease for the AudioMAE configuration (configs/train/supervised_audiomae.yaml: ViT-B/16
# frozen, LoRA rank 16 on its last 4 blocks, reading AudioMAE's own filterbank). The released weights
# cannot be fetched here, so a stand-in of random weights in the released file's layout ({"model": ...}
# with the MAE decoder's keys and 1024 x 128 position embeddings) is written and loaded the way the real
# file would be. The script times the training step with 208 frames (a 2 s clip; position embeddings cut)
# and 1024 (padded to AudioMAE's 10.24 s), then trains the 208-frame configuration on data generated with
# the "audiomae" frontend on the machine's own cores, validates it with Vita renders, and matches one
# held-out sample with the trained checkpoint on the GPU. A check of the machinery and its cost: a frozen
# random encoder learns nothing worth shipping.
#
#   bash scripts/gpu_audiomae_check.sh OUT [DEADLINE_S=450] [GEN_S=170]
#
# OUT receives the logs, the trained run's config.json (metrics) and the data's manifest. Times count
# from the script's start. A dry run on a CPU (tiny batches):
#   DEVICE=cpu WORKERS=2 N=60 SHARD=10 BENCH_ARGS="--batch-size 2 --steps 1 --warmup 1" BATCH=4 STEPS=2 \
#     PY=.venv/bin/python bash scripts/gpu_audiomae_check.sh /tmp/amae 600 60
OUT=${1:?give a folder for the results}; DEADLINE=${2:-450}; GEN_S=${3:-170}; DEVICE=${DEVICE:-cuda}; WORKERS=${WORKERS:-14}; N=${N:-60000}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
PY=${PY:-python3}
RUN=runs/audiomae_check
mkdir -p $OUT runs
echo "[$SECONDS s] start; $(nproc) cores"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
[ -e $RUN ] && { echo "$RUN exists: move it away first (this script trains into it from scratch)"; exit 1; }
$PY - $DEVICE ${BATCH:-} ${STEPS:-} <<'PYEOF'
import sys, torch, yaml
from timm.models.vision_transformer import VisionTransformer
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
torch.manual_seed(0)  # the released geometry: ViT-B/16 over 1024 x 128, one channel
vit = VisionTransformer(img_size=(1024, 128), patch_size=16, in_chans=1, num_classes=0, global_pool="", embed_dim=768, depth=12, num_heads=12)
state = {**vit.state_dict(), "decoder_embed.weight": torch.zeros(512, 768), "mask_token": torch.zeros(1, 1, 512)}
torch.save({"model": state}, "runs/audiomae_stand_in.pth")
d = yaml.safe_load(open("configs/train/supervised_audiomae.yaml"))
d["model"]["encoder"]["checkpoint"] = "runs/audiomae_stand_in.pth"
d.update(dataset="data/gpu_audiomae", out="runs/audiomae_check", device=sys.argv[1], num_workers=8, val_shards=2, val_batches=4,
         val_render_items=16, log_every=25)
if len(sys.argv) > 2:
    d.update(batch_size=int(sys.argv[2]), num_workers=1, val_render_items=2, val_batches=1, val_shards=1)
for frames in (208, 1024):
    d["model"]["encoder"]["frames"] = frames
    yaml.safe_dump(d, open(f"runs/audiomae_{frames}.yaml", "w"))
PYEOF
rm -f /tmp/bench.txt  # data/gpu_audiomae, if there, is resumed
timeout -s TERM $GEN_S $PY -m agents.cli dataset generate --config configs/dataset/core.yaml --observation frontend=audiomae --n $N --shard-size ${SHARD:-100} --workers $WORKERS --out data/gpu_audiomae > $OUT/generate.log 2>&1 &
GEN=$!
for frames in 208 1024; do
  echo "[$SECONDS s] bench: $frames frames, batch 128"
  timeout 120 $PY scripts/bench_train.py --config runs/audiomae_$frames.yaml ${BENCH_ARGS:---batch-size 128 --steps 20 --warmup 3} --device $DEVICE 2>&1 | tee -a /tmp/bench.txt | grep -v Warning
done
wait $GEN
echo "[$SECONDS s] generation stopped:"; tail -c 300 $OUT/generate.log | tr '\r' '\n' | tail -2
ls data/gpu_audiomae/*.npz | wc -l
RATE=$(grep -m1 -o '[0-9]* samples/s' /tmp/bench.txt | grep -o '^[0-9]*'); RATE=${RATE:-500}
LEFT=$((DEADLINE - SECONDS - 75))
STEPS=${STEPS:-$($PY -c "s = int(0.6 * $RATE * $LEFT / 128); print(max(4, min(4000, s // 100 * 100 if s >= 100 else s)))")}
echo "[$SECONDS s] 208 frames: $RATE samples/s in the bench; $LEFT s left for training: $STEPS steps"
$PY -c "import yaml; d = yaml.safe_load(open('runs/audiomae_208.yaml')); d.update(steps=$STEPS, val_every=max(1, $STEPS // 2)); yaml.safe_dump(d, open('runs/audiomae_208.yaml', 'w'))"
timeout $((DEADLINE - SECONDS - 30)) $PY -m agents.supervised.train --config runs/audiomae_208.yaml > $OUT/train.log 2>&1
echo "[$SECONDS s] trained (exit $?)"; grep -m1 trainable $OUT/train.log; grep "samples/s)$" $OUT/train.log | tail -2; grep validation $OUT/train.log | tail -2
cp $RUN/last/config.json $OUT/config.json 2>/dev/null || { echo "no checkpoint"; tail -20 $OUT/train.log; }
cp data/gpu_audiomae/manifest.json $OUT/manifest.json
$PY - $DEVICE <<'PYEOF'
import sys, time, numpy as np
from pathlib import Path
from agents.dataset import Manifest, read_shard
from agents.match import Matcher
from vital_gym.audio import resample
folder = Path("data/gpu_audiomae")
shard = read_shard(folder / sorted(Manifest.load(folder).shards)[-1], ("audio", "midi_note", "velocity"))
target = resample(shard["audio"][0][None].astype(np.float32) / 32767.0, 22050, 44100)
matcher = Matcher("runs/audiomae_check/last", device=sys.argv[1])
start = time.perf_counter()
result = matcher.match(target, midi_note=int(shard["midi_note"][0]), velocity=float(shard["velocity"][0]), draws=0)
print(f"matched a held-out sample on {sys.argv[1]}: distance {result.distance:.3f} in {time.perf_counter() - start:.2f} s (features {matcher.mel.config.frontend})")
PYEOF
echo "[$SECONDS s] done"
