import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { LITERAL_NAMES, REFUSED_NAMES } from '../fixtures/names-table.js';
import { NO_APPROVALS_POLICY } from '../fixtures/policies/policies.js';
import { startControlProcess } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { FAKE_LIBVIRT_URI, startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Every snapctl command through the real CLI, a real Redis and the real worker process,
 * down to a fake virsh whose argv we check.
 */
let redis: TestRedis;
let fake: FakeVirshHost;
let worker: SpawnedProcess;
let control: SpawnedProcess;
let env: Record<string, string>;
let web: { uuid: string; name: string };
let db: { uuid: string; name: string };

function snapctl(...args: string[]) {
  return runSnapctl(args, env);
}

async function snapctlJson(...args: string[]) {
  const result = await runSnapctl([...args, '--json'], env);
  return { ...result, body: parseJsonOutput(result) };
}

/** Waits until the host's heartbeat lists what the fake now holds. */
async function waitForInventory(check: (hosts: Array<Record<string, unknown>>) => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { body } = await snapctlJson('hosts');
    if (check(body.hosts as Array<Record<string, unknown>>)) return;
    if (Date.now() > deadline) throw new Error(`inventory never matched: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function createCalls(name: string) {
  return fake.calls().filter((call) => call.argv.includes('snapshot-create-as') && call.argv.includes(`--name=${name}`));
}

beforeAll(async () => {
  redis = await startTestRedis();
  fake = await FakeVirshHost.create({ libvirtVersion: '9.0.0', qemuVersion: '7.2.0' });
  web = fake.addDomain({ name: 'web-01', state: 'running' });
  db = fake.addDomain({ name: 'db-01', state: 'shut off' });
  const prefix = uniquePrefix('snapctl');
  env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix, SNAPBOT_POLICY: NO_APPROVALS_POLICY };
  worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'kvm-a', fake });
  control = await startControlProcess(env);
});

afterAll(async () => {
  await control?.stop();
  await worker?.stop();
  await fake?.dispose();
  await redis?.stop();
});

beforeEach(() => {
  fake.setFaults([]);
});

describe('snapctl hosts', () => {
  it('lists the host with its versions, capabilities and VMs', async () => {
    const { code, body } = await snapctlJson('hosts');
    expect(code).toBe(0);
    expect(body.ok).toBe(true);
    const [host] = body.hosts as Array<Record<string, unknown>>;
    expect(host).toMatchObject({
      hostId: 'kvm-a',
      online: true,
      libvirtVersion: '9.0.0',
      qemuVersion: '7.2.0',
      capabilities: { externalRevert: false, externalDelete: true },
      libvirtUri: FAKE_LIBVIRT_URI,
    });
    expect((host!.vms as Array<{ name: string }>).map((vm) => vm.name).sort()).toEqual(['db-01', 'web-01']);
  });

  it('prints a table for people', async () => {
    const { code, stdout } = await snapctl('hosts');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^HOST\s+STATUS/);
    expect(stdout).toMatch(/kvm-a\s+online/);
  });
});

describe('snapctl create', () => {
  it('takes an atomic disk-only snapshot with the exact virsh argv', async () => {
    const { code, body } = await snapctlJson('create', '--vm', 'web-01', '--name', 'pre-upgrade', '--mode', 'disk-only', '--description', 'before apt upgrade');
    expect(code).toBe(0);
    expect(body).toMatchObject({
      ok: true,
      kind: 'create',
      host: 'kvm-a',
      mode: 'disk-only',
      vm: { name: 'web-01', uuid: web.uuid },
      snapshot: { name: 'pre-upgrade', location: 'external', memory: false, description: 'before apt upgrade' },
      recovered: false,
    });
    const jobId = (body.snapshot as { jobId: string }).jobId;
    expect(createCalls('pre-upgrade').map((call) => call.argv)).toEqual([
      [
        `--connect=${FAKE_LIBVIRT_URI}`,
        'snapshot-create-as',
        `--domain=${web.uuid}`,
        '--name=pre-upgrade',
        `--description=before apt upgrade\n[snapbot job ${jobId}]`,
        '--disk-only',
        '--atomic',
      ],
    ]);
  });

  it('takes a full memory + disk snapshot of a running VM', async () => {
    const { code, body } = await snapctlJson('create', '--vm', 'web-01', '--name', 'full-1', '--mode', 'full');
    expect(code).toBe(0);
    expect(body).toMatchObject({ mode: 'full', note: null, snapshot: { name: 'full-1', location: 'internal', memory: true } });
    expect(createCalls('full-1')[0]!.argv).not.toContain('--disk-only');
  });

  it('says clearly that a full snapshot of a shut-off VM holds the disks only', async () => {
    const domstates = () => fake.calls().filter((call) => call.argv.includes('domstate')).length;
    const before = domstates();
    const { code, body } = await snapctlJson('create', '--vm', 'db-01', '--name', 'cold', '--mode', 'full');
    expect(code).toBe(0);
    expect(body).toMatchObject({ snapshot: { memory: false } });
    expect(body.note).toMatch(/^VM was shut off: .*disks only/);
    // Said from the snapshot's own record, not from a domstate call of its own.
    expect(domstates()).toBe(before);
  });

  it('names the snapshot after the time when no name is given', async () => {
    const { code, body } = await snapctlJson('create', '--vm', 'db-01');
    expect(code).toBe(0);
    expect((body.snapshot as { name: string }).name).toMatch(/^snap-\d{8}-\d{6}$/);
  });

  it('refuses a duplicate name with SNAPSHOT_EXISTS and exit status 1', async () => {
    const { code, body } = await snapctlJson('create', '--vm', 'web-01', '--name', 'pre-upgrade');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'SNAPSHOT_EXISTS' });
    expect(body.message).toMatch(/pre-upgrade/);
  });

  it('prints a sentence without --json', async () => {
    const { code, stdout, stderr } = await snapctl('create', '--vm', 'web-01', '--name', 'human');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Created disk-only snapshot 'human' of web-01 on kvm-a/);
    expect(stderr).toMatch(/queued job .* on host kvm-a/);
    // Not a terminal: plain progress lines, no live line rewritten with \r and no escapes.
    expect(stderr).not.toMatch(/[\r\u001b]|… \d+ s/);
    expect(stderr.trimEnd().split('\n')).toEqual(expect.arrayContaining([expect.stringMatching(/^queued job \S+ on host kvm-a$/), 'running: create on web-01']));
  });
});

describe('snapctl list and info', () => {
  it('lists snapshots newest first with location, parent, current and description', async () => {
    const { code, body } = await snapctlJson('list', '--vm', 'web-01');
    expect(code).toBe(0);
    const snapshots = body.snapshots as Array<Record<string, unknown>>;
    expect(snapshots.map((snapshot) => snapshot.name)).toEqual(['human', 'full-1', 'pre-upgrade']);
    expect(snapshots[0]).toMatchObject({ current: true, parent: 'full-1', location: 'external' });
    expect(snapshots[2]).toMatchObject({ current: false, parent: null, description: 'before apt upgrade' });
    for (const snapshot of snapshots) expect(Date.parse(snapshot.createdAt as string)).not.toBeNaN();
  });

  it('shows one snapshot', async () => {
    const { code, body } = await snapctlJson('info', '--vm', 'web-01', '--name', 'pre-upgrade');
    expect(code).toBe(0);
    expect(body.snapshot).toMatchObject({ name: 'pre-upgrade', description: 'before apt upgrade', location: 'external' });
  });

  it('prints a table for people', async () => {
    const { stdout } = await snapctl('list', '--vm', 'web-01');
    expect(stdout).toMatch(/NAME\s+CREATED\s+STATE\s+LOCATION\s+PARENT\s+DESCRIPTION/);
    expect(stdout).toMatch(/\*\s+human/);
  });

  it('answers SNAPSHOT_NOT_FOUND for an unknown snapshot', async () => {
    const { code, body } = await snapctlJson('info', '--vm', 'web-01', '--name', 'nope');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'SNAPSHOT_NOT_FOUND' });
  });
});

describe('snapctl revert and delete', () => {
  it('reverts to an internal snapshot', async () => {
    const { code, body } = await snapctlJson('revert', '--vm', 'web-01', '--name', 'full-1');
    expect(code).toBe(0);
    expect(body).toMatchObject({
      kind: 'revert',
      snapshot: { name: 'full-1', current: true },
      vmState: 'running',
      undoPoint: { name: expect.stringMatching(/^pre-revert-/), location: 'internal', memory: true },
    });
  });

  it('refuses to revert an external snapshot on libvirt 9.0 with UNSUPPORTED, before anything runs', async () => {
    await waitForInventory((hosts) =>
      (hosts[0]!.vms as Array<{ name: string; snapshots: Array<{ name: string }> }>)
        .find((vm) => vm.name === 'web-01')!
        .snapshots.some((snapshot) => snapshot.name === 'pre-upgrade'),
    );
    fake.clearCalls();
    const { code, body } = await snapctlJson('revert', '--vm', 'web-01', '--name', 'pre-upgrade');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(body.message).toMatch(/9\.9/);
    expect(fake.calls().filter((call) => call.argv.includes('snapshot-revert'))).toEqual([]);
  });

  it('deletes a snapshot', async () => {
    const { code, body } = await snapctlJson('delete', '--vm', 'db-01', '--name', 'cold');
    expect(code).toBe(0);
    expect(body).toMatchObject({ kind: 'delete', deleted: { name: 'cold', location: 'internal' } });
    expect(fake.domain('db-01').snapshots.map((snapshot) => snapshot.name)).not.toContain('cold');
  });

  it('refuses to delete an external snapshot whose overlay holds the revert\'s undo point, changing nothing', async () => {
    // The revert to full-1 took an (internal) undo point while 'human' (external) was current,
    // so the undo point lives in human's overlay: deleting 'human' would make it unusable.
    const { code, body } = await snapctlJson('delete', '--vm', 'web-01', '--name', 'human');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(body.message).toMatch(/pre-revert-\d{8}-\d{6}/);
    expect(fake.domain('web-01').snapshots.map((snapshot) => snapshot.name)).toContain('human');
  });

  it('refuses to delete an external snapshot that internal snapshots were taken on top of', async () => {
    // 'full-1' (internal) was taken on top of the external 'pre-upgrade' overlay.
    const { code, body } = await snapctlJson('delete', '--vm', 'web-01', '--name', 'pre-upgrade');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
    expect(body.message).toMatch(/full-1/);
    expect(fake.calls().filter((call) => call.argv.includes('snapshot-delete') && call.argv.includes('--snapshotname=pre-upgrade'))).toEqual([]);
  });
});

describe('finding the host', () => {
  it('answers DOMAIN_NOT_FOUND for a VM no host has', async () => {
    const { code, body } = await snapctlJson('list', '--vm', 'ghost');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'DOMAIN_NOT_FOUND' });
  });

  it('answers DOMAIN_NOT_FOUND from the worker when --host is given and the VM is not there', async () => {
    const { code, body } = await snapctlJson('list', '--vm', 'ghost', '--host', 'kvm-a');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'DOMAIN_NOT_FOUND' });
  });

  it('answers HOST_UNKNOWN for a host that never reported', async () => {
    const { code, body } = await snapctlJson('list', '--vm', 'web-01', '--host', 'kvm-zz');
    expect(code).toBe(1);
    expect(body).toMatchObject({ ok: false, code: 'HOST_UNKNOWN' });
    expect(body.message).toMatch(/kvm-a/);
  });
});

describe('bad input', () => {
  it.each(LITERAL_NAMES)('passes the name %j to virsh literally, as one argv element', async (name) => {
    const { code, body } = await snapctlJson('create', '--vm', 'db-01', `--name=${name}`);
    expect(code, JSON.stringify(body)).toBe(0);
    expect((body.snapshot as { name: string }).name).toBe(name);
    expect(createCalls(name)).toHaveLength(1);
    expect(fake.domain('db-01').snapshots.map((snapshot) => snapshot.name)).toContain(name);
  });

  it.each(REFUSED_NAMES)('refuses the name %j with VALIDATION and queues nothing', async (name) => {
    fake.clearCalls();
    const { code, body } = await snapctlJson('create', '--vm', 'db-01', `--name=${name}`);
    expect(code).toBe(2);
    expect(body).toMatchObject({ ok: false, code: 'VALIDATION' });
    expect(fake.calls().filter((call) => call.argv.includes('snapshot-create-as'))).toEqual([]);
  });

  it('refuses an unknown mode and a missing --vm as usage errors', async () => {
    expect((await snapctlJson('create', '--vm', 'db-01', '--mode', 'memory')).body).toMatchObject({ ok: false, code: 'VALIDATION' });
    const missing = await snapctlJson('list');
    expect(missing.code).toBe(2);
    expect(missing.body).toMatchObject({ ok: false, code: 'VALIDATION' });
  });

  it('names REDIS_URL when Redis cannot be reached', async () => {
    const result = await runSnapctl(['hosts', '--json'], { REDIS_URL: 'redis://127.0.0.1:1', SNAPBOT_PREFIX: env.SNAPBOT_PREFIX! });
    expect(result.code).toBe(1);
    const body = parseJsonOutput(result);
    expect(body).toMatchObject({ ok: false, code: 'REDIS_UNAVAILABLE' });
    expect(body.message).toMatch(/REDIS_URL/);
  });
});
