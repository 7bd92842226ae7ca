import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { createLogger } from '../../shared/logger.js';
import { testAuthority } from '../helpers/authority.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * The worker's lifecycle-event watcher under faults, with a fake virsh that knows `event`:
 * jobs skip the name check while nothing moved; a rename and a VM given the old name are
 * heard and the old UUID is refused; a watcher that is killed means checking every job
 * until a new one listens; and a watcher left behind by a SIGKILLed worker ends at the next
 * event (its reader is gone). Real Redis, real worker processes.
 */
const HOST = 'kvm-watch';
let redis: TestRedis;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await redis?.stop();
});

/** A fake host whose virsh knows `event`, a worker on it (its watcher listening), and a core. */
async function setup(label: string, domains: Array<{ name: string; state?: 'running' | 'shut off' }>) {
  const fake = await FakeVirshHost.create({ events: true });
  cleanups.push(() => fake.dispose());
  const added = domains.map((domain) => fake.addDomain(domain));
  const prefix = uniquePrefix(`domain-watch-${label}`);
  const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
  cleanups.push(() => core.close());
  const worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: HOST, fake, env: { LOG_LEVEL: 'debug' } });
  cleanups.push(() => worker.stop('SIGKILL'));
  await worker.waitFor('libvirt event watcher listening', 30_000);
  const domnames = () => fake.calls().filter((call) => call.argv.includes('domname')).length;
  const watchers = () => fake.processes().filter((process) => process.argv.some((arg) => arg.includes('event --event lifecycle')));
  const list = (vm: string, uuid?: string) => runJob(core, { kind: 'list', host: HOST, vm, ...(uuid ? { uuid } : {}), requestedBy: 'test' }, { timeoutMs: 30_000 });
  return { fake, added, core, worker, domnames, watchers, list };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const linesOf = (worker: SpawnedProcess, text: string) => worker.output().split('\n').filter((line) => line.includes(text)).length;
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the lifecycle-event watcher with a fake virsh that has events', () => {
  it('skips the name check while nothing moved, and refuses the old UUID after a rename', async () => {
    const { fake, added, core, worker, domnames, list } = await setup('rename', [{ name: 'web-01', state: 'shut off' }]);
    const web = added[0]!;
    await list('web-01', web.uuid);
    const checked = domnames();
    await list('web-01', web.uuid);
    await runJob(core, { kind: 'create', host: HOST, vm: 'web-01', uuid: web.uuid, requestedBy: 'test', name: 'quiet', mode: 'disk-only' }, { timeoutMs: 30_000 });
    expect(domnames()).toBe(checked);

    fake.renameDomain(web.uuid, 'web-01-old');
    const replacement = fake.addDomain({ name: 'web-01', state: 'shut off' });
    await until(() => linesOf(worker, 'libvirt lifecycle event') >= 3, 'the worker to hear the rename and the new domain');
    await expect(
      runJob(core, { kind: 'create', host: HOST, vm: 'web-01', uuid: web.uuid, requestedBy: 'test', name: 'after', mode: 'disk-only' }, { timeoutMs: 30_000 }),
    ).rejects.toMatchObject({ code: 'DOMAIN_NOT_FOUND', message: expect.stringMatching(/was replaced, so nothing was done/) });
    expect(domnames()).toBeGreaterThan(checked);
    expect(fake.domain(web.uuid).snapshots.map((snapshot) => snapshot.name)).toEqual(['quiet']);
    expect(fake.domain(replacement.uuid).snapshots).toEqual([]);
  });

  it('checks every job while its watcher is gone, and trusts names again once a new one listens', async () => {
    const { fake, worker, domnames, watchers, list } = await setup('killed', [{ name: 'web-01' }]);
    const [watcher] = watchers().slice(-1);
    expect(watcher).toBeDefined();
    // Its replacements cannot connect until the fault is lifted: no watcher listens meanwhile.
    fake.setFaults([{ match: { subcommand: 'event' }, exitCode: 1, stderr: 'error: failed to connect to the hypervisor' }]);
    process.kill(watcher!.pid, 'SIGKILL');
    await worker.waitFor('libvirt event watcher stopped', 10_000);
    // Without a watcher every job asks libvirt, even for a name read a moment ago.
    await list('web-01');
    const before = domnames();
    await list('web-01');
    expect(domnames()).toBe(before + 1);

    fake.setFaults([]);
    await worker.waitFor('libvirt event watcher listening again', 60_000);
    expect(watchers().length).toBeGreaterThanOrEqual(2);
    await list('web-01');
    const checked = domnames();
    await list('web-01');
    expect(domnames()).toBe(checked);
  });

  it('a watcher left behind by a SIGKILLed worker ends at the next event', async () => {
    const { fake, worker, watchers } = await setup('orphan', [{ name: 'web-01' }]);
    const orphan = watchers().at(-1)!;
    expect(isAlive(orphan.pid)).toBe(true);
    await worker.stop('SIGKILL');
    fake.addDomain({ name: 'db-01' });
    await until(() => !isAlive(orphan.pid), 'the orphaned watcher to end', 10_000);
  });
});
