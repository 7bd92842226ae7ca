import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort, startRedisServer, type RedisServerHandle } from '../../scripts/redis-server.js';
import { NO_APPROVALS_POLICY } from '../fixtures/policies/policies.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { CONTROL_MAIN } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { uniquePrefix } from '../helpers/redis.js';
import { FAKE_LIBVIRT_URI } from '../helpers/worker-process.js';

/**
 * A worker and a control process started before their Redis is up (a KVM host booting
 * faster than the Redis host; `npm start`'s managed Redis dying in its first second and
 * being restarted) wait for it, saying so, and then work; they used to exit. A refused
 * password is a configuration error: that still fails at once.
 */
const HOST = 'kvm-late';
const dirs: string[] = [];
const processes: SpawnedProcess[] = [];
const servers: RedisServerHandle[] = [];
const fakes: FakeVirshHost[] = [];

afterAll(async () => {
  await Promise.all(processes.map((child) => child.stop('SIGKILL')));
  await Promise.all(servers.map((server) => server.stop()));
  await Promise.all(fakes.map((fake) => fake.dispose()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const exited = (child: SpawnedProcess) => child.child.exitCode !== null || child.child.signalCode !== null;

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'snapbot-late-redis-'));
  dirs.push(dir);
  return dir;
}

describe('Redis that comes up after the processes that use it', () => {
  it('the worker and the control process wait for it, then a snapctl create goes through both', async () => {
    const port = await findFreePort();
    const url = `redis://127.0.0.1:${port}`;
    const fake = await FakeVirshHost.create();
    fakes.push(fake);
    const vm = fake.addDomain({ name: 'vm-late' });
    const env = { REDIS_URL: url, SNAPBOT_PREFIX: uniquePrefix('late-redis') };

    const worker = spawnNode(WORKER_MAIN, { ...env, HOST_ID: HOST, LIBVIRT_URI: FAKE_LIBVIRT_URI, VIRSH_PATH: fake.path, LOG_LEVEL: 'info', ...fake.env });
    const control = spawnNode(CONTROL_MAIN, { ...env, SNAPBOT_POLICY: NO_APPROVALS_POLICY, DISCORD_TOKEN: '', LOG_LEVEL: 'info' });
    processes.push(worker, control);
    // Both say what they wait for, naming the variable, and retry more than once.
    await worker.waitFor('worker: Redis is not reachable yet; waiting for it', 60_000);
    await control.waitFor('core: Redis is not reachable yet; waiting for it', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(worker.output().match(/Redis is not reachable yet/g)?.length ?? 0).toBeGreaterThan(1);
    expect(worker.output()).toContain(`Cannot reach Redis at ${url} (set REDIS_URL`);
    expect(exited(worker)).toBe(false);
    expect(exited(control)).toBe(false);

    servers.push(await startRedisServer({ port, dir: newDir(), durable: true }));
    await worker.waitFor('worker ready', 60_000);
    await control.waitFor('control process ready', 60_000);
    expect(worker.output()).toContain('worker: Redis is reachable now');

    const created = parseJsonOutput(await runSnapctl(['create', '--vm', vm.name, '--name', 'after-the-wait', '--mode', 'disk-only', '--json'], env));
    expect(created).toMatchObject({ ok: true, snapshot: { name: 'after-the-wait' } });
    expect(fake.domain(vm.uuid).snapshots.map((snapshot) => snapshot.name)).toContain('after-the-wait');
  });

  it('a refused password does not wait: the worker exits at once, saying so', async () => {
    const port = await findFreePort();
    servers.push(await startRedisServer({ port, dir: newDir(), durable: false, password: 'the-right-one' }));
    const fake = await FakeVirshHost.create();
    fakes.push(fake);
    const worker = spawnNode(WORKER_MAIN, {
      REDIS_URL: `redis://:not-it@127.0.0.1:${port}`,
      SNAPBOT_PREFIX: uniquePrefix('late-redis-auth'),
      HOST_ID: HOST,
      LIBVIRT_URI: FAKE_LIBVIRT_URI,
      VIRSH_PATH: fake.path,
      LOG_LEVEL: 'info',
      ...fake.env,
    });
    processes.push(worker);
    const code = await new Promise<number | null>((resolve) => {
      if (exited(worker)) resolve(worker.child.exitCode);
      else worker.child.once('exit', (exitCode) => resolve(exitCode));
    });
    expect(code).not.toBe(0);
    expect(worker.output()).toMatch(/refused the password/);
    expect(worker.output()).not.toMatch(/waiting for it/);
    expect(worker.output()).not.toContain('not-it');
  });
});
