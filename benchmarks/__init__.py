"""The benchmarks of torch_deepsmote: run each as a module from the repository root.

    python -m benchmarks.classify --preset i12-cnn --data-seed 0 --out DIR --resume
    python -m benchmarks.bench_speed --quick
    python -m benchmarks.synthetic_quality --help

They import the library's own pieces (``LogitAdjustedLoss``, the samplers) and each other
as modules of this package; ``benchmarks/RESULTS.md`` holds what they measured.
"""
