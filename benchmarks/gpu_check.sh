#!/usr/bin/env bash
# GPU check for a lent accelerator (one GPU, no network), one prepared script:
#   1. the device and the versions;
#   2. a LoRA and a full fine-tuning step of a Qwen1.5-0.5B-shaped model at random init
#      (benchmarks/gpu_check.py: tokens/s, step seconds, peak memory, MFU);
#   3. toy mode on cuda against the CPU (tests/test_device.py, tests/test_fast_paths.py: the
#      "cuda" cases run where a GPU is visible);
#   4. the smoke study and a reduced default study (the rebound experiment alone: world,
#      tokenizer, 4 pretraining runs, 10 rebound jobs, report) with toy.device cuda, timed
#      (wall seconds, /usr/bin/time -v where present, job seconds by rule).
# Every step has a limit and the steps share a deadline (TOTAL_S, default 530 s: under 9 minutes
# on an H100); a step is skipped when under 20 s (and under its own limit) are left.
#
# Run from the repository root:   OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
# DEVICE=cpu runs every step on the CPU instead (a rehearsal of the script, not a measurement).
# Python: $PYTHON if set, else the first of .venv/bin/python and python3 whose torch sees CUDA.
# The workflow's packages missing on a bare GPU image (snakemake, trl, datasets, plotnine, ...)
# come as wheels in .whl/ (benchmarks/gpu_wheels.py --download .whl, run where pip works; carry
# .whl), installed into /tmp/site; without them steps 3 and 4 fail and say which import failed.
# Writes under $OUT (default ./gpu-check-out), 8 files: nvidia-smi.txt, versions.txt,
# gpu_check.log, gpu_check.json, device_tests.log, study_smoke.log, study_rebound.log,
# summary.txt. Every step runs; the exit status is 1 if any step failed or was skipped.
set -uo pipefail

OUT=${OUT:-./gpu-check-out}
TOTAL_S=${TOTAL_S:-530}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"  # springback without install
failed=0

# step NAME LIMIT_S LOG CMD...: run CMD under min(LIMIT_S, time left before TOTAL_S), its output
# to the console and LOG (appended), and its outcome (ok / FAILED rc / TIMEOUT / SKIPPED) with
# its seconds to the summary.
step() {
  local name=$1 limit=$2 log=$3 start=$SECONDS left=$((TOTAL_S - SECONDS)) rc outcome
  shift 3
  if ((left < 20 && left < limit)); then
    printf '%-14s %-24s\n' "$name" "SKIPPED (deadline)" | tee -a "$SUMMARY"
    failed=1
    return
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit} s)" | tee -a "$log"
  timeout --kill-after=5 "$limit" bash -c '"$@"' "$name" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) outcome=ok ;;
    124 | 137) outcome="TIMEOUT after ${limit} s"; failed=1 ;;
    *) outcome="FAILED rc=$rc"; failed=1 ;;
  esac
  printf '%-14s %-24s %4d s\n' "$name" "$outcome" $((SECONDS - start)) | tee -a "$SUMMARY"
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
for name in ("transformers", "peft", "accelerate", "trl", "datasets", "snakemake", "plotnine",
             "pyarrow", "pandas", "springback"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        print(name, "not installed")
EOF
)

# The carried wheels (if any) into /tmp/site, then the versions.
versions() {
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || return
  fi
  "$PY" -c "$VERSIONS_PY"
}

# study NAME ARGS...: a toy study on $DEVICE from clean, timed; then its job seconds by rule
# (also after a failed job: the finished jobs' seconds still count).
study() {
  local name=$1 time=() rc
  shift
  [[ -x /usr/bin/time ]] && time=(/usr/bin/time -v)
  rm -rf "results/$name"
  # one GPU for every job (gpu=16 lifts the default profile's one-GPU-job cap; 1-thread jobs),
  # greedy scheduling (the ILP scheduler's solver is not carried)
  "${time[@]}" "$PY" -m snakemake --cores all --resources gpu=16 --scheduler greedy "$@" \
    --config study="$name" "toy={device: $DEVICE}"
  rc=$?
  "$PY" benchmarks/study_overhead.py "results/$name"
  return $rc
}

PY=$(pick_python)
export PY VERSIONS_PY DEVICE
export -f versions study  # steps run them under timeout, in a child bash
echo "python: $PY; device: $DEVICE; out: $OUT; deadline: $TOTAL_S s"
printf 'experiments: [rebound]\n' >/tmp/gpu_check_rebound.yaml

step nvidia-smi 15 "$OUT/nvidia-smi.txt" nvidia-smi
step versions 60 "$OUT/versions.txt" versions
tiny=()
[[ $DEVICE == cpu ]] && tiny=(--tiny --steps 2 --warmup 1)  # the 0.5B model is for a GPU
step gpu_check 200 "$OUT/gpu_check.log" \
  "$PY" benchmarks/gpu_check.py --device "$DEVICE" "${tiny[@]}" --out "$OUT/gpu_check.json"
step device-tests 90 "$OUT/device_tests.log" \
  "$PY" -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_fast_paths.py
step study-smoke 120 "$OUT/study_smoke.log" study gpu_smoke --configfile config/smoke.yaml
step study-rebound 240 "$OUT/study_rebound.log" \
  study gpu_rebound --configfile config/config.yaml /tmp/gpu_check_rebound.yaml

echo "== summary ($OUT/summary.txt)"
cat "$SUMMARY"
exit $failed
