#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each on the nightly toolchain:
#   fuzz/run.sh SECONDS [TARGET...]
# Installs cargo-fuzz when it is missing. Seeds come from the checked-in corpus/TARGET/;
# new inputs libFuzzer finds go to fuzz/corpus/TARGET/ (ignored by git), crashes to
# fuzz/artifacts/TARGET/. Copy an input worth keeping into corpus/TARGET/ and
# `cargo test --test fuzz_corpus` replays it forever.
set -euo pipefail

seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

"$root/scripts/install-tools.sh" fuzz

cd "$here"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

for target in "${targets[@]}"; do
    mkdir -p "$here/corpus/$target" "$root/corpus/$target"
    echo "== fuzz $target for ${seconds}s"
    # The first corpus directory receives new inputs; the checked-in seeds stay untouched.
    cargo +nightly fuzz run "$target" "$here/corpus/$target" "$root/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576
done
