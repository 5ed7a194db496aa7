#!/usr/bin/env bash
# Checks that the C++ lines a change touched are clang-formatted (the
# project's .clang-format, Google style). Only changed lines are checked, so
# the check is about the change, not about older code around it.
#
#   tools/check_format.sh            # vs the merge base with main, or HEAD~1
#   tools/check_format.sh REV        # everything changed since REV, plus the
#                                    # uncommitted change
#
# Prints the diff clang-format wants and exits 1 if any changed line is not
# formatted; exits 0 with "check_format: ok" otherwise. Exits 2 (and says
# why) where clang-format-diff is not installed (tools/install_deps.sh
# installs clang-format). Lines between `// clang-format off` and
# `// clang-format on` are left alone, as clang-format itself does.
set -uo pipefail
cd "$(dirname "$0")/.."

diff_tool=$(command -v clang-format-diff-14 || command -v clang-format-diff || true)
if [ -z "$diff_tool" ] || ! command -v clang-format >/dev/null; then
  echo "check_format: needs clang-format and clang-format-diff (apt-get install clang-format)" >&2
  exit 2
fi

base=${1:-}
if [ -z "$base" ]; then
  if git rev-parse -q --verify main >/dev/null &&
    [ "$(git rev-parse main)" != "$(git rev-parse HEAD)" ]; then
    base=$(git merge-base main HEAD)
  elif git rev-parse -q --verify HEAD~1 >/dev/null; then
    base=HEAD~1
  else
    echo "check_format: ok (no earlier commit to compare with)"
    exit 0
  fi
fi

out=$(git diff -U0 --no-color "$base" -- '*.cc' '*.h' | "$diff_tool" -p1)
if [ -n "$out" ]; then
  echo "$out"
  echo "check_format: changed lines are not clang-formatted (vs $base);" \
    "fix with: git diff -U0 $base | $(basename "$diff_tool") -p1 -i" >&2
  exit 1
fi
echo "check_format: ok (C++ lines changed since $(git rev-parse --short "$base"))"
