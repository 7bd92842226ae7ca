import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_MAIN } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';

/**
 * Issue 11's proof on real libvirt and QEMU, through snapctl and the control process: a
 * schedule every 5 s with `--keep last=2` on two running VMs, disk-only, leaves exactly
 * the two newest of its snapshots on each after 30 s (older ones merged away by libvirt's
 * snapshot-delete), a snapshot taken by hand with the same prefix untouched, and
 * `schedule delete` stops it.
 */
const suffix = process.pid;
const VMS = [`snapbot-e2e-sched-a-${suffix}`, `snapbot-e2e-sched-b-${suffix}`];
let redis: TestRedis;
let worker: SpawnedProcess | undefined;
let control: SpawnedProcess | undefined;
const domains: TinyDomain[] = [];
let env: Record<string, string>;

function snapshots(domain: TinyDomain): Array<{ name: string; description: string }> {
  const names = virshRaw(['snapshot-list', `--domain=${domain.uuid}`, '--name'], domain.uri)
    .stdout.split('\n')
    .filter((line) => line !== '');
  return names.map((name) => {
    const xml = virshRaw(['snapshot-dumpxml', `--domain=${domain.uuid}`, `--snapshotname=${name}`], domain.uri).stdout;
    return { name, description: /<description>([\s\S]*?)<\/description>/.exec(xml)?.[1] ?? '' };
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await ensureLibvirt();
  for (const vm of VMS) domains.push(await createTinyDomain(vm, { start: true }));
  redis = await startTestRedis();
  const policyPath = join(mkdtempSync(join(tmpdir(), 'snapbot-schedule-e2e-')), 'policy.yaml');
  // Deletes need no approval here (the approval at creation is covered against the fake virsh).
  writeFileSync(policyPath, 'rules:\n  - role: "@administrators"\n    actions: [create, list, info, revert, delete, hosts, audit, schedule]\napprovals: []\nlocalAdministrator: true\n');
  env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: uniquePrefix('schedule-e2e') };
  worker = spawnNode(WORKER_MAIN, { ...env, HOST_ID: 'e2e-kvm-1', LIBVIRT_URI: LIBVIRT_E2E_URI, HEARTBEAT_INTERVAL_MS: '500', INVENTORY_INTERVAL_MS: '2000', LOG_LEVEL: 'info' });
  await worker.waitFor('worker ready', 60_000);
  control = spawnNode(CONTROL_MAIN, { ...env, SNAPBOT_POLICY: policyPath, DISCORD_TOKEN: '', LOG_LEVEL: 'info' });
  await control.waitFor('control process ready', 120_000);
}, 600_000);

afterAll(async () => {
  await control?.stop();
  await worker?.stop();
  await redis?.stop();
  for (const domain of domains) await destroyTinyDomain(domain.uuid, domain.uri);
});

describe('a schedule on real libvirt', () => {
  it('every 5 s, keep last=2, disk-only: two newest marked snapshots per VM after 30 s, the manual one untouched; delete stops it', async () => {
    const name = `e2e-${suffix}`;
    // A snapshot taken by hand, named like the schedule's: never pruned (it carries no marker).
    for (const domain of domains) virshRaw(['snapshot-create-as', `--domain=${domain.uuid}`, `--name=${name}-by-hand`, '--disk-only', '--atomic'], domain.uri);
    const created = parseJsonOutput(
      await runSnapctl(['schedule', 'create', name, '--target', `snapbot-e2e-sched-*-${suffix}`, '--every', '5s', '--keep', 'last=2', '--mode', 'disk-only', '--json'], env),
    ) as { ok: boolean; status: string; vms: number };
    expect(created).toMatchObject({ ok: true, status: 'active', vms: 2 });

    await sleep(30_000);
    const shown = parseJsonOutput(await runSnapctl(['schedule', 'show', name, '--json'], env)) as { schedule: { lastFiring: { outcome: string; pruned: number } | null; status: string } };
    expect(shown.schedule.status).toBe('active');
    expect(shown.schedule.lastFiring?.outcome).toBe('ok');

    const deleted = parseJsonOutput(await runSnapctl(['schedule', 'delete', name, '--json'], env)) as { ok: boolean };
    expect(deleted.ok).toBe(true);
    await sleep(8_000); // a firing under way when it was deleted ends, with its retention
    const settled = domains.map((domain) => snapshots(domain).map((snapshot) => snapshot.name));
    await sleep(7_000);
    // Stopped: nothing new after the delete settled.
    expect(domains.map((domain) => snapshots(domain).map((snapshot) => snapshot.name))).toEqual(settled);

    for (const domain of domains) {
      const all = snapshots(domain);
      const marked = all.filter((snapshot) => snapshot.description.includes(`schedule ${name}]`));
      expect(marked.map((snapshot) => snapshot.name)).toHaveLength(2);
      expect(marked.every((snapshot) => /^e2e-\d+-\d{8}-\d{6}$/.test(snapshot.name))).toBe(true);
      expect(all.map((snapshot) => snapshot.name)).toContain(`${name}-by-hand`);
    }
    // Between 30 s of firings and the delete, libvirt merged away the older ones: at least 5 firings, 2 left.
    const list = parseJsonOutput(await runSnapctl(['schedule', 'list', '--json'], env)) as { schedules: unknown[] };
    expect(list.schedules).toEqual([]);
  }, 240_000);
});
