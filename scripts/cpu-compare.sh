#!/usr/bin/env bash
# Compare the CPU backend with its peers on this machine, same sizes and thread count:
#   GEMM  vs numpy/OpenBLAS (scripts/cpu_baseline.py)
#   triad vs McCalpin's C STREAM (gcc -O3 -fopenmp), whose source you pass in (it is not ours to
#         ship: get stream.c from the STREAM benchmark's site or repository).
# Usage: scripts/cpu-compare.sh path/to/stream.c OUT_DIR
# Needs: python3 with numpy + threadpoolctl, gcc with OpenMP, target/release/gpuaudit built.
set -euo pipefail
stream_c=${1:?path to stream.c}
out=${2:?output folder}
mkdir -p "$out"
threads=$(nproc)
elements=$((256 * 1024 * 1024 / 8))   # gpuaudit's standard CPU array: 256 MiB of f64

gcc -O3 -fopenmp -DSTREAM_ARRAY_SIZE=$elements -DNTIMES=40 "$stream_c" -o "$out/stream_c"

echo "== numpy/OpenBLAS GEMM ($threads threads)"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$(dirname "$0")/cpu_baseline.py" \
  --threads "$threads" > "$out/numpy.json"
echo "== C STREAM ($threads threads, $elements elements per array)"
OMP_NUM_THREADS=$threads "$out/stream_c" > "$out/stream_c.txt"
grep -E '^(Copy|Scale|Add|Triad):' "$out/stream_c.txt"
echo "== gpuaudit (cpu backend, standard suite)"
RAYON_NUM_THREADS=$threads ./target/release/gpuaudit run --backend cpu --suite standard \
  --bench gemm,stream --progress lines --json "$out/gpuaudit.json"

python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
ga = json.load(open(f"{out}/gpuaudit.json"))
npy = json.load(open(f"{out}/numpy.json"))
med = {m["metric"]: m for m in ga["measurements"]}
rows = []
for dt, key in [("fp32", "gemm.fp32.tflops"), ("fp64", "gemm.fp64.tflops")]:
    ours = med[key]["median"] * 1e3
    peer = npy["gemm"][dt]
    assert med[key]["shape"][0] == peer["n"], "sizes differ"
    rows.append({"metric": key, "gpuaudit_median_gflops": ours,
                 "numpy_median_gflops": peer["median_gflops"], "numpy_best_gflops": peer["best_gflops"],
                 "ratio_median": ours / peer["median_gflops"]})
text = open(f"{out}/stream_c.txt").read()
for op in ["Copy", "Scale", "Add", "Triad"]:
    m = re.search(rf"^{op}:\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text, re.M)
    best_mbps, avg_s = float(m.group(1)), float(m.group(2))
    words = {"Copy": 2, "Scale": 2, "Add": 3, "Triad": 3}[op]
    elements = med[f"stream.{op.lower()}.gbps"]["shape"][0]
    avg_gbps = words * 8 * elements / avg_s / 1e9
    ours = med[f"stream.{op.lower()}.gbps"]["median"]
    rows.append({"metric": f"stream.{op.lower()}.gbps", "gpuaudit_median_gbps": ours,
                 "c_stream_avg_gbps": avg_gbps, "c_stream_best_gbps": best_mbps / 1e3,
                 "ratio_median_vs_avg": ours / avg_gbps})
json.dump({"machine": ga["host"], "threads": ga["devices"][0].get("threads"),
           "blas": npy["blas"], "comparison": rows}, open(f"{out}/comparison.json", "w"), indent=1)
for r in rows:
    print(json.dumps(r))
PY
