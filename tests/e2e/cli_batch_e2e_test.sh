#!/usr/bin/env bash
# End-to-end test of gpumigctl's batch forms against a real gpumigd:
#   gpumigctl create SIZE --count N, gpumigctl migrate H1 H2 ... REGION,
#   gpumigctl destroy H1 H2 ... -- one CreateBatch / MigrateBatch /
#   DestroyBatch each, a line per entry in request order, then the fence
#   array; --json; exit codes (the first failed entry's code).
# Starts //daemon:gpumigd on a unix socket in $TEST_TMPDIR; killed on exit.
#
# Outside Bazel: GPUMIGD=path/to/gpumigd GPUMIGCTL=path/to/gpumigctl \
#   tests/e2e/cli_batch_e2e_test.sh
set -uo pipefail

# shellcheck source=tests/e2e/ctl_harness.sh
source "$(dirname "$0")/ctl_harness.sh"

step "start gpumigd"
CONFIG="$TMP/gpumigd.textproto"
cat >"$CONFIG" <<'CONF'
backend: "sim"
regions { name: "lmem" kind: LMEM size: "16MiB" aperture: "4MiB" }
regions { name: "smem" kind: SMEM size: "64MiB" }
CONF
"$GPUMIGD" --config="$CONFIG" --socket="$SOCK" >"$LOG" 2>&1 &
DAEMON_PID=$!
wait_ready

step "create --count: one line per entry, then the array"
ok ctl create 4K --count 5 --placements smem,lmem --wait
[ "$(grep -c '^created obj-' "$TMP/out")" -eq 5 ] || fail "not 5 created lines"
out_has '^batch: 5 entries, 5 ok, 0 failed; fence array [0-9]+ SIGNALED BLIT_OK \(5 members'
mapfile -t H < <(sed -n 's/^created \(obj-[0-9]*\):.*/\1/p' "$TMP/out")
[ "${#H[@]}" -eq 5 ] || fail "expected 5 handles"

step "create --count --quiet prints handles only"
ok ctl create 8K --count 3 --quiet
[ "$(grep -c '^obj-[0-9]*$' "$TMP/out")" -eq 3 ] || fail "not 3 handles"
mapfile -t Q <"$TMP/out"

step "create --count --json"
ok ctl --json create 4K --count 2 --placements smem
json_check 'len(d["entries"]) == 2 and d["succeeded"] == 2 and d["failed"] == 0'
json_check 'all(e["error"] == "OK" and e["object"]["region"] == "smem" for e in d["entries"])'
json_check 'd["fence"] is None and d["fence_id"] > 0'
J1=$(python3 -c 'import json,sys; print(" ".join(e["handle"] for e in json.load(open(sys.argv[1]))["entries"]))' "$TMP/out")

step "migrate H1 H2 ... REGION with --wait"
ok ctl migrate "${H[@]}" lmem --wait
for h in "${H[@]}"; do out_has "^$h -> lmem: fence [0-9]+$"; done
out_has '^batch: 5 entries, 5 ok, 0 failed; fence array [0-9]+ SIGNALED BLIT_OK'
ok ctl --json get "${H[2]}"
json_check 'd["region"] == "lmem"'

step "migrate --json: request order, array members"
ok ctl --json migrate "${H[1]}" "${H[0]}" smem --wait
json_check '[e["handle"] for e in d["entries"]] == ["'"${H[1]}"'", "'"${H[0]}"'"]'
json_check 'd["fence"]["kind"] == "ARRAY" and d["fence"]["state"] == "SIGNALED"'
json_check 'd["fence"]["array"]["members"] == 2 and d["fence"]["array"]["member_fence_ids"] == [e["fence_id"] for e in d["entries"]]'

step "a missing entry fails alone; exit is its code (3 NOT_FOUND)"
expect 3 ctl migrate "${H[3]}" obj-999999 "${H[4]}" smem --wait
out_has "^${H[3]} -> smem: fence"
out_has '^obj-999999: NOT_FOUND'
out_has "^${H[4]} -> smem: fence"
out_has '2 ok, 1 failed'

step "a malformed batch is refused whole (exit 5), nothing moves"
expect 5 ctl migrate "${H[0]}" "${H[0]}" lmem
err_has 'INVALID_ARGUMENT.*entries\[1\]'
ok ctl --json get "${H[0]}"
json_check 'd["region"] == "smem"'
expect 5 ctl migrate "${H[0]}" not-a-handle lmem
err_has 'entries\[1\]\.handle'

step "single forms are unchanged"
ok ctl migrate "${H[0]}" lmem --wait
out_has 'state'
ok ctl destroy "${Q[0]}"
out_has "^destroyed ${Q[0]}$"

step "destroy H1 H2 ...: per entry; a second time NOT_FOUND (exit 3)"
ok ctl destroy "${H[@]}" "${Q[1]}" --wait
[ "$(grep -c '^destroyed obj-' "$TMP/out")" -eq 6 ] || fail "not 6 destroyed lines"
out_has 'fence array [0-9]+ SIGNALED'
expect 3 ctl destroy "${H[0]}" "${Q[2]}"
out_has "^${H[0]}: NOT_FOUND"
out_has "^destroyed ${Q[2]}$"
# shellcheck disable=SC2086
ok ctl --json destroy $J1
json_check 'd["succeeded"] == 2'

step "bad --count is a usage error (exit 2)"
expect 2 ctl create 4K --count 0
expect 2 ctl create 4K --count 4097
expect 2 ctl create 4K --count many

step "nothing left"
ok ctl --json list
json_check 'len(d) == 0 if isinstance(d, list) else len(d.get("objects", [])) == 0'
echo "PASS"
