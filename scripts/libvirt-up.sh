#!/usr/bin/env bash
# Bring up a real libvirt + QEMU stack for e2e tests and CI on Debian 12 without
# systemd (see shared/notes/libvirt.md). Idempotent: run it as often as you like;
# it installs, configures and starts only what is missing, and prints one line.
#
# Environment (all optional):
#   SNAPBOT_LIBVIRTD_PIDFILE  pid file of the libvirtd this script starts
#                             (default /run/snapbot-e2e/libvirtd.pid)
#   SNAPBOT_LIBVIRTD_LOG      libvirtd log file (default /var/log/libvirt/snapbot-libvirtd.log)
#   SNAPBOT_LIBVIRT_TIMEOUT   seconds to wait for the daemon to answer (default 60)
set -euo pipefail

readonly URI='qemu:///system'
readonly PACKAGES=(libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils)
readonly PIDFILE="${SNAPBOT_LIBVIRTD_PIDFILE:-/run/snapbot-e2e/libvirtd.pid}"
readonly LOGFILE="${SNAPBOT_LIBVIRTD_LOG:-/var/log/libvirt/snapbot-libvirtd.log}"
readonly TIMEOUT="${SNAPBOT_LIBVIRT_TIMEOUT:-60}"
readonly QEMU_CONF='/etc/libvirt/qemu.conf'
readonly LOCKFILE='/run/snapbot-e2e/libvirt-up.lock'
readonly BLOCK_BEGIN='# BEGIN snapbot-e2e (managed by scripts/libvirt-up.sh)'
readonly BLOCK_END='# END snapbot-e2e'

started_at=$(date +%s.%N)
did=()

die() {
  echo "libvirt-up: error: $*" >&2
  exit 1
}

answers() {
  command -v virsh >/dev/null 2>&1 && virsh -c "$URI" version >/dev/null 2>&1
}

elapsed() {
  awk -v a="$started_at" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# Fast path for non-root callers (and everyone else) when all is already up.
if [[ $EUID -ne 0 ]]; then
  answers && { echo "libvirt-up: libvirtd already answers on $URI (not root: nothing changed)"; exit 0; }
  die "libvirtd does not answer on $URI and this script must run as root to install or start it"
fi

# Several test runs may call this at once: one at a time. (The daemon must not
# inherit fd 9, or it would hold the lock for its whole life.)
mkdir -p "$(dirname "$LOCKFILE")"
exec 9>"$LOCKFILE"
flock -w 300 9 || die "timed out waiting for $LOCKFILE"

# 1. Packages.
installed=" $(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null \
  | awk '$2 == "ii" { printf "%s ", $1 }' || true) "
missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ $installed == *" $pkg "* ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  export DEBIAN_FRONTEND=noninteractive
  apt_log=$(mktemp)
  if ! { apt-get update -q && apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${PACKAGES[@]}"; } >"$apt_log" 2>&1; then
    tail -n 30 "$apt_log" >&2
    rm -f "$apt_log"
    die "apt-get failed installing ${PACKAGES[*]}"
  fi
  rm -f "$apt_log"
  did+=("installed ${missing[*]}")
fi

# 2. The QEMU driver resolves its built-in user before it reads qemu.conf.
if ! getent passwd libvirt-qemu >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /var/lib/libvirt \
    --shell /usr/sbin/nologin libvirt-qemu
  did+=("created user libvirt-qemu")
fi

# 3. qemu.conf: comment out any active setting of our four keys elsewhere in the file
# (so only ours counts), then keep our own block at the end. Everything else in the
# file is left as it was; the first version we changed is kept as qemu.conf.snapbot-orig.
mkdir -p /etc/libvirt /var/log/libvirt/qemu "$(dirname "$PIDFILE")"
touch "$QEMU_CONF"
new_conf=$(mktemp)
awk -v begin="$BLOCK_BEGIN" -v end="$BLOCK_END" '
  $0 == begin { skip = 1; next }
  $0 == end   { skip = 0; next }
  skip        { next }
  /^[[:space:]]*(user|group|security_driver|stdio_handler)[[:space:]]*=/ { print "#snapbot-e2e# " $0; next }
  { print }
' "$QEMU_CONF" >"$new_conf"
cat >>"$new_conf" <<EOF
$BLOCK_BEGIN
user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
$BLOCK_END
EOF
conf_changed=0
if ! cmp -s "$new_conf" "$QEMU_CONF"; then
  [[ -e $QEMU_CONF.snapbot-orig ]] || cp -p "$QEMU_CONF" "$QEMU_CONF.snapbot-orig"
  cat "$new_conf" >"$QEMU_CONF"
  conf_changed=1
  did+=("wrote $QEMU_CONF")
fi
rm -f "$new_conf"

our_pid() {
  local pid
  [[ -s $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == libvirtd ]] || return 1
  echo "$pid"
}

# A daemon we started earlier does not see a qemu.conf we just changed: restart it.
if ((conf_changed)) && pid=$(our_pid); then
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PIDFILE"
  did+=("stopped libvirtd $pid to reload qemu.conf")
elif ((conf_changed)) && answers; then
  echo "libvirt-up: warning: $QEMU_CONF changed but libvirtd was not started by this script; restart it yourself" >&2
fi

# 4. The daemon.
if answers; then
  ((${#did[@]} > 0)) || { echo "libvirt-up: libvirtd already answers on $URI; nothing to do ($(elapsed)s)"; exit 0; }
else
  if ! pid=$(our_pid); then
    # `libvirtd -d` exits 0 even when the daemon dies right after: we poll below.
    echo "=== $(date -Is) libvirt-up starting libvirtd" >>"$LOGFILE"
    LIBVIRT_LOG_OUTPUTS="3:file:$LOGFILE" libvirtd -d -p "$PIDFILE" >>"$LOGFILE" 2>&1 9>&- \
      || { tail -n 30 "$LOGFILE" >&2; die "libvirtd -d failed"; }
    started=1
  fi
  begun=$(date +%s)
  deadline=$((begun + TIMEOUT))
  until answers; do
    # A daemon that died after forking leaves no pid behind: no use waiting it out.
    if ((${started:-0})) && (($(date +%s) >= begun + 5)) && ! our_pid >/dev/null; then
      echo "--- last lines of $LOGFILE:" >&2
      tail -n 30 "$LOGFILE" >&2 || true
      die "libvirtd exited right after starting"
    fi
    if (($(date +%s) >= deadline)); then
      echo "--- last lines of $LOGFILE:" >&2
      tail -n 30 "$LOGFILE" >&2 || true
      virsh -c "$URI" version >&2 || true
      die "libvirtd did not answer on $URI within ${TIMEOUT}s"
    fi
    sleep 0.1
  done
  pid=$(our_pid || echo '?')
  if ((${started:-0})); then did+=("started libvirtd (pid $pid)"); else did+=("waited for libvirtd (pid $pid)"); fi
fi

versions=$(virsh -c "$URI" version 2>/dev/null | awk -F': ' '
  /Using library/ { lib = $2 } /Running hypervisor/ { hv = $2 }
  END { print lib "; " hv }')
summary=$(IFS=,; echo "${did[*]}" | sed 's/,/, /g')
echo "libvirt-up: ${summary}; answers on $URI after $(elapsed)s ($versions)"
