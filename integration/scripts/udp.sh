#!/bin/bash
# Send three datagrams (1, 500, 1400 bytes; TTL 17, TOS 32) to $PEER through udp/N/data, then
# read three, one read(2) each, into $OUT.1..3.
set -e
exec 3<>"$M/udp/clone"
n=$(cat <&3)
echo "connect $PEER" >&3
echo 'ttl 17' >&3                  # IP_TTL and IP_TOS of what we send
echo 'tos 32' >&3
exec 4<>"$M/udp/$n/data"
printf 'x' >&4
printf '%0500d' 0 >&4
printf '%01400d' 0 >&4
for i in 1 2 3; do
	dd bs=65536 count=1 status=none <&4 >"$OUT.$i"
done
exec 4<&- 3<&-
