#!/usr/bin/env bash
# The image-caption index's bad input, through tests/image_text_probe: one `loom: error:` line naming the
# file (and line), exit 2, before anything else happens. Messages in detail: tests/unit/test_image_text_index.cpp.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PROBE=${LOOM_BUILD_DIR:?}/tests/image_text_probe

expect_error "image index '$TMP/none.json' does not exist" "$PROBE" index json "$TMP/none.json"
printf '{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg"\n' > "$TMP/bad.json"
expect_error "line 2: not JSON" "$PROBE" index json "$TMP/bad.json"
printf '{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg", "text": "y"}\n' > "$TMP/nokey.json"
expect_error "line 2: has no 'caption' key (--json-caption-key)" "$PROBE" index json "$TMP/nokey.json"
printf 'filepath\tcaption\na.jpg\tx\n' > "$TMP/nokey.csv"
expect_error "line 1: the header has no 'title' column (--csv-caption-key)" "$PROBE" index csv "$TMP/nokey.csv"
printf 'filepath\ttitle\na.jpg\tx\n' > "$TMP/ok.csv"
run "$PROBE" index csv "$TMP/ok.csv"
[ "$CODE" -eq 0 ] && grep -q '"entries":1' <<<"$OUT" || fail "a good CSV index loads"
printf '' > "$TMP/empty.json"
expect_error "has no entries" "$PROBE" index json "$TMP/empty.json"
finish
