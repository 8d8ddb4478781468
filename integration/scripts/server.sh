#!/bin/bash
# Announce port $PORT, then accept $CALLS calls through listen and echo each
# one's bytes back (each call served in the background, so calls may
# overlap). Prints "announced N" once listening.
set -e
exec 3<>"$M/tcp/clone"
n=$(cat <&3)
echo "announce $PORT" >&3
echo "announced $n"
for ((i = 0; i < CALLS; i++)); do
	exec 4<"$M/tcp/$n/listen"       # blocks until a call is queued
	c=$(cat <&4)
	# The background job inherits fd 4 (the call's ctl), which keeps the
	# conversation alive until cat sees EOF and the job exits.
	# (dd, not cat: GNU cat refuses when input and output are the same file.)
	{ dd bs=128k status=none <"$M/tcp/$c/data" >"$M/tcp/$c/data"; } &
	exec 4<&-
done
wait
echo "served $CALLS"
