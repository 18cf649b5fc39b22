#!/usr/bin/env bash
# Render the fleet HTML report of a synthetic 60-node fleet in headless Chromium and save a
# screenshot to look at (the tests check the HTML's content; this checks that a browser draws it).
#   scripts/html-check.sh [OUT_DIR]      (needs Debian's `chromium`; ~10 s after a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/gpuaudit-html-check}"
rm -rf "$out" && mkdir -p "$out"
cargo build --release --quiet --example fleet_fixture
cargo build --release --quiet
target/release/examples/fleet_fixture "$out/results" 60
cat > "$out/contract.toml" <<'TOML'
provider = "aws"
instance_type = "p5.48xlarge"
sku = "h100-sxm"
gpus_per_instance = 8
[price]
usd_per_instance_hour = 55.04
[term]
hours = 720
[[target]]
metric = "gemm.bf16.tflops"
min = 700
TOML
rc=0
target/release/gpuaudit fleet "$out/results" --contract "$out/contract.toml" \
  --html "$out/fleet.html" --quiet || rc=$?
[ "$rc" -eq 1 ] || { echo "expected exit 1 (planted slow nodes), got $rc" >&2; exit 1; }
if grep -Eq 'https?://' "$out/fleet.html"; then echo "external URL in the report" >&2; exit 1; fi
timeout 60 chromium --headless --no-sandbox --disable-gpu --screenshot="$out/fleet.png" \
  --window-size=1400,2600 "file://$out/fleet.html" 2>/dev/null
# A blank page compresses to a few KB; charts and a table make a PNG of well over 50 KB.
size=$(stat -c %s "$out/fleet.png")
[ "$size" -gt 50000 ] || { echo "screenshot suspiciously small ($size bytes)" >&2; exit 1; }
echo "ok: $out/fleet.png ($size bytes) — open it and look"
