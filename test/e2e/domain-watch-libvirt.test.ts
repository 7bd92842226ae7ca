import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { findFreePort } from '../../scripts/redis-server.js';
import { createLogger } from '../../shared/logger.js';
import { testAuthority } from '../helpers/authority.js';
import { spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';

/**
 * libvirt's lifecycle events on real libvirt + QEMU: while no VM name moved, a job acts
 * without the name check's own `virsh domname` process; once a VM is renamed and another
 * takes its name, the worker hears it, asks libvirt again, and never acts on the renamed
 * VM by its old name. The count of domname calls is read from the worker's /metrics.
 */
const HOST = 'e2e-watch';
let redis: TestRedis;
let worker: SpawnedProcess;
let core: SnapbotCore;
let metricsUrl: string;
let first: TinyDomain;
let second: TinyDomain;

beforeAll(async () => {
  await ensureLibvirt();
  // Shut off: libvirt renames only inactive domains.
  first = await createTinyDomain(`snapbot-e2e-watch-a-${process.pid}`, { start: false });
  second = await createTinyDomain(`snapbot-e2e-watch-b-${process.pid}`, { start: false });
  redis = await startTestRedis();
  const prefix = uniquePrefix('e2e-watch');
  const metricsPort = await findFreePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  worker = spawnNode(WORKER_MAIN, {
    REDIS_URL: redis.url,
    SNAPBOT_PREFIX: prefix,
    HOST_ID: HOST,
    LIBVIRT_URI: LIBVIRT_E2E_URI,
    METRICS_PORT: String(metricsPort),
    LOG_LEVEL: 'debug',
  });
  await worker.waitFor('worker ready', 60_000);
  await worker.waitFor('libvirt event watcher listening', 30_000);
  core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
}, 600_000);

afterAll(async () => {
  await core?.close();
  await worker?.stop();
  await redis?.stop();
  for (const domain of [first, second]) {
    if (!domain) continue;
    await destroyTinyDomain(domain.uuid);
    await rm(path.dirname(domain.diskPath), { recursive: true, force: true });
  }
});

/** How many `virsh domname` processes the worker has started. */
async function domnameCalls(): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith('snapbot_virsh_call_duration_seconds_count{') && candidate.includes('subcommand="domname"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const snapshotsOf = (uuid: string) =>
  virshRaw(['snapshot-list', `--domain=${uuid}`, '--name']).stdout.split('\n').filter((name) => name !== '');

describe('libvirt lifecycle events on real libvirt + QEMU', () => {
  it('a job skips the name check while no name moved', async () => {
    const list = () => runJob(core, { kind: 'list', host: HOST, vm: first.name, uuid: first.uuid, requestedBy: 'test' }, { timeoutMs: 60_000 });
    // The start-up inventory was read before the watcher listened: the first job checks.
    await list();
    const afterFirst = await domnameCalls();
    await list();
    const created = await runJob(
      core,
      { kind: 'create', host: HOST, vm: first.name, uuid: first.uuid, requestedBy: 'test', name: 'while-nothing-moved', mode: 'disk-only' },
      { timeoutMs: 60_000 },
    );
    expect(created.snapshot.name).toBe('while-nothing-moved');
    expect(created.vm).toEqual({ name: first.name, uuid: first.uuid });
    expect(await domnameCalls()).toBe(afterFirst);
    expect(snapshotsOf(first.uuid)).toEqual(['while-nothing-moved']);
    expect(await (await fetch(metricsUrl)).text()).toContain(`snapbot_worker_libvirt_events_listening{host="${HOST}"} 1`);
  });

  it('after a rename, asks libvirt again and never acts on the renamed VM by its old name', async () => {
    const before = await domnameCalls();
    const firstSnapshots = snapshotsOf(first.uuid);
    const firstName = first.name;
    const swapped = `${second.name}-swapped`;
    // The first VM gives up its name, and the second takes it.
    expect(virshRaw(['domrename', `--domain=${first.uuid}`, `--new-name=${firstName}-old`]).code).toBe(0);
    expect(virshRaw(['domrename', `--domain=${second.uuid}`, `--new-name=${firstName}`]).code).toBe(0);
    // Both renames heard (an Undefined and a Defined event each) before the jobs are sent.
    const renamesHeard = () => worker.output().split('\n').filter((line) => line.includes('"detail":"Renamed"') && line.includes('libvirt lifecycle event')).length;
    const deadline = Date.now() + 30_000;
    while (renamesHeard() < 4) {
      if (Date.now() > deadline) throw new Error(`the worker heard ${renamesHeard()} of 4 rename events:\n${worker.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    // As the requester saw it (the first VM's UUID): refused, nothing done to either VM.
    await expect(
      runJob(
        core,
        { kind: 'create', host: HOST, vm: firstName, uuid: first.uuid, requestedBy: 'test', name: 'after-the-swap', mode: 'disk-only' },
        { timeoutMs: 60_000 },
      ),
    ).rejects.toMatchObject({ code: 'DOMAIN_NOT_FOUND', message: expect.stringMatching(/was replaced, so nothing was done/) });
    expect(await domnameCalls()).toBeGreaterThan(before);
    expect(snapshotsOf(first.uuid)).toEqual(firstSnapshots);
    expect(snapshotsOf(second.uuid)).toEqual([]);

    // By name alone: the VM that has the name now.
    const created = await runJob(
      core,
      { kind: 'create', host: HOST, vm: firstName, requestedBy: 'test', name: 'by-name', mode: 'disk-only' },
      { timeoutMs: 60_000 },
    );
    expect(created.vm).toEqual({ name: firstName, uuid: second.uuid });
    expect(snapshotsOf(second.uuid)).toEqual(['by-name']);
    expect(snapshotsOf(first.uuid)).toEqual(firstSnapshots);
    // Put the names back so that the clean-up finds each VM's directory by its name.
    expect(virshRaw(['domrename', `--domain=${second.uuid}`, `--new-name=${swapped}`]).code).toBe(0);
    expect(virshRaw(['domrename', `--domain=${first.uuid}`, `--new-name=${firstName}`]).code).toBe(0);
    expect(virshRaw(['domrename', `--domain=${second.uuid}`, `--new-name=${second.name}`]).code).toBe(0);
  });
});
