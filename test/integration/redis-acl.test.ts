import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../../bot/core/authorize.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { confirmFleet, planFleet, watchFleetRun } from '../../bot/core/fleet/index.js';
import { listHosts } from '../../bot/core/hosts.js';
import { createSnapshot } from '../../bot/core/snapshots.js';
import { SnapbotError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
import { loadPolicy } from '../../shared/policy.js';
import { DEFAULT_PREFIX } from '../../shared/queues.js';
import { connectRedis, failFastRedisOptions } from '../../shared/redis.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { NO_APPROVALS_POLICY } from '../fixtures/policies/policies.js';
import { parseJsonOutput, PROJECT_ROOT, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { testAuthority } from '../helpers/authority.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Trust issue, finding 1: the ACL users docs/SECURITY.md tells operators to make. The
 * lines are read from that page (so page and code cannot drift), applied to a private
 * redis-server, and then everything snapbot does runs through those users: the control
 * process's core creates a snapshot and a fleet run, snapctl lists hosts, a worker
 * process takes the jobs and beats its heartbeat. Then what they are refused.
 */
const HOST = 'kvm-07';
const PASSWORDS = { ADMIN_PASSWORD: 'acl-admin-Pw1', CONTROL_PASSWORD: 'acl-control-Pw2', WORKER_PASSWORD: 'acl-worker-Pw3' } as const;
const ADMIN: Actor = { id: 'discord:1001', userId: '1001', displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true };

/** The `ACL SETUSER` lines of the code block under "ACL users for a fleet", with the test's passwords. */
function documentedAclLines(): string[][] {
  const page = readFileSync(`${PROJECT_ROOT}/docs/SECURITY.md`, 'utf8');
  const section = page.slice(page.indexOf('## ACL users for a fleet'));
  const block = /```[^\n]*\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('docs/SECURITY.md has no code block under "ACL users for a fleet"');
  const lines = block
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('ACL SETUSER'));
  return lines.map((line) => {
    let filled = line;
    for (const [placeholder, password] of Object.entries(PASSWORDS)) filled = filled.replaceAll(placeholder, password);
    return filled.split(/\s+/);
  });
}

let redis: TestRedis;
let fake: FakeVirshHost;
let worker: SpawnedProcess | undefined;
let core: SnapbotCore | undefined;
let admin: Redis;
let asWorker: Redis;
let url: (user: string, password: string) => string;

beforeAll(async () => {
  redis = await startTestRedis();
  const lines = documentedAclLines();
  expect(lines.map((line) => line[2])).toEqual(['snapbot-admin', 'snapbot-control', `snapbot-worker-${HOST}`, 'default']);
  for (const [command, ...args] of lines) expect(await redis.client.call(command!, ...args)).toBe('OK');
  const port = redis.server.port;
  url = (user, password) => `redis://${user}:${password}@127.0.0.1:${port}`;
  admin = new Redis(url('snapbot-admin', PASSWORDS.ADMIN_PASSWORD), { maxRetriesPerRequest: 1 });
  asWorker = new Redis(url(`snapbot-worker-${HOST}`, PASSWORDS.WORKER_PASSWORD), { maxRetriesPerRequest: 1 });
  fake = await FakeVirshHost.create();
  fake.addDomain({ name: 'web-01' });
  fake.addDomain({ name: 'web-02' });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await core?.close();
  admin?.disconnect();
  asWorker?.disconnect();
  await fake?.dispose();
  await redis?.stop();
});

describe('the ACL users of docs/SECURITY.md', () => {
  it('carry a snapshot, a fleet run, snapctl and a worker, with nothing refused on the way', async () => {
    const controlUrl = url('snapbot-control', PASSWORDS.CONTROL_PASSWORD);
    worker = await startWorkerProcess({
      redisUrl: url(`snapbot-worker-${HOST}`, PASSWORDS.WORKER_PASSWORD),
      prefix: DEFAULT_PREFIX,
      hostId: HOST,
      fake,
      // Debug: the heartbeat and BullMQ log what Redis refuses there.
      env: { LOG_LEVEL: 'debug' },
    });
    core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: controlUrl, prefix: DEFAULT_PREFIX, logger: createLogger('test', 'silent'), policy: loadPolicy(NO_APPROVALS_POLICY) });

    // The heartbeat got through: the control process sees the host and its VMs.
    const hosts = await listHosts(core);
    expect(hosts).toMatchObject([{ hostId: HOST, online: true }]);

    const created = await createSnapshot(core, { vm: 'web-01', name: 'through-acl', requestedBy: 'test' }, { timeoutMs: 30_000 });
    expect(created).toMatchObject({ snapshot: { name: 'through-acl' } });

    const plan = await planFleet(core, {
      action: 'snapshot',
      target: 'all',
      name: 'fleet-acl',
      requester: { id: ADMIN.id, userId: ADMIN.userId, displayName: ADMIN.displayName },
      actor: ADMIN,
      origin: 'discord',
    });
    expect(plan.targets).toHaveLength(2);
    await confirmFleet(core, plan.id, ADMIN);
    const final = await watchFleetRun(core, plan.id, { pollMs: 50 });
    expect(final.counts).toMatchObject({ done: 2, failed: 0 });
    expect(fake.domain('web-01').snapshots.map((snapshot) => snapshot.name)).toEqual(['through-acl', 'fleet-acl']);
    expect(fake.domain('web-02').snapshots.map((snapshot) => snapshot.name)).toEqual(['fleet-acl']);

    const snapctl = await runSnapctl(['hosts', '--json'], { REDIS_URL: controlUrl, SNAPBOT_PREFIX: DEFAULT_PREFIX });
    expect(snapctl.code, snapctl.stderr).toBe(0);
    expect(parseJsonOutput(snapctl)).toMatchObject({ ok: true, hosts: [expect.objectContaining({ hostId: HOST, online: true })] });

    // Nothing the worker did was refused along the way (retried and hidden in a debug line).
    expect(worker.output()).not.toMatch(/NOPERM|NOAUTH|WRONGPASS/);
    expect(snapctl.stderr).not.toMatch(/NOPERM/);
    // And Redis logged no ACL refusal for any of the users.
    expect(await admin.call('ACL', 'LOG')).toEqual([]);
  }, 120_000);

  it("refuses a worker's user the approvals, other hosts' queues and administration", async () => {
    const refused = async (command: string, ...args: string[]) =>
      asWorker.call(command, ...args).then(
        () => 'allowed',
        (error: Error) => error.message.split(' ')[0],
      );
    expect(await refused('HGETALL', `${DEFAULT_PREFIX}:approval:any`)).toBe('NOPERM');
    expect(await refused('SMEMBERS', `${DEFAULT_PREFIX}:approvals:to-act`)).toBe('NOPERM');
    expect(await refused('LPUSH', `${DEFAULT_PREFIX}:host.kvm-08:wait`, 'x')).toBe('NOPERM');
    expect(await refused('SET', 'not-snapbot', 'x')).toBe('NOPERM');
    for (const command of [['FLUSHALL'], ['KEYS', '*'], ['CONFIG', 'GET', 'requirepass'], ['CLIENT', 'LIST'], ['CLIENT', 'KILL', 'TYPE', 'normal'], ['SCRIPT', 'FLUSH'], ['ACL', 'LIST'], ['SHUTDOWN']]) {
      expect(await refused(command[0]!, ...command.slice(1)), command.join(' ')).toBe('NOPERM');
    }
    expect(await refused('SUBSCRIBE', 'anything')).toBe('NOPERM');
    // What it needs, it has.
    expect(await refused('GET', `${DEFAULT_PREFIX}:host:${HOST}`)).toBe('allowed');
  });

  it("refuses the control user administration and keys outside snapbot's prefix", async () => {
    const asControl = new Redis(url('snapbot-control', PASSWORDS.CONTROL_PASSWORD), { maxRetriesPerRequest: 1 });
    try {
      for (const command of [['FLUSHALL'], ['FLUSHDB'], ['CONFIG', 'SET', 'appendfsync', 'no'], ['KEYS', '*'], ['SET', 'not-snapbot', 'x'], ['SHUTDOWN']]) {
        const outcome = await asControl.call(command[0]!, ...command.slice(1)).then(
          () => 'allowed',
          (error: Error) => error.message.split(' ')[0],
        );
        expect(outcome, command.join(' ')).toBe('NOPERM');
      }
    } finally {
      asControl.disconnect();
    }
  });

  it('refuses a connection without a user name, and says so in snapbot terms', async () => {
    const error = await connectRedis(redis.url, failFastRedisOptions(redis.url)).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(SnapbotError);
    expect((error as SnapbotError).message).toMatch(/refused the password \(none was given\).*NOAUTH/);
    const wrong = url('snapbot-control', 'not-the-password');
    const wrongError = await connectRedis(wrong, failFastRedisOptions(wrong)).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect((wrongError as SnapbotError).message).toMatch(/^Redis at redis:\/\/snapbot-control:\*\*\*@127\.0\.0\.1:\d+ refused the password \(REDIS_URL \/ data\/redis\.password\): WRONGPASS/);
    expect((wrongError as SnapbotError).message).not.toContain('not-the-password');
  });
});
