# TAP helpers shared by the shell tests (sourced): a temporary folder $tmp removed at exit, and
#   ok STATUS NAME                             one test point from a status (0: ok)
#   check NAME COMMAND...                      ok when COMMAND succeeds; its output as diagnostics when not
#   expect_fail NAME CODE FRAGMENT COMMAND...  ok when COMMAND exits CODE and says FRAGMENT; where TAP_RERUN_ON is
#                                              set, a COMMAND killed by a signal whose output matches it runs once more
# Each script ends with: echo "1..$n"; [ $failed -eq 0 ]
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
ok () { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
check () { local name=$1; shift; if "$@" >"$tmp/out.log" 2>&1; then ok 0 "$name"; else ok 1 "$name"; sed 's/^/# /' "$tmp/out.log" | head -20; fi; }
expect_fail () { # name, expected exit code, message fragment, command...
  local name=$1 code=$2 frag=$3; shift 3
  "$@" >"$tmp/out.log" 2>&1; local rc=$?
  if [ -n "${TAP_RERUN_ON:-}" ] && [ $rc -ge 128 ] && grep -q -- "$TAP_RERUN_ON" "$tmp/out.log"; then
    echo "# $name: exit $rc with \"$TAP_RERUN_ON\" in its output; running it again"
    "$@" >"$tmp/out.log" 2>&1; rc=$?
  fi
  if [ $rc -eq "$code" ] && grep -q -- "$frag" "$tmp/out.log"; then ok 0 "$name"; else ok 1 "$name"; echo "# exit $rc (want $code)"; sed 's/^/# /' "$tmp/out.log" | head -10; fi
}
