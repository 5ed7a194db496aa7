#!/bin/sh
# Readiness probe of the gpumigd container (installed in the image as
# /usr/local/bin/gpumig-ready): ready while the daemon answers and its copy
# engine is not wedged -- the same condition as the gRPC health of
# gpumig.v1.ObjectService. The liveness probe is `gpumigctl ping` alone.
# Socket: $GPUMIG_SOCKET or /run/gpumig/gpumig.sock; binary: $GPUMIGCTL.
ctl=${GPUMIGCTL:-/usr/local/bin/gpumigctl}
out=$("$ctl" --timeout=2s --json stats) || { echo "gpumigd does not answer" >&2; exit 1; }
case "$out" in
  *'"engine_wedged":false'*) exit 0 ;;
  *'"engine_wedged":true'*) echo "copy engine wedged" >&2; exit 1 ;;
  *) echo "unexpected stats output" >&2; exit 1 ;;
esac
