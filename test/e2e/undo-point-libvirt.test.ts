import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_APPROVALS_POLICY } from '../fixtures/policies/policies.js';
import { CONTROL_MAIN } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';

/**
 * The undo point on real QEMU: a revert first snapshots the VM as it is, and reverting to
 * that undo point brings that state back.
 */
let redis: TestRedis;
let worker: SpawnedProcess;
let control: SpawnedProcess | undefined;
let env: Record<string, string>;
let domain: TinyDomain;

const state = () => virshRaw(['domstate', `--domain=${domain.uuid}`]).stdout.trim();

beforeAll(async () => {
  await ensureLibvirt();
  domain = await createTinyDomain(`snapbot-e2e-undo-${process.pid}`, { start: true });
  redis = await startTestRedis();
  const prefix = uniquePrefix('e2e-undo');
  env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
  worker = spawnNode(WORKER_MAIN, { ...env, HOST_ID: 'e2e-undo', LIBVIRT_URI: LIBVIRT_E2E_URI, LOG_LEVEL: 'info' });
  await worker.waitFor('worker ready', 60_000);
  // snapctl's create and reverts go through the control process (`npm run bot`, no Discord), under its policy.
  control = spawnNode(CONTROL_MAIN, { ...env, SNAPBOT_POLICY: NO_APPROVALS_POLICY, DISCORD_TOKEN: '', LOG_LEVEL: 'info' });
  await control.waitFor('control process ready', 120_000);
}, 600_000);

afterAll(async () => {
  await control?.stop();
  await worker?.stop();
  await redis?.stop();
  if (domain) await destroyTinyDomain(domain.uuid);
});

describe('undo points on real libvirt + QEMU', () => {
  it('takes one before a revert, and reverting to it restores the state the revert threw away', async () => {
    const created = parseJsonOutput(await runSnapctl(['create', '--vm', domain.name, '--name', 'while-running', '--mode', 'full', '--json'], env));
    expect(created).toMatchObject({ ok: true });
    // Change the VM's state after the snapshot: shut it off.
    expect(virshRaw(['destroy', `--domain=${domain.uuid}`]).code).toBe(0);
    expect(state()).toBe('shut off');

    const reverted = parseJsonOutput(await runSnapctl(['revert', '--vm', domain.name, '--name', 'while-running', '--json'], env));
    expect(reverted).toMatchObject({ ok: true, vmState: 'running', undoPoint: { name: expect.stringMatching(/^pre-revert-\d{8}-\d{6}$/), state: 'shutoff' } });
    expect(state()).toBe('running');

    const undoPoint = (reverted.undoPoint as { name: string }).name;
    const undone = parseJsonOutput(await runSnapctl(['revert', '--vm', domain.name, '--name', undoPoint, '--json'], env));
    expect(undone).toMatchObject({ ok: true, snapshot: { name: undoPoint }, vmState: 'shut off' });
    expect(state()).toBe('shut off');
  });
});
