#!/usr/bin/env bash
# The tuner's CUDA paths on a GPU machine: tests/test_cuda.py, and the tuner's other tests,
# whose default device is CUDA there (trials, resume, kill -9 of workers, the CLI, the report).
# CI has no GPU; run this where one is:
#
#   bash tools/cuda_check.sh [WHEEL_DIR] [OUT_DIR]
#
# WHEEL_DIR: where to install Optuna (and plotly) from, on a machine that cannot reach a package
# index but has torch; OUT_DIR: where the log and JUnit file go (default: the current folder).
# Tests that need PostgreSQL or an S3 stand-in are left out (.ci/run runs them on the CPU).
set -uo pipefail
wheels=${1:-}
out=${2:-.}
python=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || exit 2
if [ -n "$wheels" ]; then
    "$python" -m pip install -q --no-index --find-links "$wheels" 'optuna>=4' plotly || exit 2
fi
"$python" -m pip install -q --no-deps --no-build-isolation -e . || exit 2
"$python" -c "import torch, optuna; print('torch', torch.__version__,
    torch.cuda.get_device_name(0), 'optuna', optuna.__version__)" || exit 2
export PYTHONUNBUFFERED=1
workers=$(( $(nproc) > 12 ? 12 : $(nproc) ))
"$python" -m pytest -q -p no:cacheprovider -p no:benchmark -n "$workers" --timeout 400 \
    --durations 15 -rfE -k "not postgres and not s3" --junitxml "$out/cuda-junit.xml" \
    tests/test_cuda.py tests/test_training.py tests/test_tuner.py tests/test_resume.py \
    tests/test_policies.py tests/test_workers.py tests/test_faults.py tests/test_finished.py \
    tests/test_lineage.py tests/test_models.py tests/test_layers.py tests/test_identity.py \
    tests/test_neighbourhood.py tests/test_failures.py tests/test_trust.py tests/test_cli.py \
    tests/test_manifest.py tests/test_api_messages.py 2>&1 | tee "$out/cuda-tests.log"
