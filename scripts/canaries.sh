#!/usr/bin/env bash
# Canaries: the harness must rediscover real, published engine bugs nobody planted.
#
# For each canary below, this script builds a copy of the tree against the engine's known-buggy
# version (the copy's Cargo.toml pins it; the cargo feature switches on the API shims that
# version needs), runs the *default* soak of the affected family on one core for a budget, and
# reports what it found: seeds and CPU-seconds to the first failure, the check and its text, and
# the history length the failure shrinks to. Then the negative control: the same budget on the
# fixed version must find nothing. Then the ablation table: the buggy version again with each
# part of the fault model switched off in turn (`qk soak --ablate`), which shows what each part
# is worth.
#
#   scripts/canaries.sh [BUDGET_SECONDS] [--no-ablation]
#
# Output: Markdown tables on stdout and in target/canaries/report.md. Exit status 1 when a canary
# is not found, or its negative control finds something.
#
# Adding a canary is one line in CANARIES (and, when the old version lacks an API the family
# uses, a shim behind the feature in the family's code: see src/families/redb/engine.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh canaries

budget=60
ablation=1
for arg in "$@"; do
    case "$arg" in
        --no-ablation) ablation=0 ;;
        *) budget="$arg" ;;
    esac
done

# One canary per line:
#   name | crate | buggy version | its cargo feature (shims) | fixed in | control version |
#   its cargo feature | soak family | what it breaks
# The control is the first version the soak finds nothing in within the budget: the fixed
# version itself when it has no other bug the soak finds.
CANARIES=(
    "redb-file-growth|redb|4.1.0|canary-redb-4-1|4.2.0|4.5.0||redb|the set_len that grows the file is not durable before the header that depends on it (redb fd82cedb)"
)
PARTS=(torn-writes subset-persistence lost-set-len media-faults exports recovery-crashes)

out=target/canaries
mkdir -p "$out"
report="$out/report.md"
: >"$report"
status=0

say() { echo "$*" | tee -a "$report"; }

# Builds the tree with `crate` pinned to `version` and `feature` on; prints the binary's path.
build() {
    local crate="$1" version="$2" feature="$3"
    local dir="$out/src-$crate-$version" target="$out/target-$crate-$version"
    rm -rf "$dir"
    mkdir -p "$dir"
    git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$dir"
    sed -i "s/^$crate = \"[^\"]*\"/$crate = \"=$version\"/" "$dir/Cargo.toml"
    grep -q "^$crate = \"=$version\"" "$dir/Cargo.toml" || {
        echo "canaries: no '$crate = ...' dependency line to pin in Cargo.toml" >&2
        exit 2
    }
    (cd "$dir" && cargo update --quiet -p "$crate" --precise "$version")
    CARGO_TARGET_DIR="$target" cargo build --quiet --release ${feature:+--features "$feature"} \
        --bin qk --manifest-path "$dir/Cargo.toml" >&2
    echo "$target/release/qk"
}

# Runs a soak on one core; prints its CPU seconds (user + system) and leaves its JSON in $2
# (no JSON when the harness itself crashed: then the script stops, since nothing it reported
# could be trusted).
soak_cpu() {
    local qk="$1" json="$2"
    shift 2
    rm -f "$json"
    (
        taskset -c 0 "$qk" soak "$@" --no-shrink --no-regressions --json "$json" \
            >"$json.txt" 2>&1 || true
        times
    ) | tail -n 1 | awk '{
        split($1, u, /[ms]/); split($2, s, /[ms]/);
        printf "%.1f", u[1] * 60 + u[2] + s[1] * 60 + s[2]
    }'
}

# Whether the soak that should have written report $1 did; when it did not, the process died
# (an engine that aborts, e.g. a panic while unwinding, cannot be contained in-process): says
# so on stderr.
reported() {
    if [ -s "$1" ]; then
        return 0
    fi
    echo "canaries: the soak died without a report; its output ($1.txt) ends:" >&2
    tail -n 3 "$1.txt" >&2
    return 1
}

field() { jq -r "$1" "$2"; }

say "| canary | engine | fixed in | found | seeds to first failure | CPU s | check | failure | shrunk ops | negative control |"
say "|---|---|---|---|---|---|---|---|---|---|"
ablation_rows=()
for line in "${CANARIES[@]}"; do
    IFS='|' read -r name crate buggy feature fixed control_version control_feature family what \
        <<<"$line"
    echo "== $name: building $crate $buggy and $control_version" >&2
    qk_buggy=$(build "$crate" "$buggy" "$feature")
    qk_fixed=$(build "$crate" "$control_version" "$control_feature")

    json="$out/$name-find.json"
    cpu=$(soak_cpu "$qk_buggy" "$json" --family "$family" --seconds "$budget" --fail-fast)
    seeds=-
    reported "$json" && seeds=$(field .seeds_run "$json")
    if [ -s "$json" ] && [ "$(field .failures_total "$json")" -gt 0 ]; then
        found=yes
        check=$(field '.failures[0].failure.check' "$json")
        text=$(field '.failures[0].failure.difference' "$json" | head -c 200 | tr '|\n' '/ ')
        replay=$(field '.failures[0].replay' "$json")
        # The replay line, shrinking on (its own binary, not `cargo run`).
        read -r -a replay_args <<<"${replay#cargo run --release --bin qk -- soak }"
        rm -f "$out/$name-shrink.json"
        "$qk_buggy" soak "${replay_args[@]}" --no-regressions --json "$out/$name-shrink.json" \
            >"$out/$name-shrink.json.txt" 2>&1 || true
        shrunk=-
        if reported "$out/$name-shrink.json"; then
            shrunk=$(field '.failures[0].shrunk | length' "$out/$name-shrink.json")
        fi
    elif [ -s "$json" ]; then
        found=NO
        check=- text=- shrunk=-
        status=1
    else
        found="NO (the soak died)"
        check=- text=- shrunk=-
        status=1
    fi

    control="$out/$name-control.json"
    soak_cpu "$qk_fixed" "$control" --family "$family" --seconds "$budget" >/dev/null
    if ! reported "$control"; then
        negative="$crate $control_version: the soak DIED"
        status=1
    elif [ "$(field .failures_total "$control")" -eq 0 ]; then
        control_seeds=$(field .seeds_run "$control")
        negative="$crate $control_version clean ($control_seeds seeds)"
    else
        control_seeds=$(field .seeds_run "$control")
        negative="$crate $control_version FOUND $(field .failures_total "$control") ($control_seeds seeds)"
        status=1
    fi
    say "| $name | $crate $buggy | $fixed | $found | $seeds | $cpu | $check | $text | $shrunk | $negative |"

    if [ "$ablation" = 1 ]; then
        for part in "${PARTS[@]}"; do
            json="$out/$name-without-$part.json"
            cpu=$(soak_cpu "$qk_buggy" "$json" --family "$family" --seconds "$budget" \
                --fail-fast --ablate "$part")
            if ! reported "$json"; then
                ablation_rows+=("| $name | $part | the soak died (the engine aborted) | - | $cpu |")
                continue
            fi
            if [ "$(field .failures_total "$json")" -gt 0 ]; then
                verdict="found ($(field '.failures[0].failure.check' "$json"))"
            else
                verdict="not found"
            fi
            ablation_rows+=("| $name | $part | $verdict | $(field .seeds_run "$json") | $cpu |")
        done
    fi
done

if [ "$ablation" = 1 ]; then
    say ""
    say "| canary | switched off | within the budget | seeds | CPU s |"
    say "|---|---|---|---|---|"
    for row in "${ablation_rows[@]}"; do
        say "$row"
    done
fi
say ""
say "budget: $budget s per soak on one core; details in $out/"
exit "$status"
