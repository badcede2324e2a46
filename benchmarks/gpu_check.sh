#!/usr/bin/env bash
# On a GPU machine: run the throughput benchmarks and every chapter in the `full` profile, in one go, and
# write their timings and figures to one folder (default benchmarks/results/gpu). Expect about an hour.
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]            # full profile, CUDA
#   QUICK=1 bash benchmarks/gpu_check.sh [RESULTS_DIR]    # reduced: default profile, small benchmark, any device
#   CHAPTERS="seesaw scale" bash benchmarks/gpu_check.sh   # only these chapters ("" for none: benchmarks only)
#
# Chapters are executed into copies under RESULTS_DIR/chapters (with a .log each); the committed notebooks
# are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
results=${1:-benchmarks/results/gpu}
mkdir -p "$results/chapters"
python=${PYTHON:-.venv/bin/python}
export TQDM_DISABLE=1
if [ "${QUICK:-0}" = 1 ]; then
  export SBMM_PROFILE=default
  bench_args=(--batch-sizes 256 4096 --samples 32768 --repeats 1)
else
  export SBMM_PROFILE=full
  bench_args=(--batch-sizes 256 1024 4096 16384 65536 --samples 2097152 --repeats 2 --variants)
fi
summary="$results/summary.txt"
{
  echo "profile: $SBMM_PROFILE"
  "$python" -c "import torch; print('torch', torch.__version__, '| cuda:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')"
} > "$summary"
# The benchmarks first: the "Running at scale" chapter reads their figures.
"$python" benchmarks/feed_throughput.py "${bench_args[@]}" --json "$results/feed_throughput.json" | tee -a "$summary"
"$python" benchmarks/throughput.py | tee -a "$summary"
"$python" benchmarks/gpu_sync.py | tee -a "$summary"
# Many seeds at once: 1, 4 and 16 replicas against as many fits, on the GPU (issue 12's target).
replica_device=$("$python" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
"$python" benchmarks/replicas.py --device "$replica_device" --batch-sizes 256 1024 \
  --json "$results/replicas.json" | tee -a "$summary"
for nb in $("$python" - <<'PY'
import os, pathlib, re
toc = open("_toc.yml").read()
chosen = os.environ.get("CHAPTERS")
for name in re.findall(r"file:\s*([^\s#]+)", toc):
    if pathlib.Path(name + ".ipynb").exists() and (chosen is None or pathlib.Path(name).name in chosen.split()):
        print(name + ".ipynb")
PY
); do
  copy="$results/chapters/$(basename "$nb")"
  cp "$nb" "$copy"
  start=$(date +%s%N)
  if (cd "$(dirname "$copy")" && "$root/.venv/bin/jupyter" execute --inplace --timeout=3600 "$(basename "$copy")" > "$copy.log" 2>&1); then status=ok; else status=FAILED; fi
  end=$(date +%s%N)
  printf '%-28s %-7s %8d s\n' "$(basename "$nb")" "$status" "$(( (end - start) / 1000000000 ))" | tee -a "$summary"
done
echo "results in $results"
