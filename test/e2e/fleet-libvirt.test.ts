import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_MAIN } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';
import { startExtraLibvirt, type ExtraLibvirt } from './helpers/second-libvirt.js';

/**
 * A fleet run over two real KVM hosts: the system libvirtd and a second, isolated
 * libvirtd, each with a worker of its own. Both hold a VM with the same name; the run
 * snapshots each on its own host, and a fleet delete removes them again. Real virsh,
 * libvirt and QEMU; nothing is faked.
 */
const suffix = process.pid;
/** Each step is a snapctl process, a control-process hop and real QEMU on two libvirts: roomy on a busy machine. */
const FLEET_TEST_TIMEOUT_MS = 180_000;
const TWIN = `snapbot-e2e-twin-${suffix}`;
const SOLO = `snapbot-e2e-solo-${suffix}`;
let redis: TestRedis;
let extra: ExtraLibvirt;
const workers: SpawnedProcess[] = [];
let control: SpawnedProcess | undefined;
const domains: TinyDomain[] = [];
let env: Record<string, string>;

function snapshotNames(domain: TinyDomain): string[] {
  return virshRaw(['snapshot-list', `--domain=${domain.uuid}`, '--name'], domain.uri)
    .stdout.split('\n')
    .filter((line) => line !== '');
}

beforeAll(async () => {
  await ensureLibvirt();
  extra = await startExtraLibvirt('fleet');
  domains.push(await createTinyDomain(TWIN, { start: true }));
  domains.push(await createTinyDomain(TWIN, { start: true, uri: extra.uri }));
  domains.push(await createTinyDomain(SOLO, { start: false, uri: extra.uri }));
  redis = await startTestRedis();
  const policyPath = join(mkdtempSync(join(tmpdir(), 'snapbot-fleet-e2e-')), 'policy.yaml');
  // Fleet deletes need no approval here: the approval path is covered against the fake virsh.
  // The tests' snapctl is the control process's local administrator, allowed by the administrators' rule.
  writeFileSync(
    policyPath,
    'rules:\n  - role: "@administrators"\n    actions: [create, list, info, revert, delete, hosts, audit]\napprovals: []\nfleet:\n  approval:\n    deletes: false\nlocalAdministrator: true\n',
  );
  env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: uniquePrefix('fleet-e2e') };
  for (const [hostId, uri] of [
    ['e2e-kvm-1', LIBVIRT_E2E_URI],
    ['e2e-kvm-2', extra.uri],
  ] as const) {
    const worker = spawnNode(WORKER_MAIN, { ...env, HOST_ID: hostId, LIBVIRT_URI: uri, HEARTBEAT_INTERVAL_MS: '500', INVENTORY_INTERVAL_MS: '2000', LOG_LEVEL: 'info' });
    workers.push(worker);
    await worker.waitFor('worker ready', 60_000);
  }
  // snapctl's fleet runs go through the control process (`npm run bot`, no Discord), under its policy.
  control = spawnNode(CONTROL_MAIN, { ...env, SNAPBOT_POLICY: policyPath, DISCORD_TOKEN: '', LOG_LEVEL: 'info' });
  await control.waitFor('control process ready', 120_000);
}, 600_000);

afterAll(async () => {
  await control?.stop();
  await Promise.all(workers.map((worker) => worker.stop()));
  await redis?.stop();
  for (const domain of domains) await destroyTinyDomain(domain.uuid, domain.uri);
  await extra?.stop();
});

describe('fleet on two real libvirt hosts', () => {
  it('previews the same VM name on both hosts as two targets, and snapshots each on its own host', async () => {
    const preview = parseJsonOutput(await runSnapctl(['fleet', 'snapshot', '--target', `snapbot-e2e-*-${suffix}`, '--name', 'pre-rollout-{host}', '--json'], env)) as {
      preview: { targets: Array<{ host: string; vm: string; uuid: string }> };
    };
    expect(preview.preview.targets.map((target) => `${target.vm}@${target.host}`).sort()).toEqual([`${SOLO}@e2e-kvm-2`, `${TWIN}@e2e-kvm-1`, `${TWIN}@e2e-kvm-2`]);
    // Disambiguated by host and UUID, not by name.
    const twins = preview.preview.targets.filter((target) => target.vm === TWIN);
    expect(new Set(twins.map((target) => target.uuid)).size).toBe(2);

    const run = await runSnapctl(['fleet', 'snapshot', '--target', `snapbot-e2e-*-${suffix}`, '--name', 'pre-rollout-{host}', '--yes', '--json'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(parseJsonOutput(run)).toMatchObject({ ok: true, total: 3, counts: { done: 3, failed: 0 } });
    const [twinOn1, twinOn2, solo] = domains;
    expect(snapshotNames(twinOn1!)).toEqual(['pre-rollout-e2e-kvm-1']);
    expect(snapshotNames(twinOn2!)).toEqual(['pre-rollout-e2e-kvm-2']);
    expect(snapshotNames(solo!)).toEqual(['pre-rollout-e2e-kvm-2']);
  }, FLEET_TEST_TIMEOUT_MS);

  it('lists which VMs hold which snapshots, then deletes them fleet-wide by glob', async () => {
    // The inventory catches up with the new snapshots within INVENTORY_INTERVAL_MS.
    let listed: Array<{ host: string; vm: string; snapshots: string[] }> = [];
    for (let attempt = 0; attempt < 40; attempt += 1) {
      listed = parseJsonOutput(await runSnapctl(['fleet', 'list', '--target', `snapbot-e2e-*-${suffix}`, '--name', 'pre-rollout-*', '--json'], env)).vms as typeof listed;
      if (listed.length === 3) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(listed.map((row) => `${row.vm}@${row.host}:${row.snapshots.join(',')}`).sort()).toEqual([
      `${SOLO}@e2e-kvm-2:pre-rollout-e2e-kvm-2`,
      `${TWIN}@e2e-kvm-1:pre-rollout-e2e-kvm-1`,
      `${TWIN}@e2e-kvm-2:pre-rollout-e2e-kvm-2`,
    ]);

    const deleted = await runSnapctl(['fleet', 'delete', '--target', `${TWIN} host:e2e-kvm-*`, '--name', 'pre-rollout-*', '--yes', '--json'], env);
    expect(deleted.code, deleted.stdout + deleted.stderr).toBe(0);
    expect(parseJsonOutput(deleted)).toMatchObject({ ok: true, total: 2, counts: { done: 2 } });
    const [twinOn1, twinOn2, solo] = domains;
    expect(snapshotNames(twinOn1!)).toEqual([]);
    expect(snapshotNames(twinOn2!)).toEqual([]);
    expect(snapshotNames(solo!)).toEqual(['pre-rollout-e2e-kvm-2']);
  }, FLEET_TEST_TIMEOUT_MS);
});
