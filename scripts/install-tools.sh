#!/usr/bin/env bash
# Installs the tools the project's scripts need, each only when it is missing or at another
# version:
#   scripts/install-tools.sh [mutants] [fuzz] [canaries]      (no argument: all of them)
# - cargo-mutants (pinned) for scripts/mutants.sh;
# - cargo-fuzz and a nightly toolchain for fuzz/run.sh;
# - jq and taskset (Debian's jq and util-linux) for scripts/canaries.sh.
# The default test command (`cargo test --locked`) needs none of them.
set -euo pipefail

MUTANTS_VERSION=27.1.0

want=("$@")
[ "${#want[@]}" -gt 0 ] || want=(mutants fuzz canaries)

for tool in "${want[@]}"; do
    case "$tool" in
        mutants)
            if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $MUTANTS_VERSION" ]; then
                cargo install cargo-mutants --locked --version "$MUTANTS_VERSION"
            fi
            ;;
        fuzz)
            if ! rustup run nightly rustc --version >/dev/null 2>&1; then
                rustup toolchain install nightly --profile minimal
            fi
            if ! cargo fuzz --version >/dev/null 2>&1; then
                cargo install cargo-fuzz --locked
            fi
            ;;
        canaries)
            missing=()
            command -v jq >/dev/null 2>&1 || missing+=(jq)
            command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
            if [ "${#missing[@]}" -gt 0 ]; then
                sudo=""
                [ "$(id -u)" = 0 ] || sudo=sudo
                $sudo apt-get update -qq
                $sudo apt-get install -y -qq "${missing[@]}"
            fi
            ;;
        *)
            echo "install-tools.sh: unknown tool $tool (known: mutants, fuzz, canaries)" >&2
            exit 2
            ;;
    esac
done
