#!/usr/bin/env bash
# One short device check on a lent GPU machine: gpuaudit and a PyTorch peer baseline side by side,
# everything left under $OUT. Build here first and carry the binary:
#   cargo build --release
#   device run:  command "bash scripts/gpu-check.sh"   carry ["target/release/gpuaudit"]   timeout ~420 s
# The device machine has the NVIDIA driver, CUDA 13 and PyTorch, but no Rust and no network.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

nvidia-smi --query-gpu=name,uuid,driver_version,clocks.max.sm,power.limit,pcie.link.gen.max,pcie.link.gen.current --format=csv
# Let gpuaudit find NVRTC/cuBLAS from the toolkit or from PyTorch's wheels.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, x, "lib") for x in os.listdir(p)))' 2>/dev/null); do
  [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH

BIN=./target/release/gpuaudit
"$BIN" info
echo "== gpuaudit: GEMM (all dtypes), STREAM, transfers, launch; 8 s per benchmark"
timeout 300 "$BIN" run --backend cuda --max-time 8s --progress lines --json "$OUT/gpuaudit.json" \
  || echo "gpuaudit exited $?"
echo "== gpuaudit: 60 s sustained GEMM+STREAM"
timeout 120 "$BIN" run --backend cuda --duration 60s --progress lines --json "$OUT/gpuaudit-sustained.json" \
  || echo "gpuaudit sustained exited $?"
echo "== peer baseline (PyTorch)"
timeout 120 python3 scripts/torch_baseline.py > "$OUT/torch.json" || echo "torch baseline exited $?"
tail -c 3000 "$OUT/torch.json"
