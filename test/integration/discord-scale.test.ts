import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../bot/core/audit.js';
import { getFleetRun } from '../../bot/core/fleet/index.js';
import { heartbeatSchema, type Heartbeat } from '../../shared/hosts.js';
import { createLogger } from '../../shared/logger.js';
import { policySchema } from '../../shared/policy.js';
import { registryKeys } from '../../shared/queues.js';
import type { CreateSnapshotRequest, DiskSource, DomainSummary, Hypervisor, RawSnapshot, SnapshotName } from '../../worker/hypervisor/hypervisor.js';
import type { RunningWorker } from '../../worker/run-worker.js';
import { snowflake, type FakeCommandOption, type FakeDiscord, type FakeMessage, type FakeUser, type RecordedRequest } from '../fixtures/fake-discord/fake-discord.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { guildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * Issue 8's scale tests: the bot through the real discord.js client on the strict fake
 * Discord with Discord's rate limits on, a real Redis, and workers. Every test ends with
 * the right final message, no request Discord would refuse, and no 429 that discord.js
 * did not wait out and retry.
 *
 * Workers: real worker processes on fake virsh hosts where what matters is virsh itself
 * (the longest names; failures with virsh's long stderr); elsewhere the real worker code
 * in this process on an in-memory libvirt (`MemoryLibvirt`), because every fake virsh
 * call is a Node process and a 500-VM inventory would cost thousands of them on this
 * 2-core machine. /hosts and /fleet list read heartbeats written in the workers' format.
 */

const run = promisify(execFile);
const EPHEMERAL = 64;
const base = guildFixture();
const approver: FakeUser = { id: snowflake(), username: 'grace', roles: [base.adminRole.id] };
const guild = guildFixture({ ...base.options, users: [...base.options.users, approver] });
const { admin, operator, viewer } = base;

/** Names at their maximum lengths: VM 200, snapshot 128, host id 63. */
const MAX_HOST = `kvm-max-${'h'.repeat(55)}`;
const MAX_VM = `app-${'very-long-vm-name.'.repeat(12)}`.slice(0, 200);
const MAX_SNAP = `pre-${'upgrade-'.repeat(16)}`.slice(0, 128);
const MAX_SNAP_BLANK = `blank-${'b'.repeat(122)}`;
const DESCRIPTION = `${'Before the kernel upgrade ```apt full-upgrade``` **keep** <@&1> @everyone; '.repeat(14)}`.slice(0, 1000);
const BLANK = '   \t  ';
const LONG_STDERR = [
  `error: internal error: qemu unexpectedly closed the monitor: ${'qemu-system-x86_64: -blockdev {"driver":"qcow2","file":"libvirt-2-storage"}: Failed to get "write" lock; '.repeat(8)}`,
  `error: ${'Is another process using the image [/var/lib/libvirt/images/vm.qcow2]? '.repeat(8)}`,
].join('\n');

const HOSTS_IN_VIEW = 200;
const FLEET_LIST_VMS = 1000;
const FAILING_REAL_VMS = 10;
const FAILING_MEMORY_HOSTS = 4;
const FAILURES = 500;

let redis: TestRedis;
let prefix: string;
let harness: BotUnderTest;
let discord: FakeDiscord;
const virshHosts: FakeVirshHost[] = [];
const processes: SpawnedProcess[] = [];
const inProcess: RunningWorker[] = [];
const memory: Record<string, MemoryLibvirt> = {};
let maxHost: FakeVirshHost;
let failingHost: FakeVirshHost;

// ── an in-memory libvirt for the real worker code ────────────────────────────

/**
 * The worker as built (dist/, like the worker processes): it reads its version from the
 * package.json next to dist/, and its errors must be the classes it checks against.
 */
const built = <T>(path: string): Promise<T> => import(new URL(`../../dist/${path}`, import.meta.url).href) as Promise<T>;
let SnapbotError: (typeof import('../../shared/errors.js'))['SnapbotError'];
let classifyVirshError: (typeof import('../../worker/hypervisor/classify-virsh-error.js'))['classifyVirshError'];
let workerEnvSchema: (typeof import('../../shared/config.js'))['workerEnvSchema'];
let startWorker: (typeof import('../../worker/run-worker.js'))['startWorker'];

async function loadBuiltWorker(): Promise<void> {
  ({ SnapbotError } = await built<typeof import('../../shared/errors.js')>('shared/errors.js'));
  ({ classifyVirshError } = await built<typeof import('../../worker/hypervisor/classify-virsh-error.js')>('worker/hypervisor/classify-virsh-error.js'));
  ({ workerEnvSchema } = await built<typeof import('../../shared/config.js')>('shared/config.js'));
  ({ startWorker } = await built<typeof import('../../worker/run-worker.js')>('worker/run-worker.js'));
}

interface MemoryDomain {
  uuid: string;
  name: string;
  state: string;
  snapshots: RawSnapshot[];
}

/** A libvirt in memory behind the worker's Hypervisor port; failures are virsh's stderr classified as the virsh adapter does. */
class MemoryLibvirt implements Hypervisor {
  readonly domains = new Map<string, MemoryDomain>();
  latencyMs = 0;
  createStderr: string | null = null;
  /** When each revert finished (for the wait measurements). */
  readonly revertedAt = new Map<string, number>();
  private created = 0;

  constructor(readonly hostId: string) {}

  addDomain(name: string, snapshots: Array<{ name: string; description: string | null }> = []): void {
    const uuid = `00000000-0000-4000-8000-${String(this.domains.size + 1).padStart(12, '0')}`.replace(/^0{8}/, hash8(this.hostId));
    const domain: MemoryDomain = { uuid, name, state: 'running', snapshots: [] };
    snapshots.forEach((snapshot, index) => domain.snapshots.unshift(this.snapshot(snapshot.name, snapshot.description, 'full', new Date(Date.now() - (snapshots.length - index) * 60_000))));
    domain.snapshots.forEach((snapshot, index) => (snapshot.current = index === 0));
    this.domains.set(uuid, domain);
  }

  async version() {
    return { libvirt: '10.0.0', qemu: '8.2.2' };
  }
  async listDomains(): Promise<DomainSummary[]> {
    return [...this.domains.values()].map(({ uuid, name, state }) => ({ uuid, name, state }));
  }
  async readInventory() {
    return [...this.domains.values()].map(({ uuid, name, state, snapshots }) => ({ uuid, name, state, snapshots: snapshots.map(({ name, location }) => ({ name, location })) }));
  }
  async domainName(uuid: string) {
    return this.domain(uuid).name;
  }
  async domainState(uuid: string) {
    return this.domain(uuid).state;
  }
  async listSnapshots(uuid: string) {
    return this.domain(uuid).snapshots.map((snapshot) => ({ ...snapshot }));
  }
  async listSnapshotNames(uuid: string): Promise<SnapshotName[]> {
    return this.domain(uuid).snapshots.map(({ name, location }) => ({ name, location }));
  }
  async snapshotInfo(uuid: string, name: string): Promise<RawSnapshot> {
    const found = this.domain(uuid).snapshots.find((snapshot) => snapshot.name === name);
    if (!found) throw new SnapbotError('SNAPSHOT_NOT_FOUND', `no snapshot '${name}'`);
    return { ...found };
  }
  async diskSources(uuid: string): Promise<DiskSource[]> {
    return [{ type: 'file', device: 'disk', target: 'vda', source: `/var/lib/libvirt/images/${this.domain(uuid).name}.qcow2` }];
  }
  async memoryKiB(uuid: string): Promise<number> {
    this.domain(uuid);
    return 65536;
  }
  async createSnapshot(uuid: string, request: CreateSnapshotRequest): Promise<RawSnapshot> {
    const domain = this.domain(uuid);
    await sleep(this.latencyMs);
    if (this.createStderr !== null) {
      const classified = classifyVirshError(this.createStderr, { host: this.hostId, vm: domain.name, snapshot: request.name });
      throw new SnapbotError(classified.code, classified.message, { permanent: classified.permanent });
    }
    if (domain.snapshots.some((snapshot) => snapshot.name === request.name)) throw new SnapbotError('SNAPSHOT_EXISTS', `'${request.name}' exists`);
    for (const snapshot of domain.snapshots) snapshot.current = false;
    domain.snapshots.unshift(this.snapshot(request.name, request.description, request.mode, new Date(Date.now() + this.created++)));
    return { ...domain.snapshots[0]! };
  }
  async revertSnapshot(uuid: string, name: string): Promise<void> {
    const domain = this.domain(uuid);
    await this.snapshotInfo(uuid, name);
    await sleep(this.latencyMs);
    for (const snapshot of domain.snapshots) snapshot.current = snapshot.name === name;
    this.revertedAt.set(domain.name, Date.now());
  }
  async deleteSnapshot(uuid: string, name: string): Promise<void> {
    const domain = this.domain(uuid);
    await this.snapshotInfo(uuid, name);
    domain.snapshots = domain.snapshots.filter((snapshot) => snapshot.name !== name);
  }
  withLogger(): Hypervisor {
    return this;
  }

  private domain(uuid: string): MemoryDomain {
    const domain = this.domains.get(uuid);
    if (!domain) throw new SnapbotError('DOMAIN_NOT_FOUND', `no domain ${uuid}`);
    return domain;
  }

  private snapshot(name: string, description: string | null, mode: 'full' | 'disk-only', at: Date): RawSnapshot {
    return {
      name,
      createdAt: new Date(Math.floor(at.getTime() / 1000) * 1000).toISOString(),
      state: mode === 'full' ? 'running' : 'disk-snapshot',
      location: mode === 'full' ? 'internal' : 'external',
      memory: mode === 'full',
      parent: null,
      current: true,
      description,
    };
  }
}

function hash8(text: string): string {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash.toString(16).padStart(8, '0');
}

async function startMemoryWorker(host: MemoryLibvirt): Promise<void> {
  const config = workerEnvSchema.parse({
    REDIS_URL: redis.url,
    SNAPBOT_PREFIX: prefix,
    HOST_ID: host.hostId,
    WORKER_CONCURRENCY: '8',
    HEARTBEAT_INTERVAL_MS: '500',
    HEARTBEAT_TTL_MS: '15000',
    INVENTORY_INTERVAL_MS: '600000',
    JOB_LOCK_MS: '30000',
    JOB_STALLED_CHECK_MS: '30000',
    SHUTDOWN_GRACE_MS: '5000',
    LOG_LEVEL: 'silent',
  });
  memory[host.hostId] = host;
  inProcess.push(await startWorker(config, host, createLogger(`worker-${host.hostId}`, 'silent')));
}

// ── heartbeats as workers write them ─────────────────────────────────────────

/** `count` hosts `site-NNN…` with `vmsEach` VMs each: some with 63-character ids, some stale, offline or with a last error. */
async function writeHeartbeats(count: number, vmsEach: number): Promise<void> {
  const keys = registryKeys(prefix);
  const multi = redis.client.multi();
  const now = Date.now();
  for (let index = 0; index < count; index += 1) {
    const hostId = index % 10 === 0 ? `site-${String(index).padStart(3, '0')}-${'r'.repeat(54)}` : `site-${String(index).padStart(3, '0')}`;
    const state = index % 10 === 3 ? 'stale' : index % 10 === 7 ? 'offline' : 'online';
    const heartbeat: Heartbeat = heartbeatSchema.parse({
      hostId,
      libvirtUri: 'qemu:///system',
      libvirtVersion: index % 2 ? '10.0.0' : '9.0.0',
      qemuVersion: '8.2.2',
      capabilities: { externalRevert: index % 2 === 1, externalDelete: true },
      vms: Array.from({ length: vmsEach }, (_, vm) => ({
        name: vm === 0 && index % 25 === 0 ? `${'w'.repeat(190)}-${String(index).padStart(3, '0')}-${vm}`.slice(0, 200) : `web-${String(index).padStart(3, '0')}-${vm}`,
        uuid: `${hash8(hostId)}-0000-4000-8000-${String(vm).padStart(12, '0')}`,
        state: 'running',
        snapshots: Array.from({ length: vm % 4 }, (_, snap) => ({ name: snap === 0 ? `${MAX_SNAP.slice(0, 120)}-${snap}` : `nightly-${snap}`, location: 'internal' as const })),
      })),
      inventoryAt: new Date(now - (state === 'stale' ? 3_600_000 : 1_000)).toISOString(),
      inventoryError: state === 'stale' ? `virsh list failed: ${LONG_STDERR}` : null,
      concurrency: 4,
      startedAt: new Date(now - 86_400_000).toISOString(),
      lastSeen: new Date(now - (state === 'offline' ? 600_000 : 500)).toISOString(),
      workerVersion: '0.1.0',
      inventoryIntervalMs: 30_000,
      lastError: index % 4 === 1 ? { code: 'INTERNAL', message: `virsh failed for VM web-${index}-0 (virsh: error: ${'x'.repeat(299)}…)`, at: new Date(now - 120_000).toISOString(), jobId: `job-${index}`, kind: 'create', vm: `web-${index}-0` } : null,
    });
    multi.sadd(keys.hosts, hostId).set(keys.host(hostId), JSON.stringify(heartbeat));
    if (state !== 'offline') multi.set(keys.alive(hostId), heartbeat.lastSeen, 'PX', 30 * 60_000);
  }
  await multi.exec();
}

// ── helpers ──────────────────────────────────────────────────────────────────

const sub = (name: string, options: Record<string, string>): FakeCommandOption[] => [
  { name, type: 1, options: Object.entries(options).map(([option, value]) => ({ name: option, type: 3, value })) },
];

type Embed = { title?: string; description?: string; fields?: Array<{ name: string; value: string }>; footer?: { text: string } };
const embeds = (message: FakeMessage | undefined) => (message?.embeds ?? []) as Embed[];
const embedOf = (message: FakeMessage | undefined, index = 0): Embed => embeds(message).at(index) ?? {};
const field = (embed: Embed, name: string | RegExp) => embed.fields?.find((candidate) => (typeof name === 'string' ? candidate.name === name : name.test(candidate.name)))?.value;

function customId(message: FakeMessage, pattern: RegExp): string {
  const found = pattern.exec(JSON.stringify(message.components));
  if (!found) throw new Error(`no button ${pattern} in ${JSON.stringify(message.components)}`);
  return found[1]!;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met in ${timeoutMs} ms`);
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A route without ids and tokens, for counting. */
const routeOf = (request: RecordedRequest) => `${request.method} ${request.path.replace(/\/webhooks\/\d+\/[^/]+/, '/webhooks/:app/:token').replace(/^\/interactions\/\d+\/[^/]+/, '/interactions/:id/:token').replace(/\d{15,}/g, ':id')}`;

/**
 * Checks the requests since `from`: no refusal the test did not provoke, and every 429
 * followed by the same request succeeding (discord.js waited it out). Logs the requests
 * per route and the 429s.
 */
function expectCleanTraffic(label: string, from: number): RecordedRequest[] {
  const requests = discord.requests().slice(from);
  const refused = discord.unexpectedRefusals().filter((refusal) => refusal.at >= (requests[0]?.at ?? Infinity));
  expect(refused.map((refusal) => `${refusal.method} ${refusal.path} → ${refusal.status} ${refusal.code} ${refusal.errors.join('; ')}`)).toEqual([]);
  const limited = requests.filter((request) => request.status === 429);
  const notRetried = limited.filter((request) => {
    const later = requests.filter((candidate) => candidate.at >= request.at && candidate !== request && candidate.method === request.method && candidate.path === request.path);
    return !later.some((candidate) => candidate.status < 300);
  });
  expect(notRetried.map((request) => `${request.method} ${request.path}`)).toEqual([]);
  const perRoute = new Map<string, number>();
  for (const request of requests) perRoute.set(routeOf(request), (perRoute.get(routeOf(request)) ?? 0) + 1);
  console.log(
    `[scale] ${label}: ${requests.length} requests, ${limited.length} × 429 (all retried): ${[...perRoute].map(([routeName, count]) => `${routeName} ×${count}`).join(', ')}`,
  );
  return requests;
}

/** Runs a slash command and waits until its reply matches. */
async function command(user: FakeUser, name: string, options: FakeCommandOption[], done: (message: FakeMessage) => boolean, timeoutMs = 60_000) {
  const handle = await discord.slashCommand(user.id, name, options);
  const reply = await handle.waitForOriginal(done, timeoutMs).catch((error: unknown) => {
    // Say what the bot answered instead (a private error, usually).
    throw new Error(`${String(error)}; callbacks ${JSON.stringify(handle.callbacks().map((c) => c.type))}, follow-up ${JSON.stringify(handle.followUps()[0]?.content ?? null)}`);
  });
  expect(handle.ackLatencyMs()).toBeLessThan(3_000);
  return { handle, reply };
}

/** The time the message first showed a version that matched. */
function versionTime(message: FakeMessage, matches: (version: { content: string; embeds: unknown[] }) => boolean): number | undefined {
  return message.history.find((version) => matches(version))?.at;
}

// ── setup ────────────────────────────────────────────────────────────────────

beforeAll(async () => {
  await loadBuiltWorker();
  redis = await startTestRedis();
  prefix = uniquePrefix('discord-scale');
  const env = { HEARTBEAT_TTL_MS: '15000', JOB_LOCK_MS: '30000', JOB_STALLED_CHECK_MS: '30000', INVENTORY_INTERVAL_MS: '600000', WORKER_CONCURRENCY: '8' };

  // A real worker process on the host with the longest id, holding the longest VM name.
  maxHost = await FakeVirshHost.create({ libvirtVersion: '10.0.0', qemuVersion: '8.2.2' });
  virshHosts.push(maxHost);
  const vm = maxHost.addDomain({ name: MAX_VM });
  for (const [name, description] of [[MAX_SNAP, DESCRIPTION]] as const) {
    await run(maxHost.path, ['snapshot-create-as', `--domain=${vm.uuid}`, `--name=${name}`, `--description=${description}`], { env: { ...process.env, ...maxHost.env } });
  }
  // A real worker process whose virsh fails every snapshot with a long stderr.
  failingHost = await FakeVirshHost.create();
  virshHosts.push(failingHost);
  for (let index = 0; index < FAILING_REAL_VMS; index += 1) failingHost.addDomain({ name: `doomed-p-${String(index).padStart(3, '0')}` });
  failingHost.setFaults([{ match: { subcommand: 'snapshot-create-as' }, exitCode: 1, stderr: `${LONG_STDERR}\n` }]);
  const starting = [
    startWorkerProcess({ redisUrl: redis.url, prefix, hostId: MAX_HOST, fake: maxHost, env }),
    startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'fail-proc', fake: failingHost, env }),
  ];

  // In-process workers on an in-memory libvirt.
  const perMemoryHost = Math.ceil((FAILURES - FAILING_REAL_VMS) / FAILING_MEMORY_HOSTS);
  let doomed = 0;
  for (let host = 0; host < FAILING_MEMORY_HOSTS; host += 1) {
    const libvirt = new MemoryLibvirt(`fail-mem-${host}`);
    for (let index = 0; index < perMemoryHost && doomed < FAILURES - FAILING_REAL_VMS; index += 1, doomed += 1) libvirt.addDomain(`doomed-m${host}-${String(index).padStart(3, '0')}`);
    libvirt.createStderr = LONG_STDERR;
    await startMemoryWorker(libvirt);
  }
  const lister = new MemoryLibvirt('mem-list');
  lister.addDomain(`hoarder-${'x'.repeat(192)}`, Array.from({ length: 300 }, (_, index) => ({ name: `${String(index).padStart(3, '0')}-${MAX_SNAP}`.slice(0, 128), description: index % 10 === 0 ? BLANK : DESCRIPTION })));
  await startMemoryWorker(lister);
  for (const hostId of ['mem-a', 'mem-b']) {
    const libvirt = new MemoryLibvirt(hostId);
    for (let index = 1; index <= 12; index += 1) libvirt.addDomain(`${hostId.slice(-1)}-${String(index).padStart(2, '0')}`);
    libvirt.latencyMs = 1_200;
    await startMemoryWorker(libvirt);
  }
  const jobs = new MemoryLibvirt('mem-jobs');
  for (let index = 1; index <= 6; index += 1) jobs.addDomain(`job-${String(index).padStart(2, '0')}`, [{ name: 'base', description: null }]);
  jobs.latencyMs = 800;
  await startMemoryWorker(jobs);

  processes.push(...(await Promise.all(starting)));
  await writeHeartbeats(HOSTS_IN_VIEW, FLEET_LIST_VMS / HOSTS_IN_VIEW);

  const policy = policySchema.parse({
    rules: [
      { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
      { role: 'kvm-operators', actions: ['create', 'list', 'info', 'revert', 'delete'] },
      { role: '@everyone', actions: ['list', 'info', 'hosts', 'audit'] },
    ],
    approvals: [{ actions: ['revert', 'delete'], approvers: ['@administrators'], required: 1 }],
    fleet: { perHost: 4, approval: { snapshotsAbove: 10_000 } },
  });
  harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy, jobTimeoutMs: 120_000, editIntervalMs: 1_000, sweepIntervalMs: 500 });
  discord = harness.fake;
}, 180_000);

afterAll(async () => {
  await harness?.stop();
  for (const worker of inProcess) await worker.close().catch(() => undefined);
  await Promise.all(processes.map((worker) => worker.stop()));
  for (const host of virshHosts) await host.dispose();
  await redis?.stop();
}, 60_000);

// ── the tests ────────────────────────────────────────────────────────────────

describe('listings at scale', () => {
  it(`/hosts with ${HOSTS_IN_VIEW}+ hosts: counts first, the stale and offline ones, the full table attached`, async () => {
    const from = discord.requests().length;
    const { reply } = await command(viewer, 'hosts', [], (message) => embedOf(message).title === 'KVM hosts', 30_000);
    const description = embedOf(reply).description ?? '';
    expect(description).toMatch(/^\*\*\d+ online\*\* · 20 stale · 20 offline · \d+ queued · \d+ running\n/);
    expect(description).toContain('Stale and offline hosts (the full table is attached):');
    const [file] = reply.attachments;
    expect(file?.filename).toBe('hosts.txt');
    const rows = file!.data.toString().split('\n').filter((line) => /^(site|kvm|fail|mem)-/.test(line));
    expect(rows.length).toBeGreaterThanOrEqual(HOSTS_IN_VIEW + 5);
    expectCleanTraffic('/hosts', from);
  });

  it(`/fleet list over ${FLEET_LIST_VMS} VMs: pages with working buttons, the whole table attached`, async () => {
    const from = discord.requests().length;
    const { reply } = await command(viewer, 'fleet', sub('list', { target: 'host:site-*' }), (message) => (embedOf(message).title ?? '').startsWith('Fleet snapshots'), 30_000);
    expect(embedOf(reply).footer?.text).toMatch(/^1000 VM\(s\) on 200 host\(s\), 600 with snapshots · page 1\/50$/);
    expect(reply.attachments.map((attachment) => attachment.filename)).toEqual(['fleet-snapshots.txt']);
    expect(reply.attachments[0]!.data.toString().split('\n').filter((line) => /^\S/.test(line) && !line.startsWith('VM '))).toHaveLength(FLEET_LIST_VMS);
    let page = reply;
    for (const expected of ['page 2/50', 'page 3/50']) {
      const next = customId(page, /"custom_id":"(fleet-list:[0-9a-f]+:\d+)","style":\d,"label":"Next ▶"/);
      const click = await discord.clickButton(viewer.id, page, next);
      expect((await click.waitForCallback()).type).toBe(6);
      page = await click.waitForOriginal((message) => (embedOf(message).footer?.text ?? '').endsWith(expected), 10_000);
    }
    const back = customId(page, /"custom_id":"(fleet-list:[0-9a-f]+:-?\d+)","style":\d,"label":"◀ Previous"/);
    const click = await discord.clickButton(viewer.id, page, back);
    await click.waitForOriginal((message) => (embedOf(message).footer?.text ?? '').endsWith('page 2/50'), 10_000);
    expectCleanTraffic('/fleet list', from);
  });

  it('/snapshot list of a VM with 300 snapshots of long names and descriptions: pages and the whole list attached', async () => {
    const from = discord.requests().length;
    const vm = `hoarder-${'x'.repeat(192)}`;
    const { reply } = await command(viewer, 'snapshot', sub('list', { vm }), (message) => (embedOf(message).title ?? '').startsWith('Snapshots of'), 60_000);
    expect(embedOf(reply).title).toBe(`Snapshots of ${vm} on mem-list`);
    expect(embedOf(reply).footer?.text).toBe('300 snapshot(s), newest first · * current · page 1/20');
    expect(reply.attachments[0]!.filename).toBe(`snapshots-${vm}.txt`);
    expect(reply.attachments[0]!.data.toString().split('\n').filter((line) => /^\s*\*?\s*\d{3}-pre-/.test(line))).toHaveLength(300);
    const older = customId(reply, /"custom_id":"(snapshot-list:[0-9a-f]+:1)"/);
    const click = await discord.clickButton(viewer.id, reply, older);
    await click.waitForOriginal((message) => (embedOf(message).footer?.text ?? '').endsWith('page 2/20'), 10_000);
    expectCleanTraffic('/snapshot list', from);
  });

  it('/snapshot audit with 200 entries of long names and details: the newest in the reply, all of them attached, privately', async () => {
    const vm = `audited-${'a'.repeat(192)}`;
    for (let index = 0; index < 200; index += 1) {
      await recordAudit(harness.core, {
        event: 'requested',
        actor: index % 2 ? `discord:${operator.id}` : `snapctl:${'u'.repeat(60)}@${'m'.repeat(60)}`,
        action: 'revert',
        host: MAX_HOST,
        vm,
        snapshot: MAX_SNAP,
        requestId: `${index}`.padStart(12, '0'),
        detail: `${LONG_STDERR} #${index}`,
      });
    }
    const from = discord.requests().length;
    const { reply } = await command(admin, 'snapshot', sub('audit', { vm }), (message) => (embedOf(message).title ?? '').startsWith('Audit'), 30_000);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(embedOf(reply).footer?.text).toBe('15 of 200 newest shown; all of them in the file');
    expect(reply.attachments[0]!.data.toString().split('\n').filter((line) => line.includes(' requested '))).toHaveLength(200);
    expectCleanTraffic('/snapshot audit', from);
  });
});

describe('fleet runs and approvals at scale', () => {
  it(`a fleet summary with ${FAILURES} failures carrying long virsh messages ends failed, with the report attached`, async () => {
    const from = discord.requests().length;
    const { reply: preview } = await command(admin, 'fleet', sub('snapshot', { target: 'host:fail-*', name: 'doomed-{date}' }), (message) => (embedOf(message).title ?? '').endsWith('— preview'), 60_000);
    expect(embedOf(preview).description).toContain(`**${FAILURES} VMs on ${FAILING_MEMORY_HOSTS + 1} hosts**`);
    const runId = customId(preview, /"custom_id":"fleet:([0-9a-f]+):confirm"/);
    const started = Date.now();
    const click = await discord.clickButton(admin.id, preview, `fleet:${runId}:confirm`);
    expect((await click.waitForCallback()).type).toBe(6);
    const summary = await discord.waitForChannelMessage((message) => JSON.stringify(message.embeds).includes(runId), 30_000);
    const isFinal = (message: FakeMessage) => /^❌ Fleet snapshot · doomed-\{date\} · failed$/u.test(embedOf(message, -1).title ?? '');
    await until(() => isFinal(summary), 150_000, 'the final summary');
    const final = embedOf(summary, -1);
    expect(final.description).toMatch(new RegExp(`^\\*\\*0/${FAILURES} done\\*\\* · ${FAILURES} failed\\n`));
    expect(field(final, `Failures (${FAILURES})`)).toMatch(/^❌ \*\*doomed-/);
    expect(field(final, `Failures (${FAILURES})`)).toMatch(/… and \d+ more$/);
    expect(field(final, 'Report')).toBe(`Every VM's result is in the attached file \`fleet-${runId}.txt\`.`);
    const report = summary.attachments.find((attachment) => attachment.filename === `fleet-${runId}.txt`)!.data.toString();
    const failedLines = report.split('\n').filter((line) => line.startsWith('failed '));
    expect(failedLines).toHaveLength(FAILURES);
    // The worker process's own virsh failure, classified, with virsh's words quoted.
    expect(report).toMatch(/failed\s+fail-proc\s+doomed-p-\d{3}\s.*INTERNAL: .*qemu unexpectedly closed the monitor/);
    expect(summary.components).toHaveLength(1);
    expect(JSON.stringify(summary.components)).toContain(`Retry failed (${FAILURES})`);
    const run = await getFleetRun(harness.core, runId);
    const finalAt = versionTime(summary, (version) => /· failed"/.test(JSON.stringify(version.embeds)))!;
    console.log(
      `[scale] ${FAILURES}-failure run: ${Date.now() - started} ms from confirm to final; summary edited ${summary.edits} times; final summary shown ${finalAt - (run?.finishedAt ?? finalAt)} ms after the run finished`,
    );
    expectCleanTraffic(`fleet run of ${FAILURES} failures`, from);
  }, 200_000);

  it('an approval request and its result for names at their maximum lengths, a 1,000-character description and a blank one', async () => {
    const from = discord.requests().length;
    // Create results with the longest names: a 1,000-character description, and a blank one.
    for (const [name, description] of [
      [`${MAX_SNAP.slice(0, 120)}-created`, DESCRIPTION],
      [MAX_SNAP_BLANK, BLANK],
    ] as const) {
      const { reply } = await command(admin, 'snapshot', sub('create', { vm: MAX_VM, name, host: MAX_HOST, description }), (message) => /^(✅|❌)/u.test(embedOf(message).title ?? ''), 60_000);
      expect(embedOf(reply).title).toBe(`✅ Snapshot ${name} created`);
      expect(field(embedOf(reply), 'VM')).toBe(MAX_VM);
      expect(field(embedOf(reply), 'Host')).toBe(MAX_HOST);
      // Shown as text (markup escaped, so it cannot ping or format), within a field's 1,024 characters.
      const shown = field(embedOf(reply), 'Description')!;
      expect(shown.length).toBeLessThanOrEqual(1024);
      if (description.trim() === '') expect(shown).toBe('—');
      else {
        expect(shown).toContain('\\*\\*keep\\*\\*');
        // Clipped to fit: what is shown, unescaped, is the start of the description.
        const unescaped = shown.replace(/\n```$/u, '').replace(/…$/u, '').replace(/\\$/u, '').replace(/\\(.)/gsu, '$1');
        expect(unescaped.length).toBeGreaterThan(500);
        expect(description.startsWith(unescaped), JSON.stringify(shown.slice(-40))).toBe(true);
      }
    }
    // A revert of the longest names waits for approval; the request and its outcome fit.
    const before = discord.channelMessages().length;
    const { reply } = await command(operator, 'snapshot', sub('revert', { vm: MAX_VM, name: MAX_SNAP, host: MAX_HOST }), (message) => message.content.startsWith('Approval requested'), 60_000);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
    const request = await discord.waitForChannelMessage((message) => discord.channelMessages().indexOf(message) >= before && (embedOf(message).title ?? '').startsWith('🔐'), 15_000);
    const title = embedOf(request).title ?? '';
    expect(title.length).toBeLessThanOrEqual(256);
    expect(title).toMatch(new RegExp(`^🔐 Approval needed: revert ${MAX_VM.slice(0, 100)}`, 'u'));
    expect(field(embedOf(request), 'VM')).toContain(MAX_VM);
    expect(field(embedOf(request), 'Host')).toBe(MAX_HOST);
    expect(field(embedOf(request), 'Snapshot')).toContain(MAX_SNAP);
    // The description as text: markup escaped ("Before the kernel upgrade \`\`\`apt…").
    expect(field(embedOf(request), 'Snapshot')).toContain('Before the kernel upgrade \\`\\`\\`apt full-upgrade');
    const approve = customId(request, /"custom_id":"(approval:[0-9a-f]+:approve)"/);
    const click = await discord.clickButton(approver.id, request, approve);
    expect((await click.waitForCallback()).type).toBe(6);
    await until(() => embedOf(request).description === 'Approved and done.', 90_000, 'the approved revert');
    const result = embedOf(request, 1);
    expect(result.title?.length).toBeLessThanOrEqual(256);
    expect(result.title).toMatch(/^✅ app-very-long-vm-name\..* reverted to /u);
    expect(field(result, 'VM')).toBe(MAX_VM);
    expect(field(result, 'Undo point')).toMatch(/^pre-revert-/);
    expect(JSON.stringify(request.components)).toContain('"disabled":true');
    expectCleanTraffic('longest names', from);
  }, 200_000);

  it('two fleet runs and five approved jobs at once in one channel: every summary and result ends right; the waits are measured', async () => {
    const from = discord.requests().length;
    const jobs = memory['mem-jobs']!;
    // Two fleet runs, confirmed together.
    const previews = await Promise.all(
      ['a', 'b'].map(async (letter) => (await command(admin, 'fleet', sub('snapshot', { target: `host:mem-${letter}`, name: `busy-${letter}` }), (message) => (embedOf(message).title ?? '').endsWith('— preview'), 30_000)).reply),
    );
    const runIds = previews.map((preview) => customId(preview, /"custom_id":"fleet:([0-9a-f]+):confirm"/));
    const confirmedAt = Date.now();
    await Promise.all(previews.map((preview, index) => discord.clickButton(admin.id, preview, `fleet:${runIds[index]}:confirm`)));
    // Five reverts that need approval, asked for meanwhile.
    const before = discord.channelMessages().length;
    const names = ['job-01', 'job-02', 'job-03', 'job-04', 'job-05'];
    await Promise.all(names.map((vm) => command(operator, 'snapshot', sub('revert', { vm, name: 'base' }), (message) => message.content.startsWith('Approval requested'), 60_000)));
    const requests = await Promise.all(
      names.map((vm) => discord.waitForChannelMessage((message) => discord.channelMessages().indexOf(message) >= before && (embedOf(message).title ?? '') === `🔐 Approval needed: revert ${vm} to base`, 30_000)),
    );
    const clickedAt = new Map<string, number>();
    await Promise.all(
      requests.map(async (request, index) => {
        clickedAt.set(names[index]!, Date.now());
        const click = await discord.clickButton(approver.id, request, customId(request, /"custom_id":"(approval:[0-9a-f]+:approve)"/));
        expect((await click.waitForCallback()).type).toBe(6);
      }),
    );
    const summaries = await Promise.all(runIds.map((runId) => discord.waitForChannelMessage((message) => JSON.stringify(message.embeds).includes(`fleet run ${runId}`), 30_000)));
    const finalTitle = (letter: string) => `✅ Fleet snapshot · busy-${letter} · done`;
    await until(() => summaries.every((summary, index) => embedOf(summary, -1).title === finalTitle(index === 0 ? 'a' : 'b')), 90_000, 'both final summaries');
    await until(() => requests.every((request) => embedOf(request).description === 'Approved and done.'), 90_000, 'all five results');

    for (const [index, summary] of summaries.entries()) {
      expect(embedOf(summary, -1).description).toMatch(/^\*\*12\/12 done\*\*/);
      const runInfo = await getFleetRun(harness.core, runIds[index]!);
      const shownAt = versionTime(summary, (version) => JSON.stringify(version.embeds).includes('· done"'))!;
      const waited = shownAt - runInfo!.finishedAt!;
      console.log(`[scale] fleet run ${index === 0 ? 'a' : 'b'}: final summary waited ${waited} ms after the run finished (${summary.edits} edits; ${Math.round((runInfo!.finishedAt! - confirmedAt) / 100) / 10} s run)`);
      // Ten approval edits and two finals share 5 edits per 5 s: at most about two windows, not behind the runs' own progress.
      expect(waited).toBeLessThan(11_000);
    }
    for (const [index, request] of requests.entries()) {
      const vm = names[index]!;
      expect(embedOf(request, 1).title).toBe(`✅ ${vm} reverted to base`);
      const runningAt = versionTime(request, (version) => JSON.stringify(version.embeds).includes('Approved — running'))!;
      const doneAt = versionTime(request, (version) => JSON.stringify(version.embeds).includes('Approved and done.'))!;
      console.log(`[scale] approval ${vm}: "running" edit waited ${runningAt - clickedAt.get(vm)!} ms after the click; result edit waited ${doneAt - jobs.revertedAt.get(vm)!} ms after the revert finished`);
    }
    expectCleanTraffic('two fleet runs and five approvals', from);
  }, 200_000);

  it('loses nothing when Discord refuses an edit: the content is posted in the channel instead', async () => {
    const from = discord.requests().length;
    // An approval request whose next edit Discord refuses.
    const before = discord.channelMessages().length;
    await command(operator, 'snapshot', sub('revert', { vm: 'job-06', name: 'base' }), (message) => message.content.startsWith('Approval requested'), 60_000);
    const request = await discord.waitForChannelMessage((message) => discord.channelMessages().indexOf(message) >= before && (embedOf(message).title ?? '').startsWith('🔐 Approval needed: revert job-06'), 15_000);
    discord.refuseNext(new RegExp(`^PATCH /channels/\\d+/messages/${request.id}$`), 50035);
    await discord.clickButton(approver.id, request, customId(request, /"custom_id":"(approval:[0-9a-f]+:approve)"/));
    const fallback = await discord.waitForChannelMessage((message) => message.content.startsWith('Discord refused an update of https://discord.com/channels/'), 30_000);
    expect(fallback.content).toContain(`/${request.id}; here it is as text:`);
    expect(fallback.content).toContain('Approved — running on **mem-jobs**');
    expect(fallback.attachments.map((attachment) => attachment.filename)).toEqual(['update.txt']);
    // The next edit goes through, and the request ends right.
    await until(() => embedOf(request).description === 'Approved and done.', 60_000, 'the result after a refused edit');
    expect(embedOf(request, 1).title).toBe('✅ job-06 reverted to base');

    // A live reply whose edit Discord refuses continues in the channel, mentioning the requester.
    discord.refuseNext(/^PATCH \/webhooks\/\d+\/[^/]+\/messages\/@original$/, 50035);
    const handle = await discord.slashCommand(admin.id, 'snapshot', sub('create', { vm: 'a-01', name: 'after-refusal' }));
    const moved = await discord.waitForChannelMessage((message) => message.content.startsWith(`<@${admin.id}> Discord refused an update of the reply`), 30_000);
    await until(() => moved.content.startsWith(`<@${admin.id}>`) && embedOf(moved).title === '✅ Snapshot after-refusal created', 30_000, 'the result in the channel');
    expect(handle.callbacks()[0]?.type).toBe(5);
    const refused = discord.refusals().filter((refusal) => refusal.provoked && refusal.code === 50035);
    expect(refused).toHaveLength(2);
    expectCleanTraffic('refused edits', from);
  }, 120_000);
});
