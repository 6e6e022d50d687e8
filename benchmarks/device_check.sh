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
# benchmarks/results/plateau-gpu-cnn/results.json, so seeds add up over sessions: after a run,
# copy $OUT/plateau-gpu-cnn/results.json over that file (and $OUT/plateau-gpu-resnet18/results.json
# over benchmarks/results/plateau-gpu-resnet18/results.json: ResNet-18 at full width, the
# paper's classifier), commit them, and print the paired tables (python -m
# benchmarks.classify_report --protocol). The autoencoder (the CPU preset's: width 32,
# 10 epochs) is retrained in every session (its weights are too large to carry).
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
# Resumed results: cnn-fc (the CPU pilot's classifier) and ResNet-18 at full width (the
# paper's classifier, too slow for the CPU), each from its committed results.json.
for name in plateau-gpu-cnn plateau-gpu-resnet18; do
    mkdir -p "$OUT/$name"
    [[ -f benchmarks/results/$name/results.json ]] &&
        cp "benchmarks/results/$name/results.json" "$OUT/$name/results.json"
done
classify() {  # limit, out folder, classifier, methods
    timeout "$1" "$PY" -m benchmarks.classify --preset i12-cnn --classifier "$3" --device cuda \
        --threads 16 --resume --seeds 5 --no-figures --sweep-ratios "" --root FashionMNIST/raw \
        --out "$OUT/$2" --methods "$4"
    echo "classify $3: rc=$?"
}
step pytest_gpu 60 "$PY" -m pytest -m gpu -q -p no:cacheprovider
# One log for both classifiers (the 8-file limit); the ResNet gets its own share of time.
step classify 320 bash -c "$(declare -f classify); PY=$PY OUT=$OUT
    classify 200 plateau-gpu-cnn cnn-fc cmo_la,dsp-cmo-s0.5,mixup_la,dsp-q1-s0.3-mixup,logit_adj,dsp-cmo-s0.5-bl,oracle_cmo_la,dsp-q1-s0.3,none
    classify 135 plateau-gpu-resnet18 resnet18 cmo_la,dsp-cmo-s0.5,logit_adj,oracle_cmo_la"
# One log for the speed check and the serving cost (the 8-file limit): serving an epoch of
# OversampledDataset against a classifier epoch, per batch and pooled, on the GPU.
step speed 150 bash -c "$PY -m benchmarks.bench_speed --quick --sections train,serve,knn \
    --no-write --json $OUT/speed.json; $PY -m benchmarks.serving_cost --device cuda \
    --out /tmp/serving_cost; cat /tmp/serving_cost/cuda.json"
