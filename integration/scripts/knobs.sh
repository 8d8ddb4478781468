#!/bin/bash
# Buffer knobs and refused writes. Prints lines the test checks:
#   mem1=<mem after rcvbuf 262144 with rmem_max 200000>
#   mem2=<mem after rcvbuf 262144 with rmem_max 4194304>
#   old=<rb of a conversation made before tcp_rmem changed> new=<rb after>
#   ctlbad <cmd> rc=<exit> err=<err file> stderr=<...>   (one per bad write)
#   sysbad <file> rc=<exit> before=<v> after=<v>          (one per bad write)
#   final status=<...> rcvbuf=<...>
set -u
exec 3<>"$M/tcp/clone"
n=$(cat <&3)
orig_max=$(cat "$M/sys/core/rmem_max")
echo 200000 >"$M/sys/core/rmem_max"
echo 262144 >"$M/tcp/$n/rcvbuf"
echo "mem1=$(cat "$M/tcp/$n/mem")"
echo 4194304 >"$M/sys/core/rmem_max"
echo 262144 >"$M/tcp/$n/rcvbuf"
echo "mem2=$(cat "$M/tcp/$n/mem")"

exec 4<>"$M/tcp/clone"
old=$(cat <&4)
printf '4096\t87380\t6291456\n' >"$M/sys/ipv4/tcp_rmem"
exec 5<>"$M/tcp/clone"
new=$(cat <&5)
echo "old=$(cat "$M/tcp/$old/rcvbuf") new=$(cat "$M/tcp/$new/rcvbuf") tcp_rmem=$(cat "$M/sys/ipv4/tcp_rmem" | tr '\t' ' ')"
exec 4<&- 5<&-

before_status=$(cut -d' ' -f1 "$M/tcp/$n/status")
before_rb=$(cat "$M/tcp/$n/rcvbuf")
while IFS= read -r cmd; do
	err=$( { printf '%s\n' "$cmd" >&3; } 2>&1 )
	rc=$?
	echo "ctlbad $cmd rc=$rc err=$(cat "$M/tcp/$n/err") stderr=$err"
done <<'CMDS'
connect
connect 198.18.0.1
connect 198.18.0.1!99999
connect nohost!80
announce a!b
bind
keepalive x
nodelay maybe
cork
rcvbuf 2147483648
sndbuf lots
notsent_lowat -5
backlog 70000
linger forever
shutdown sideways
ttl 300
tos -1
frobnicate
connect '198.18.0.1!80
CMDS
echo "final status=$(cut -d' ' -f1 "$M/tcp/$n/status") before_status=$before_status rcvbuf=$(cat "$M/tcp/$n/rcvbuf") before_rcvbuf=$before_rb"

while IFS='|' read -r file value; do
	before=$(cat "$M/sys/$file" | tr '\t' ' ')
	err=$( { printf '%s\n' "$value" >"$M/sys/$file"; } 2>&1 )
	rc=$?
	after=$(cat "$M/sys/$file" | tr '\t' ' ')
	echo "sysbad $file rc=$rc before=$before after=$after stderr=$err"
done <<'CMDS'
ipv4/tcp_rmem|8192 65536 x
ipv4/tcp_rmem|1 2 3 4
ipv4/tcp_rmem|300 200 100
ipv4/tcp_rmem|+1 2 3
ipv4/tcp_rmem|4096,131072,6291456
ipv4/tcp_wmem|a b c
ipv4/tcp_mem|-1 2 3
ipv4/udp_mem|3 2 99999999999999999999
core/rmem_max|2147483648
core/rmem_max|abc
core/wmem_default|4607
ipv4/udp_rmem_min|0
ipv4/tcp_adv_win_scale|32
ipv4/tcp_moderate_rcvbuf|256
ipv4/tcp_notsent_lowat|4294967296
CMDS
echo "$orig_max" >"$M/sys/core/rmem_max"
exec 3<&-
