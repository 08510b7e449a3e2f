#!/bin/bash
# File descriptors: duplication, appends from several fds and processes, noclobber, read-write.
set -u
exec 3> out.txt
echo "via fd 3" >&3
exec 4>&3
echo "via fd 4 (dup of 3)" >&4
exec 3>&- 4>&-
cat out.txt
# O_APPEND from two fds and two processes at once: every line lands whole.
: > log.txt
exec 5>> log.txt 6>> log.txt
for i in $(seq 1 200); do echo "five $i" >&5; echo "six $i" >&6; done
( for i in $(seq 1 200); do echo "child $i"; done >> log.txt ) &
for i in $(seq 1 200); do echo "parent $i" >> log.txt; done
wait
exec 5>&- 6>&-
echo "log: $(wc -l < log.txt) lines, $(sort log.txt | uniq | wc -l) distinct, $(grep -c '^six' log.txt) from fd 6"
exec {dyn}> dyn.txt
[ "$dyn" -ge 10 ] && echo "dynamic fd above 9"
echo "dynamic" >&$dyn
exec {dyn}>&-
cat dyn.txt
set -o noclobber
( echo clobber > dyn.txt ) 2>/dev/null; echo "noclobber refusal: $?"
echo forced >| dyn.txt; cat dyn.txt
set +o noclobber
printf 'hello world\n' > rw.txt
exec 7<> rw.txt
read -r -n 5 w <&7
printf 'X' >&7
exec 7>&-
echo "read-write: $w / $(cat rw.txt)"
echo "through /dev/fd: $(echo piped | cat /dev/fd/0)"
ls /dev/fd/ > /dev/null && echo "listing /dev/fd works"
{ echo to-stderr >&2; } 2>&1 | sed 's/^/captured: /'
rm -f out.txt log.txt dyn.txt rw.txt
