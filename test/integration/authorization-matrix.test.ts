/**
 * The authorization matrix: action × who × target × path, generated below, each cell's
 * verdict computed from a small table written here (not from the product's authorize()),
 * and each cell checked end to end: an allowed one reached a worker (or opened its
 * approval request), a refused one told the user FORBIDDEN and no job of it reached any
 * worker (BullMQ's record of every job on every host queue, and the fake virsh's
 * recorded calls). The last test adds it all up: no unauthorized job reached a worker.
 *
 * Paths:
 * - slash command: the real discord.js client against the fake Discord (/snapshot, /fleet
 *   with the requester's own Confirm); the other server's Administrator from that server.
 * - button: Approve on revert/delete/fleet-delete approval requests, Confirm on someone
 *   else's fleet preview, "Retry failed" on a finished fleet run: the clicker is checked.
 * - snapctl: signed requests to a control process (`npm run bot`, spawned) with the
 *   policy's operators, each with its own key file (SNAPCTL_KEY), plus a key the policy
 *   does not name. The whole row is sent through snapctl's own client (callControl, what
 *   snapctl runs after parsing its argv); part of the create column (every key on dev-01,
 *   the operator on all three VMs) also through the real snapctl CLI process, which costs
 *   seconds a run here. Reads (list, info) are not in this row: snapctl reads the hosts
 *   directly, without a key or the control process (by design: reads are not signed).
 * - Redis writer: a plain BullMQ queue.add on host.<id>: unsigned, signed by a key of its
 *   own, or a genuine signature over another job.
 *
 * A refusal is FORBIDDEN to the user, or, for a fleet run over VMs some of which the
 * member may not touch, the preview leaving those VMs out ("Skipped: … you may not act
 * on", counted as SKIPPED_FORBIDDEN) with nothing left to confirm.
 *
 * Two fake KVM hosts with a real worker process each: kvm-a (dev-01, prod-01), kvm-b (dev-02).
 */
import { Job, Queue } from 'bullmq';
import { MessageFlags, type TextChannel } from 'discord.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApproval } from '../../bot/core/approvals.js';
import { getFleetRun, type FleetPlan } from '../../bot/core/fleet/index.js';
import { callControl } from '../../bot/cli/control-client.js';
import { COMMAND_DEFINITIONS } from '../../bot/discord/commands/index.js';
import { COLOR } from '../../bot/discord/render/colors.js';
import type { ControlOperation } from '../../shared/control.js';
import { signJob } from '../../shared/job-signing.js';
import type { SnapshotJob } from '../../shared/jobs.js';
import { policySchema } from '../../shared/policy.js';
import { hostQueueName } from '../../shared/queues.js';
import { loadOrCreateSigner, Signer } from '../../shared/signing.js';
import { formatSshEd25519 } from '../../shared/ssh-keys.js';
import { Permission, snowflake, type FakeCommandOption, type FakeMessage, type FakeUser, type InteractionHandle } from '../fixtures/fake-discord/fake-discord.js';
import { FakeVirshHost, type FakeVirshCall } from '../fixtures/fake-virsh-host.js';
import { testAuthority } from '../helpers/authority.js';
import { startControlProcess } from '../helpers/control-process.js';
import { guildFixture, otherGuildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import { parseJsonOutput, runSnapctl, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { seedInternalSnapshots } from '../helpers/seed-snapshots.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

// ─── the matrix's dimensions ─────────────────────────────────────────────────────────────

type HostId = 'kvm-a' | 'kvm-b';
interface Target {
  vm: string;
  host: HostId;
}
const TARGETS: readonly Target[] = [
  { vm: 'dev-01', host: 'kvm-a' }, // matches the operator's pattern
  { vm: 'prod-01', host: 'kvm-a' }, // right host, other VM
  { vm: 'dev-02', host: 'kvm-b' }, // VM pattern matches, host does not
];
const HOST_IDS: readonly HostId[] = ['kvm-a', 'kvm-b'];

const DISCORD_ROLES = ['administrator', 'operator', 'viewer', 'no-role', 'other-guild-admin'] as const;
const SNAPCTL_ROLES = ['administrator', 'operator', 'viewer', 'no-role', 'unknown-key'] as const;
const WRITER_VARIANTS = ['unsigned', 'own-key', 're-used-signature'] as const;
type Role = (typeof DISCORD_ROLES)[number] | (typeof SNAPCTL_ROLES)[number] | (typeof WRITER_VARIANTS)[number];

const SLASH_ACTIONS = ['create', 'list', 'info', 'revert', 'delete', 'fleet snapshot', 'fleet delete'] as const;
const BUTTON_ACTIONS = ['approve revert', 'approve delete', 'confirm fleet snapshot', 'confirm fleet delete', 'approve fleet delete', 'retry fleet snapshot'] as const;
const CHANGE_ACTIONS = ['create', 'revert', 'delete', 'fleet snapshot', 'fleet delete'] as const;
type Action = (typeof SLASH_ACTIONS)[number] | (typeof BUTTON_ACTIONS)[number];

type Path = 'slash command' | 'button' | 'snapctl' | 'snapctl CLI' | 'Redis writer';
const PATHS: readonly Path[] = ['slash command', 'button', 'snapctl', 'snapctl CLI', 'Redis writer'];

// ─── the expected verdicts: an independent table ─────────────────────────────────────────

type Permission = 'create' | 'list' | 'info' | 'revert' | 'delete';
type Scope = (target: Target) => boolean;
const everywhere: Scope = () => true;
const devVmsOnKvmA: Scope = (target) => target.host === 'kvm-a' && target.vm.startsWith('dev-');

/** What each kind of person may do, and where. Nobody else may do anything. */
const MAY: Partial<Record<Role, Partial<Record<Permission, Scope>>>> = {
  administrator: { create: everywhere, list: everywhere, info: everywhere, revert: everywhere, delete: everywhere },
  operator: { create: devVmsOnKvmA, list: devVmsOnKvmA, info: devVmsOnKvmA, revert: devVmsOnKvmA, delete: devVmsOnKvmA },
  viewer: { list: everywhere, info: everywhere },
  // no-role, the other server's Administrator, an unknown key, a Redis writer: nothing.
};
/** Whose Approve counts on a revert or delete request (never the requester's). */
const MAY_APPROVE: Partial<Record<Role, Scope>> = { administrator: everywhere, operator: devVmsOnKvmA };
/** Whose Approve counts on a fleet run's request. */
const MAY_APPROVE_FLEET: Partial<Record<Role, Scope>> = { administrator: everywhere };

const may = (role: Role, permission: Permission, target: Target) => MAY[role]?.[permission]?.(target) ?? false;
const permissionOf = (action: (typeof SLASH_ACTIONS)[number]): Permission => (action === 'fleet snapshot' ? 'create' : action === 'fleet delete' ? 'delete' : action);
/** Every revert and delete waits for approval, and so does every fleet delete; a one-VM fleet snapshot does not. */
const behindApproval = (action: string) => action === 'revert' || action === 'delete' || action === 'fleet delete';

/** `ran`: a job of it reached a worker; `approval`: its approval request was opened; `refused`: FORBIDDEN, nothing ran. */
type Verdict = 'ran' | 'approval' | 'refused';

function expectedVerdict(path: Path, role: Role, action: Action, target: Target): Verdict {
  switch (path) {
    case 'slash command':
    case 'snapctl':
    case 'snapctl CLI': {
      const permission = permissionOf(action as (typeof SLASH_ACTIONS)[number]);
      if (!may(role, permission, target)) return 'refused';
      return behindApproval(action) ? 'approval' : 'ran';
    }
    case 'button':
      switch (action) {
        case 'approve revert':
        case 'approve delete':
          return MAY_APPROVE[role]?.(target) ? 'ran' : 'refused';
        case 'approve fleet delete':
          return MAY_APPROVE_FLEET[role]?.(target) ? 'ran' : 'refused';
        case 'retry fleet snapshot':
          return may(role, 'create', target) ? 'ran' : 'refused';
        default:
          return 'refused'; // Confirm on a preview someone else asked for: only its requester may
      }
    case 'Redis writer':
      return 'refused';
  }
}

// ─── the product's configuration: the policy both control planes load ────────────────────

const base = guildFixture();
const viewerRole = { id: snowflake(), name: 'kvm-viewers', permissions: Permission.SendMessages };
const vic: FakeUser = { id: snowflake(), username: 'vic', roles: [viewerRole.id] };
const alan: FakeUser = { id: snowflake(), username: 'alan', roles: [base.adminRole.id] };
const other = otherGuildFixture();
const guild = guildFixture({
  ...base.options,
  roles: [...base.options.roles, viewerRole],
  users: [...base.options.users, vic, alan],
  otherGuilds: [other.guild],
  // 17-deep run queues on 2 cores: a defer can take longer than Discord's 3 s here, and
  // acknowledgement latency is not what this file measures.
  interactionAckDeadlineMs: 15_000,
});
const { admin: ada, operator: otto, viewer: vera } = base;
/** Who runs the slash commands; vera holds no role. */
const SLASH_USERS: Record<(typeof DISCORD_ROLES)[number], FakeUser> = { administrator: ada, operator: otto, viewer: vic, 'no-role': vera, 'other-guild-admin': other.admin };
/** Who clicks in the button row: ada asked for everything there, so the administrator who clicks is alan. */
const CLICKERS: Record<(typeof DISCORD_ROLES)[number], FakeUser> = { ...SLASH_USERS, administrator: alan };

const OPERATOR_NAMES: Record<Exclude<(typeof SNAPCTL_ROLES)[number], 'unknown-key'>, string> = { administrator: 'root-op', operator: 'dev-op', viewer: 'look-op', 'no-role': 'nobody-op' };
const keyDir = mkdtempSync(join(tmpdir(), 'snapbot-matrix-'));
const KEY_FILES = Object.fromEntries(SNAPCTL_ROLES.map((role) => [role, join(keyDir, `${role}.key`)])) as Record<(typeof SNAPCTL_ROLES)[number], string>;
const SIGNERS = Object.fromEntries(SNAPCTL_ROLES.map((role) => [role, loadOrCreateSigner(KEY_FILES[role], 'test')])) as Record<(typeof SNAPCTL_ROLES)[number], Signer>;

const policyDocument = {
  rules: [
    { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
    { role: base.operatorRole.id, actions: ['create', 'list', 'info', 'revert', 'delete'], hosts: ['kvm-a'], vms: ['dev-*'] },
    { role: viewerRole.id, actions: ['list', 'info'] },
  ],
  approvals: [
    { actions: ['revert', 'delete'], hosts: ['kvm-a'], vms: ['dev-*'], approvers: ['@administrators', base.operatorRole.id] },
    { actions: ['revert', 'delete'], approvers: ['@administrators'] },
  ],
  fleet: { approval: { snapshotsAbove: 50, deletes: true, approvers: ['@administrators'] } },
  operators: [
    { name: OPERATOR_NAMES.administrator, key: formatSshEd25519(SIGNERS.administrator.publicKey, 'root@ops'), administrator: true },
    { name: OPERATOR_NAMES.operator, key: formatSshEd25519(SIGNERS.operator.publicKey, 'dev@laptop'), roles: [base.operatorRole.id] },
    { name: OPERATOR_NAMES.viewer, key: formatSshEd25519(SIGNERS.viewer.publicKey, 'look@laptop'), roles: [viewerRole.id] },
    { name: OPERATOR_NAMES['no-role'], key: formatSshEd25519(SIGNERS['no-role'].publicKey, 'nobody@laptop') },
  ],
};
const policy = policySchema.parse(policyDocument);

/** Snapshots every VM has before anything runs (internal, memory + disk). */
const KEEP_INFO = 'keep-info';
const KEEP_REVERT = 'keep-revert';
const KEEP_DELETE = 'keep-delete';
const BUTTON_DELETE = 'btn-del-a';
const BUTTON_DELETE_OPERATOR = 'btn-del-o';
const BUTTON_FLEET_DELETE = 'bfd';
const SEEDS = [KEEP_INFO, KEEP_REVERT, KEEP_DELETE, BUTTON_DELETE, BUTTON_DELETE_OPERATOR, BUTTON_FLEET_DELETE];
const buttonFleetSnapshotName = (target: Target) => `bfs-${target.vm}`;

// ─── cells ───────────────────────────────────────────────────────────────────────────────

type HostJob = Job<SnapshotJob & { fleet?: { runId: string } }>;
/** The snapshot name a job names, if its kind has one. */
const jobName = (job: HostJob) => ('name' in job.data ? job.data.name : undefined);

interface Observation {
  /** What the user was told: `ok`, an error code (FORBIDDEN, VALIDATION…), or SKIPPED_FORBIDDEN. */
  told: string;
  /** Its approval request is open (pending). */
  approval: boolean;
  /** A click of it was counted on an approval request. */
  counted: boolean;
  note?: string;
}

interface Cell {
  path: Path;
  role: Role;
  action: Action;
  target: Target;
  expected: Verdict;
  /** The snapshot name only this cell uses (creates), to find its virsh calls. */
  ownName?: string;
  /** Which host jobs are this cell's. */
  jobIds: Set<string>;
  runIds: Set<string>;
  match?: (job: HostJob) => boolean;
  jobs: HostJob[];
  observed?: Observation;
}

const ROLE_TAG: Record<Role, string> = {
  administrator: 'adm',
  operator: 'op',
  viewer: 'view',
  'no-role': 'none',
  'other-guild-admin': 'out',
  'unknown-key': 'key',
  unsigned: 'uns',
  'own-key': 'own',
  're-used-signature': 'sig',
};
const PATH_TAG: Record<Path, string> = { 'slash command': 'sl', button: 'bt', snapctl: 'sc', 'snapctl CLI': 'cli', 'Redis writer': 'rw' };

function newCell(path: Path, role: Role, action: Action, target: Target, ownName?: string): Cell {
  return { path, role, action, target, expected: expectedVerdict(path, role, action, target), jobIds: new Set(), runIds: new Set(), jobs: [], ...(ownName ? { ownName } : {}) };
}
const nameFor = (path: Path, role: Role, tag: string, target: Target) => `${PATH_TAG[path]}-${ROLE_TAG[role]}-${tag}-${target.vm}`;
const owns = (cell: Cell, job: HostJob) =>
  cell.jobIds.has(job.id ?? '') || (job.data.fleet !== undefined && cell.runIds.has(job.data.fleet.runId)) || (cell.match?.(job) ?? false);
const label = (cell: Cell) => `${cell.path} | ${cell.role} | ${cell.action} | ${cell.target.vm}@${cell.target.host}`;

const cells: Cell[] = [];
/** Jobs no cell and no setup step accounts for. */
const strays: HostJob[] = [];

// ─── the world ───────────────────────────────────────────────────────────────────────────

let redis: TestRedis;
let prefix: string;
let harness: BotUnderTest;
let control: SpawnedProcess;
const fakes = {} as Record<HostId, FakeVirshHost>;
const workers: SpawnedProcess[] = [];
const createdAt: Record<string, Record<string, string>> = {};
const uuidOf: Record<string, string> = {};
const vmOfUuid: Record<string, string> = {};
let policyFile: string;
const startedAt = Date.now();

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs `work` over `items`, at most `limit` at once. */
async function inPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}

const sub = (name: string, options: Record<string, string>): FakeCommandOption[] => [
  { name, type: 1, options: Object.entries(options).map(([option, value]) => ({ name: option, type: 3, value })) },
];
const embedOf = (message: FakeMessage | undefined, index = 0): Record<string, unknown> => ((message?.embeds ?? []) as Array<Record<string, unknown>>)[index] ?? {};
const isFinal = (message: FakeMessage) => embedOf(message).color !== undefined && embedOf(message).color !== COLOR.progress;
const isPreview = (message: FakeMessage) => String(embedOf(message).title ?? '').endsWith('— preview');
const codeOf = (content: string) => /^\*\*([A-Z_]+)\*\*/.exec(content)?.[1] ?? `unparsed: ${content.slice(0, 80)}`;

interface Button {
  custom_id?: string;
  disabled?: boolean;
}
function buttonOf(message: FakeMessage, customId: string): Button | undefined {
  const rows = (message.components ?? []) as Array<{ components?: Button[] }>;
  return rows.flatMap((row) => row.components ?? []).find((button) => button.custom_id === customId);
}
function idIn(message: FakeMessage, pattern: RegExp): string {
  const found = pattern.exec(JSON.stringify(message.components ?? []));
  if (!found) throw new Error(`no ${pattern} in ${JSON.stringify(message.components)}`);
  return found[1]!;
}

/** The first answer the user saw: a refusal (reply or ephemeral follow-up), or the original once `done` says it is there. */
async function answerOf(handle: InteractionHandle, done: (message: FakeMessage) => boolean, timeoutMs = 90_000): Promise<{ told: string; original?: FakeMessage }> {
  let answer: { told: string; original?: FakeMessage } | undefined;
  await until(
    () => {
      const first = handle.callbacks()[0];
      const data = first?.data as { content?: string; flags?: number } | undefined;
      if (first?.type === 4 && data?.content !== undefined) {
        const ephemeral = ((data.flags ?? 0) & MessageFlags.Ephemeral) === MessageFlags.Ephemeral;
        answer = { told: ephemeral ? codeOf(data.content) : `public: ${codeOf(data.content)}` };
        return true;
      }
      const followUp = handle.followUps()[0];
      if (followUp) {
        const ephemeral = (followUp.flags & MessageFlags.Ephemeral) === MessageFlags.Ephemeral;
        answer = { told: ephemeral ? codeOf(followUp.content) : `public: ${codeOf(followUp.content)}` };
        return true;
      }
      const original = handle.original();
      if (original && done(original)) {
        answer = { told: 'ok', original };
        return true;
      }
      return false;
    },
    timeoutMs,
    'an answer to the interaction',
  ).catch(() => (answer = { told: 'no answer' }));
  return answer!;
}

/** A fleet run whose every target reached a final state. */
async function untilRunSettled(runId: string, timeoutMs = 90_000): Promise<void> {
  await until(
    async () => {
      const run = await getFleetRun(harness.core, runId);
      if (!run) return false;
      const states = [...run.targets.values()];
      return states.length === run.plan.targets.length && states.every((state) => ['done', 'failed', 'cancelled'].includes(state.state));
    },
    timeoutMs,
    `fleet run ${runId} settled`,
  );
}

/** Every job BullMQ holds for either host, in any state. */
async function hostJobs(): Promise<HostJob[]> {
  const jobs: HostJob[] = [];
  for (const host of HOST_IDS) {
    jobs.push(...((await harness.core.queueFor(host).getJobs(['completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized', 'waiting-children'])) as HostJob[]));
  }
  return jobs.filter((job) => job !== undefined && job !== null);
}

async function untilQueuesIdle(timeoutMs = 120_000): Promise<void> {
  await until(
    async () => {
      for (const host of HOST_IDS) {
        const counts = await harness.core.queueFor(host).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        if (Object.values(counts).some((count) => count > 0)) return false;
      }
      return true;
    },
    timeoutMs,
    'host queues idle',
  );
}

/** A job that a worker took and did not refuse as unsigned, forged or replayed: it reached the virsh side. */
const reachedWorker = (job: HostJob) => job.processedOn !== undefined && job.processedOn !== null && !(job.failedReason ?? '').startsWith('FORBIDDEN');

const seenJobIds = new Set<string>();
/**
 * Hands the jobs that appeared since the last call to the cells of this phase; jobs of the
 * phase's own setup (`setup`) are set aside, anything else is a stray.
 */
async function attributeNewJobs(phaseCells: Cell[], setup: (job: HostJob) => boolean = () => false): Promise<void> {
  await untilQueuesIdle();
  for (const job of await hostJobs()) {
    if (seenJobIds.has(job.id!)) continue;
    seenJobIds.add(job.id!);
    const owners = phaseCells.filter((cell) => owns(cell, job));
    for (const owner of owners) owner.jobs.push(job);
    if (owners.length === 0 && !setup(job)) strays.push(job);
  }
}

const virshCalls = (): Array<FakeVirshCall & { host: HostId }> => HOST_IDS.flatMap((host) => fakes[host].calls().map((call) => ({ ...call, host })));
const nameIn = (call: FakeVirshCall) => {
  const argument = call.argv.find((arg) => arg.startsWith('--name=') || arg.startsWith('--snapshotname='));
  return argument?.slice(argument.indexOf('=') + 1);
};
const domainIn = (call: FakeVirshCall) => vmOfUuid[call.argv.find((arg) => arg.startsWith('--domain='))?.slice('--domain='.length) ?? ''];
const MUTATING = ['snapshot-create-as', 'snapshot-revert', 'snapshot-delete'];

/** Why a cell's observation does not fit its expected verdict, or null when it does. */
function mismatch(cell: Cell, calls: ReturnType<typeof virshCalls>): string | null {
  const seen = cell.observed;
  if (!seen) return 'never observed';
  const reached = cell.jobs.filter(reachedWorker);
  const changes = reached.filter((job) => ['create', 'revert', 'delete'].includes(job.data.kind));
  const namedCalls = cell.ownName ? calls.filter((call) => nameIn(call) === cell.ownName) : [];
  const facts = `told ${seen.told}; ${reached.length} job(s) reached a worker (${reached.map((job) => `${job.data.kind} ${job.id}`).join(', ') || '-'}); approval ${seen.approval}; counted ${seen.counted}; virsh calls naming it ${namedCalls.length}${seen.note ? `; ${seen.note}` : ''}`;
  switch (cell.expected) {
    case 'ran':
      return seen.told === 'ok' && reached.length > 0 ? null : `expected it to reach a worker: ${facts}`;
    case 'approval':
      return seen.told === 'ok' && seen.approval && changes.length === 0 ? null : `expected an approval request and no change yet: ${facts}`;
    case 'refused':
      return ['FORBIDDEN', 'SKIPPED_FORBIDDEN'].includes(seen.told) && reached.length === 0 && !seen.approval && !seen.counted && namedCalls.length === 0
        ? null
        : `expected FORBIDDEN and nothing run: ${facts}`;
  }
}

function assertCells(path: Path): void {
  const calls = virshCalls();
  const wrong = cells.filter((cell) => cell.path === path).map((cell) => [label(cell), mismatch(cell, calls)] as const).filter(([, why]) => why !== null);
  expect(wrong.map(([where, why]) => `${where}: ${why}`)).toEqual([]);
}

// ─── setup ───────────────────────────────────────────────────────────────────────────────

beforeAll(async () => {
  redis = await startTestRedis();
  prefix = uniquePrefix('authz');
  for (const host of HOST_IDS) fakes[host] = await FakeVirshHost.create();
  for (const target of TARGETS) {
    const { uuid } = fakes[target.host].addDomain({ name: target.vm, state: 'running' });
    uuidOf[target.vm] = uuid;
    vmOfUuid[uuid] = target.vm;
    createdAt[target.vm] = seedInternalSnapshots(fakes[target.host], target.vm, SEEDS);
  }
  // Slower heartbeats and a long inventory interval than the helper's crash-test timings:
  // two cores shared with other work, and every fake virsh call is a Node process.
  const env = { HEARTBEAT_INTERVAL_MS: '1000', HEARTBEAT_TTL_MS: '8000', JOB_LOCK_MS: '20000', JOB_STALLED_CHECK_MS: '5000', INVENTORY_INTERVAL_MS: '120000' };
  policyFile = join(keyDir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(policyDocument));
  const [workerA, workerB, controlProcess] = await Promise.all([
    startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'kvm-a', fake: fakes['kvm-a'], env }),
    startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'kvm-b', fake: fakes['kvm-b'], env }),
    startControlProcess({ REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix, SNAPBOT_POLICY: policyFile }),
  ]);
  workers.push(workerA, workerB);
  control = controlProcess;
  harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy, editIntervalMs: 1_000, sweepIntervalMs: 1_000 });
  // Registered globally too, so the other server's members can run them there (as a public bot allows).
  await harness.bot.client.application!.commands.set([...COMMAND_DEFINITIONS]);
  // Both hosts' inventories (with the seeded snapshots) in Redis before anyone asks.
  await until(async () => {
    const run = await harness.fake.autocomplete(ada.id, 'snapshot', [{ name: 'list', type: 1, options: [{ name: 'vm', type: 3, value: 'dev', focused: true }] }]);
    return run.length === 2;
  }, 60_000, 'both hosts reported');
}, 180_000);

afterAll(async () => {
  await harness?.stop();
  await control?.stop();
  for (const worker of workers) await worker.stop();
  for (const fake of Object.values(fakes)) await fake.dispose();
  await redis?.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

// ─── the paths ───────────────────────────────────────────────────────────────────────────

describe('authorization matrix', () => {
  it('Redis writer: a plain queue.add on host.<id>, unsigned, signed with its own key, or with a signature of another job', async () => {
    const connection = { url: redis.url, maxRetriesPerRequest: null };
    const queues = Object.fromEntries(HOST_IDS.map((host) => [host, new Queue(hostQueueName(host), { connection, prefix })])) as Record<HostId, Queue>;
    const phase: Cell[] = [];
    try {
      for (const variant of WRITER_VARIANTS) {
        for (const action of CHANGE_ACTIONS) {
          for (const target of TARGETS) {
            const ownName = nameFor('Redis writer', variant, action.replace(' ', '-'), target);
            const cell = newCell('Redis writer', variant, action, target, ownName);
            const jobId = `rw-${ROLE_TAG[variant]}-${action.replace(' ', '-')}-${target.vm}`;
            cell.jobIds.add(jobId);
            phase.push(cell);
            const fleet = action.startsWith('fleet') ? { fleet: { runId: 'abcdef012345', index: 0, perHost: 0, global: 0 } } : {};
            const common = { host: target.host, vm: target.vm, uuid: uuidOf[target.vm]!, requestedBy: 'discord:100000000000000001', ...fleet };
            // Reverts and deletes aim at real snapshots with their real creation times: were one run, it would do harm.
            const victim = action === 'revert' ? KEEP_REVERT : KEEP_DELETE;
            const job: SnapshotJob =
              action === 'create' || action === 'fleet snapshot'
                ? { ...common, kind: 'create', name: ownName, mode: 'full' }
                : action === 'revert'
                  ? { ...common, kind: 'revert', name: victim, expected: { createdAt: createdAt[target.vm]![victim]! }, undoPoint: { mode: 'full', keep: 3 } }
                  : { ...common, kind: 'delete', name: victim, expected: { createdAt: createdAt[target.vm]![victim]! } };
            const data =
              variant === 'unsigned'
                ? job
                : variant === 'own-key'
                  ? signJob(Signer.generate(), jobId, job)
                  : // The control process's genuine signature, over a harmless job of the same id, then changed.
                    { ...signJob(testAuthority(), jobId, { ...job, name: `${ownName}-harmless` } as SnapshotJob), name: 'name' in job ? job.name : ownName };
            await queues[target.host].add(job.kind, data, { jobId, attempts: 1 });
          }
        }
      }
      await until(
        async () => {
          for (const cell of phase) {
            const job = await Job.fromId(queues[cell.target.host], [...cell.jobIds][0]!);
            if (!job || !(job.finishedOn ?? 0)) return false;
          }
          return true;
        },
        90_000,
        'every written job finished',
      );
      for (const cell of phase) {
        const job = (await Job.fromId(queues[cell.target.host], [...cell.jobIds][0]!))!;
        cell.observed = { told: job.failedReason ? job.failedReason.replace(/:.*$/s, '') : 'ok (completed)', approval: false, counted: false, note: job.failedReason?.slice(0, 160) };
      }
    } finally {
      for (const queue of Object.values(queues)) await queue.close();
    }
    cells.push(...phase);
    await attributeNewJobs(phase);
    assertCells('Redis writer');
  }, 180_000);

  it('slash command: /snapshot and /fleet (with the requester’s own Confirm), each role on each target', async () => {
    const phase: Cell[] = [];
    for (const role of DISCORD_ROLES) {
      for (const action of SLASH_ACTIONS) {
        for (const target of TARGETS) {
          const creates = action === 'create' || action === 'fleet snapshot';
          const cell = newCell('slash command', role, action, target, creates ? nameFor('slash command', role, action === 'create' ? 'cr' : 'fs', target) : undefined);
          const user = SLASH_USERS[role];
          const by = (job: HostJob) => job.data.requestedBy === `discord:${user.id}` && job.data.vm === target.vm && job.data.fleet === undefined;
          if (action === 'create') cell.match = (job) => job.data.kind === 'create' && jobName(job) === cell.ownName && job.data.fleet === undefined;
          if (action === 'list') cell.match = (job) => by(job) && job.data.kind === 'list';
          if (action === 'info') cell.match = (job) => by(job) && job.data.kind === 'info' && jobName(job) === KEEP_INFO;
          // The read that binds the approval to the snapshot's creation time, and any revert or delete.
          if (action === 'revert') cell.match = (job) => by(job) && jobName(job) === KEEP_REVERT;
          if (action === 'delete') cell.match = (job) => by(job) && jobName(job) === KEEP_DELETE;
          phase.push(cell);
        }
      }
    }
    cells.push(...phase);

    await inPool(phase, 6, async (cell) => {
      const user = SLASH_USERS[cell.role as (typeof DISCORD_ROLES)[number]];
      const from = cell.role === 'other-guild-admin' ? { guildId: other.guild.id } : undefined;
      const { vm } = cell.target;
      const seen: Observation = { told: 'no answer', approval: false, counted: false };
      cell.observed = seen;
      switch (cell.action) {
        case 'create':
        case 'list':
        case 'info': {
          const options: Record<string, string> = cell.action === 'create' ? { vm, name: cell.ownName!, mode: 'full' } : cell.action === 'info' ? { vm, name: KEEP_INFO } : { vm };
          const answer = await answerOf(await harness.fake.slashCommand(user.id, 'snapshot', sub(cell.action, options), from), isFinal);
          seen.told = answer.original && embedOf(answer.original).color === COLOR.failure ? `failed: ${String(embedOf(answer.original).title)}` : answer.told;
          return;
        }
        case 'revert':
        case 'delete': {
          const name = cell.action === 'revert' ? KEEP_REVERT : KEEP_DELETE;
          const answer = await answerOf(await harness.fake.slashCommand(user.id, 'snapshot', sub(cell.action, { vm, name }), from), (message) => message.content.startsWith('Approval requested'));
          seen.told = answer.told;
          const id = answer.original ? /Request `([0-9a-f]+)`/.exec(answer.original.content)?.[1] : undefined;
          const state = id ? await getApproval(harness.core, id) : null;
          const subject = state?.request.subject;
          seen.approval = state?.status === 'pending' && subject?.kind === 'snapshot' && subject.action === cell.action && subject.vm === vm && subject.host === cell.target.host;
          return;
        }
        case 'fleet snapshot':
        case 'fleet delete': {
          const snapshot = cell.action === 'fleet snapshot';
          const options: Record<string, string> = snapshot ? { target: vm, name: cell.ownName!, mode: 'full' } : { target: vm, name: KEEP_DELETE };
          const answer = await answerOf(await harness.fake.slashCommand(user.id, 'fleet', sub(snapshot ? 'snapshot' : 'delete', options), from), isPreview);
          seen.told = answer.told;
          if (answer.original) Object.assign(seen, await confirmOwnPreview(cell, user, answer.original));
          return;
        }
      }
    });
    await attributeNewJobs(phase);
    assertCells('slash command');
  }, 300_000);

  it('button: Approve, someone else’s Confirm, and Retry failed — the clicker is checked, not the requester', async () => {
    const phase: Cell[] = [];
    const cellOf = new Map<string, Cell>();
    const key = (role: Role, action: Action, target: Target) => `${role}|${action}|${target.vm}`;
    for (const role of DISCORD_ROLES) {
      for (const action of BUTTON_ACTIONS) {
        for (const target of TARGETS) {
          const cell = newCell('button', role, action, target);
          phase.push(cell);
          cellOf.set(key(role, action, target), cell);
        }
      }
    }
    cells.push(...phase);
    const setupRuns = new Set<string>();
    const setup = (job: HostJob) =>
      (job.data.requestedBy === `discord:${ada.id}` && job.data.kind === 'info') || (job.data.fleet !== undefined && setupRuns.has(job.data.fleet.runId));
    const clicks = new Map<Cell, InteractionHandle>();
    const outsider = CLICKERS['other-guild-admin'];

    /** Clicks as a member of this server, or copies the button into the other server and clicks it there. */
    async function click(cell: Cell, message: FakeMessage, customIds: string): Promise<InteractionHandle> {
      const handle = cell.role === 'other-guild-admin' ? await clickFromOtherServer(message, customIds) : await harness.fake.clickButton(CLICKERS[cell.role as (typeof DISCORD_ROLES)[number]].id, message, customIds);
      clicks.set(cell, handle);
      return handle;
    }
    async function refusedAnswer(cell: Cell, handle: InteractionHandle): Promise<void> {
      cell.observed = { told: (await answerOf(handle, () => false, 60_000)).told, approval: false, counted: false };
    }

    // 1. ada asks for a revert and a delete of each VM (twice on dev-01, where the operator may approve too).
    type Request = { id: string; message: FakeMessage; target: Target; action: 'approve revert' | 'approve delete'; approver: (typeof DISCORD_ROLES)[number] };
    const requests: Request[] = [];
    const asks: Array<Omit<Request, 'id' | 'message'> & { name: string }> = [];
    for (const target of TARGETS) {
      for (const approver of DISCORD_ROLES.filter((role) => MAY_APPROVE[role]?.(target))) {
        asks.push({ target, action: 'approve revert', approver, name: KEEP_REVERT });
        asks.push({ target, action: 'approve delete', approver, name: approver === 'administrator' ? BUTTON_DELETE : BUTTON_DELETE_OPERATOR });
      }
    }
    await inPool(asks, 4, async (ask) => {
      const handle = await harness.fake.slashCommand(ada.id, 'snapshot', sub(ask.action === 'approve revert' ? 'revert' : 'delete', { vm: ask.target.vm, name: ask.name }));
      const answer = await answerOf(handle, (message) => message.content.startsWith('Approval requested'));
      const id = answer.original ? /Request `([0-9a-f]+)`/.exec(answer.original.content)?.[1] : undefined;
      if (!id) throw new Error(`setup: ada's ${ask.action} of ${ask.target.vm} was not opened: ${answer.told}`);
      const message = await harness.fake.waitForChannelMessage((candidate) => buttonOf(candidate, `approval:${id}:approve`) !== undefined, 90_000);
      requests.push({ id, message, target: ask.target, action: ask.action, approver: ask.approver });
    });

    // 2. Everyone whose click must not count clicks Approve on the administrator's request; then it is still pending, with no votes.
    const adminRequests = requests.filter((request) => request.approver === 'administrator');
    await Promise.all(
      adminRequests.flatMap((request) =>
        DISCORD_ROLES.filter((role) => cellOf.get(key(role, request.action, request.target))!.expected === 'refused').map(async (role) => {
          const cell = cellOf.get(key(role, request.action, request.target))!;
          await refusedAnswer(cell, await click(cell, request.message, `approval:${request.id}:approve`));
        }),
      ),
    );
    for (const request of adminRequests) {
      const state = await getApproval(harness.core, request.id);
      for (const role of DISCORD_ROLES) {
        const cell = cellOf.get(key(role, request.action, request.target))!;
        if (cell.expected !== 'refused') continue;
        cell.observed!.counted = Boolean(state?.approvals.includes(CLICKERS[role].id));
        // Were the request decided by one of these clicks, its job would be theirs.
        if (state?.status !== 'pending') cell.jobIds.add(`approval-${request.id}`);
      }
    }

    // 3. Each allowed approver approves its own request: the revert or delete runs.
    await Promise.all(
      requests.map(async (request) => {
        const cell = cellOf.get(key(request.approver, request.action, request.target))!;
        const before = await getApproval(harness.core, request.id);
        if (before?.status === 'pending') cell.jobIds.add(`approval-${request.id}`);
        const handle = await click(cell, request.message, `approval:${request.id}:approve`);
        const done = await until(
          async () => handle.followUps().length > 0 || Boolean((await Job.fromId(harness.core.queueFor(request.target.host), `approval-${request.id}`))?.finishedOn),
          90_000,
          `approved ${request.action} of ${request.target.vm}`,
        ).then(
          () => null,
          (error: Error) => error.message,
        );
        const followUp = handle.followUps()[0];
        cell.observed = { told: followUp ? codeOf(followUp.content) : done ?? 'ok', approval: false, counted: Boolean((await getApproval(harness.core, request.id))?.approvals.includes(CLICKERS[request.approver].id)) };
      }),
    );

    // 4. ada previews a fleet snapshot and a fleet delete of each VM; everyone else clicks her Confirm.
    type Preview = { runId: string; message: FakeMessage; target: Target; kind: 'snapshot' | 'delete' };
    const previews: Preview[] = [];
    await inPool(
      TARGETS.flatMap((target) => [
        { target, kind: 'snapshot' as const },
        { target, kind: 'delete' as const },
      ]),
      4,
      async ({ target, kind }) => {
        const options: Record<string, string> = kind === 'snapshot' ? { target: target.vm, name: buttonFleetSnapshotName(target), mode: 'full' } : { target: target.vm, name: BUTTON_FLEET_DELETE };
        const answer = await answerOf(await harness.fake.slashCommand(ada.id, 'fleet', sub(kind, options)), isPreview);
        if (!answer.original) throw new Error(`setup: ada's fleet ${kind} of ${target.vm} gave no preview: ${answer.told}`);
        previews.push({ runId: idIn(answer.original, /"custom_id":"fleet:([0-9a-f]+):confirm"/), message: answer.original, target, kind });
      },
    );
    for (const preview of previews) setupRuns.add(preview.runId);
    await Promise.all(
      previews.flatMap((preview) =>
        DISCORD_ROLES.map(async (role) => {
          const cell = cellOf.get(key(role, `confirm fleet ${preview.kind}` as Action, preview.target))!;
          await refusedAnswer(cell, await click(cell, preview.message, `fleet:${preview.runId}:confirm`));
        }),
      ),
    );
    for (const preview of previews) {
      const run = await getFleetRun(harness.core, preview.runId);
      if (run?.status === 'preview') continue;
      // Someone else's Confirm started it or asked for its approval: theirs, then.
      for (const role of DISCORD_ROLES) {
        const cell = cellOf.get(key(role, `confirm fleet ${preview.kind}` as Action, preview.target))!;
        cell.runIds.add(preview.runId);
        cell.observed!.note = `run is ${run?.status} after the others' clicks`;
        cell.observed!.approval = run?.status === 'pending';
      }
      setupRuns.delete(preview.runId);
    }

    // 5. ada confirms her own previews. Her fleet snapshots fail on virsh (and keep failing, so
    //    every retry that reaches a worker calls virsh and fails again); her deletes wait for approval.
    for (const host of HOST_IDS) {
      fakes[host].setFaults(
        TARGETS.filter((target) => target.host === host).map((target) => ({
          match: { subcommand: 'snapshot-create-as', name: buttonFleetSnapshotName(target) },
          exitCode: 1,
          stderr: 'error: argument unsupported: QEMU guest agent is not configured\n',
        })),
      );
    }
    const summaries = new Map<string, FakeMessage>();
    const fleetRequests = new Map<string, FakeMessage>();
    await Promise.all(
      previews.map(async (preview) => {
        const confirm = await harness.fake.clickButton(ada.id, preview.message, `fleet:${preview.runId}:confirm`);
        await confirm.waitForCallback(30_000);
        if (preview.kind === 'snapshot') {
          await untilRunSettled(preview.runId);
          const summary = await harness.fake.waitForChannelMessage((message) => JSON.stringify(message.embeds).includes(preview.runId), 60_000);
          await until(() => buttonOf(summary, `fleet:${preview.runId}:retry`) !== undefined, 60_000, `Retry failed on run ${preview.runId}`);
          summaries.set(preview.target.vm, summary);
        } else {
          const request = await harness.fake.waitForChannelMessage((message) => buttonOf(message, `approval:${preview.runId}:approve`) !== undefined, 90_000);
          fleetRequests.set(preview.target.vm, request);
        }
      }),
    );

    // 6. Approve on each fleet delete request: first everyone whose click must not count, then an administrator.
    const deletes = previews.filter((preview) => preview.kind === 'delete');
    await Promise.all(
      deletes.flatMap((preview) =>
        DISCORD_ROLES.filter((role) => cellOf.get(key(role, 'approve fleet delete', preview.target))!.expected === 'refused').map(async (role) => {
          const cell = cellOf.get(key(role, 'approve fleet delete', preview.target))!;
          await refusedAnswer(cell, await click(cell, fleetRequests.get(preview.target.vm)!, `approval:${preview.runId}:approve`));
        }),
      ),
    );
    for (const preview of deletes) {
      const run = await getFleetRun(harness.core, preview.runId);
      for (const role of DISCORD_ROLES) {
        const cell = cellOf.get(key(role, 'approve fleet delete', preview.target))!;
        if (cell.expected !== 'refused') continue;
        cell.observed!.counted = Boolean(run?.approvals.includes(CLICKERS[role].id));
        if (run?.status !== 'pending') cell.runIds.add(preview.runId);
      }
    }
    await Promise.all(
      deletes.map(async (preview) => {
        const cell = cellOf.get(key('administrator', 'approve fleet delete', preview.target))!;
        if ((await getFleetRun(harness.core, preview.runId))?.status === 'pending') cell.runIds.add(preview.runId);
        setupRuns.delete(preview.runId);
        const handle = await click(cell, fleetRequests.get(preview.target.vm)!, `approval:${preview.runId}:approve`);
        const settled = await untilRunSettled(preview.runId).then(
          () => null,
          (error: Error) => error.message,
        );
        const followUp = handle.followUps()[0];
        const run = await getFleetRun(harness.core, preview.runId);
        cell.observed = { told: followUp ? codeOf(followUp.content) : settled ?? 'ok', approval: false, counted: Boolean(run?.approvals.includes(alan.id)) };
      }),
    );

    // 7. Retry failed on each failed fleet snapshot, by everyone; a retry preview is its clicker's own to confirm.
    await Promise.all(
      previews
        .filter((preview) => preview.kind === 'snapshot')
        .flatMap((preview) =>
          DISCORD_ROLES.map(async (role) => {
            const cell = cellOf.get(key(role, 'retry fleet snapshot', preview.target))!;
            const handle = await click(cell, summaries.get(preview.target.vm)!, `fleet:${preview.runId}:retry`);
            const answer = await answerOf(handle, isPreview);
            cell.observed = { told: answer.told, approval: false, counted: false };
            if (answer.original) Object.assign(cell.observed, await confirmOwnPreview(cell, CLICKERS[role], answer.original));
          }),
        ),
    );

    await attributeNewJobs(phase, setup);
    for (const host of HOST_IDS) fakes[host].setFaults([]);
    // Every click was answered to its clicker alone.
    for (const [cell, handle] of clicks) {
      const followUp = handle.followUps()[0];
      if (followUp) expect(followUp.flags & MessageFlags.Ephemeral, label(cell)).toBe(MessageFlags.Ephemeral);
    }
    expect(outsider.id).toBe(other.admin.id);
    assertCells('button');
  }, 400_000);

  it('snapctl: each operator signs with its own key file; a key the policy does not name', async () => {
    const phase: Cell[] = [];
    for (const role of SNAPCTL_ROLES) {
      for (const action of CHANGE_ACTIONS) {
        for (const target of TARGETS) {
          const creates = action === 'create' || action === 'fleet snapshot';
          const cell = newCell('snapctl', role, action, target, creates ? nameFor('snapctl', role, action === 'create' ? 'cr' : 'fs', target) : undefined);
          const requester = role === 'unknown-key' ? 'snapctl:(unknown)' : `snapctl:${OPERATOR_NAMES[role]}`;
          const by = (job: HostJob) => job.data.requestedBy === requester && job.data.vm === target.vm && job.data.fleet === undefined;
          if (action === 'create') cell.match = (job) => job.data.kind === 'create' && jobName(job) === cell.ownName && job.data.fleet === undefined;
          if (action === 'revert') cell.match = (job) => by(job) && jobName(job) === KEEP_REVERT;
          if (action === 'delete') cell.match = (job) => by(job) && jobName(job) === KEEP_DELETE;
          phase.push(cell);
        }
      }
    }
    cells.push(...phase);
    const ask = async (role: (typeof SNAPCTL_ROLES)[number], operation: ControlOperation): Promise<{ told: string; value?: unknown }> => {
      try {
        return { told: 'ok', value: await callControl(harness.core, SIGNERS[role], operation, { timeoutMs: 90_000 }) };
      } catch (error) {
        return { told: (error as { code?: string }).code ?? `threw: ${String(error)}` };
      }
    };
    await inPool(phase, 6, async (cell) => {
      const role = cell.role as (typeof SNAPCTL_ROLES)[number];
      const { vm } = cell.target;
      const seen: Observation = { told: 'no answer', approval: false, counted: false };
      cell.observed = seen;
      switch (cell.action) {
        case 'create':
          seen.told = (await ask(role, { op: 'create', vm, name: cell.ownName!, mode: 'full' })).told;
          return;
        case 'revert':
        case 'delete': {
          const answer = await ask(role, { op: cell.action, vm, name: cell.action === 'revert' ? KEEP_REVERT : KEEP_DELETE, wait: false });
          seen.told = answer.told;
          const pending = answer.value as { kind?: string; request?: { id: string } } | undefined;
          if (pending?.kind === 'pending' && pending.request) seen.approval = (await getApproval(harness.core, pending.request.id))?.status === 'pending';
          return;
        }
        case 'fleet snapshot':
        case 'fleet delete': {
          const snapshot = cell.action === 'fleet snapshot';
          const planned = await ask(role, { op: 'fleet-plan', action: snapshot ? 'snapshot' : 'delete', target: vm, name: snapshot ? cell.ownName! : KEEP_DELETE, ...(snapshot ? { mode: 'full' } : {}) });
          seen.told = planned.told;
          if (planned.told !== 'ok') return;
          const plan = planned.value as FleetPlan;
          cell.runIds.add(plan.id);
          // Confirmed whatever the preview says: a run without targets must still queue nothing.
          const confirmed = await ask(role, { op: 'fleet-confirm', runId: plan.id, wait: false });
          if (plan.targets.length === 0) {
            seen.told = plan.skipped.forbidden.some((entry) => entry.vm === vm) ? 'SKIPPED_FORBIDDEN' : `no targets (${JSON.stringify(plan.skipped)})`;
            seen.note = `confirm: ${confirmed.told}`;
            return;
          }
          seen.told = confirmed.told;
          const outcome = confirmed.value as { kind?: string } | undefined;
          if (snapshot && outcome?.kind === 'started') await untilRunSettled(plan.id).catch(() => undefined);
          if (!snapshot) seen.approval = outcome?.kind === 'pending' && (await getFleetRun(harness.core, plan.id))?.status === 'pending';
          return;
        }
      }
    });
    await attributeNewJobs(phase);
    assertCells('snapctl');
  }, 300_000);

  it('snapctl CLI: snapctl create with each SNAPCTL_KEY, as a real process', async () => {
    const phase: Cell[] = [];
    // A process costs seconds here: each key on the VM in the operator's pattern, and the operator on the other two.
    for (const role of SNAPCTL_ROLES) {
      for (const target of TARGETS.filter((candidate) => role === 'operator' || candidate.vm === 'dev-01')) {
        const cell = newCell('snapctl CLI', role, 'create', target, nameFor('snapctl CLI', role, 'cr', target));
        cell.match = (job) => job.data.kind === 'create' && jobName(job) === cell.ownName;
        phase.push(cell);
      }
    }
    cells.push(...phase);
    const env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
    await inPool(phase, 4, async (cell) => {
      const result = await runSnapctl(['create', '--vm', cell.target.vm, '--name', cell.ownName!, '--mode', 'full', '--json'], { ...env, SNAPCTL_KEY: KEY_FILES[cell.role as (typeof SNAPCTL_ROLES)[number]] });
      let told: string;
      try {
        const body = parseJsonOutput(result);
        told = body.ok === true ? 'ok' : String(body.code);
      } catch (error) {
        told = `no JSON (exit ${result.code}): ${(error as Error).message.slice(0, 200)}`;
      }
      cell.observed = { told, approval: false, counted: false };
    });
    await attributeNewJobs(phase);
    assertCells('snapctl CLI');
  }, 300_000);

  it('adds up: no unauthorized job reached a worker, on any path', async () => {
    await attributeNewJobs([]);
    const calls = virshCalls();
    // Every change virsh made, and whose it was: each must be a cell that may make it (or this file's own setup).
    const allowedChanges = new Set<string>();
    for (const cell of cells) {
      if (cell.expected !== 'ran') continue;
      if (cell.ownName) allowedChanges.add(`${cell.target.vm}|${cell.ownName}`);
      if (cell.action === 'approve revert') allowedChanges.add(`${cell.target.vm}|${KEEP_REVERT}`).add(`${cell.target.vm}|pre-revert-*`);
      if (cell.action === 'approve delete') allowedChanges.add(`${cell.target.vm}|${cell.role === 'administrator' ? BUTTON_DELETE : BUTTON_DELETE_OPERATOR}`);
      if (cell.action === 'approve fleet delete') allowedChanges.add(`${cell.target.vm}|${BUTTON_FLEET_DELETE}`);
    }
    for (const target of TARGETS) allowedChanges.add(`${target.vm}|${buttonFleetSnapshotName(target)}`); // ada's own fleet snapshots, and the retries
    const unauthorizedChanges = calls
      .filter((call) => MUTATING.some((subcommand) => call.argv.includes(subcommand)))
      .map((call) => `${domainIn(call)}|${(nameIn(call) ?? '').replace(/^pre-revert-.*/, 'pre-revert-*')}`)
      .filter((change) => !allowedChanges.has(change));
    const refusedCells = cells.filter((cell) => cell.expected === 'refused');
    const unauthorizedJobs = [...refusedCells.flatMap((cell) => cell.jobs.filter(reachedWorker).map((job) => `${label(cell)}: ${job.data.kind} ${job.id}`)), ...strays.filter(reachedWorker).map((job) => `unaccounted: ${job.data.kind} ${job.id} by ${job.data.requestedBy}`)];

    const rows = PATHS.map((path) => {
      const here = cells.filter((cell) => cell.path === path);
      const count = (verdict: Verdict) => here.filter((cell) => cell.expected === verdict).length;
      const wrong = here.filter((cell) => mismatch(cell, calls) !== null).length;
      const leftOut = here.filter((cell) => cell.expected === 'refused' && cell.observed?.told === 'SKIPPED_FORBIDDEN').length;
      return { path, cells: here.length, ran: count('ran'), 'approval opened': count('approval'), refused: count('refused'), 'of which left out of a fleet preview': leftOut, mismatches: wrong };
    });
    const total = { path: 'total', cells: cells.length, ran: 0, 'approval opened': 0, refused: 0, 'of which left out of a fleet preview': 0, mismatches: 0 };
    for (const row of rows) for (const column of ['ran', 'approval opened', 'refused', 'of which left out of a fleet preview', 'mismatches'] as const) total[column] += row[column];
    const columns = ['path', 'cells', 'ran', 'approval opened', 'refused', 'of which left out of a fleet preview', 'mismatches'] as const;
    const table = [...rows, total].map((row) => columns.map((column) => String(row[column])));
    const widths = columns.map((column, index) => Math.max(column.length, ...table.map((row) => row[index]!.length)));
    const line = (values: readonly string[]) => values.map((value, index) => value.padEnd(widths[index]!)).join('  ');
    console.log(
      [
        `authorization matrix (expected verdicts; "ran": a job reached a worker; took ${((Date.now() - startedAt) / 1000).toFixed(0)} s)`,
        line(columns),
        ...table.map(line),
        `unauthorized jobs that reached a worker: ${unauthorizedJobs.length}; virsh changes no allowed cell accounts for: ${unauthorizedChanges.length}; jobs no cell accounts for: ${strays.length}`,
      ].join('\n'),
    );
    expect(cells.length).toBe(105 + 90 + 75 + 7 + 45);
    expect(unauthorizedJobs).toEqual([]);
    expect(unauthorizedChanges).toEqual([]);
  });
});

// ─── helpers that need the world ─────────────────────────────────────────────────────────

/**
 * After a /fleet preview (or a Retry failed preview) the user got: their own Confirm, when
 * the preview has targets. A preview without targets (every VM left out as not allowed)
 * has its Confirm disabled; that is its refusal. Returns what the user saw.
 */
async function confirmOwnPreview(cell: Cell, user: FakeUser, preview: FakeMessage): Promise<Partial<Observation>> {
  const runId = idIn(preview, /"custom_id":"fleet:([0-9a-f]+):confirm"/);
  cell.runIds.add(runId);
  const button = buttonOf(preview, `fleet:${runId}:confirm`)!;
  if (button.disabled) {
    const fields = (embedOf(preview).fields ?? []) as Array<{ name: string; value: string }>;
    const leftOut = fields.find((field) => /you may not act on/.test(field.name));
    return { told: leftOut?.value.includes(cell.target.vm) ? 'SKIPPED_FORBIDDEN' : `no targets: ${JSON.stringify(fields.map((field) => field.name))}` };
  }
  const click = await harness.fake.clickButton(user.id, preview, `fleet:${runId}:confirm`);
  const deleting = cell.action === 'fleet delete';
  let told = 'ok';
  await until(
    async () => {
      if (click.followUps().length > 0) return true;
      const run = await getFleetRun(harness.core, runId);
      if (deleting) return run?.status === 'pending';
      const states = [...(run?.targets.values() ?? [])];
      return run !== null && run.status !== 'preview' && states.length === run.plan.targets.length && states.every((state) => ['done', 'failed', 'cancelled'].includes(state.state));
    },
    90_000,
    `fleet run ${runId} after Confirm`,
  ).catch((error: Error) => (told = error.message));
  const followUp = click.followUps()[0];
  if (followUp) told = codeOf(followUp.content);
  const run = await getFleetRun(harness.core, runId);
  return { told, approval: deleting && run?.status === 'pending' };
}

/** The bot posts a copy of the button in the other server (a public bot can be made to); that server's Administrator clicks it there. */
async function clickFromOtherServer(message: FakeMessage, customId: string): Promise<InteractionHandle> {
  if (!buttonOf(message, customId)) throw new Error(`no button ${customId} to copy`);
  const channel = (await harness.bot.client.channels.fetch(other.guild.channelId)) as TextChannel;
  const copy = await channel.send({ content: 'copied', components: [{ type: 1, components: [{ type: 2, style: 2, label: 'Click', custom_id: customId }] }] });
  const copied = harness.fake.channelMessages(other.guild.channelId).find((candidate) => candidate.id === copy.id)!;
  return harness.fake.clickButton(other.admin.id, copied, customId);
}
