#!/bin/bash
# Pipelines: data through several processes, exit statuses of every stage, SIGPIPE'd writers.
set -u
seq 1 20000 | awk '{ s += $1 } END { print "sum", s }'
seq 1 5000 | sed 's/$/ line/' | sort -r | head -n 3
printf '%s\n' banana apple cherry apple banana apple | sort | uniq -c | sort -rn
# About 2 MB through a chain of cats: nothing lost or reordered.
head -c 2000000 /dev/zero | tr '\0' 'x' | cat | cat | cat | md5sum
# A writer that outlives its reader dies of SIGPIPE (141); the pipeline's status is head's.
yes 'privbox' | head -n 100000 | wc -l
echo "statuses: ${PIPESTATUS[*]}"
set -o pipefail
false | true
echo "pipefail false|true: $?"
true | (exit 7) | true
echo "pipefail with a 7 inside: $?"
set +o pipefail
# A pipeline into a while loop runs the loop in a subshell: its variables stay there.
count=0
seq 1 10 | while read -r n; do count=$((count + n)); done
echo "count after piped loop: $count"
shopt -s lastpipe 2>/dev/null; set +m
count=0
seq 1 10 | while read -r n; do count=$((count + n)); done
echo "count with lastpipe: $count"
