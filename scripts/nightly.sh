#!/usr/bin/env bash
# The nightly workflow on one machine: the soak shards in sequence, an exhaustive soak, every
# fuzz target, the canaries, the self-test, and with QK_NIGHTLY_MUTANTS=1 the mutation score (hours).
# Reports land in target/nightly/.
#   scripts/nightly.sh [SOAK_SECONDS_PER_SHARD] [SHARDS] [FUZZ_SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shards="${2:-4}"
fuzz_seconds="${3:-60}"
out=target/nightly
mkdir -p "$out"
first_seed=$(( $(date -u +%Y%m%d) * 1000000 ))

cargo build --locked --release --bin qk
qk=target/release/qk
status=0

for ((i = 0; i < shards; i++)); do
    echo "== soak shard $i/$shards ($seconds s)"
    "$qk" soak --seconds "$seconds" --first-seed "$first_seed" --shard "$i/$shards" \
        --faults mixed --check-determinism --json "$out/soak-shard-$i.json" \
        --html "$out/soak-shard-$i.html" || status=1
done

echo "== merged soak report ($out/soak-merged.html)"
shard_reports=()
for ((i = 0; i < shards; i++)); do
    if [ -f "$out/soak-shard-$i.json" ]; then
        shard_reports+=("$out/soak-shard-$i.json")
    fi
done
if [ "${#shard_reports[@]}" -gt 0 ]; then
    "$qk" report merge "${shard_reports[@]}" --json "$out/soak-merged.json" \
        --html "$out/soak-merged.html" || status=1
else
    echo "no shard wrote a report"
    status=1
fi

echo "== exhaustive soak ($seconds s)"
"$qk" soak --exhaustive --max-ops 12 --seconds "$seconds" --json "$out/soak-exhaustive.json" \
    --html "$out/soak-exhaustive.html" || status=1

echo "== fuzz ($fuzz_seconds s per target)"
fuzz/run.sh "$fuzz_seconds" || status=1

if [ "${QK_NIGHTLY_MUTANTS:-0}" = 1 ]; then
    echo "== mutants (a sample of about 300; hours on one machine)"
    scripts/mutants.sh || status=1
fi

echo "== canaries (known engine bugs the soak must find; 60 s per soak)"
scripts/canaries.sh 60 | tee "$out/canaries.md" || status=1

echo "== selftest"
"$qk" selftest | tee "$out/selftest.txt" || status=1

echo "reports in $out/; new regression histories (if any) in corpus/regressions/"
exit "$status"
