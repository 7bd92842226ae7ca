#!/bin/sh
# A fast fake `virsh` for the fleet benchmark: POSIX sh, builtins only on the common
# paths (plus `sleep` for the latency, `date` in a create, `exec cat` for dumpxml),
# so one call costs a shell start-up and a `sleep` (3–5 ms of CPU on the 2-vCPU bench
# machine) instead of the ~100+ ms that test/fixtures/fake-virsh.mjs (Node) needs. It prints what virsh 9.0 prints
# (test/fixtures/virsh-output/) for the subcommands the worker uses, and nothing more:
# version, list --all --uuid|--name [--state-running|--state-paused|--state-shutoff],
# domname, domuuid, dominfo, domstate, snapshot-list [--name [--external|--internal|--disk-only]],
# snapshot-current --name,
# snapshot-dumpxml, snapshot-create-as, snapshot-delete.
#
# It is started through a symlink `<host dir>/virsh`; the host dir holds the state:
#   config              sh: LATENCY_S (e.g. 0.1), LATENCY_ON (all | snapshot-create-as)
#   domains             `list --all --uuid` order, one UUID a line
#   dom/<uuid>/name     the domain's name;  dom/<uuid>/id  its numeric id
#   by-name/<name>      the UUID (for domuuid)
#   dom/<uuid>/snap/<snapshot>/xml   what snapshot-dumpxml prints
#   dom/<uuid>/snap/<snapshot>/ext   exists when the snapshot is external (disk-only)
#   dom/<uuid>/snap/<snapshot>/parent   its parent's name, when it has one
#   dom/<uuid>/current  name of the current snapshot
#   calls.log           one "subcommand domain" line per call
# Domains are all running; snapshot names must not hold '/' or start with '.' (as libvirt).
#
# Several commands in one argument (virsh's command-string mode) are run one after the
# other, as virsh does, when written the way the worker writes them
# (worker/hypervisor/virsh-script.ts): one command a line, tokens plain or in POSIX single
# quotes. A line that starts with a command name this fake knows starts a command and gets
# `run_sub` in front; the whole text is then eval'ed by sh, whose quoting is the same.
# (A quoted value with a line of its own starting with a command name would be misread;
# the benchmark's names and descriptions have none.) `echo` / `echo --err` print the marks.

H=${0%/*}
. "$H/config"

# Global options, as virsh takes them before the subcommand.
while [ $# -gt 0 ]; do
  case $1 in
    --connect=*) shift ;;
    -c|--connect) shift 2 ;;
    -q|--quiet|-r|--readonly) shift ;;
    *) break ;;
  esac
done
run_one() {
sub=$1
[ $# -gt 0 ] && shift
if [ "$sub" = echo ]; then
  if [ "$1" = --err ]; then shift; printf 'error: %s\n' "$*" >&2; printf '\n'; else printf '%s\n' "$*"; fi
  return 0
fi

domain='' name='' snapname='' description='' has_description=0
disk_only=0 flag_name=0 external=0 internal=0 all=0 uuid=0 reason=0 daemon=0 state_filter=''
while [ $# -gt 0 ]; do
  case $1 in
    --domain=*) domain=${1#--domain=} ;;
    --domain) domain=$2; shift ;;
    --name=*) name=${1#--name=} ;;
    --snapshotname=*) snapname=${1#--snapshotname=} ;;
    --snapshotname) snapname=$2; shift ;;
    --description=*) description=${1#--description=}; has_description=1 ;;
    --disk-only) disk_only=1 ;;
    --atomic) ;;
    --name) flag_name=1 ;;
    --external) external=1 ;;
    --internal) internal=1 ;;
    --all) all=1 ;;
    --uuid) uuid=1 ;;
    --reason) reason=1 ;;
    --state-running) state_filter=running ;;
    --state-paused|--state-shutoff) state_filter=none ;;
    --daemon) daemon=1 ;;
    *)
      printf "error: command '%s' doesn't support option %s\n" "$sub" "$1" >&2
      exit 1
      ;;
  esac
  shift
done

printf '%s %s\n' "$sub" "$domain" >>"$H/calls.log"
if [ "$LATENCY_ON" = all ] || [ "$LATENCY_ON" = "$sub" ]; then
  [ "$LATENCY_S" = 0 ] || sleep "$LATENCY_S"
fi

no_domain() {
  printf "error: failed to get domain '%s'\n" "$domain" >&2
  exit 1
}

# Sets $u and $D to the domain's UUID and state dir (by UUID, or by name when allowed).
resolve() {
  if [ -d "$H/dom/$domain" ]; then
    u=$domain
  elif [ "$1" = by-name ] && [ -f "$H/by-name/$domain" ]; then
    read -r u <"$H/by-name/$domain"
  else
    no_domain
  fi
  D=$H/dom/$u
}

snapshot_not_found() {
  printf "error: Domain snapshot not found: no domain snapshot with matching name '%s'\n" "$1" >&2
  exit 1
}

# Sets $R to $1 escaped for XML; a subshell and sed only when there is something to escape.
esc() {
  case $1 in
    *[\&\<\>\'\"]*) R=$(printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e "s/'/\&apos;/g" -e 's/"/\&quot;/g') ;;
    *) R=$1 ;;
  esac
}

case $sub in
  version)
    printf 'Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\nUsing API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n'
    [ $daemon = 1 ] && printf 'Running against daemon: 9.0.0\n'
    printf '\n'
    ;;
  list)
    if [ $all != 1 ] || { [ $uuid != 1 ] && [ $flag_name != 1 ]; }; then
      echo "fast-virsh: only 'list --all' with --uuid and/or --name is implemented" >&2
      exit 1
    fi
    # Every domain of this fake runs: --state-running lists them all, the other states none.
    [ "$state_filter" = none ] && { printf '\n'; return 0; }
    while read -r u; do
      read -r n <"$H/dom/$u/name"
      if [ $uuid = 1 ] && [ $flag_name = 1 ]; then printf '%s %s\n' "$u" "$n"
      elif [ $uuid = 1 ]; then printf '%s\n' "$u"
      else printf '%s\n' "$n"; fi
    done <"$H/domains"
    printf '\n'
    ;;
  domname)
    resolve by-uuid
    read -r n <"$D/name"
    printf '%s\n\n' "$n"
    ;;
  domuuid)
    resolve by-name
    printf '%s\n\n' "$u"
    ;;
  domstate)
    resolve by-name
    if [ $reason = 1 ]; then printf 'running (booted)\n\n'; else printf 'running\n\n'; fi
    ;;
  dominfo)
    resolve by-name
    read -r n <"$D/name"
    read -r id <"$D/id"
    printf 'Id:             %s\nName:           %s\nUUID:           %s\nOS Type:        hvm\nState:          running\nCPU(s):         1\nCPU time:       1.0s\nMax memory:     65536 KiB\nUsed memory:    65536 KiB\nPersistent:     yes\nAutostart:      disable\nManaged save:   no\nSecurity model: none\nSecurity DOI:   0\n\n' "$id" "$n" "$u"
    ;;
  snapshot-list)
    resolve by-name
    if [ $flag_name != 1 ]; then
      # The table (names, creation times, states), as the inventory reads it.
      printf ' Name   Creation Time   State\n-------------------------------\n'
      for s in "$D"/snap/*/; do
        [ -d "$s" ] || continue
        s=${s%/}
        read -r created <"$s/created"
        if [ -e "$s/ext" ]; then st=disk-snapshot; else st=running; fi
        printf ' %s   %s   %s\n' "${s##*/}" "$created" "$st"
      done
      printf '\n'
      return 0
    fi
    for s in "$D"/snap/*/; do
      [ -d "$s" ] || continue
      s=${s%/}
      if [ $external = 1 ] && [ ! -e "$s/ext" ]; then continue; fi
      if [ $internal = 1 ] && [ -e "$s/ext" ]; then continue; fi
      if [ $disk_only = 1 ] && [ ! -e "$s/ext" ]; then continue; fi
      printf '%s\n' "${s##*/}"
    done
    printf '\n'
    ;;
  snapshot-current)
    resolve by-name
    if [ ! -s "$D/current" ]; then
      printf "error: domain '%s' has no current snapshot\n" "$domain" >&2
      exit 1
    fi
    read -r c <"$D/current"
    printf '%s\n' "$c"
    ;;
  snapshot-dumpxml)
    resolve by-name
    [ -f "$D/snap/$snapname/xml" ] || snapshot_not_found "$snapname"
    exec cat "$D/snap/$snapname/xml"
    ;;
  snapshot-create-as)
    resolve by-name
    case $name in
      '') name=$(date +%s) ;;
      */*) printf "error: invalid snapshot name '%s': name can't contain '/'\n" "$name" >&2; exit 1 ;;
      .*) printf "error: invalid snapshot name '%s': name can't start with '.'\n" "$name" >&2; exit 1 ;;
    esac
    read -r n <"$D/name"
    overlay=/var/lib/libvirt/images/$n.$name
    # mkdir is the atomic "does it exist yet" of concurrent creates.
    if ! mkdir "$D/snap/$name" 2>/dev/null; then
      if [ $disk_only = 1 ]; then
        printf 'error: unsupported configuration: external snapshot file for disk vda already exists and is not a block device: %s\n' "$overlay" >&2
      else
        printf 'error: operation failed: domain moment %s already exists\n' "$name" >&2
      fi
      exit 1
    fi
    parent=''
    [ -s "$D/current" ] && read -r parent <"$D/current"
    # Seconds for the XML, and the table's "YYYY-MM-DD HH:MM:SS +0000" for snapshot-list, in one date.
    stamp=$(date -u '+%s %Y-%m-%d %H:%M:%S +0000')
    now=${stamp%% *}
    esc "$name"; x_name=$R
    esc "$n"; x_domain=$R
    esc "$overlay"; x_overlay=$R
    {
      printf '<domainsnapshot>\n  <name>%s</name>\n' "$x_name"
      if [ $has_description = 1 ]; then esc "$description"; printf '  <description>%s</description>\n' "$R"; fi
      if [ $disk_only = 1 ]; then printf '  <state>disk-snapshot</state>\n'; else printf '  <state>running</state>\n'; fi
      if [ -n "$parent" ]; then esc "$parent"; printf '  <parent>\n    <name>%s</name>\n  </parent>\n' "$R"; fi
      printf '  <creationTime>%s</creationTime>\n' "$now"
      if [ $disk_only = 1 ]; then
        printf "  <memory snapshot='no'/>\n  <disks>\n    <disk name='vda' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n      <source file='%s'/>\n    </disk>\n  </disks>\n" "$x_overlay"
      else
        printf "  <memory snapshot='internal'/>\n  <disks>\n    <disk name='vda' snapshot='internal'/>\n  </disks>\n"
      fi
      printf "  <domain type='kvm'>\n    <name>%s</name>\n    <uuid>%s</uuid>\n    <memory unit='KiB'>65536</memory>\n    <vcpu placement='static'>1</vcpu>\n    <os>\n      <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>\n    </os>\n    <devices>\n      <disk type='file' device='disk'>\n        <driver name='qemu' type='qcow2'/>\n        <source file='/var/lib/libvirt/images/%s.qcow2'/>\n        <target dev='vda' bus='virtio'/>\n      </disk>\n    </devices>\n  </domain>\n</domainsnapshot>\n" "$x_domain" "$u" "$x_domain"
    } >"$D/snap/$name/xml"
    printf '%s\n' "${stamp#* }" >"$D/snap/$name/created"
    [ $disk_only = 1 ] && : >"$D/snap/$name/ext"
    [ -n "$parent" ] && printf '%s\n' "$parent" >"$D/snap/$name/parent"
    printf '%s\n' "$name" >"$D/current"
    printf 'Domain snapshot %s created\n' "$name"
    ;;
  snapshot-delete)
    resolve by-name
    [ -d "$D/snap/$snapname" ] || snapshot_not_found "$snapname"
    # Deleting the current snapshot makes its parent current, as libvirt does.
    if [ -s "$D/current" ]; then
      read -r c <"$D/current"
      if [ "$c" = "$snapname" ]; then
        if [ -s "$D/snap/$snapname/parent" ]; then cp "$D/snap/$snapname/parent" "$D/current"; else : >"$D/current"; fi
      fi
    fi
    rm -rf "$D/snap/$snapname"
    printf 'Domain snapshot %s deleted\n\n' "$snapname"
    ;;
  *)
    printf "error: unknown command: '%s'\n" "$sub" >&2
    exit 1
    ;;
esac
}

# Each command in a subshell, so that its `exit` ends only that command.
run_sub() {
  ( run_one "$@" )
  status=$?
}

# One argument holding blanks: a command line (a subcommand alone has none).
if [ $# -eq 1 ]; then
  case $1 in
    *[[:space:]]*)
      # Like virsh, refuse the whole line, before running any of it, when it holds a command
      # this fake does not know at the start of a line (the worker's event watcher: `uri`, `event`).
      unknown=$(printf '%s\n' "$1" | sed -nE "/^'?(echo|version|list|domname|domuuid|domstate|dominfo|snapshot-[a-z-]+)'?( |\$)/d; s/^(uri|event)( .*)?\$/\1/p" | head -n 1)
      if [ -n "$unknown" ]; then
        printf "error: unknown command: '%s'\n" "$unknown" >&2
        exit 1
      fi
      status=0
      eval "$(printf '%s\n' "$1" | sed -E "s/^'?(echo|version|list|domname|domuuid|domstate|dominfo|snapshot-[a-z-]+)'?( |\$)/run_sub \1\2/")"
      exit $status
      ;;
  esac
fi
run_one "$@"
