import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { createSnapshot } from '../../bot/core/snapshots.js';
import { createLogger } from '../../shared/logger.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { NO_APPROVALS_POLICY } from '../fixtures/policies/policies.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { testAuthority } from '../helpers/authority.js';
import { startControlProcess } from '../helpers/control-process.js';

/**
 * What happens when things go wrong on the host: slow and hung virsh, a worker killed
 * mid-job, a worker stopped politely. Real Redis, real worker process, fake virsh.
 */
let redis: TestRedis;
const workers: SpawnedProcess[] = [];
/** One control process per test's prefix: snapctl's changes go through it (it holds the policy). */
const controls: SpawnedProcess[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop('SIGKILL')));
  await Promise.all(controls.splice(0).map((control) => control.stop()));
});

afterAll(async () => {
  await redis?.stop();
});

async function setup(label: string, workerEnv: Record<string, string> = {}) {
  const fake = await FakeVirshHost.create();
  const prefix = uniquePrefix(label);
  const env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
  controls.push(await startControlProcess({ ...env, SNAPBOT_POLICY: NO_APPROVALS_POLICY }));
  const start = async (hostId = 'kvm-f', host: FakeVirshHost = fake) => {
    const worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId, fake: host, env: workerEnv });
    workers.push(worker);
    return worker;
  };
  const snapctlJson = async (...args: string[]) => {
    const result = await runSnapctl([...args, '--json'], env);
    return { ...result, body: parseJsonOutput(result) };
  };
  return { fake, env, start, snapctlJson };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('per-VM ordering', () => {
  it('runs jobs for one VM one at a time and in order, and other VMs alongside', async () => {
    const { fake, env, start } = await setup('order');
    fake.addDomain({ name: 'vm-a' });
    fake.addDomain({ name: 'vm-b' });
    await start();
    // a1 holds vm-a long enough for every other job to be queued behind it.
    fake.setFaults([
      { match: { subcommand: 'snapshot-create-as', name: 'a1' }, latencyMs: 3000 },
      { match: { subcommand: 'snapshot-create-as', domain: 'vm-a' }, latencyMs: 300 },
    ]);
    // Enqueued from one process, one after the other, so the queue order is known.
    const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix: env.SNAPBOT_PREFIX, logger: createLogger('test', 'silent') });
    try {
      const runs: Array<Promise<unknown>> = [];
      for (const [vm, name] of [['vm-a', 'a1'], ['vm-a', 'a2'], ['vm-a', 'a3'], ['vm-a', 'a4'], ['vm-b', 'b1']] as const) {
        await new Promise<void>((queued) => {
          runs.push(createSnapshot(core, { vm, name, requestedBy: 'test' }, { timeoutMs: 60_000, onQueued: () => queued() }));
        });
      }
      await Promise.all(runs);
    } finally {
      await core.close();
    }

    const creates = fake.calls().filter((call) => call.argv[1] === 'snapshot-create-as');
    const onA = creates.filter((call) => call.argv.some((arg) => /^--name=a\d$/.test(arg)));
    expect(onA.map((call) => call.argv.find((arg) => arg.startsWith('--name=')))).toEqual(['--name=a1', '--name=a2', '--name=a3', '--name=a4']);
    // Each create on vm-a starts only after the previous one (≥ 300 ms of virsh) is over.
    for (let index = 1; index < onA.length; index += 1) expect(onA[index]!.at - onA[index - 1]!.at).toBeGreaterThanOrEqual(300);
    // vm-b did not wait behind vm-a's queue (which fills WORKER_CONCURRENCY jobs): it ran while a1 still held vm-a.
    const onB = creates.find((call) => call.argv.includes('--name=b1'))!;
    expect(onB.at).toBeLessThan(onA[1]!.at);
  });
});

describe('transient failures', () => {
  it('retries a job when libvirt is briefly unreachable, and it succeeds', async () => {
    const { fake, start, snapctlJson } = await setup('transient');
    fake.addDomain({ name: 'vm-r' });
    await start();
    fake.setFaults([
      { match: { subcommand: 'snapshot-create-as' }, exitCode: 1, stderr: 'error: failed to connect to the hypervisor\n', times: 2 },
    ]);
    const { code, body } = await snapctlJson('create', '--vm', 'vm-r', '--name', 'eventually');
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body).toMatchObject({ ok: true, snapshot: { name: 'eventually' } });
    expect(fake.calls().filter((call) => call.argv.includes('snapshot-create-as'))).toHaveLength(3);
  });

  it('does not retry a permanent failure', async () => {
    const { fake, start, snapctlJson } = await setup('permanent');
    fake.addDomain({ name: 'vm-p' });
    await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, exitCode: 1, stderr: 'error: argument unsupported: QEMU guest agent is not configured\n' }]);
    const { body } = await snapctlJson('create', '--vm', 'vm-p', '--name', 'never');
    expect(body).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(fake.calls().filter((call) => call.argv.includes('snapshot-create-as'))).toHaveLength(1);
  });
});

describe('the same VM name on two hosts', () => {
  it('asks for --host, naming both hosts, and acts on the one chosen', async () => {
    const { fake, start, snapctlJson } = await setup('ambiguous');
    const other = await FakeVirshHost.create();
    try {
      fake.addDomain({ name: 'twin' });
      const otherTwin = other.addDomain({ name: 'twin' });
      await start('kvm-one', fake);
      await start('kvm-two', other);
      const ambiguous = await snapctlJson('list', '--vm', 'twin');
      expect(ambiguous.code).toBe(2);
      expect(ambiguous.body).toMatchObject({ ok: false, code: 'VALIDATION' });
      expect(ambiguous.body.message).toMatch(/kvm-one, kvm-two.*--host/);

      const chosen = await snapctlJson('create', '--vm', 'twin', '--host', 'kvm-two', '--name', 'on-two');
      expect(chosen.body).toMatchObject({ ok: true, host: 'kvm-two', vm: { uuid: otherTwin.uuid } });
      expect(other.domain('twin').snapshots.map((snapshot) => snapshot.name)).toEqual(['on-two']);
      expect(fake.domain('twin').snapshots).toEqual([]);
    } finally {
      await other.dispose();
    }
  });
});

describe('a hung virsh', () => {
  it('is killed at the timeout, the job fails with TIMEOUT, and the worker goes on', async () => {
    const { fake, start, snapctlJson } = await setup('hang', { VIRSH_TIMEOUT_MS: '1500' });
    fake.addDomain({ name: 'vm-h' });
    await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, hang: true, times: 1 }]);

    const hung = await snapctlJson('create', '--vm', 'vm-h', '--name', 'stuck');
    expect(hung.code).toBe(1);
    expect(hung.body).toMatchObject({ ok: false, code: 'TIMEOUT' });
    const hungCall = fake.calls().find((call) => call.argv.includes('--name=stuck'))!;
    await until(() => !isAlive(hungCall.pid), 5_000);

    const next = await snapctlJson('create', '--vm', 'vm-h', '--name', 'after');
    expect(next.code).toBe(0);
  });
});

describe('a worker killed mid-job', () => {
  it('completes the job once after a restart, without a duplicate snapshot', async () => {
    const { fake, start, snapctlJson } = await setup('crash');
    const vm = fake.addDomain({ name: 'vm-c' });
    const first = await start();
    // Slow reads after the create, so the worker dies between virsh succeeding and reporting.
    fake.setFaults([{ match: { subcommand: 'snapshot-dumpxml' }, latencyMs: 2_000 }]);

    const pending = snapctlJson('create', '--vm', 'vm-c', '--name', 'survivor', '--timeout', '60');
    await until(() => fake.domain(vm.uuid).snapshots.some((snapshot) => snapshot.name === 'survivor'));
    await first.stop('SIGKILL');
    fake.setFaults([]);
    await start();

    const { code, body } = await pending;
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body).toMatchObject({ ok: true, recovered: true, snapshot: { name: 'survivor' } });
    expect(fake.domain(vm.uuid).snapshots.filter((snapshot) => snapshot.name === 'survivor')).toHaveLength(1);
    expect(fake.calls().filter((call) => call.argv.includes('snapshot-create-as'))).toHaveLength(1);
  });
});

describe('a worker stopped with SIGTERM', () => {
  it('lets the running job finish, exits 0, and the host is offline at once', async () => {
    const { fake, start, snapctlJson } = await setup('sigterm');
    fake.addDomain({ name: 'vm-t' });
    const worker = await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 1_500 }]);

    const pending = snapctlJson('create', '--vm', 'vm-t', '--name', 'graceful');
    await until(() => fake.calls().some((call) => call.argv.includes('--name=graceful')));
    const exitCode = await worker.stop('SIGTERM');
    expect(exitCode).toBe(0);
    const { code, body } = await pending;
    expect(code).toBe(0);
    expect(body).toMatchObject({ ok: true, snapshot: { name: 'graceful' } });

    const hosts = await snapctlJson('hosts');
    expect(hosts.body.hosts).toMatchObject([{ hostId: 'kvm-f', online: false }]);
    const started = Date.now();
    const offline = await snapctlJson('list', '--vm', 'vm-t');
    expect(offline.body).toMatchObject({ ok: false, code: 'HOST_OFFLINE' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('the client timeout', () => {
  it('takes a job that never started off the queue, so nothing runs later', async () => {
    const { fake, start, snapctlJson } = await setup('client-timeout', { HEARTBEAT_TTL_MS: '10000' });
    fake.addDomain({ name: 'vm-q' });
    const worker = await start();
    // A frozen worker still looks alive until its heartbeat key expires (10 s here), so the job is queued and waits.
    worker.child.kill('SIGSTOP');
    const result = await snapctlJson('create', '--vm', 'vm-q', '--name', 'never', '--timeout', '1');
    worker.child.kill('SIGCONT');
    expect(result.body).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.body.message).toMatch(/taken off the queue/);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(fake.calls().filter((call) => call.argv.includes('--name=never'))).toEqual([]);
  });
});
