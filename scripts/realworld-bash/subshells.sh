#!/bin/bash
# Subshells, command and process substitution, background jobs, coprocesses: each is a fork, and
# each child must see its own process ids while $$ keeps naming the script.
set -u
parent=$BASHPID
[ "$$" = "$BASHPID" ] && echo "top level: \$\$ is BASHPID"
( [ "$BASHPID" != "$parent" ] && echo "subshell: BASHPID is new"; [ "$$" = "$parent" ] && echo "subshell: \$\$ unchanged" )
inner=$( echo "$BASHPID" )
[ "$inner" != "$parent" ] && echo "command substitution: its own pid"
# Nested: every level differs from every other.
levels=$( echo "$BASHPID"; ( echo "$BASHPID"; ( echo "$BASHPID" ) ) )
echo "distinct pids in nested subshells: $(printf '%s\n' "$levels" $parent | sort -u | wc -l)"
# A child bash's PPID is this shell.
child_ppid=$(bash -c 'echo $PPID')
[ "$child_ppid" = "$parent" ] && echo "child bash: PPID is the script"
( exit 3 ); echo "subshell exit: $?"
x=outer; ( x=inner ); echo "x after subshell: $x"
echo "process substitution: $(( $(cat <(seq 1 3) <(seq 4 6) | paste -sd+) ))"
diff <(printf 'a\nb\nc\n') <(printf 'a\nB\nc\n'); echo "diff status: $?"
# Background jobs and their statuses, in a fixed order.
(sleep 0.05; exit 4) & a=$!
(exit 5) & b=$!
wait "$b"; echo "job b: $?"
wait "$a"; echo "job a: $?"
pids=()
for i in 1 2 3 4 5 6 7 8; do ( echo "$BASHPID" > "pid.$i" ) & pids+=($!); done
wait
echo "background children with distinct pids: $(cat pid.* | sort -u | wc -l)"
ok=0; for i in 1 2 3 4 5 6 7 8; do [ "$(cat pid.$i)" = "${pids[$((i - 1))]}" ] && ok=$((ok + 1)); done
echo "children whose BASHPID equals \$!: $ok"
rm -f pid.*
coproc UPPER { tr a-z A-Z; }
# Bash unsets UPPER_PID once the coprocess has ended: keep it now.
upper_pid=$UPPER_PID
echo "hello coprocess" >&"${UPPER[1]}"
exec {UPPER[1]}>&-
read -r line <&"${UPPER[0]}"; echo "$line"
wait "$upper_pid"; echo "coprocess status: $?"
