#!/usr/bin/env bash
# The one prepared GPU check, for a session lent the device machine (15 min of device time).
#
#   bash benchmarks/device_check.sh stage        # here, first: fills .device/ (git-ignored)
#   run(command="bash benchmarks/device_check.sh", carry=[".device"], timeout_s=570)
#
# The device starts bare: no network, no FAISS, no imbalanced-learn, no Fashion-MNIST and
# no install of this package. `stage` copies the IDX files and the two pure-Python wheels
# that classify.py needs into .device/; the check installs them and puts the repository on
# PYTHONPATH. Every result lands in $OUT (the only folder that comes back). Each step has
# its own time limit, so one slow step cannot cost the others; the whole stays under 9 min.
#
# The classification step is issue 12's decisive comparison on a GPU: the 0.4 M-parameter
# cnn-fc at 8,000 steps (`--preset i12-cnn`, the CPU pilot's plateau) with crop-flip
# augmentation, the strongest baselines next to the DeepSMOTE recipe built on each (CMO,
# input mixup and logit adjustment, each with real images only and with DeepSMOTE's), one
# (method, seed) at a time, most important first. It resumes from the committed
# benchmarks/results/i12-gpu/results.json, so seeds add up over sessions: after a run,
# copy $OUT/classify/results.json over that file, commit it, and print the paired table
# (classify_report.py --protocol). The autoencoder (the CPU preset's: width 32, 10 epochs)
# is retrained in every session (its weights are too large to carry).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "stage" ]]; then
    mkdir -p .device/wheels
    cp /usr/share/datasets/fashion-mnist/*.gz .device/
    python -m pip download -q --no-deps -d .device/wheels imbalanced-learn==0.14.2 sklearn-compat
    ls -l .device .device/wheels
    exit 0
fi

# At most 8 files come back from $OUT: the set-up's output shares env.txt, leaving 6.
OUT="${OUT:-/tmp/device-out}"
PY=$(command -v python3 || command -v python)
mkdir -p "$OUT" FashionMNIST/raw
cp .device/*.gz FashionMNIST/raw/
"$PY" -m pip install -q --no-index --no-deps --disable-pip-version-check --target /tmp/site \
    .device/wheels/*.whl >> "$OUT/env.txt" 2>&1
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
step() {  # name, limit in seconds, command...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    echo "$name: rc=$? in $((SECONDS - start)) s" | tee -a "$OUT/steps.txt"
}
{ nvidia-smi; "$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"; } \
    >> "$OUT/env.txt" 2>&1
GPU_RESULTS=benchmarks/results/i12-gpu/results.json
mkdir -p "$OUT/classify"
[[ -f $GPU_RESULTS ]] && cp "$GPU_RESULTS" "$OUT/classify/results.json"
step pytest_gpu 60 "$PY" -m pytest -m gpu -q -p no:cacheprovider
step classify 330 "$PY" benchmarks/classify.py --preset i12-cnn --device cuda --threads 16 \
    --resume --seeds 5 --no-figures --sweep-ratios "" --root FashionMNIST/raw --out "$OUT/classify" \
    --methods cmo_la,dsp-cmo-s0.5,mixup_la,dsp-q1-s0.3-mixup,logit_adj,dsp-cmo-s0.5-bl,dsp-q1-s0.3,none
step bench_speed 120 "$PY" benchmarks/bench_speed.py --quick --sections train,serve,knn \
    --no-write --json "$OUT/speed.json"
