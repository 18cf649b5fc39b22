#!/usr/bin/env bash
# Install NVRTC and ptxas from NVIDIA's PyPI wheels into DIR, for the kernel tests on machines
# without a GPU or CUDA toolkit (tests/cuda_kernels.rs). All wheels are pinned to one CUDA
# release (13.0.88), or pip would mix versions.
#
# Afterwards, run the tests with:
#   export GPUAUDIT_CUDA_WHEELS=DIR
#   export LD_LIBRARY_PATH=DIR/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
#   export GPUAUDIT_REQUIRE_CUDA_TOOLS=1   # fail, instead of skip, when the tools are missing
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
version=13.0.88

if [ -x "$dir/nvidia/cu13/bin/ptxas" ] && [ -e "$dir/nvidia/cu13/lib/libnvrtc.so.13" ]; then
    echo "CUDA wheels already in $dir"
    exit 0
fi

python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" \
    "nvidia-cuda-nvrtc==$version" \
    "nvidia-cuda-nvcc==$version" \
    "nvidia-cuda-runtime==$version" \
    "nvidia-cuda-crt==$version" \
    "nvidia-nvvm==$version"

for f in "$dir/nvidia/cu13/lib/libnvrtc.so.13" "$dir/nvidia/cu13/bin/ptxas"; do
    if [ ! -e "$f" ]; then
        echo "error: $f missing after installing the wheels" >&2
        exit 1
    fi
done
echo "CUDA $version wheels installed in $dir"
