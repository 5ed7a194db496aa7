#!/bin/bash
# shm_bench --smoke: every row runs against a real gpumigd, content comes
# back exact (the bench exits 1 otherwise), and the JSON carries each case,
# the ratios and the registration figures. Figures are not judged here.
set -euo pipefail
bench="${TEST_SRCDIR}/${TEST_WORKSPACE:-gpumig}/tests/bench/shm_bench"
export GPUMIGD="${TEST_SRCDIR}/${TEST_WORKSPACE:-gpumig}/daemon/gpumigd"
out="${TEST_TMPDIR}/shm_bench.json"
"$bench" --smoke >"$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
rows = doc["rows"]
cases = {(r["case"], r["size_bytes"], r["threads"]) for r in rows}
for threads in (1, 2):
    assert ("empty_rpc", 0, threads) in cases, cases
    assert ("shm_io_4k", 4096, threads) in cases, cases
    for size in (4096, 1 << 20):
        for case in ("memcpy", "stream_write_read", "shm_write_read"):
            assert (case, size, threads) in cases, (case, size, threads)
for r in rows:
    assert r["errors"] == 0 and r["mismatches"] == 0, r
    assert r["ops_per_s"] > 0, r
    if r["case"] in ("stream_write_read", "shm_write_read"):
        assert r["ratio_to_memcpy"] > 0, r
    if r["case"] == "shm_io_4k":
        assert r["ratio_to_empty"] > 0, r
reg = doc["registration"]
assert reg["size_bytes"] == 4 << 20 and reg["register_ms_median"] > 0, reg
assert "met" in doc["goals"], doc["goals"]
print("shm_bench smoke: %d rows ok" % len(rows))
PY
