import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  E2E_DOMAIN_ROOT,
  createTinyDomain,
  destroyTinyDomain,
  ensureLibvirt,
  virshRaw,
} from './helpers/libvirt-host.js';

// A name that would break anything passing names positionally or through a shell.
const name = `--snapbot e2e ✓ ${process.pid}`;

describe('the e2e libvirt host', () => {
  beforeAll(async () => {
    await ensureLibvirt();
  }, 600_000);

  afterAll(async () => {
    await destroyTinyDomain(name);
  });

  it('answers on qemu:///system', () => {
    const version = virshRaw(['version', '--daemon']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/Running against daemon: \d+\.\d+\.\d+/);
  });

  it('runs a tiny domain and removes it with its snapshots, disks and directory', async () => {
    const domain = await createTinyDomain(name);
    expect(domain.name).toBe(name);
    expect(domain.diskPath.startsWith(path.join(E2E_DOMAIN_ROOT, name))).toBe(true);
    expect(virshRaw(['domstate', `--domain=${domain.uuid}`]).stdout.trim()).toBe('running');
    expect(virshRaw(['domname', `--domain=${domain.uuid}`]).stdout.trim()).toBe(name);

    // One internal and one external (overlay) snapshot: removal must cope with both.
    const internal = virshRaw(['snapshot-create-as', `--domain=${domain.uuid}`, '--name=internal']);
    expect(internal.stderr).toBe('');
    const external = virshRaw([
      'snapshot-create-as',
      `--domain=${domain.uuid}`,
      '--name=overlay',
      '--disk-only',
      '--atomic',
    ]);
    expect(external.stderr).toBe('');

    await destroyTinyDomain(domain.uuid);

    const gone = virshRaw(['domstate', `--domain=${domain.uuid}`]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('failed to get domain');
    expect(virshRaw(['list', '--all', '--uuid']).stdout).not.toContain(domain.uuid);
    expect(existsSync(path.join(E2E_DOMAIN_ROOT, name))).toBe(false);
  });

  it('treats removing a domain that is already gone as done', async () => {
    await expect(destroyTinyDomain(`${name} never made`)).resolves.toBeUndefined();
  });
});
