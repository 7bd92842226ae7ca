import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LITERAL_NAMES, REFUSED_NAMES } from '../fixtures/names-table.js';
import { NO_APPROVALS_POLICY } from '../fixtures/policies/policies.js';
import { startControlProcess } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';

/**
 * snapctl → Redis → control process → Redis → worker → the real virsh → libvirtd → QEMU.
 * Nothing here is faked.
 */
const HOST_ID = 'e2e-kvm';
let redis: TestRedis;
let worker: SpawnedProcess;
let control: SpawnedProcess;
let env: Record<string, string>;
let running: TinyDomain;
let stopped: TinyDomain;
const suffix = process.pid;

async function snapctlJson(...args: string[]) {
  const result = await runSnapctl([...args, '--json'], env);
  return { ...result, body: parseJsonOutput(result) };
}

function snapshotNames(uuid: string): string[] {
  const listed = virshRaw(['snapshot-list', `--domain=${uuid}`, '--name']);
  return listed.stdout.split('\n').filter((line) => line !== '');
}

beforeAll(async () => {
  await ensureLibvirt();
  running = await createTinyDomain(`snapbot-e2e-web-${suffix}`, { start: true });
  stopped = await createTinyDomain(`snapbot-e2e-off-${suffix}`, { start: false });
  redis = await startTestRedis();
  const prefix = uniquePrefix('e2e');
  env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
  worker = spawnNode(WORKER_MAIN, {
    ...env,
    HOST_ID,
    LIBVIRT_URI: LIBVIRT_E2E_URI,
    HEARTBEAT_INTERVAL_MS: '500',
    LOG_LEVEL: 'info',
  });
  await worker.waitFor('worker ready', 60_000);
  // snapctl's changes go through the control process, under its policy.
  control = await startControlProcess({ ...env, SNAPBOT_POLICY: NO_APPROVALS_POLICY });
}, 600_000);

afterAll(async () => {
  await control?.stop();
  await worker?.stop();
  await redis?.stop();
  if (running) await destroyTinyDomain(running.uuid);
  if (stopped) await destroyTinyDomain(stopped.uuid);
});

describe('on real libvirt + QEMU', () => {
  it('reports the host with its real libvirt version and capabilities', async () => {
    const { body } = await snapctlJson('hosts');
    const host = (body.hosts as Array<Record<string, unknown>>).find((candidate) => candidate.hostId === HOST_ID)!;
    expect(host.online).toBe(true);
    expect(host.libvirtVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(host.qemuVersion).toMatch(/^\d+\.\d+\.\d+$/);
    const names = (host.vms as Array<{ name: string }>).map((vm) => vm.name);
    expect(names).toEqual(expect.arrayContaining([running.name, stopped.name]));
  });

  it('takes a full memory + disk snapshot of a running VM', async () => {
    const { code, body } = await snapctlJson('create', '--vm', running.name, '--name', 'full-1', '--mode', 'full', '--description', 'memory too');
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body).toMatchObject({ snapshot: { name: 'full-1', location: 'internal', memory: true, state: 'running', description: 'memory too' } });
    expect(virshRaw(['snapshot-info', `--domain=${running.uuid}`, '--snapshotname=full-1']).stdout).toMatch(/Location:\s+internal/);
  });

  it('takes an atomic disk-only snapshot: an external overlay next to the disk', async () => {
    const { code, body } = await snapctlJson('create', '--vm', running.name, '--name', 'pre-upgrade', '--mode', 'disk-only', '--description', 'before apt upgrade');
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body).toMatchObject({ snapshot: { name: 'pre-upgrade', location: 'external', memory: false, parent: 'full-1', current: true } });
    expect(existsSync(running.diskPath.replace(/\.qcow2$/, '.pre-upgrade'))).toBe(true);
  });

  it('lists snapshots newest first, and shows one', async () => {
    const list = await snapctlJson('list', '--vm', running.name);
    expect(list.code).toBe(0);
    expect((list.body.snapshots as Array<{ name: string }>).map((snapshot) => snapshot.name)).toEqual(['pre-upgrade', 'full-1']);
    const info = await snapctlJson('info', '--vm', running.name, '--name', 'pre-upgrade');
    expect(info.body).toMatchObject({ snapshot: { name: 'pre-upgrade', description: 'before apt upgrade', current: true } });
  });

  it('refuses to revert an external snapshot on this libvirt with UNSUPPORTED and the reason', async () => {
    const { code, body } = await snapctlJson('revert', '--vm', running.name, '--name', 'pre-upgrade');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(body.message).toMatch(/external/);
    expect(virshRaw(['domstate', `--domain=${running.uuid}`]).stdout.trim()).toBe('running');
  });

  it('refuses a duplicate name, internal and disk-only, with SNAPSHOT_EXISTS', async () => {
    expect((await snapctlJson('create', '--vm', running.name, '--name', 'full-1', '--mode', 'full')).body).toMatchObject({ code: 'SNAPSHOT_EXISTS' });
    expect((await snapctlJson('create', '--vm', running.name, '--name', 'pre-upgrade')).body).toMatchObject({ code: 'SNAPSHOT_EXISTS' });
  });

  it('reverts to an internal memory snapshot: the VM comes back running from it', async () => {
    const { code, body } = await snapctlJson('revert', '--vm', running.name, '--name', 'full-1');
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body).toMatchObject({ kind: 'revert', vmState: 'running', snapshot: { name: 'full-1' } });
    expect(virshRaw(['domstate', `--domain=${running.uuid}`, '--reason']).stdout.trim()).toBe('running (from snapshot)');
  });

  it('takes a full snapshot of a shut-off VM as disks only, and says so', async () => {
    const { code, body } = await snapctlJson('create', '--vm', stopped.name, '--name', 'cold', '--mode', 'full');
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body).toMatchObject({ snapshot: { memory: false, state: 'shutoff' } });
    expect(body.note).toMatch(/disks only/);
  });

  it('deletes an internal snapshot', async () => {
    const { code, body } = await snapctlJson('delete', '--vm', stopped.name, '--name', 'cold');
    expect(code, JSON.stringify(body)).toBe(0);
    expect(snapshotNames(stopped.uuid)).not.toContain('cold');
  });

  it('answers DOMAIN_NOT_FOUND and SNAPSHOT_NOT_FOUND with clear messages', async () => {
    const vm = await snapctlJson('list', '--vm', `no-such-vm-${suffix}`, '--host', HOST_ID);
    expect(vm.body).toMatchObject({ ok: false, code: 'DOMAIN_NOT_FOUND' });
    const snapshot = await snapctlJson('info', '--vm', running.name, '--name', 'no-such-snapshot');
    expect(snapshot.body).toMatchObject({ ok: false, code: 'SNAPSHOT_NOT_FOUND' });
    expect(snapshot.body.message).toMatch(/no-such-snapshot/);
  });

  it.each(LITERAL_NAMES)('creates the snapshot %j literally in libvirt', async (name) => {
    const { code, body } = await snapctlJson('create', '--vm', stopped.name, `--name=${name}`, '--mode', 'full');
    expect(code, JSON.stringify(body)).toBe(0);
    expect(snapshotNames(stopped.uuid)).toContain(name);
    const info = await snapctlJson('info', '--vm', stopped.name, `--name=${name}`);
    expect(info.body).toMatchObject({ snapshot: { name } });
  });

  it.each(REFUSED_NAMES)('refuses the name %j before it reaches libvirt', async (name) => {
    const before = snapshotNames(stopped.uuid);
    const { code, body } = await snapctlJson('create', '--vm', stopped.name, `--name=${name}`, '--mode', 'full');
    expect(code).toBe(2);
    expect(body).toMatchObject({ ok: false, code: 'VALIDATION' });
    expect(snapshotNames(stopped.uuid)).toEqual(before);
  });
});
