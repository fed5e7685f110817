#!/usr/bin/env bash
# The full whole-fit series of GradientNormLogger's cost (bench_gradient_norm.py --paired),
# on all three backends, reference MLP and MobileNetV2, written into the RESULTS files
# and the README's benchmark block. Run on a quiet machine, from the repository root:
#     bash benchmarks/logger_cost_series.sh
# Expected duration on this project's 2-core CI machine, quiet: about 1 h 30 min to 2 h
# (MLP, 100 rounds of three 100-step fits: TensorFlow ~5 min, JAX ~10 min, PyTorch
# ~25 min; MobileNetV2, 12 rounds of 30-step fits plus its tracing: ~15 min on
# TensorFlow and JAX, ~30 min on PyTorch). Loaded, as in this session, 2-3x longer.
set -euo pipefail
PYTHON=${PYTHON:-python}
for backend in tensorflow jax torch; do
    KERAS_BACKEND=$backend "$PYTHON" benchmarks/bench_gradient_norm.py \
        --paired 100 --models mlp,conv --conv-repeats 12 \
        --write "benchmarks/RESULTS_gradient_norm_paired_$backend.md"
done
