import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { createLogger } from '../../shared/logger.js';
import { defaultSnapshotName } from '../../shared/names.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { testAuthority } from '../helpers/authority.js';

/**
 * Issue 10, finding 9: a revert or delete whose worker is SIGKILLed right after virsh
 * succeeded runs again (BullMQ's stall check hands the job to the next worker) and must
 * find its own earlier work instead of doing it twice. And a mutation whose virsh is
 * killed at VIRSH_TIMEOUT_MS says what the host shows. Real Redis, real worker process,
 * fake virsh (whose recorded argv and state are the proof).
 */
const HOST = 'kvm-x';
let redis: TestRedis;
const workers: SpawnedProcess[] = [];
const cores: SnapbotCore[] = [];
const fakes: FakeVirshHost[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.stop('SIGKILL')));
  await Promise.all(cores.splice(0).map((core) => core.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.dispose()));
});

afterAll(async () => {
  await redis?.stop();
});

async function setup(label: string, workerEnv: Record<string, string> = {}) {
  const fake = await FakeVirshHost.create();
  fakes.push(fake);
  const prefix = uniquePrefix(label);
  const vm = fake.addDomain({ name: `vm-${label}` });
  // Snapshots made outside snapbot, as an operator's virsh would.
  const snapshot = (name: string) => promisify(execFile)(fake.path, ['snapshot-create-as', `--domain=${vm.uuid}`, `--name=${name}`]);
  const start = async () => {
    const worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: HOST, fake, env: workerEnv });
    workers.push(worker);
    return worker;
  };
  const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
  cores.push(core);
  const calls = (subcommand: string) => fake.calls().filter((call) => call.argv.includes(subcommand));
  return { fake, vm, snapshot, start, core, calls };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const dead = (worker: SpawnedProcess) => worker.child.exitCode !== null || worker.child.signalCode !== null;
const UNDO_POINT = { mode: 'full', keep: 5 } as const;

/** A revert names the snapshot's creation time, as the control process reads it before signing. */
async function expectedOf(core: SnapbotCore, vm: string, name: string) {
  const { snapshot } = await runJob(core, { kind: 'info', host: HOST, vm, requestedBy: 'test', name }, { timeoutMs: 30_000 });
  return { createdAt: snapshot.createdAt };
}

describe('a worker SIGKILLed right after virsh succeeded', () => {
  it('does not revert twice: the re-run finds its undo point and the target current, and reports success', async () => {
    const { fake, vm, snapshot, start, core, calls } = await setup('revert');
    await snapshot('base');
    const first = await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-revert' }, killParent: true, times: 1 }]);

    const expected = await expectedOf(core, vm.name, 'base');

    const pending = runJob(core, { kind: 'revert', host: HOST, vm: vm.name, requestedBy: 'test', name: 'base', expected, undoPoint: UNDO_POINT }, { timeoutMs: 60_000 });
    await until(() => dead(first), 'the worker to die after snapshot-revert');
    expect(fake.domain(vm.uuid).current).toBe('base');
    await start();

    const result = await pending;
    expect(result).toMatchObject({ kind: 'revert', recovered: true, snapshot: { name: 'base', current: true }, undoPoint: { name: expect.stringMatching(/^pre-revert-/) } });
    expect(result.note).toMatch(/already been reverted to 'base'.*not reverted again/);
    expect(calls('snapshot-revert')).toHaveLength(1);
    // One undo point (taken once), and the VM still at the revert's result.
    expect(calls('snapshot-create-as').filter((call) => call.argv.some((arg) => arg.startsWith('--name=pre-revert-')))).toHaveLength(1);
    expect(fake.domain(vm.uuid).snapshots.filter((s) => s.name.startsWith('pre-revert-'))).toHaveLength(1);
    expect(fake.domain(vm.uuid).current).toBe('base');
  });

  it('names its undo point -2 when the plain name is taken (a revert made the same second), and a re-run still finds that one', async () => {
    const { fake, vm, snapshot, start, core, calls } = await setup('revert-same-second');
    await snapshot('base');
    // Whatever second the job is created in, its plain undo point name is already taken by
    // a snapshot that is not this job's, as after another revert of the VM that second.
    const now = Date.now();
    const taken = Array.from({ length: 30 }, (_, i) => `pre-revert-${defaultSnapshotName(new Date(now + i * 1000)).slice('snap-'.length)}`);
    for (const name of taken) await snapshot(name);
    const first = await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-revert' }, killParent: true, times: 1 }]);

    const expected = await expectedOf(core, vm.name, 'base');
    const pending = runJob(core, { kind: 'revert', host: HOST, vm: vm.name, requestedBy: 'test', name: 'base', expected, undoPoint: UNDO_POINT }, { timeoutMs: 60_000 });
    await until(() => dead(first), 'the worker to die after snapshot-revert');
    await start();

    const result = await pending;
    const undoPoint = result.undoPoint?.name ?? '';
    expect(taken).toContain(undoPoint.replace(/-2$/, ''));
    expect(result).toMatchObject({ kind: 'revert', recovered: true, snapshot: { name: 'base', current: true }, undoPoint: { name: expect.stringMatching(/^pre-revert-\d{8}-\d{6}-2$/) } });
    expect(calls('snapshot-revert')).toHaveLength(1);
    // The test's own 30 creates, and the undo point once.
    expect(calls('snapshot-create-as').filter((call) => call.argv.some((arg) => arg.startsWith('--name=pre-revert-')))).toHaveLength(taken.length + 1);
    // The operator's snapshots under the plain names are untouched.
    expect(fake.domain(vm.uuid).snapshots.map((s) => s.name)).toEqual(expect.arrayContaining(taken));
  });

  it('does not revert twice without an undo point either: the earlier run recorded the target as not current', async () => {
    const { fake, vm, snapshot, start, core, calls } = await setup('revert-bare');
    await snapshot('base');
    await snapshot('later');
    const first = await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-revert' }, killParent: true, times: 1 }]);

    const expected = await expectedOf(core, vm.name, 'base');

    const pending = runJob(core, { kind: 'revert', host: HOST, vm: vm.name, requestedBy: 'test', name: 'base', expected }, { timeoutMs: 60_000 });
    await until(() => dead(first), 'the worker to die after snapshot-revert');
    await start();

    const result = await pending;
    expect(result).toMatchObject({ kind: 'revert', recovered: true, undoPoint: null, snapshot: { name: 'base', current: true } });
    expect(calls('snapshot-revert')).toHaveLength(1);
    expect(fake.domain(vm.uuid).current).toBe('base');
  });

  it('still reverts when the worker died after the undo point but before the revert', async () => {
    const { fake, vm, snapshot, start, core, calls } = await setup('revert-early');
    await snapshot('base');
    const first = await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, killParent: true, times: 1 }]);

    const expected = await expectedOf(core, vm.name, 'base');

    const pending = runJob(core, { kind: 'revert', host: HOST, vm: vm.name, requestedBy: 'test', name: 'base', expected, undoPoint: UNDO_POINT }, { timeoutMs: 60_000 });
    await until(() => dead(first), 'the worker to die after taking the undo point');
    expect(fake.domain(vm.uuid).current).toMatch(/^pre-revert-/);
    await start();

    const result = await pending;
    expect(result).toMatchObject({ kind: 'revert', recovered: false, note: null, snapshot: { name: 'base' } });
    expect(calls('snapshot-revert')).toHaveLength(1);
    expect(calls('snapshot-create-as').filter((call) => call.argv.some((arg) => arg.startsWith('--name=pre-revert-')))).toHaveLength(1);
    expect(fake.domain(vm.uuid).current).toBe('base');
  });

  it('does not delete twice: the re-run finds the snapshot gone and reports success', async () => {
    const { fake, vm, snapshot, start, core, calls } = await setup('delete');
    await snapshot('old');
    await snapshot('keep');
    const first = await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-delete' }, killParent: true, times: 1 }]);

    const pending = runJob(core, { kind: 'delete', host: HOST, vm: vm.name, requestedBy: 'test', name: 'old' }, { timeoutMs: 60_000 });
    await until(() => dead(first), 'the worker to die after snapshot-delete');
    expect(fake.domain(vm.uuid).snapshots.map((s) => s.name)).toEqual(['keep']);
    await start();

    const result = await pending;
    expect(result).toMatchObject({ kind: 'delete', recovered: true, deleted: { name: 'old' } });
    expect(result.note).toMatch(/'old'.*already been deleted.*nothing was deleted again/);
    expect(calls('snapshot-delete')).toHaveLength(1);
    expect(fake.domain(vm.uuid).snapshots.map((s) => s.name)).toEqual(['keep']);
  });
});

describe('a mutation whose virsh is killed at VIRSH_TIMEOUT_MS', () => {
  it('a revert that libvirt completed: TIMEOUT, saying it may have completed and what the host shows', async () => {
    const { fake, vm, snapshot, start, core, calls } = await setup('revert-timeout', { VIRSH_TIMEOUT_MS: '1500' });
    await snapshot('base');
    await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-revert' }, hang: 'after', times: 1 }]);

    const expected = await expectedOf(core, vm.name, 'base');

    const failure = await runJob(core, { kind: 'revert', host: HOST, vm: vm.name, requestedBy: 'test', name: 'base', expected, undoPoint: UNDO_POINT }, { timeoutMs: 60_000 }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'TIMEOUT' });
    const message = (failure as Error).message;
    expect(message).toMatch(/did not finish within 1\.5 s and was killed; it may have completed anyway/);
    expect(message).toMatch(new RegExp(`The host now shows: 'base' is the current snapshot of VM ${vm.name} \\(the revert may have completed\\), and the VM is running`));
    // Not retried: one revert.
    expect(calls('snapshot-revert')).toHaveLength(1);
  });

  it('a delete that did not happen: TIMEOUT, saying the snapshot is still there', async () => {
    const { fake, vm, snapshot, start, core } = await setup('delete-timeout', { VIRSH_TIMEOUT_MS: '1500' });
    await snapshot('stuck');
    await start();
    fake.setFaults([{ match: { subcommand: 'snapshot-delete' }, hang: true, times: 1 }]);

    const failure = await runJob(core, { kind: 'delete', host: HOST, vm: vm.name, requestedBy: 'test', name: 'stuck' }, { timeoutMs: 60_000 }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'TIMEOUT' });
    expect((failure as Error).message).toMatch(new RegExp(`may have completed anyway\\. The host now shows: snapshot 'stuck' of VM ${vm.name} is still there`));
    expect(fake.domain(vm.uuid).snapshots.map((s) => s.name)).toEqual(['stuck']);
  });
});
