#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost runs deploy/slurm/gpuaudit.sbatch: a measure job of 2
# tasks on the CPU backend, then an aggregate job that depends on it (afterany), and the fleet
# report is checked. Everything lives under one scratch folder; the daemons are stopped on exit.
#
#   scripts/slurm-test.sh            (root; installs slurm-wlm and munge with apt-get if missing)
#
# Needs target/release/gpuaudit (built if missing). Ports 6817/6818: one such cluster at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
say() { echo "slurm-test: $*"; }
fail() { echo "slurm-test: FAIL: $*" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null
fi
[ -x target/release/gpuaudit ] || cargo build --release --quiet
bin="$repo/target/release/gpuaudit"

D="$(mktemp -d /tmp/gpuaudit-slurm.XXXXXX)"
stop() {
  local rc=$?
  for pid in "$D/run/slurmd.pid" "$D/run/slurmctld.pid" "$D/run/munged.pid"; do
    [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  sleep 1
  if [ "$rc" -ne 0 ]; then
    for log in "$D"/log/* "$D"/job/*.out; do
      [ -f "$log" ] && { echo "---- $log"; tail -n 30 "$log"; }
    done >&2
  fi
  rm -rf "$D"
  exit "$rc"
}
trap stop EXIT

mkdir -p "$D/run" "$D/log" "$D/state" "$D/spool/slurmd" "$D/munge" "$D/job"
chmod 700 "$D/munge"
mungekey --create --keyfile="$D/munge/munge.key" && chmod 400 "$D/munge/munge.key"
munged --force --key-file="$D/munge/munge.key" --socket="$D/run/munge.socket.2" \
  --pid-file="$D/run/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/munged.seed"

cpus="$(nproc)"
export SLURM_CONF="$D/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=gpuaudit-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/run/munge.socket.2
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/slurmd
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost

for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 0.5
done
sinfo -h -o %t | grep -q idle || fail "the node did not become idle within 30 s"
say "cluster up ($cpus CPUs)"

# Tiny budgets: one STREAM triad per task, 1 s of sampling.
export GPUAUDIT="$bin" GPUAUDIT_RESULTS="$D/job/results" \
  GPUAUDIT_RUN_ARGS="--backend cpu --suite quick --bench stream.triad --max-time 1s"
cd "$D/job"
measure=$(sbatch --parsable -N1 -n2 --ntasks-per-node=2 -o "$D/job/measure-%j.out" \
  --export=ALL,GPUAUDIT_STAGE=measure "$repo/deploy/slurm/gpuaudit.sbatch")
aggregate=$(sbatch --parsable -N1 -n1 --dependency=afterany:"$measure" \
  -o "$D/job/aggregate-%j.out" --export=ALL,GPUAUDIT_STAGE=aggregate \
  "$repo/deploy/slurm/gpuaudit.sbatch")
say "submitted measure job $measure and aggregate job $aggregate (afterany)"

# Poll (sbatch --wait backs off to 42 s); bounded.
for _ in $(seq 240); do
  [ -z "$(squeue -h -j "$measure,$aggregate" 2>/dev/null)" ] && break
  sleep 0.5
done
[ -z "$(squeue -h -j "$measure,$aggregate" 2>/dev/null)" ] || fail "jobs still queued or running after 120 s"

for job in "$measure" "$aggregate"; do
  info=$(scontrol show job "$job" -o)
  state=$(grep -o 'JobState=[A-Z]*' <<< "$info")
  code=$(grep -o ' ExitCode=[0-9:]*' <<< "$info")
  say "job $job: $state$code"
  [ "$state" = JobState=COMPLETED ] || fail "job $job ended $state"
done

n=$(find "$D/job/results" -name 'localhost-*.json' | wc -l)
[ "$n" -eq 2 ] || fail "expected 2 result files (one per task), found $n"
[ -s "$D/job/fleet.json" ] && [ -s "$D/job/fleet.html" ] || fail "no fleet.json / fleet.html"
grep -q '"results": 2,' "$D/job/fleet.json" || fail "fleet.json does not count 2 results"
grep -q '"bad": 0,' "$D/job/fleet.json" || fail "fleet.json lists bad results"
grep -q '"metric": "stream.triad.gbps"' "$D/job/fleet.json" || fail "no triad distribution"
# The same report again, strictly, from here: every file counts, one node measured twice.
out=$("$bin" fleet --strict "$D/job/results") || fail "gpuaudit fleet --strict exited $?"
grep -q '^fleet: 2 results, 1 nodes, 1 devices; 0 not counted' <<< "$out" || fail "unexpected summary: $out"
say "ok: 2 tasks measured, aggregated by a dependent job; $(head -n1 <<< "$out")"
