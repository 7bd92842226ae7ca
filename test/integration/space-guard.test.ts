import { statfsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { SnapbotError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
import { FakeVirshHost, type FakeDomainSpec } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Issue 11, the space guard: a create job carrying `spaceGuard` makes the real worker
 * measure the real filesystem under the VM's disk (the fake virsh keeps its disks in a
 * directory of its state directory) before `snapshot-create-as`. Nearly no real disk is
 * 99 % free, and every one is at least 0 % free, so the two thresholds test the real path
 * end to end. Real Redis, real worker process, fake virsh (whose recorded argv is the proof).
 */
const HOST = 'kvm-space';
let redis: TestRedis;
let fake: FakeVirshHost;
let worker: SpawnedProcess;
let core: SnapbotCore;

beforeAll(async () => {
  redis = await startTestRedis();
  fake = await FakeVirshHost.create();
  const prefix = uniquePrefix('space-guard');
  worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: HOST, fake });
  core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
});

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await core?.close();
  await fake?.dispose();
  await redis?.stop();
});

/** The subcommands virsh was run with for this VM, in order. */
function subcommandsFor(uuid: string): string[] {
  return fake
    .calls()
    .filter((call) => call.argv.includes(`--domain=${uuid}`))
    .map((call) => call.argv.find((arg) => !arg.startsWith('-')) ?? '');
}

function create(vm: string, mode: 'full' | 'disk-only', extra: { spaceGuard?: { minFreePercent: number }; schedule?: string } = {}) {
  return runJob(core, { kind: 'create', host: HOST, vm, requestedBy: 'test', name: `snap-${mode}`, mode, ...extra }, { timeoutMs: 60_000 });
}

function addVm(spec: FakeDomainSpec) {
  const vm = fake.addDomain(spec);
  return { ...vm, snapshots: () => fake.domain(vm.uuid).snapshots.map((snapshot) => snapshot.name) };
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('the space guard in the worker', () => {
  it('runs on a filesystem less than 99 % free (the premise of the test below)', () => {
    const { bavail, blocks } = statfsSync(fake.imageDir);
    expect((bavail / blocks) * 100).toBeLessThan(99);
  });

  it('refuses a full snapshot of a running VM when the guard wants 99 % free: NO_SPACE, nothing created', async () => {
    const vm = addVm({ name: 'guard-99-full' });
    const error = await create(vm.name, 'full', { spaceGuard: { minFreePercent: 99 } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SnapbotError);
    expect(error).toMatchObject({ code: 'NO_SPACE' });
    expect((error as SnapbotError).message).toMatch(
      new RegExp(
        `^VM guard-99-full: only \\d+\\.\\d % free under ${escape(fake.imageDir)} \\(disk vda\\) once the snapshot saves the guest's 64 MiB of memory there; ` +
          'the space guard wants 99 %\\. No snapshot was taken\\.$',
      ),
    );
    expect(subcommandsFor(vm.uuid)).toEqual(expect.arrayContaining(['domblklist', 'dominfo']));
    expect(subcommandsFor(vm.uuid)).not.toContain('snapshot-create-as');
    expect(vm.snapshots()).toEqual([]);
  }, 120_000);

  it("names the schedule's guard, and leaves out the memory for a disk-only snapshot", async () => {
    const vm = addVm({ name: 'guard-99-disk' });
    const error = await create(vm.name, 'disk-only', { spaceGuard: { minFreePercent: 99 }, schedule: 'nightly' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'NO_SPACE' });
    expect((error as SnapbotError).message).toMatch(
      new RegExp(`^VM guard-99-disk: only \\d+\\.\\d % free under ${escape(fake.imageDir)} \\(disk vda\\); the schedule's space guard wants 99 %\\. No snapshot was taken\\.$`),
    );
    expect(subcommandsFor(vm.uuid)).toContain('domblklist');
    expect(subcommandsFor(vm.uuid)).not.toContain('dominfo');
    expect(subcommandsFor(vm.uuid)).not.toContain('snapshot-create-as');
    expect(vm.snapshots()).toEqual([]);
  }, 120_000);

  it('creates the snapshot when the guard wants 0 % free', async () => {
    const vm = addVm({ name: 'guard-0' });
    const result = await create(vm.name, 'full', { spaceGuard: { minFreePercent: 0 } });
    expect(result).toMatchObject({ kind: 'create', snapshot: { name: 'snap-full', memory: true }, note: null, recovered: false });
    // The two queries run side by side, both before the create.
    const commands = subcommandsFor(vm.uuid).filter((command) => ['domblklist', 'dominfo', 'snapshot-create-as'].includes(command));
    expect(commands.slice(0, 2).sort()).toEqual(['domblklist', 'dominfo']);
    expect(commands.slice(2)).toEqual(['snapshot-create-as']);
    expect(vm.snapshots()).toEqual(['snap-full']);
  }, 120_000);

  it('refuses a full snapshot whose memory does not fit even at 0 %, and takes a disk-only one of the same VM', async () => {
    // 1 PiB of guest memory: more than any test machine's free space.
    const vm = addVm({ name: 'guard-memory', memoryKiB: 2 ** 40 });
    const error = await create(vm.name, 'full', { spaceGuard: { minFreePercent: 0 } }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'NO_SPACE' });
    expect((error as SnapbotError).message).toMatch(
      new RegExp(`^VM guard-memory: only \\d+\\.\\d GiB free under ${escape(fake.imageDir)} \\(disk vda\\), less than the 1048576\\.0 GiB of guest memory the snapshot saves there; `),
    );
    expect(vm.snapshots()).toEqual([]);

    const diskOnly = await create(vm.name, 'disk-only', { spaceGuard: { minFreePercent: 0 } });
    expect(diskOnly).toMatchObject({ kind: 'create', snapshot: { name: 'snap-disk-only', location: 'external' }, note: null });
    expect(vm.snapshots()).toEqual(['snap-disk-only']);
  }, 120_000);

  it('does not count the memory of a VM that is shut off: there is none to save', async () => {
    const vm = addVm({ name: 'guard-off', state: 'shut off', memoryKiB: 2 ** 40 });
    const result = await create(vm.name, 'full', { spaceGuard: { minFreePercent: 0 } });
    expect(result).toMatchObject({ kind: 'create', snapshot: { name: 'snap-full', memory: false }, note: expect.stringContaining('no memory to save') });
    expect(subcommandsFor(vm.uuid)).not.toContain('dominfo');
  }, 120_000);

  it('runs no extra virsh call for a create without a space guard', async () => {
    const vm = addVm({ name: 'no-guard' });
    await create(vm.name, 'full');
    const commands = subcommandsFor(vm.uuid);
    expect(commands).toContain('snapshot-create-as');
    expect(commands).not.toContain('domblklist');
    expect(commands).not.toContain('dominfo');
  }, 120_000);
});
