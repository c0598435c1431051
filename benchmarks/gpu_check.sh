#!/usr/bin/env bash
# GPU check for a lent accelerator (one GPU, no network): the device, the versions, then a LoRA
# and a full fine-tuning step of a Qwen1.5-0.5B-shaped model at random init
# (benchmarks/gpu_check.py: tokens/s, step seconds, peak memory, MFU). The step limits add up to
# under 8 minutes; about 1-2 minutes are expected on an H200.
#
# Run from the repository root:   OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
# Python: $PYTHON if set, else the first of .venv/bin/python and python3 whose torch sees CUDA.
# Writes under $OUT (default ./gpu-check-out): nvidia-smi.txt, versions.txt, gpu_check.log,
# gpu_check.json, summary.txt. Every step runs; the exit status is 1 if any step failed.
#
# The toy study is not run: toy mode is CPU-only by design (rules/common.smk model_runtime()
# returns device cpu / float32 whenever mode is toy, and pretraining never moves the model), and
# the workflow's packages (snakemake, trl, datasets, ...) are not on a bare GPU image.
set -uo pipefail

OUT=${OUT:-./gpu-check-out}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
failed=0

# step NAME LIMIT_S LOG CMD...: run CMD under a time limit, its output to the console and LOG,
# and its outcome (ok / FAILED rc / TIMEOUT) with its seconds to the summary.
step() {
  local name=$1 limit=$2 log=$3 start=$SECONDS rc outcome
  shift 3
  echo "== $name (limit ${limit} s)"
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) outcome=ok ;;
    124 | 137) outcome="TIMEOUT after ${limit} s"; failed=1 ;;
    *) outcome="FAILED rc=$rc"; failed=1 ;;
  esac
  printf '%-12s %-24s %4d s\n' "$name" "$outcome" $((SECONDS - start)) | tee -a "$SUMMARY"
}

# The Python to use: $PYTHON, else the first candidate whose torch sees a CUDA device.
pick_python() {
  local p
  if [[ -n ${PYTHON:-} ]]; then echo "$PYTHON"; return; fi
  for p in .venv/bin/python python3; do
    if command -v "$p" >/dev/null &&
      timeout 40 "$p" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
      echo "$p"; return
    fi
  done
  echo python3
}

VERSIONS_PY=$(cat <<'EOF'
import sys, torch
print("python", sys.version.split()[0], sys.executable)
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"cc {p.major}.{p.minor}", f"{p.total_memory / 2**30:.1f} GiB",
          f"{p.multi_processor_count} SMs")
from importlib import metadata
for name in ("transformers", "peft", "accelerate", "snakemake", "springback"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "not installed")
EOF
)

PY=$(pick_python)
echo "python: $PY; out: $OUT"

step nvidia-smi 30 "$OUT/nvidia-smi.txt" nvidia-smi
step versions 60 "$OUT/versions.txt" "$PY" -c "$VERSIONS_PY"
step gpu_check 280 "$OUT/gpu_check.log" \
  "$PY" benchmarks/gpu_check.py --device cuda --out "$OUT/gpu_check.json"
printf '%-12s %-24s\n' toy-study "SKIPPED (toy mode is CPU-only)" | tee -a "$SUMMARY"

echo "== summary ($OUT/summary.txt)"
cat "$SUMMARY"
exit $failed
