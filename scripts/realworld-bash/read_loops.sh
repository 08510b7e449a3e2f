#!/bin/bash
# read loops: bash reads a pipe one byte per read(2) and a file in blocks, then seeks back.
set -u
seq 1 3000 | sed 's/^/row /' > rows.txt
n=0; sum=0
while read -r word num; do n=$((n + 1)); sum=$((sum + num)); done < rows.txt
echo "file: $n rows, sum $sum"
n=0; sum=0
while read -r word num; do n=$((n + 1)); sum=$((sum + num)); done < <(cat rows.txt)
echo "pipe: $n rows, sum $sum"
# A read that stops partway leaves the file offset right after the line it consumed.
{ read -r first; read -r second; cat | wc -l; } < rows.txt
echo "first two: $first / $second"
{ read -r first; head -n 2; } < rows.txt
exec 4< rows.txt
read -r -u 4 a; read -r -u 4 b
echo "fd 4: $a, $b, then $(head -n 1 <&4)"
exec 4<&-
mapfile -t lines < rows.txt; echo "mapfile: ${#lines[@]} lines, last ${lines[-1]}"
mapfile -t -s 10 -n 3 some < rows.txt; echo "mapfile window: ${some[*]}"
read -r -n 5 chars <<< "abcdefghij"; echo "read -n 5: $chars"
read -r -d ':' field <<< "one:two"; echo "read -d: $field"
IFS=, read -r -a parts <<< "x,y,,z"; echo "fields: ${#parts[@]} [${parts[*]}]"
printf 'a\0b\0c\0' | while IFS= read -r -d '' z; do printf '<%s>' "$z"; done; echo
while IFS= read -r l; do echo "heredoc: $l"; done <<'END'
  kept  spaces
tab	inside
END
mkfifo empty
exec 5<>empty
read -r -t 0.1 -u 5 nothing; echo "read -t on an empty fifo: $?"
exec 5>&-
rm -f empty rows.txt
