import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { runJob } from '../../bot/core/dispatch.js';
import { findFreePort } from '../../scripts/redis-server.js';
import { createLogger } from '../../shared/logger.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import { startControlProcess } from '../helpers/control-process.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Issue 12, metrics and health: a real worker (fake virsh) and a real control process
 * with METRICS_PORT set, scraped over HTTP as Prometheus would; their output passes
 * `promtool check metrics`, and the sample alerting rules `promtool check rules`.
 * /readyz tells the truth when libvirt or Redis goes away.
 */
const HOST = 'kvm-metrics';
const RULES = fileURLToPath(new URL('../../deploy/prometheus/snapbot.rules.yml', import.meta.url));
const RULE_TESTS = fileURLToPath(new URL('../../deploy/prometheus/snapbot.rules.test.yml', import.meta.url));

let redis: TestRedis;
const processes: SpawnedProcess[] = [];
const cores: SnapbotCore[] = [];
const fakes: FakeVirshHost[] = [];
const redises: TestRedis[] = [];

beforeAll(async () => {
  // Fails (never skips) without promtool: CI must check the real output.
  await promtool(['--version']);
  redis = await startTestRedis();
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map((child) => child.stop('SIGKILL')));
  await Promise.all(cores.splice(0).map((core) => core.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.dispose()));
  await Promise.all(redises.splice(0).map((extra) => extra.stop()));
});

afterAll(async () => {
  await redis?.stop();
});

interface PromtoolResult {
  code: number | null;
  output: string;
}

/** Runs promtool, feeding `input` on stdin; a missing promtool fails with what to install. */
function promtool(args: string[], input = ''): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new Error('promtool is not installed: install the Debian package `prometheus` (apt-get install --no-install-recommends prometheus), which ships it')
          : error,
      ),
    );
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`unreadable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[name!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

async function get(port: number, path: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text(), contentType: response.headers.get('content-type') };
}

/** Scrapes /metrics, checks it with promtool, and returns its samples. */
async function scrape(port: number): Promise<Sample[]> {
  const { status, body, contentType } = await get(port, '/metrics');
  expect(status).toBe(200);
  expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  const check = await promtool(['check', 'metrics'], body);
  expect(check.output).toBe('');
  expect(check.code).toBe(0);
  return parseSamples(body);
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function setup(label: string, target: TestRedis = redis) {
  const fake = await FakeVirshHost.create();
  fakes.push(fake);
  const vm = fake.addDomain({ name: `vm-${label}` });
  const prefix = uniquePrefix(label);
  const workerPort = await findFreePort();
  processes.push(await startWorkerProcess({ redisUrl: target.url, prefix, hostId: HOST, fake, env: { METRICS_PORT: String(workerPort) } }));
  const controlPort = await findFreePort();
  const env = { REDIS_URL: target.url, SNAPBOT_PREFIX: prefix };
  processes.push(await startControlProcess({ ...env, METRICS_PORT: String(controlPort) }));
  return { fake, vm, prefix, env, workerPort, controlPort };
}

describe('a worker with METRICS_PORT', () => {
  it('counts its jobs by kind and result and its virsh calls, and serves what promtool accepts', async () => {
    const { fake, vm, prefix, workerPort } = await setup('worker');
    const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
    cores.push(core);

    await runJob(core, { kind: 'create', host: HOST, vm: vm.name, requestedBy: 'test', name: 'm1', mode: 'disk-only' }, { timeoutMs: 30_000 });
    const missing = await runJob(core, { kind: 'info', host: HOST, vm: vm.name, requestedBy: 'test', name: 'no-such' }, { timeoutMs: 30_000 }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(missing).toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    // libvirt away for one call: the attempt fails HYPERVISOR_UNAVAILABLE, BullMQ retries it, the job is done.
    fake.setFaults([{ match: { subcommand: 'snapshot-list' }, exitCode: 1, stderr: 'error: failed to connect to the hypervisor', times: 1 }]);
    await runJob(core, { kind: 'list', host: HOST, vm: vm.name, requestedBy: 'test' }, { timeoutMs: 30_000 });

    const samples = await scrape(workerPort);
    const jobs = (kind: string, result: string) => valueOf(samples, 'snapbot_worker_jobs_total', { host: HOST, kind, result });
    expect(jobs('create', 'done')).toBe(1);
    expect(jobs('info', 'failed:SNAPSHOT_NOT_FOUND')).toBe(1);
    expect(jobs('list', 'done')).toBe(1);
    expect(valueOf(samples, 'snapbot_worker_job_retries_total', { host: HOST, kind: 'list', code: 'HYPERVISOR_UNAVAILABLE' })).toBe(1);

    const creates = fake.calls().filter((call) => call.argv.includes('snapshot-create-as')).length;
    expect(creates).toBeGreaterThan(0);
    expect(valueOf(samples, 'snapbot_virsh_call_duration_seconds_count', { host: HOST, subcommand: 'snapshot-create-as' })).toBe(creates);
    expect(valueOf(samples, 'snapbot_virsh_call_duration_seconds_bucket', { host: HOST, subcommand: 'snapshot-create-as', le: '+Inf' })).toBe(creates);
    expect(valueOf(samples, 'snapbot_virsh_call_duration_seconds_sum', { host: HOST, subcommand: 'snapshot-create-as' })).toBeGreaterThan(0);
    expect(valueOf(samples, 'snapbot_virsh_calls_failed_total', { host: HOST, subcommand: 'snapshot-list', class: 'HYPERVISOR_UNAVAILABLE' })).toBe(1);

    // Its own queue: the failed info job is kept; nothing waits.
    expect(valueOf(samples, 'snapbot_worker_queue_jobs', { host: HOST, state: 'failed' })).toBe(1);
    expect(valueOf(samples, 'snapbot_worker_queue_jobs', { host: HOST, state: 'waiting' })).toBe(0);
    const beat = valueOf(samples, 'snapbot_worker_heartbeat_last_success_timestamp_seconds', { host: HOST });
    expect(Date.now() / 1000 - beat!).toBeLessThan(10);
    expect(valueOf(samples, 'snapbot_worker_ready', { host: HOST })).toBe(1);
    // This fake virsh has no `event`: no watcher listens, and every job checks the VM's name.
    expect(valueOf(samples, 'snapbot_worker_libvirt_events_listening', { host: HOST })).toBe(0);
    expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    // No VM names and no job ids in any label.
    expect(samples.some((sample) => Object.values(sample.labels).some((value) => value.includes(vm.name) || value.includes(vm.uuid)))).toBe(false);
  });

  it('answers /healthz, and /readyz 200 until libvirt is unreachable, then 503 saying so, and 200 again once it is back', async () => {
    const { fake, workerPort } = await setup('libvirt');
    expect(await get(workerPort, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(workerPort, '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    expect((await get(workerPort, '/nowhere')).status).toBe(404);

    fake.setDaemonDown(true);
    const down = await until(() => get(workerPort, '/readyz'), (answer) => answer.status === 503, '/readyz to say 503');
    expect(down.body).toMatch(/^not ready\nlibvirt: Cannot reach libvirt on host kvm-metrics/);
    expect(down.body).not.toMatch(/redis/i);
    expect(await get(workerPort, '/healthz')).toMatchObject({ status: 200 });
    expect(valueOf(await scrape(workerPort), 'snapbot_worker_ready', { host: HOST })).toBe(0);

    fake.setDaemonDown(false);
    await until(() => get(workerPort, '/readyz'), (answer) => answer.status === 200, '/readyz to say 200 again');
  });
});

describe('the control process with METRICS_PORT', () => {
  it("shows every host's queue and heartbeat age, pending approvals and snapctl requests, and serves what promtool accepts", async () => {
    const { vm, prefix, env, controlPort } = await setup('control');
    const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('test', 'silent') });
    cores.push(core);
    await runJob(core, { kind: 'create', host: HOST, vm: vm.name, requestedBy: 'test', name: 'keep', mode: 'disk-only' }, { timeoutMs: 30_000 });
    await runJob(core, { kind: 'info', host: HOST, vm: vm.name, requestedBy: 'test', name: 'no-such' }, { timeoutMs: 30_000 }).catch(() => undefined);
    // A delete waits for an approval (the default policy): one pending request, one snapctl request handled.
    const asked = await runSnapctl(['delete', '--vm', vm.name, '--name', 'keep', '--no-wait', '--json'], env);
    expect(parseJsonOutput(asked)).toMatchObject({ ok: true });

    const samples = await until(
      () => scrape(controlPort),
      (found) => valueOf(found, 'snapbot_control_requests_total', { result: 'done' }) === 1,
      'the snapctl request to be counted',
    );
    expect(valueOf(samples, 'snapbot_queue_jobs', { host: HOST, state: 'failed' })).toBe(1);
    expect(valueOf(samples, 'snapbot_queue_jobs', { host: HOST, state: 'active' })).toBe(0);
    expect(valueOf(samples, 'snapbot_host_heartbeat_age_seconds', { host: HOST })).toBeLessThan(5);
    expect(valueOf(samples, 'snapbot_hosts', { state: 'online' })).toBe(1);
    expect(valueOf(samples, 'snapbot_hosts', { state: 'offline' })).toBe(0);
    expect(valueOf(samples, 'snapbot_approvals_pending')).toBe(1);
    expect(valueOf(samples, 'snapbot_fleet_runs_active')).toBe(0);
    expect(valueOf(samples, 'snapbot_schedules', { status: 'active' })).toBe(0);
    expect(valueOf(samples, 'snapbot_control_ready')).toBe(1);
    expect(await get(controlPort, '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    expect(await get(controlPort, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
  });
});

describe('Redis going away', () => {
  it('turns /readyz of the worker and of the control process to 503, naming Redis, while /healthz and /metrics still answer', async () => {
    const own = await startTestRedis();
    redises.push(own);
    const { workerPort, controlPort } = await setup('redis-down', own);
    expect((await get(workerPort, '/readyz')).status).toBe(200);
    expect((await get(controlPort, '/readyz')).status).toBe(200);

    own.client.disconnect();
    await own.server.stop();
    for (const port of [workerPort, controlPort]) {
      const down = await until(() => get(port, '/readyz'), (answer) => answer.status === 503, `/readyz on ${port} to say 503`);
      expect(down.body).toMatch(/^not ready\nredis: (not connected|no answer to PING)/m);
      expect(await get(port, '/healthz')).toMatchObject({ status: 200 });
    }
    expect(valueOf(await scrape(workerPort), 'snapbot_worker_ready', { host: HOST })).toBe(0);
    expect(valueOf(await scrape(controlPort), 'snapbot_control_ready')).toBe(0);
  });
});

describe('the sample alerting rules', () => {
  it('pass promtool check rules', async () => {
    const check = await promtool(['check', 'rules', RULES]);
    expect(check.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(check.code).toBe(0);
  });

  it('fire when they should and not before (promtool test rules)', async () => {
    const check = await promtool(['test', 'rules', RULE_TESTS]);
    expect(check.output).toMatch(/SUCCESS/);
    expect(check.code).toBe(0);
  });
});
