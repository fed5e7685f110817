#!/usr/bin/env bash
# The full whole-fit series of GradientNormLogger's cost (bench_gradient_norm.py --paired),
# on all three backends, reference MLP and MobileNetV2, written into the RESULTS files
# and the README's benchmark block. Run on a quiet machine, from the repository root:
#     bash benchmarks/logger_cost_series.sh
# Expected duration on this project's 2-core CI machine, quiet: about 2 h 30 min
# (TensorFlow ~25 min, JAX ~35 min, PyTorch ~70 min for the MLP; MobileNetV2's
# 12 rounds of 30-step fits add ~5-10 min a backend, its tracing included).
set -euo pipefail
PYTHON=${PYTHON:-python}
for backend in tensorflow jax torch; do
    KERAS_BACKEND=$backend "$PYTHON" benchmarks/bench_gradient_norm.py \
        --paired 100 --models mlp,conv --conv-repeats 12 \
        --write "benchmarks/RESULTS_gradient_norm_paired_$backend.md"
done
