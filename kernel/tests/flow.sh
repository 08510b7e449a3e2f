#!/bin/sh
# In the guest: the profile-then-accelerate flow on a syscall-dense loop,
# with the kernel gate on (PRIVBOX_GATE=on) and off (the default), compared
# byte for byte with the native run.
# Prints PASS/FAIL flow; exit status 0 on success.
set -u
n=${1:-3000}
cd /tmp
export HOME=/tmp
pb=/privbox/privbox
fail=0
$pb doctor 2>&1 | grep -E 'kernel gate|instrumented copies' | sed 's/^/flow: doctor: /'
$pb profile --inline -o loop.json -- /tests/syscall_loop "$n" >profile.out 2>profile.err || fail=1
/tests/syscall_loop "$n" >native.out 2>native.err || fail=1
PRIVBOX_LOG=info $pb run -p loop.json -- /tests/syscall_loop "$n" >off.out 2>off.err || fail=1
PRIVBOX_GATE=on PRIVBOX_LOG=info $pb run -p loop.json -- /tests/syscall_loop "$n" >on.out 2>on.err || fail=1
for f in profile native off on; do
    sed "s/^/flow: $f: /" $f.err
done
for f in profile off on; do
    if cmp -s native.out $f.out; then
        echo "flow: $f output identical to native ($(wc -c <native.out) bytes)"
    else
        echo "flow: $f output DIFFERS from native"
        fail=1
    fi
done
grep -q 'runs in a box' on.err || { echo "flow: with the gate on, no copy ran in a box"; fail=1; }
if grep -q 'runs in a box' off.err; then echo "flow: without PRIVBOX_GATE=on a copy was boxed"; fail=1; fi
[ $fail = 0 ] && echo "PASS flow" || echo "FAIL flow"
exit $fail
