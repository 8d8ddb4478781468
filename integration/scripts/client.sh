#!/bin/bash
# Fetch $URLPATH from an HTTP server at $PEER (addr!port) through the files,
# with only exec, echo, cat and printf. The response goes to stdout.
set -e
exec 3<>"$M/tcp/clone"
n=$(cat <&3)
echo "connect $PEER" >&3
exec 4<"$M/tcp/$n/data" 5>"$M/tcp/$n/data"
printf 'GET %s HTTP/1.0\r\nHost: test\r\n\r\n' "$URLPATH" >&5
cat <&4
exec 5>&- 4<&- 3<&-
