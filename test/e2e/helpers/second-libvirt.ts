/**
 * Extra, isolated libvirt daemons on this one machine, each standing in for
 * another KVM host, so a fleet test can run one worker per "host" and hold a
 * domain of the same name on each.
 *
 * Each one is a privileged `libvirtd` in its own mount namespace (`unshare -m`)
 * with private /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
 * /var/log/libvirt bind-mounted from a directory under {@link EXTRA_LIBVIRT_ROOT}.
 * Outside the namespace its socket is `<dir>/run/libvirt-sock`, reached with
 * `qemu:///system?socket=…`. It runs as root like the system daemon, so domain XML,
 * KVM and root-owned disks behave exactly as on {@link LIBVIRT_E2E_URI}
 * (see shared/notes/libvirt.md for the alternatives).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { e2eDomainRoot, ensureLibvirt } from './libvirt-host.js';

/** Where extra daemons keep their state, one directory per daemon (`LABEL.PID`). */
export const EXTRA_LIBVIRT_ROOT = '/run/snapbot-e2e/hosts';

/** An extra libvirt daemon started by {@link startExtraLibvirt}. */
export interface ExtraLibvirt {
  /** The label it was started with. */
  label: string;
  /** For `virsh --connect` and a worker's LIBVIRT_URI: `qemu:///system?socket=…`. */
  uri: string;
  /**
   * Kills the daemon and every QEMU it started, and removes its state and the disks
   * of its tiny domains. Safe to call more than once.
   */
  stop(): Promise<void>;
}

interface RunningDaemon {
  hostDir: string;
  uri: string;
  users: number;
}

const LABEL_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
const START_TIMEOUT_MS = 60_000;
const KILL_TIMEOUT_MS = 10_000;
const SYSTEM_CAPABILITIES_CACHE = '/var/cache/libvirt/qemu/capabilities';

// The bind mounts happen inside the new namespace only (private propagation), so
// the system daemon and everyone else keep seeing the real directories. $1 is the
// host directory; nothing is interpolated into the script.
const NAMESPACE_SCRIPT = `set -e
mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
mount --bind "$1/etc" /etc/libvirt
mount --bind "$1/run" /run/libvirt
mount --bind "$1/lib" /var/lib/libvirt
mount --bind "$1/cache" /var/cache/libvirt
mount --bind "$1/log" /var/log/libvirt
exec libvirtd --daemon --pid-file="$1/libvirtd.pid" </dev/null >>"$1/libvirtd.log" 2>&1
`;

// As scripts/libvirt-up.sh writes for the system daemon, plus no cgroups: without
// systemd, libvirt names a domain's cgroup machine/qemu-ID-NAME.libvirt-qemu, and
// every daemon counts IDs from 1, so a `twin` on two daemons would share one.
const QEMU_CONF = `user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
cgroup_controllers = [ ]
`;

// Same label in one process: one daemon, shared; it stops with its last user.
const running = new Map<string, Promise<RunningDaemon>>();
const stopping = new Map<string, Promise<void>>();

/**
 * Starts an extra libvirt daemon for `label` (lower-case letters, digits, dashes)
 * and resolves once `virsh -c URI version` answers on it. Calls with the same label
 * in one process share the daemon; different labels, and other processes, get their
 * own. Daemons left behind by dead processes are removed first.
 *
 * Brings the system daemon up first (scripts/libvirt-up.sh): it installs libvirt,
 * and its QEMU capabilities cache makes the extra daemon ready in ~0.15 s instead of
 * ~8 s. Needs root. Throws with the daemon's log when it cannot start; never skips.
 */
export async function startExtraLibvirt(label: string): Promise<ExtraLibvirt> {
  if (!LABEL_PATTERN.test(label)) {
    throw new Error(`extra libvirt label ${JSON.stringify(label)} must match ${LABEL_PATTERN}`);
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'startExtraLibvirt needs root: it runs libvirtd in its own mount namespace (unshare -m); CI runs as root',
    );
  }

  let daemon = running.get(label);
  if (daemon === undefined) {
    daemon = bringUp(label);
    running.set(label, daemon);
    daemon.catch(() => running.delete(label));
  }
  const host = await daemon;
  host.users++;

  let stopped = false;
  return {
    label,
    uri: host.uri,
    async stop() {
      if (stopped) return;
      stopped = true;
      host.users--;
      if (host.users > 0) return;
      running.delete(label);
      const done = tearDown(host.hostDir);
      stopping.set(label, done);
      try {
        await done;
      } finally {
        stopping.delete(label);
      }
    },
  };
}

async function bringUp(label: string): Promise<RunningDaemon> {
  await stopping.get(label)?.catch(() => undefined);
  await ensureLibvirt();
  await reapOrphans();

  const hostDir = path.join(EXTRA_LIBVIRT_ROOT, `${label}.${process.pid}`);
  // Ours by name but not in `running`: a module instance before us (vitest reuses
  // processes) forgot to stop it.
  if (existsSync(hostDir)) await tearDown(hostDir);

  for (const sub of ['etc', 'run', 'lib', 'cache/qemu', 'log/qemu']) {
    await mkdir(path.join(hostDir, sub), { recursive: true });
  }
  await writeFile(path.join(hostDir, 'owner'), `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
  await writeFile(path.join(hostDir, 'etc', 'qemu.conf'), QEMU_CONF);
  if (existsSync(SYSTEM_CAPABILITIES_CACHE)) {
    // libvirt checks the cache against the QEMU and libvirtd binaries and re-probes if stale.
    await cp(SYSTEM_CAPABILITIES_CACHE, path.join(hostDir, 'cache', 'qemu', 'capabilities'), { recursive: true });
  }

  const uri = uriOf(hostDir);
  const logPath = path.join(hostDir, 'libvirtd.log');
  const begun = Date.now();
  const launched = await run(
    'unshare',
    ['--mount', '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', hostDir],
    { ...process.env, LIBVIRT_LOG_OUTPUTS: `3:file:${logPath}` },
    30_000,
  );
  if (launched.code !== 0) {
    await failStart(hostDir, `unshare/libvirtd exited ${launched.code}: ${launched.stderr.trim()}`);
  }

  // `libvirtd --daemon` exits 0 even when the daemon dies right after: poll.
  for (;;) {
    const answer = await run('virsh', ['-c', uri, 'version'], { ...process.env, LC_ALL: 'C.UTF-8' }, 10_000);
    if (answer.code === 0) break;
    const elapsed = Date.now() - begun;
    if (elapsed > 5_000 && (await namespaceProcesses(hostDir)).length === 0) {
      await failStart(hostDir, 'libvirtd exited right after starting');
    }
    if (elapsed > START_TIMEOUT_MS) {
      await failStart(hostDir, `libvirtd did not answer on ${uri} within ${START_TIMEOUT_MS / 1000}s: ${answer.stderr.trim()}`);
    }
    await sleep(50);
  }
  return { hostDir, uri, users: 0 };
}

function uriOf(hostDir: string): string {
  return `qemu:///system?socket=${hostDir}/run/libvirt-sock`;
}

async function failStart(hostDir: string, reason: string): Promise<never> {
  const log = await readFile(path.join(hostDir, 'libvirtd.log'), 'utf8').catch(() => '(no log)');
  const tail = log.split('\n').slice(-30).join('\n');
  await tearDown(hostDir).catch(() => undefined);
  throw new Error(`extra libvirt daemon in ${hostDir} did not start: ${reason}\n--- last lines of libvirtd.log:\n${tail}`);
}

/** Removes daemons whose owning process is gone (a crashed or killed test run). */
async function reapOrphans(): Promise<void> {
  const entries = await readdir(EXTRA_LIBVIRT_ROOT).catch(() => [] as string[]);
  for (const entry of entries) {
    const hostDir = path.join(EXTRA_LIBVIRT_ROOT, entry);
    const owner = await readFile(path.join(hostDir, 'owner'), 'utf8').catch(() => '');
    const [pid, startTime] = owner.trim().split(' ');
    const alive = pid !== undefined && /^\d+$/.test(pid) && processStartTime(Number(pid)) === startTime;
    if (!alive) await tearDown(hostDir);
  }
}

/**
 * Kills every process in the daemon's namespace (libvirtd and its QEMUs; their
 * state is thrown away, so no need to be gentle), then removes its directory and
 * its tiny domains' disks. Throws when a process survives SIGKILL.
 */
async function tearDown(hostDir: string): Promise<void> {
  const deadline = Date.now() + KILL_TIMEOUT_MS;
  for (;;) {
    const pids = await namespaceProcesses(hostDir);
    if (pids.length === 0) break;
    if (Date.now() > deadline) {
      throw new Error(`processes ${pids.join(', ')} of the extra libvirt daemon in ${hostDir} survived SIGKILL`);
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone in between.
      }
    }
    await sleep(50);
  }
  await rm(hostDir, { recursive: true, force: true });
  await rm(e2eDomainRoot(uriOf(hostDir)), { recursive: true, force: true });
}

/**
 * The live processes whose /run/libvirt is this daemon's bind mount: the daemon
 * and the QEMUs it started, whether or not the daemon is still alive.
 */
async function namespaceProcesses(hostDir: string): Promise<number[]> {
  // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT …"; ROOT is relative to the source
  // file system, so match its tail only.
  const marker = `/${path.basename(hostDir)}/run /run/libvirt `;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const mountinfo = await readFile(`/proc/${entry}/mountinfo`, 'utf8').catch(() => '');
    if (mountinfo.includes(marker) && processState(Number(entry)) !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/** Field 3 of /proc/PID/stat (R, S, Z, …), or undefined when the process is gone. */
function processState(pid: number): string | undefined {
  return procStatFields(pid)?.[0];
}

/** Field 22 of /proc/PID/stat: with the pid, tells a process from a later one reusing its pid. */
function processStartTime(pid: number): string | undefined {
  return procStatFields(pid)?.[19];
}

function procStatFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeout: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', env, timeout, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      const extra = error !== null && code === -1 ? `${error.message}\n` : '';
      resolve({ code, stdout, stderr: `${stderr}${extra}` });
    });
  });
}
