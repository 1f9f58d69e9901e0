#!/usr/bin/env bash
# Renders qk's two HTML pages in a real browser (headless Chromium from Debian's packages,
# installed here if missing) and fails on a JavaScript error, a page that does not load, or a
# drawing left empty. With --update-docs it also refreshes the screenshots README shows
# (docs/timeline.png, docs/soak-report.png).
#
#   scripts/browser-check.sh [--update-docs]
#
# QK_BIN=PATH uses that qk binary instead of building one.
#
# Not in the default test command: it needs a browser. The pages it checks:
#   - a crash timeline: `qk replay --seed 1 --family local --planted skip-fsync --html`
#     (a planted bug that loses unsynced writes at a power loss);
#   - a soak report: `qk soak --family memory --family local --family local+redb
#     --seeds 0..3 --html`.
set -euo pipefail
cd "$(dirname "$0")/.."

update_docs=false
if [[ "${1:-}" == "--update-docs" ]]; then update_docs=true; fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium (Debian package)"
    if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
fi

qk=${QK_BIN:-}
if [[ -z "$qk" ]]; then
    echo "== building qk"
    cargo build --locked --release --bin qk
    qk=target/release/qk
fi
out=target/browser-check
rm -rf "$out"
mkdir -p "$out"

echo "== writing the pages"
set +e
"$qk" replay --seed 1 --family local --planted skip-fsync --quiet --html "$out/timeline.html" \
    >"$out/replay.txt" 2>&1
replay_code=$?
set -e
if [[ $replay_code -ne 1 ]]; then
    echo "qk replay should find the planted bug (exit 1), exited $replay_code" >&2
    cat "$out/replay.txt" >&2
    exit 1
fi
"$qk" soak --family memory --family local --family local+redb --seeds 0..3 --no-regressions \
    --quiet --json "$out/soak.json" --html "$out/soak.html" >"$out/soak.txt"

# One page: loaded, no console error, its DOM holds the drawing, and the screenshot is not
# blank (enough pixels that are neither white nor near white).
check_page() {
    local name=$1 min_marks=$2
    local page="$out/$name.html"
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr \
        --v=0 --virtual-time-budget=2000 --dump-dom "file://$PWD/$page" \
        >"$out/$name.dom" 2>"$out/$name.log" || {
        echo "$name: chromium failed" >&2
        cat "$out/$name.log" >&2
        exit 1
    }
    if grep -E "Uncaught|CONSOLE\(.*error|:ERROR:CONSOLE" "$out/$name.log"; then
        echo "$name: JavaScript error in the page" >&2
        exit 1
    fi
    local marks
    marks=$(grep -o "<rect" "$out/$name.dom" | wc -l)
    if [[ $marks -lt $min_marks ]]; then
        echo "$name: the rendered page holds $marks drawn marks, expected at least $min_marks" >&2
        exit 1
    fi
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1300 \
        --screenshot="$PWD/$out/$name.png" "file://$PWD/$page" >/dev/null 2>&1
    python3 scripts/png_ink.py "$out/$name.png" 2000
    echo "$name: loaded, $marks marks, screenshot $out/$name.png"
}

check_page timeline 100
check_page soak 20

if $update_docs; then
    cp "$out/timeline.png" docs/timeline.png
    cp "$out/soak.png" docs/soak-report.png
    echo "== docs/timeline.png and docs/soak-report.png updated"
fi
echo "== browser check passed"
