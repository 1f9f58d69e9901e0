#!/usr/bin/env bash
# Mutation score of the harness: cargo-mutants mutates the product code (the families, the
# image, dual write, the validator, the migration state machine) and, for each mutant, runs
# the default soak alone (sims/mutants_soak.rs, over a fixed seed range). A mutant the soak
# does not notice is a bug the harness cannot find.
#
#   scripts/mutants.sh                  an evenly spread sample of about 300 mutants
#   scripts/mutants.sh --sample N       about N mutants (every k-th of the full list)
#   scripts/mutants.sh --all            every mutant
#   scripts/mutants.sh --shard K/N      shard K of N of the sample (or of --all): the nightly job
#   scripts/mutants.sh --list           count the mutants per area and stop
#   scripts/mutants.sh --rerun FILE     exactly the mutants FILE names, one per line as
#                                       cargo-mutants prints them (e.g. an earlier missed.txt)
#   scripts/mutants.sh --in-diff FILE   only mutants on lines a diff changes (a review's check)
# Options: --seeds A..B (the soak's seeds per mutant; default 0..48),
#          --jobs J (parallel mutants; default 1), --timeout S (per mutant test run).
# Results: target/mutants/mutants.out/ (cargo-mutants' own files) and a table per area in
# target/mutants/summary.md, printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

sample=300
shard=""
list=0
jobs=1
timeout=""
rerun=""
in_diff=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --sample) sample="$2"; shift 2 ;;
        --all) sample=0; shift ;;
        --shard) shard="$2"; shift 2 ;;
        --list) list=1; shift ;;
        --seeds) export QK_MUTANTS_SEEDS="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --rerun) rerun="$2"; shift 2 ;;
        --in-diff) in_diff="$2"; shift 2 ;;
        *) echo "mutants.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

scripts/install-tools.sh mutants
export QK_MUTANTS_SEEDS="${QK_MUTANTS_SEEDS:-0..48}"

areas=(src/families src/image src/dual_write src/validate.rs src/migrate.rs)
# The hostile-image generator and the fuzz targets' checks live under src/image/ but are
# harness code, not product: mutating them asks nothing of the harness.
files=(-f 'src/families/**' -f 'src/image/**' -f 'src/dual_write/**' -f src/validate.rs -f src/migrate.rs
       -e 'src/image/hostile/**' -e src/image/fuzz_checks.rs)
out=target/mutants
mkdir -p "$out"

cargo mutants --list "${files[@]}" > "$out/all.txt"
total=$(wc -l < "$out/all.txt")
if [ "$list" = 1 ]; then
    for area in "${areas[@]}"; do
        printf '%-20s %6d\n' "$area" "$(grep -c "^$area" "$out/all.txt" || true)"
    done
    printf '%-20s %6d\n' total "$total"
    exit 0
fi

# Round-robin shard i of m is every m-th mutant of the list, starting at the i-th: spread over
# every file, biased towards none. A sample of about S keeps every k-th (k = total / S); a
# shard K/N of that splits each block of k*N mutants' first N among N machines.
k=1
if [ "$sample" -gt 0 ] && [ "$total" -gt "$sample" ]; then
    k=$(( total / sample ))
fi
index=0
parts=1
if [ -n "$shard" ]; then
    index="${shard%/*}"
    parts="${shard#*/}"
fi
selection=()
if [ $(( k * parts )) -gt 1 ]; then
    selection=(--shard "$index/$(( k * parts ))" --sharding round-robin)
fi
extra=()
[ -n "$timeout" ] && extra+=(--timeout "$timeout")
[ -n "$in_diff" ] && { extra+=(--in-diff "$in_diff"); selection=(); }
if [ -n "$rerun" ]; then
    # One anchored regex per named mutant, its metacharacters escaped: exactly those mutants.
    selection=()
    while IFS= read -r name; do
        [ -z "$name" ] && continue
        extra+=(-F "^$(printf '%s' "$name" | sed -e 's/[][\\.^$*+?(){}|]/\\&/g')\$")
    done < "$rerun"
fi

echo "== cargo mutants: $total mutants in the product code; running ${selection[*]:-all}"
status=0
cargo mutants "${files[@]}" "${selection[@]}" "${extra[@]}" --jobs "$jobs" \
    --minimum-test-timeout 120 --no-shuffle --output "$out" \
    --profile mutants --cargo-arg=--test=mutants_soak || status=$?
# 0: all caught; 2: some missed; 3: some timed out. Anything else is a broken run.
case "$status" in 0|2|3) ;; *) echo "mutants.sh: cargo mutants failed ($status)" >&2; exit "$status" ;; esac

res="$out/mutants.out"
count() {
    if [ -f "$res/$1.txt" ]; then grep -c "^$2" "$res/$1.txt" || true; else echo 0; fi
}
{
    echo "| area | mutants | caught | timeout | missed | unviable | score |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for area in "${areas[@]}" ""; do
        name="${area:-all}"
        c=$(count caught "$area"); t=$(count timeout "$area")
        m=$(count missed "$area"); u=$(count unviable "$area")
        viable=$(( c + t + m ))
        # A timeout is no verdict (a slow machine times out too): the score is over the
        # mutants the soak judged, caught / (caught + missed); timeouts are listed apart.
        score="-"
        [ $(( c + m )) -gt 0 ] && score="$(( (100 * c) / (c + m) ))%"
        echo "| $name | $(( viable + u )) | $c | $t | $m | $u | $score |"
    done
} > "$out/summary.md"
cat "$out/summary.md"
if [ -s "$res/timeout.txt" ]; then
    echo
    echo "timed out (no verdict; rerun them alone with a longer --timeout):"
    cat "$res/timeout.txt"
fi
if [ -s "$res/missed.txt" ]; then
    echo
    echo "missed (the soak did not notice these):"
    cat "$res/missed.txt"
fi
