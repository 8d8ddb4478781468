#!/bin/bash
# Lifetime: conversation A connects to the kernel peer at $PEER, queues the
# file $FILE and closes every handle at once (the peer must see all bytes,
# then EOF). B holds the next slot meanwhile. Once A's status is Closed, a
# new clone must get A's number again (lowest first).
set -e
exec 3<>"$M/tcp/clone"
a=$(cat <&3)
exec 6<>"$M/tcp/clone"
b=$(cat <&6)
echo "a=$a b=$b"
echo "connect $PEER" >&3
exec 4>"$M/tcp/$a/data"
cat "$FILE" >&4
exec 4>&- 3<&-                    # last close: FIN after the queued data
for ((i = 0; i < 100; i++)); do  # up to 10 s
	st=$(cut -d' ' -f1 "$M/tcp/$a/status")
	[ "$st" = Closed ] && break
	sleep 0.1
done
echo "status=$st"
exec 7<>"$M/tcp/clone"
echo "reused=$(cat <&7)"
exec 7<&- 6<&-
