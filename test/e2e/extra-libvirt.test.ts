import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LIBVIRT_E2E_URI,
  createTinyDomain,
  destroyTinyDomain,
  e2eDomainRoot,
  ensureLibvirt,
  virshRaw,
  type TinyDomain,
} from './helpers/libvirt-host.js';
import { startExtraLibvirt, type ExtraLibvirt } from './helpers/second-libvirt.js';

// The point of a second daemon: the same VM name on two hosts.
const name = 'twin';

describe('an extra libvirt daemon next to the system one', () => {
  let extra: ExtraLibvirt;

  beforeAll(async () => {
    await ensureLibvirt();
    extra = await startExtraLibvirt('e2e-twin');
  }, 300_000);

  afterAll(async () => {
    await destroyTinyDomain(name, LIBVIRT_E2E_URI);
    if (extra !== undefined) {
      await destroyTinyDomain(name, extra.uri);
      await extra.stop();
    }
  });

  it('answers on its own socket with its own, empty set of domains', () => {
    expect(extra.uri).toMatch(/^qemu:\/\/\/system\?socket=\/.+\/libvirt-sock$/);
    expect(extra.uri).not.toBe(LIBVIRT_E2E_URI);
    const version = virshRaw(['version', '--daemon'], extra.uri);
    expect(version.stderr).toBe('');
    expect(version.stdout).toMatch(/Running against daemon: \d+\.\d+\.\d+/);
    expect(virshRaw(['list', '--all', '--name'], extra.uri).stdout.trim()).toBe('');
  });

  it('holds a domain of the same name as the system daemon, with its own snapshots', async () => {
    const onSystem: TinyDomain = await createTinyDomain(name);
    const onExtra: TinyDomain = await createTinyDomain(name, { uri: extra.uri });

    expect(onExtra.uri).toBe(extra.uri);
    expect(onExtra.uuid).not.toBe(onSystem.uuid);
    expect(onExtra.diskPath).not.toBe(onSystem.diskPath);
    for (const [uri, domain] of [
      [LIBVIRT_E2E_URI, onSystem],
      [extra.uri, onExtra],
    ] as const) {
      expect(virshRaw(['domuuid', `--domain=${name}`], uri).stdout.trim()).toBe(domain.uuid);
      expect(virshRaw(['domstate', `--domain=${name}`], uri).stdout.trim()).toBe('running');
    }

    const created = virshRaw(['snapshot-create-as', `--domain=${name}`, '--name=only-on-extra'], extra.uri);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);

    expect(virshRaw(['snapshot-list', `--domain=${name}`, '--name'], extra.uri).stdout.trim()).toBe('only-on-extra');
    expect(virshRaw(['snapshot-list', `--domain=${name}`, '--name'], LIBVIRT_E2E_URI).stdout.trim()).toBe('');
    const missing = virshRaw(['snapshot-info', `--domain=${name}`, '--snapshotname=only-on-extra'], LIBVIRT_E2E_URI);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no domain snapshot with matching name 'only-on-extra'");

    // Removing the system's twin leaves the extra one running, snapshot and all.
    await destroyTinyDomain(name, LIBVIRT_E2E_URI);
    expect(virshRaw(['domstate', `--domain=${name}`], LIBVIRT_E2E_URI).stderr).toContain('failed to get domain');
    expect(virshRaw(['domstate', `--domain=${name}`], extra.uri).stdout.trim()).toBe('running');
    expect(virshRaw(['snapshot-list', `--domain=${name}`, '--name'], extra.uri).stdout.trim()).toBe('only-on-extra');
  });

  it('shares one daemon between callers of the same label and stops with the last one', async () => {
    const again = await startExtraLibvirt('e2e-twin');
    expect(again.uri).toBe(extra.uri);
    await again.stop();
    await again.stop();
    expect(virshRaw(['version'], extra.uri).code).toBe(0);
  });

  it('stops a second label completely: daemon, QEMU, state and disks', async () => {
    const other = await startExtraLibvirt('e2e-twin-b');
    expect(other.uri).not.toBe(extra.uri);
    const domain = await createTinyDomain(name, { uri: other.uri });
    const socket = other.uri.slice(other.uri.indexOf('socket=') + 'socket='.length);
    expect(existsSync(socket)).toBe(true);
    // The daemon's /run/libvirt/qemu, seen from outside its namespace.
    const qemuPid = Number(readFileSync(path.join(path.dirname(socket), 'qemu', `${name}.pid`), 'utf8'));
    expect(isRunning(qemuPid)).toBe(true);

    await other.stop();

    const gone = virshRaw(['version'], other.uri);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('failed to connect');
    expect(existsSync(path.dirname(path.dirname(socket)))).toBe(false);
    expect(existsSync(e2eDomainRoot(other.uri))).toBe(false);
    expect(existsSync(domain.diskPath)).toBe(false);
    expect(isRunning(qemuPid)).toBe(false);
    expect(virshRaw(['domstate', `--domain=${name}`], extra.uri).stdout.trim()).toBe('running');
  });
});

/** True while the process exists and is not a zombie. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
