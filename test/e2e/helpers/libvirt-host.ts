/**
 * The real libvirt + QEMU host for e2e tests: brings the daemon up (through
 * scripts/libvirt-up.sh), and makes and removes tiny throw-away domains, on
 * {@link LIBVIRT_E2E_URI} or on any other daemon's URI (see second-libvirt.ts).
 *
 * Every virsh call goes through an argv array with the flag forms (`--domain=X`),
 * and domains are addressed by UUID once defined: test domain names may be
 * "weird" on purpose (spaces, leading dashes, digits, unicode).
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The libvirt URI every e2e test talks to. */
export const LIBVIRT_E2E_URI = 'qemu:///system';

/** Where tiny domains of {@link LIBVIRT_E2E_URI} keep their disks, one directory per domain name. */
export const E2E_DOMAIN_ROOT = '/var/lib/snapbot-e2e';

/** Where tiny domains of other daemons keep theirs, one directory per URI (see {@link e2eDomainRoot}). */
export const E2E_EXTRA_DOMAIN_ROOT = '/var/lib/snapbot-e2e-hosts';

const LIBVIRT_UP_SCRIPT = fileURLToPath(new URL('../../../scripts/libvirt-up.sh', import.meta.url));
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const VIRSH_TIMEOUT_MS = 120_000;

// virsh reads LANG/LC_*: a UTF-8 C locale keeps messages in English and unicode
// names unescaped, whatever the caller's environment says.
const VIRSH_ENV = { ...process.env, LC_ALL: 'C.UTF-8' };

/** The outcome of one virsh run, as a test would want to assert on it. */
export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A tiny domain made by {@link createTinyDomain}. */
export interface TinyDomain {
  name: string;
  uuid: string;
  diskPath: string;
  /** The libvirt URI of the daemon that holds it. */
  uri: string;
}

/**
 * Runs scripts/libvirt-up.sh, which installs, configures and starts libvirtd as
 * needed and returns once `virsh -c qemu:///system version` answers.
 * Throws with the script's output when it fails; never skips.
 */
export async function ensureLibvirt(): Promise<void> {
  const result = await run('bash', [LIBVIRT_UP_SCRIPT], 600_000);
  if (result.code !== 0) {
    throw new Error(
      `scripts/libvirt-up.sh failed (exit ${result.code}):\n${result.stdout}${result.stderr}`,
    );
  }
}

/**
 * The directory under which tiny domains of the daemon at `uri` keep their disks:
 * {@link E2E_DOMAIN_ROOT} for {@link LIBVIRT_E2E_URI}, else one directory per URI,
 * so domains of the same name on two daemons never share a disk.
 */
export function e2eDomainRoot(uri: string = LIBVIRT_E2E_URI): string {
  if (uri === LIBVIRT_E2E_URI) return E2E_DOMAIN_ROOT;
  return path.join(E2E_EXTRA_DOMAIN_ROOT, createHash('sha256').update(uri).digest('hex').slice(0, 16));
}

/**
 * Runs `virsh -c URI ...args` synchronously (no shell) and returns its exit code
 * and output; the URI is {@link LIBVIRT_E2E_URI} unless given. For tests that
 * check libvirt's state directly.
 */
export function virshRaw(args: string[], uri: string = LIBVIRT_E2E_URI): VirshResult {
  const result = spawnSync('virsh', ['-c', uri, ...args], {
    encoding: 'utf8',
    env: VIRSH_ENV,
    timeout: VIRSH_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  if (result.error && result.status === null) {
    return { code: -1, stdout: result.stdout ?? '', stderr: `${result.stderr ?? ''}${result.error.message}` };
  }
  return { code: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/**
 * Defines (and by default starts) a tiny domain per shared/notes/libvirt.md:
 * 64 MiB, 1 vCPU, a 64M qcow2 virtio `vda`, a pty serial, no network, no
 * graphics, no balloon, no `<cpu>`. KVM when /dev/kvm exists, else TCG. It boots to
 * "no bootable device" and sits there, which is all a snapshot needs.
 *
 * The domain goes to the daemon at `options.uri` ({@link LIBVIRT_E2E_URI} by
 * default), its disk under that URI's {@link e2eDomainRoot}. A leftover domain of
 * the same name whose disk lives there (from a crashed earlier run) is removed
 * first; any other one is an error.
 */
export async function createTinyDomain(
  name: string,
  options: { start?: boolean; uri?: string } = {},
): Promise<TinyDomain> {
  const uri = options.uri ?? LIBVIRT_E2E_URI;
  const root = e2eDomainRoot(uri);
  const dir = domainDirectory(root, name);
  const existing = findDomainUuidByName(name, uri);
  if (existing !== undefined) {
    if (!virshOk(['dumpxml', `--domain=${existing}`], uri).stdout.includes(`${root}/`)) {
      throw new Error(`a domain named ${JSON.stringify(name)} exists on ${uri} and is not an e2e domain`);
    }
    await destroyTinyDomain(existing, uri);
  }

  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const diskPath = path.join(dir, 'disk.qcow2');
  const img = await run('qemu-img', ['create', '-q', '-f', 'qcow2', diskPath, '64M'], 60_000);
  if (img.code !== 0) {
    throw new Error(`qemu-img create failed (exit ${img.code}): ${img.stderr}${img.stdout}`);
  }

  const uuid = randomUUID();
  const xmlPath = path.join(dir, 'domain.xml');
  await writeFile(xmlPath, tinyDomainXml(name, uuid, diskPath));
  virshOk(['define', `--file=${xmlPath}`], uri);
  if (options.start ?? true) {
    virshOk(['start', `--domain=${uuid}`], uri);
  }
  return { name, uuid, diskPath, uri };
}

/**
 * Removes a tiny domain completely: stops it, deletes all its snapshot metadata
 * (internal and external, children included), undefines it and removes its
 * directory under {@link e2eDomainRoot}. Works on the daemon at `uri`
 * ({@link LIBVIRT_E2E_URI} by default). Succeeds when the domain is already gone.
 */
export async function destroyTinyDomain(nameOrUuid: string, uri: string = LIBVIRT_E2E_URI): Promise<void> {
  const uuid = resolveDomainUuid(nameOrUuid, uri);
  let name = UUID_PATTERN.test(nameOrUuid) ? undefined : nameOrUuid;
  if (uuid !== undefined) {
    name = virshOk(['domname', `--domain=${uuid}`], uri).stdout.replace(/\n+$/, '');
    const state = virshOk(['domstate', `--domain=${uuid}`], uri).stdout.trim();
    if (state !== 'shut off') {
      const destroyed = virshRaw(['destroy', `--domain=${uuid}`], uri);
      // It may have stopped by itself in between; anything else is a real failure.
      if (destroyed.code !== 0 && !/not running/.test(destroyed.stderr)) {
        throw virshError(['destroy', `--domain=${uuid}`], destroyed, uri);
      }
    }
    deleteAllSnapshotMetadata(uuid, uri);
    // --snapshots-metadata catches whatever the loop above could not name.
    virshOk(
      ['undefine', `--domain=${uuid}`, '--snapshots-metadata', '--checkpoints-metadata', '--managed-save'],
      uri,
    );
  }
  if (name !== undefined && isSafeDirectoryName(name)) {
    await rm(path.join(e2eDomainRoot(uri), name), { recursive: true, force: true });
  }
}

/**
 * The UUID of the domain with exactly this name on the daemon at `uri`
 * ({@link LIBVIRT_E2E_URI} by default), looked up without ID/name ambiguity.
 */
export function findDomainUuidByName(name: string, uri: string = LIBVIRT_E2E_URI): string | undefined {
  // `list --uuid --name` prints "UUID NAME" per line; the UUID has a fixed width.
  const listed = virshOk(['list', '--all', '--uuid', '--name'], uri).stdout;
  for (const line of listed.split('\n')) {
    const uuid = line.slice(0, 36);
    if (UUID_PATTERN.test(uuid) && line.slice(37) === name) return uuid;
  }
  return undefined;
}

function resolveDomainUuid(nameOrUuid: string, uri: string): string | undefined {
  // `domuuid` looks its argument up by ID or name only, never by UUID; `domname`
  // looks up by ID or UUID: so it is the one that tells whether a UUID exists.
  if (UUID_PATTERN.test(nameOrUuid) && virshRaw(['domname', `--domain=${nameOrUuid}`], uri).code === 0) {
    return nameOrUuid.toLowerCase();
  }
  return findDomainUuidByName(nameOrUuid, uri);
}

function deleteAllSnapshotMetadata(uuid: string, uri: string): void {
  // Leaves first, so no deletion has to re-parent anything; repeat until none are
  // left (bounded, in case a name cannot be round-tripped through the listing).
  for (let round = 0; round < 100; round++) {
    const names = snapshotNames(uuid, ['--leaves'], uri);
    if (names.length === 0) return;
    let deleted = 0;
    for (const snapshot of names) {
      const result = virshRaw(
        ['snapshot-delete', `--domain=${uuid}`, `--snapshotname=${snapshot}`, '--metadata'],
        uri,
      );
      if (result.code === 0) deleted++;
    }
    if (deleted === 0) return;
  }
}

function snapshotNames(uuid: string, extra: string[], uri: string): string[] {
  const listed = virshOk(['snapshot-list', `--domain=${uuid}`, '--name', ...extra], uri).stdout;
  return listed.split('\n').filter((line) => line !== '');
}

function tinyDomainXml(name: string, uuid: string, diskPath: string): string {
  const type = existsSync('/dev/kvm') ? 'kvm' : 'qemu';
  return `<domain type='${type}'>
  <name>${escapeXml(name)}</name>
  <uuid>${uuid}</uuid>
  <description>snapbot e2e tiny domain</description>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <boot dev='hd'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${escapeXml(diskPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

function domainDirectory(root: string, name: string): string {
  if (!isSafeDirectoryName(name)) {
    throw new Error(`domain name ${JSON.stringify(name)} cannot be a directory name`);
  }
  return path.join(root, name);
}

function isSafeDirectoryName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\0]/.test(name);
}

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

function virshOk(args: string[], uri: string): VirshResult {
  const result = virshRaw(args, uri);
  if (result.code !== 0) throw virshError(args, result, uri);
  return result;
}

function virshError(args: string[], result: VirshResult, uri: string): Error {
  return new Error(
    `virsh -c ${uri} ${args.map((a) => JSON.stringify(a)).join(' ')} exited ${result.code}: ${result.stderr.trim()}`,
  );
}

function run(file: string, args: string[], timeout: number): Promise<VirshResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { encoding: 'utf8', timeout, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        const extra = error !== null && code === -1 ? `${error.message}\n` : '';
        resolve({ code, stdout, stderr: `${stderr}${extra}` });
      },
    );
  });
}
