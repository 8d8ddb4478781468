#!/bin/bash
# Ownership: the opener's uid owns a conversation (mode 0660); another uid
# gets EACCES on ctl/data/err but may read status; root may open anything;
# sys/ files are root's to write; the owner (or root) changes a
# conversation's mode and owner with chmod/chown on ctl or data, as Plan
# 9's wstat, others get EPERM. Prints one line per check.
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"; }
exec 3<>"$M/tcp/clone"
r=$(cat <&3)
as 65534 cat "$M/tcp/$r/ctl" >/dev/null 2>&1; echo "nobody-ctl-of-root rc=$?"
as 65534 cat "$M/tcp/$r/status" >/dev/null 2>&1; echo "nobody-status-of-root rc=$?"
as 65534 bash -c 'echo 1 > "$1/sys/core/rmem_max"' _ "$M" 2>/dev/null; echo "nobody-sysctl-write rc=$?"
# A conversation of uid 65534, held open for 3 s.
as 65534 bash -c 'exec 3<>"$1/tcp/clone"; cat <&3 >"$2"; sleep 3' _ "$M" "$TMPF" &
for ((i = 0; i < 50; i++)); do [ -s "$TMPF" ] && break; sleep 0.1; done
u=$(cat "$TMPF")
echo "stat $(stat -c '%u %a' "$M/tcp/$u/data")"
as 65533 cat "$M/tcp/$u/err" >/dev/null 2>&1; echo "other-err rc=$?"
as 65534 cat "$M/tcp/$u/err" >/dev/null 2>&1; echo "owner-err rc=$?"
cat "$M/tcp/$u/err" >/dev/null 2>&1; echo "root-err rc=$?"
wait
as 65534 chmod 0666 "$M/tcp/$r/ctl" 2>/dev/null; echo "nobody-chmod-of-root rc=$?"
chmod 0644 "$M/tcp/$r/status" 2>/dev/null; echo "chmod-status rc=$?"
chmod 0666 "$M/tcp/$r/ctl"; echo "chmod-ctl rc=$? $(stat -c %a "$M/tcp/$r/data")"
as 65534 cat "$M/tcp/$r/ctl" >/dev/null 2>&1; echo "nobody-ctl-of-root-0666 rc=$?"
chown 65533 "$M/tcp/$r/data"; echo "chown-data rc=$? $(stat -c %u "$M/tcp/$r/ctl")"
exec 3<&-
