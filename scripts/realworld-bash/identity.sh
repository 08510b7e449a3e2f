#!/bin/bash
# Process identity asked many times, in loops and across forks: the hot loop an identity cache serves.
set -u
me=$BASHPID; same=0
for i in $(seq 1 3000); do [ "$BASHPID" = "$me" ] && same=$((same + 1)); done
echo "BASHPID stable in a loop: $same"
for round in 1 2 3; do
  ( c=$BASHPID; s=0; for i in $(seq 1 500); do [ "$BASHPID" = "$c" ] && s=$((s + 1)); done
    [ "$c" != "$me" ] && echo "round $round: child sees its own pid $s times"
    # The kernel's word on it: the parent of cut, per /proc, is this subshell.
    [ "$(cut -d' ' -f4 /proc/self/stat)" = "$BASHPID" ] && echo "round $round: the kernel agrees" ) &
  wait $!
done
r=$(for i in 1 2 3 4 5; do ( echo $BASHPID ); done | sort -u | wc -l); echo "5 subshells, distinct pids: $r"
[ "$UID" = "$(id -u)" ] && [ "$EUID" = "$(id -u)" ] && echo "UID and EUID agree with id"
[ "$(id -g)" = "$(bash -c 'id -g')" ] && echo "gid agrees in a child"
# Field 1 of /proc/PID/stat is the pid, 5 the process group, 6 the session (no parentheses or
# spaces in "bash", so plain field splitting holds).
[ "$(cut -d' ' -f1 /proc/$$/stat)" = "$$" ] && echo "/proc agrees on \$\$"
[ "$(cut -d' ' -f1 /proc/self/stat)" != "$me" ] && echo "/proc/self in a child is the child"
pgid=$(cut -d' ' -f5 /proc/$$/stat); sid=$(cut -d' ' -f6 /proc/$$/stat)
[ "$(bash -c 'cut -d" " -f5 /proc/$$/stat')" = "$pgid" ] && echo "child shares the process group"
new=$(setsid bash -c 'echo "$$ $(cut -d" " -f5,6 /proc/$$/stat)"')
[ "$new" != "" ] && [ "${new#* }" = "${new%% *} ${new%% *}" ] && [ "${new%% *}" != "$sid" ] && echo "setsid child leads its own session and group"
echo "umask $(umask), in child $(bash -c umask)"
