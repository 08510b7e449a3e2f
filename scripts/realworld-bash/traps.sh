#!/bin/bash
# Traps and signals: handlers run in the right shell, at the right time, with the right status.
set -u
trap 'echo "EXIT trap, status $?"' EXIT
got=0
trap 'got=$((got + 1))' USR1
for i in 1 2 3; do kill -USR1 $$; done
echo "USR1 handled: $got"
# A subshell resets caught traps: its USR1 kills it.
( kill -USR1 $BASHPID; echo "not reached" ); echo "subshell killed by USR1: $?"
# Ignored signals stay ignored in children.
trap '' USR2
( kill -USR2 $BASHPID; echo "USR2 ignored in subshell" )
bash -c 'kill -USR2 $$; echo "USR2 ignored in child bash"'
trap - USR2
sleep 10 & s=$!
sleep 0.1; kill -TERM "$s"; wait "$s"; echo "sleep terminated: $?"
timeout 0.2 sleep 5; echo "timeout: $?"
timeout -s INT 0.2 sleep 5; echo "timeout INT: $?"
f() { trap 'echo "RETURN trap in f"' RETURN; return 6; }
f; echo "f returned: $?"
trap - RETURN
trap 'echo "ERR trap at line $LINENO"' ERR
false
trap - ERR
# A trap during a blocking read from a fifo: the signal interrupts the wait, the handler runs.
mkfifo fifo
( sleep 0.1; kill -USR1 $$; sleep 0.1; echo "line through fifo" > fifo ) &
exec 3<>fifo
read -r -u 3 l; echo "read after signal: $l, USR1 handled: $got"
exec 3>&-
wait
rm -f fifo
(trap 'echo "TERM in subshell"; exit 9' TERM; kill -TERM $BASHPID; sleep 1); echo "subshell TERM trap: $?"
exit 2
