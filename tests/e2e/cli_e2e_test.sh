#!/usr/bin/env bash
# End-to-end test of gpumigctl against a real gpumigd.
#
# Starts //daemon:gpumigd on a unix socket in $TEST_TMPDIR with fault
# injection enabled and a small config (and, when openssl can make test
# certificates, a mutual-TLS TCP listener on 127.0.0.1), waits for it with
# `gpumigctl ping`, then drives every gpumigctl subcommand and checks output,
# content (cmp, FNV-1a computed independently in python3) and exit codes. The
# TLS client is a second, non-admin principal (PERMISSION_DENIED checks). The
# daemon is killed on exit.
#
# Outside Bazel: GPUMIGD=path/to/gpumigd GPUMIGCTL=path/to/gpumigctl \
#   tests/e2e/cli_e2e_test.sh
set -uo pipefail

# --- Harness: binaries, scratch space, helpers ------------------------------

# shellcheck source=tests/e2e/ctl_harness.sh
source "$(dirname "$0")/ctl_harness.sh"
MAKE_CERTS=$(find_bin "${MAKE_CERTS:-}" tests/testing/make_test_certs.sh) || exit 1

# --- Start the daemon ---------------------------------------------------------

step "start gpumigd"
CONFIG="$TMP/gpumigd.textproto"
cat >"$CONFIG" <<'EOF'
backend: "sim"
regions { name: "lmem" kind: LMEM size: "192MiB" aperture: "32MiB" }
regions { name: "smem" kind: SMEM size: "256MiB" }
EOF
# Mutual-TLS TCP too, when openssl can make test certificates.
TLS_FLAGS=()
HAVE_TLS=0
if "$MAKE_CERTS" "$TMP" client e2e-rig; then
  HAVE_TLS=1
  TLS_FLAGS=(--tcp_listen=127.0.0.1:0 "--tls_cert=$TMP/server.pem"
    "--tls_key=$TMP/server.key" "--tls_client_ca=$TMP/ca.pem")
fi
"$GPUMIGD" --config="$CONFIG" --socket="$SOCK" --enable_fault_injection \
  "${TLS_FLAGS[@]}" >"$LOG" 2>&1 &
DAEMON_PID=$!
wait_ready

# --- Usage and help ---------------------------------------------------------

step "help and usage errors"
ok ctl help
out_has "^usage: gpumigctl"
out_has "Exit codes"
ok ctl --help
for cmd in create destroy get list write read migrate pin unpin "exec fill" \
  "exec copy" "exec checksum" "fence get" "fence wait" "fence watch" regions \
  evict "fault inject" "fault clear" "fault list" devices stats info ping \
  selftest; do
  # shellcheck disable=SC2086
  ok ctl $cmd --help
  out_has "^usage: gpumigctl $cmd"
  # shellcheck disable=SC2086
  ok ctl help $cmd
done
ok ctl help exec
out_has "exec checksum"
expect 2 ctl frobnicate
err_has "unknown command 'frobnicate'"
err_has "^usage: gpumigctl"
expect 2 ctl fence frob
expect 2 ctl exec
expect 2 ctl list --bogus
err_has "unknown flag --bogus"
expect 2 ctl get
err_has "missing argument"
expect 2 ctl get a b
expect 2 ctl fault inject fail_blit
err_has "exactly one trigger"
expect 2 ctl fault clear
expect 2 ctl exec fill obj-1
expect 2 "$GPUMIGCTL"

# --- Daemon info -------------------------------------------------------------

step "ping, info, devices, stats"
ok ctl ping
out_has "^pong from unix:$SOCK"
ok ctl --json ping
json_check 'd["ok"] is True'
ok ctl info
out_has "^backend +sim"
out_has "^fault injection +enabled"
ok ctl info --json
json_check 'd["backend"] == "sim" and d["fault_injection_enabled"] is True'
json_check 'd["limits"]["max_chunk_bytes"] == 1048576'
IS_ADMIN=$(py 'd["caller"]["is_admin"]')
ok ctl devices
ok ctl devices --json
json_check 'isinstance(d["devices"], list)'
ok ctl stats
out_has "^objects "
out_has "^NAME +KIND"
ok ctl stats --json
json_check '[r["name"] for r in d["regions"]] == ["lmem", "smem"]'
json_check 'd["objects"] == 0'

step "regions"
ok ctl regions
out_has "^NAME +KIND +SIZE +APERTURE +USED +FREE +OBJECTS +EVICTIONS +BLITS +FAILURES +FALLBACKS +UNKNOWN$"
out_has "^lmem +LMEM +192 MiB +32 MiB "
out_has "^smem +SMEM +256 MiB +256 MiB "
ok ctl regions --json
json_check 'd["regions"][0]["size_bytes"] == 192 << 20'
ok ctl regions lmem
out_has "^aperture +32 MiB"
ok ctl --json regions smem
json_check 'd["name"] == "smem" and d["kind"] == "SMEM"'
expect 3 ctl regions vram
err_has "^gpumigctl: regions: NOT_FOUND: "

# --- Objects: create, write, read -------------------------------------------

step "create, get, list"
ok ctl --json create 1M --label e2e-main --placements lmem,smem --cpu
H=$(py 'd["object"]["handle"]')
json_check 'd["object"]["size_bytes"] == 1048576 and d["fence_id"] > 0'
json_check 'd["object"]["label"] == "e2e-main" and d["object"]["region"] == "lmem"'
ok ctl create 4K --quiet
H2=$(cat "$TMP/out")
if [ -z "$H2" ] || [ "$H2" = "$H" ]; then
  fail "create --quiet printed '$H2'"
fi
ok ctl create 8KiB
out_has "^created [^ ]+: 8 KiB in lmem, clear fence [0-9]+$"
ok ctl get "$H"
out_has "^handle +$H$"
out_has "^size +1048576 \(1 MiB\)$"
out_has "^label +e2e-main$"
ok ctl get "$H" --json
json_check 'd["handle"] == "'"$H"'" and d["state"] == "OK" and d["pin_count"] == 0'
ok ctl list
out_has "^HANDLE +SIZE +REGION +STATE"
out_has "^$H +1 MiB +lmem +OK "
ok ctl list --json
json_check 'len(d["objects"]) == 3'
if [ "$IS_ADMIN" = "true" ]; then
  ok ctl list --all
  out_has "OWNER"
fi

step "write and read back (file, stdin/stdout, offsets)"
head -c 1048576 /dev/urandom >"$TMP/data.bin"
ok ctl write "$H" "$TMP/data.bin"
out_has "^wrote 1048576 bytes"
ok ctl read "$H" "$TMP/back.bin"
out_has "^read 1048576 bytes"
cmp -s "$TMP/data.bin" "$TMP/back.bin" || fail "read back differs (file)"
"$GPUMIGCTL" --socket "$SOCK" read "$H" >"$TMP/back2.bin" 2>"$TMP/err" ||
  fail "read to stdout failed"
cmp -s "$TMP/data.bin" "$TMP/back2.bin" || fail "read back differs (stdout)"
# 1 MiB is over the shared-buffer threshold: the bytes went through a
# shared buffer on this unix socket, and stats say so.
ctl --json stats >"$TMP/out" 2>"$TMP/err" || fail "stats failed"
json_check 'd["shared_buffers"]["enabled"] and d["shared_buffers"]["bytes_written"] >= 1048576 and d["shared_buffers"]["bytes_read"] >= 2 * 1048576'
ok ctl stats
out_has "^shared-buffer copies +"
head -c 10000 /dev/urandom >"$TMP/small.bin"
ctl write "$H" - --offset 8K <"$TMP/small.bin" >"$TMP/out" 2>"$TMP/err" ||
  fail "write from stdin failed"
ctl --json write "$H" --offset 0x2000 <"$TMP/small.bin" >"$TMP/out" 2>"$TMP/err" ||
  fail "write from stdin (no FILE) failed"
json_check 'd["bytes_written"] == 10000 and d["offset"] == 8192'
ctl read "$H" - --offset 8K --length 10000 >"$TMP/small_back.bin" 2>"$TMP/err" ||
  fail "read with offset failed"
cmp -s "$TMP/small.bin" "$TMP/small_back.bin" || fail "offset round trip differs"
# Keep data.bin the object's full content for later checks.
python3 - "$TMP/data.bin" "$TMP/small.bin" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
small = open(sys.argv[2], "rb").read()
data[8192:8192 + len(small)] = small
open(sys.argv[1], "wb").write(data)
EOF
ok ctl read "$H" "$TMP/back.bin"
cmp -s "$TMP/data.bin" "$TMP/back.bin" || fail "content after offset write differs"
ok ctl --json read "$H" "$TMP/back.bin" --length 4K
json_check 'd["bytes_read"] == 4096'

step "64 MiB round trip"
head -c 67108864 /dev/urandom >"$TMP/big.bin"
ok ctl --json create 64MiB --placements smem
HBIG=$(py 'd["object"]["handle"]')
ok ctl write "$HBIG" "$TMP/big.bin"
out_has "^wrote 67108864 bytes \(64 MiB\)"
"$GPUMIGCTL" --socket "$SOCK" read "$HBIG" - >"$TMP/big_back.bin" 2>"$TMP/err" ||
  fail "64 MiB read failed"
cmp -s "$TMP/big.bin" "$TMP/big_back.bin" || fail "64 MiB round trip differs"
ok ctl destroy "$HBIG"
rm -f "$TMP/big.bin" "$TMP/big_back.bin"

# --- Migration and fences ---------------------------------------------------

step "migrate, fence get, fence wait"
ok ctl migrate "$H" smem --wait
out_has "^outcome +BLIT_OK$"
out_has "^error +none$"
out_has "^regions +lmem -> smem$"
ok ctl --json migrate "$H" lmem
FENCE=$(py 'd["fence_id"]')
json_check 'd["fence"] is None and d["region"] == "lmem"'
ok ctl fence wait "$FENCE" --timeout 10s
out_has "^fence +$FENCE$"
out_has "^state +SIGNALED$"
out_has "^outcome +BLIT_OK$"
out_has "^error +none$"
ok ctl --json fence get "$FENCE"
json_check 'd["state"] == "SIGNALED" and d["kind"] == "MIGRATE" and d["handle"] == "'"$H"'"'
json_check 'd["error_code"] == 0 and d["target_region"] == "lmem"'
ok ctl read "$H" "$TMP/back.bin"
cmp -s "$TMP/data.bin" "$TMP/back.bin" || fail "content changed by migrations"
expect 3 ctl fence get 999999999
expect 5 ctl fence get 0
expect 5 ctl fence wait notanumber
err_has "^gpumigctl: fence wait: INVALID_ARGUMENT: bad fence id"
expect 5 ctl migrate "$H" vram

step "fault inject fail_blit: migration falls back to CPU copy"
if [ "$IS_ADMIN" = "true" ]; then
  ok ctl --json create 64K --placements smem,lmem --cpu --label fallback
  HF=$(py 'd["object"]["handle"]')
  head -c 65536 /dev/urandom >"$TMP/fb.bin"
  ok ctl write "$HF" "$TMP/fb.bin"
  ok ctl fault inject fail_blit --next 1 --op copy
  out_has "^fault [0-9]+ armed: FAIL_BLIT next 1"
  ok ctl fault list
  out_has "^ID +KIND +TRIGGER"
  out_has "FAIL_BLIT +next 1 +\* +MIGRATE"
  ok ctl --json migrate "$HF" lmem
  FFB=$(py 'd["fence_id"]')
  ok ctl fence wait "$FFB"
  out_has "^outcome +FALLBACK_COPY$"
  out_has "^error +none$"
  out_has "^engine error +[A-Z_]+: "
  ok ctl --json fence wait "$FFB"
  json_check 'd["outcome"] == "FALLBACK_COPY" and d["error_code"] == 0 and d["engine_error_code"] != 0'
  ok ctl read "$HF" "$TMP/fb_back.bin"
  cmp -s "$TMP/fb.bin" "$TMP/fb_back.bin" || fail "fallback copy content differs"
  ok ctl --json regions
  json_check 'sum(r["counters"]["fallback_copies"] for r in d["regions"]) >= 1'
  json_check 'sum(r["counters"]["blit_failures"] for r in d["regions"]) >= 1'
  ok ctl regions
  # FALLBACKS is the next-to-last column.
  awk 'NR > 1 && $(NF-1) + 0 >= 1 { found = 1 } END { exit !found }' \
    "$TMP/out" || fail "regions table shows no fallback"
  ok ctl --json fault list
  json_check 'len(d["faults"]) == 1 and d["faults"][0]["fired_count"] == 1 and d["faults"][0]["exhausted"] is True'
  FAULT_ID=$(py 'd["faults"][0]["id"]')
  ok ctl fault clear "$FAULT_ID"
  out_has "^cleared 1 fault"
  expect 3 ctl fault clear "$FAULT_ID"
  ok ctl fault inject fail_clear --probability 0.5 --seed 7 --region smem --op clear
  ok ctl fault inject engine_latency --always --latency-us 10
  ok ctl --json fault clear --all
  json_check 'd["cleared"] == 2'
  ok ctl fault list
  out_has "^no faults armed$"
  expect 5 ctl fault inject explode --always
  expect 5 ctl fault inject fail_blit --probability 1.5
  expect 5 ctl fault inject fail_blit --next 1 --region vram

  step "unknown state: fail_blit + ban_memcpy outside the aperture"
  ok ctl --json create 64K --placements smem,lmem --label doomed
  HU=$(py 'd["object"]["handle"]')
  ok ctl fault inject ban_memcpy --next 1
  ok ctl fault inject fail_blit --next 1 --op copy
  expect 7 ctl migrate "$HU" lmem --wait
  out_has "^outcome +UNKNOWN_STATE$"
  err_has "UNKNOWN_STATE"
  expect 7 ctl read "$HU" "$TMP/doomed.bin"
  err_has "^gpumigctl: read: DATA_LOSS: "
  ok ctl --json get "$HU"
  json_check 'd["state"] == "UNKNOWN"'
  ok ctl fault clear --all
  ok ctl destroy "$HU"

  step "fence wait timeout"
  ok ctl fault inject engine_latency --always --latency-us 4000000
  ok ctl --json create 4K
  FSLOW=$(py 'd["fence_id"]')
  expect 8 ctl fence wait "$FSLOW" --timeout 100ms
  err_has "^gpumigctl: fence wait: DEADLINE_EXCEEDED: "
  ok ctl fault clear --all
  ok ctl fence wait "$FSLOW" --timeout 10s
else
  expect 4 ctl fault list
  expect 4 ctl fault inject fail_blit --next 1
fi

# --- Engine commands -------------------------------------------------------

step "exec fill, copy, checksum"
ok ctl --json create 64K --placements lmem,smem --cpu
HA=$(py 'd["object"]["handle"]')
ok ctl --json create 64K --placements lmem,smem --cpu
HB=$(py 'd["object"]["handle"]')
ok ctl exec fill "$HA" --value 0xab --wait
out_has "^outcome +BLIT_OK$"
out_has "^kind +EXEC$"
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"\xab" * 65536)' "$TMP/ab.bin"
ok ctl exec checksum "$HA"
[ "$(awk '{print $1}' "$TMP/out")" = "$(fnv_file "$TMP/ab.bin")" ] ||
  fail "checksum of fill differs: $(cat "$TMP/out") vs $(fnv_file "$TMP/ab.bin")"
ok ctl --json exec fill "$HA" --value 7 --offset 4K --length 4K
FFILL=$(py 'd["fence_id"]')
ok ctl fence wait "$FFILL"
out_has "^outcome +BLIT_OK$"
python3 -c '
import sys
d = bytearray(b"\xab" * 65536); d[4096:8192] = b"\x07" * 4096
open(sys.argv[1], "wb").write(d)' "$TMP/ab7.bin"
ok ctl read "$HA" "$TMP/ab7_back.bin"
cmp -s "$TMP/ab7.bin" "$TMP/ab7_back.bin" || fail "fill with range: content differs"
ok ctl exec copy "$HA" "$HB" --wait
out_has "^outcome +BLIT_OK$"
ok ctl --json exec checksum "$HB"
json_check 'd["checksum_hex"] == "'"$(fnv_file "$TMP/ab7.bin")"'"'
json_check 'd["checksum"] == int("'"$(fnv_file "$TMP/ab7.bin")"'", 16)'
json_check 'd["fence"]["outcome"] == "BLIT_OK"'
ok ctl exec copy "$HA" "$HB" --src-offset 4K --dst-offset 0 --length 4K
ok ctl exec checksum "$HB" --length 4K
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"\x07" * 4096)' "$TMP/seven.bin"
[ "$(awk '{print $1}' "$TMP/out")" = "$(fnv_file "$TMP/seven.bin")" ] ||
  fail "checksum after ranged copy differs"
ok ctl exec checksum "$H"
[ "$(awk '{print $1}' "$TMP/out")" = "$(fnv_file "$TMP/data.bin")" ] ||
  fail "checksum of written data differs"
expect 5 ctl exec fill "$HA" --value 256
expect 5 ctl exec fill "$HA" --value 1 --offset 1M
expect 5 ctl exec checksum "$HA" --offset 12Q

# --- Pin, evict, watch ------------------------------------------------------

step "pin and unpin"
ok ctl pin "$H"
out_has "^$H: pin count 1$"
expect 10 ctl migrate "$H" smem
err_has "^gpumigctl: migrate: FAILED_PRECONDITION: "
ok ctl --json unpin "$H"
json_check 'd["pin_count"] == 0'
expect 10 ctl unpin "$H"

step "evict"
if [ "$IS_ADMIN" = "true" ]; then
  ok ctl --json get "$H"
  json_check 'd["region"] == "lmem"'
  ok ctl --json evict lmem --wait
  json_check 'd["region"] == "lmem" and d["objects_evicted"] >= 1'
  ok ctl --json get "$H"
  json_check 'd["region"] == "smem"'
  ok ctl read "$H" "$TMP/back.bin"
  cmp -s "$TMP/data.bin" "$TMP/back.bin" || fail "content changed by eviction"
  ok ctl evict lmem
  out_has "^lmem: evicted [0-9]+ object"
  ok ctl --json regions lmem
  json_check 'd["counters"]["evictions"] >= 1'
  expect 3 ctl evict vram
else
  expect 4 ctl evict lmem
fi

step "fence watch"
# wait_watchers N: until the daemon reports N watchers (bounded).
wait_watchers() {
  for _ in $(seq 1 200); do
    ctl --json stats >"$TMP/out" 2>"$TMP/err" || fail "stats failed"
    [ "$(py 'd["watchers"]')" = "$1" ] && return 0
    sleep 0.05
  done
  fail "the daemon never reported $1 watcher(s)"
}
wait_watchers 0
# The binary itself in the background (not the ctl function), so $! is its
# pid and signals reach it.
"$GPUMIGCTL" --socket "$SOCK" --json fence watch --handle "$H" --count 1 \
  --timeout 20s >"$TMP/watch.out" 2>"$TMP/watch.err" &
WATCH_PID=$!
wait_watchers 1
ok ctl migrate "$H" lmem --wait
wait "$WATCH_PID" || fail "fence watch exited $?: $(cat "$TMP/watch.err")"
cp "$TMP/watch.out" "$TMP/out"
json_check 'd["kind"] == "BLIT_OK" and d["handle"] == "'"$H"'" and d["fence"]["kind"] == "MIGRATE"'
ok ctl fence watch --timeout 300ms
# Human output, ended by SIGTERM (background jobs of a script ignore SIGINT).
wait_watchers 0
"$GPUMIGCTL" --socket "$SOCK" fence watch >"$TMP/watch.out" \
  2>"$TMP/watch.err" &
WATCH_PID=$!
wait_watchers 1
ok ctl migrate "$H" smem --wait
for _ in $(seq 1 100); do
  grep -q "BLIT_OK" "$TMP/watch.out" && break
  sleep 0.05
done
kill -TERM "$WATCH_PID"
wait "$WATCH_PID" || fail "fence watch exited $? on SIGTERM"
grep -qE "^event [0-9]+  BLIT_OK  $H  region smem  fence [0-9]+ MIGRATE BLIT_OK" \
  "$TMP/watch.out" || fail "watch printed: $(cat "$TMP/watch.out")"
expect 2 ctl fence watch --kinds blit_ok --count
expect 5 ctl fence watch --kinds explosions

# --- Self-test ------------------------------------------------------------------

step "selftest"
if [ "$IS_ADMIN" = "true" ]; then
  ok ctl selftest
  out_has "^result +PASSED$"
  ok ctl --json selftest --bytes-per-region 64K --with-faults
  json_check 'd["passed"] is True and d["violations"] == 0'
  expect 5 ctl selftest --bytes-per-region 1000
else
  expect 4 ctl selftest
fi

# --- TCP with mutual TLS (a second, non-admin principal) ----------------------

step "TLS target"
if [ "$HAVE_TLS" -eq 1 ]; then
  PORT=$(sed -nE 's/.*event=listening tcp=127\.0\.0\.1:([0-9]+).*/\1/p' "$LOG" |
    head -n 1)
  [ -n "$PORT" ] || fail "no TCP listening line in the daemon log"
  TARGET="127.0.0.1:$PORT"
  rig() {
    "$GPUMIGCTL" --target "$TARGET" --tls-ca "$TMP/ca.pem" \
      --tls-cert "$TMP/client.pem" --tls-key "$TMP/client.key" "$@"
  }
  ok rig --json info
  json_check 'd["caller"]["name"] == "CN=e2e-rig" and d["caller"]["is_admin"] is False'
  json_check 'd["target"] == "tls:'"$TARGET"'"'
  ok rig info --tls-server-name localhost
  out_has "^caller +CN=e2e-rig"
  ok rig --json create 8K
  HR=$(py 'd["object"]["handle"]')
  head -c 8192 /dev/urandom >"$TMP/rig.bin"
  ok rig write "$HR" "$TMP/rig.bin"
  ok rig read "$HR" "$TMP/rig_back.bin"
  cmp -s "$TMP/rig.bin" "$TMP/rig_back.bin" || fail "TLS round trip differs"
  # Another principal's object, and admin-only commands: PERMISSION_DENIED.
  expect 4 rig read "$H" "$TMP/x.bin"
  err_has "^gpumigctl: read: PERMISSION_DENIED: permission denied$"
  expect 4 rig get "$H"
  expect 4 rig fault list
  expect 4 rig evict lmem
  expect 4 rig list --all
  # The owner sees its own object, the admin may destroy it.
  ok ctl --json list --all
  json_check '"'"$HR"'" in [o["handle"] for o in d["objects"]]'
  ok ctl destroy "$HR"
  # No client certificate: the daemon refuses the handshake.
  expect 9 "$GPUMIGCTL" --target "$TARGET" --tls-ca "$TMP/ca.pem" --timeout 5s ping
  err_has "is gpumigd running\? target $TARGET"
  expect 5 "$GPUMIGCTL" --target "$TARGET" --tls-cert "$TMP/client.pem" ping
  expect 3 "$GPUMIGCTL" --target "$TARGET" --tls-ca "$TMP/nope.pem" ping
  expect 5 ctl --tls-ca "$TMP/ca.pem" ping
else
  echo "(skipped: no openssl)"
fi

# --- Errors ------------------------------------------------------------------

step "error exit codes"
expect 3 ctl get obj-999999
err_has "^gpumigctl: get: NOT_FOUND: "
expect 5 ctl create 12X
err_has "^gpumigctl: create: INVALID_ARGUMENT: bad size '12X'"
expect 5 ctl create 100
err_has "^gpumigctl: create: INVALID_ARGUMENT: "
expect 5 ctl create 0
expect 5 ctl create 4K --placements vram
ok ctl create 192MiB --placements smem --quiet
HFULL=$(cat "$TMP/out")
expect 6 ctl create 96MiB --placements smem
err_has "^gpumigctl: create: RESOURCE_EXHAUSTED: "
ok ctl destroy "$HFULL"
expect 5 ctl read "$H" "$TMP/x.bin" --offset 2M
[ -e "$TMP/x.bin" ] && fail "a failed read left $TMP/x.bin behind"
if [ -w /dev/full ]; then
  ctl list --json >/dev/full 2>"$TMP/err"
  rc=$?
  [ "$rc" -eq 11 ] || fail "list to /dev/full exited $rc, expected 11"
  err_has "^gpumigctl: list: error writing the output$"
fi
expect 5 ctl write "$H" "$TMP/data.bin" --offset 512K
expect 3 ctl write "$H" "$TMP/does-not-exist.bin"
expect 5 ctl --timeout never ping

step "destroy"
ok ctl destroy "$H2"
out_has "^destroyed $H2$"
ok ctl --json destroy "$H"
json_check 'd["destroyed"] is True'
expect 3 ctl get "$H"
expect 3 ctl destroy "$H"
ok ctl --json stats
json_check 'd["rpcs"] and all(m["calls"] >= m["errors"] for m in d["rpcs"])'

step "daemon not running"
expect 9 "$GPUMIGCTL" --socket "$SOCKDIR/nobody-home.sock" ping
err_has "^gpumigctl: ping: UNAVAILABLE: "
err_has "is gpumigd running\? socket $SOCKDIR/nobody-home.sock"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=""
expect 9 ctl list
err_has "is gpumigd running\? socket $SOCK"
GPUMIG_SOCKET="$SOCKDIR/env.sock" "$GPUMIGCTL" ping >"$TMP/out" 2>"$TMP/err"
[ $? -eq 9 ] || fail "GPUMIG_SOCKET ping did not exit 9"
err_has "socket $SOCKDIR/env.sock"

echo "PASS"
