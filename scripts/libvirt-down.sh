#!/usr/bin/env bash
# Stop the libvirtd that scripts/libvirt-up.sh started (found by its pid file).
# A libvirtd started any other way is left alone. Running QEMU domains keep running
# (libvirt reconnects to them on its next start).
set -euo pipefail

readonly PIDFILE="${SNAPBOT_LIBVIRTD_PIDFILE:-/run/snapbot-e2e/libvirtd.pid}"

if [[ ! -s $PIDFILE ]]; then
  echo "libvirt-down: no pid file at $PIDFILE; nothing to stop"
  exit 0
fi
pid=$(<"$PIDFILE")
if ! [[ $pid =~ ^[0-9]+$ ]] || [[ $(cat "/proc/$pid/comm" 2>/dev/null) != libvirtd ]]; then
  rm -f "$PIDFILE"
  echo "libvirt-down: pid file named no running libvirtd ('$pid'); removed it"
  exit 0
fi

kill -TERM "$pid"
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
how='SIGTERM'
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"
  how='SIGKILL after 15 s'
fi
rm -f "$PIDFILE"
echo "libvirt-down: stopped libvirtd (pid $pid, $how)"
