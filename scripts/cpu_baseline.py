#!/usr/bin/env python3
"""Peer baseline for the CPU backend: numpy/OpenBLAS GEMM at the sizes and thread count gpuaudit
uses, timed like gpuaudit (monotonic clock, warm-up, median of repeats), random data.

Usage: python3 scripts/cpu_baseline.py [--threads N] [--reps 15] > cpu-baseline.json
Run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (some images set them for old OpenBLAS
builds; they slow a current numpy). Prints the BLAS kernel actually used (threadpoolctl).
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def gemm_gflops(n, dtype, reps):
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (n, n)).astype(dtype)
    b = rng.uniform(-1, 1, (n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    for _ in range(2):
        np.matmul(a, b, out=c)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n ** 3
    return {"n": n, "median_gflops": flops / statistics.median(times) / 1e9,
            "best_gflops": flops / min(times) / 1e9, "reps": reps}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--reps", type=int, default=15)
    args = p.parse_args()
    with threadpool_limits(limits=args.threads):
        out = {"tool": "numpy", "numpy": np.__version__, "threads": args.threads,
               "blas": [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                        for i in threadpool_info()],
               "gemm": {"fp32": gemm_gflops(4096, np.float32, args.reps),
                        "fp64": gemm_gflops(3072, np.float64, args.reps)}}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
