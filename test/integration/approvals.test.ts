import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideApproval, getApproval } from '../../bot/core/approvals.js';
import { policySchema, type Policy } from '../../shared/policy.js';
import { FakeDiscord, snowflake, type FakeCommandOption, type FakeMessage, type FakeUser, type InteractionHandle } from '../fixtures/fake-discord/fake-discord.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { startControlProcess } from '../helpers/control-process.js';
import { guildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import { parseJsonOutput, PROJECT_ROOT, runSnapctl, SNAPCTL, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Reverts that teammates approve in chat: N of M, no self-approval, only approvers count,
 * one Deny closes, exactly once under concurrent clicks, server-side expiry (also across
 * a bot restart), approvals bound to the snapshot's creation time, undo points, audit.
 */
const EPHEMERAL = 64;
const extraAdmins: FakeUser[] = [];
const base = guildFixture();
for (let index = 0; index < 50; index += 1) extraAdmins.push({ id: snowflake(), username: `admin-${index}`, roles: [base.adminRole.id] });
const guild = guildFixture({ ...base.options, users: [...base.options.users, ...extraAdmins] });
const { admin, operator, viewer } = base;
const secondAdmin = extraAdmins[0]!;

let redis: TestRedis;
let fake: FakeVirshHost;
let worker: SpawnedProcess;
let control: SpawnedProcess | undefined;
let prefix: string;
let vmUuid: string;

/**
 * snapctl's changes go through the control process, under the control process's policy
 * (snapctl's own SNAPBOT_POLICY is ignored): (re)starts it with `policyFile`, or with
 * the default policy (where the tests' snapctl is the local administrator) without one.
 */
async function controlWith(policyFile?: string): Promise<void> {
  await stopControl();
  control = await startControlProcess({ REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix, ...(policyFile ? { SNAPBOT_POLICY: policyFile } : {}) });
}

/**
 * SIGTERM lets the control process finish the requests it has taken, and a snapctl revert
 * still waiting for its approval (a test that failed half-way) would hold it: killed then.
 */
async function stopControl(): Promise<void> {
  const stopping = control;
  control = undefined;
  if (!stopping) return;
  const timer = setTimeout(() => stopping.child.kill('SIGKILL'), 10_000);
  await stopping.stop();
  clearTimeout(timer);
}

/**
 * A policy file for the control process. The tests' snapctl is its local administrator,
 * an administrator to the rules: like any administrator it may act only where a rule lets
 * administrators (`rules: []` would let nobody do anything).
 */
function writePolicyFile(dir: string, name: string, policy: Record<string, unknown>): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ rules: [{ role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] }], ...policy, localAdministrator: true }));
  return path;
}

function policy(approvals: Record<string, unknown>, extra: Record<string, unknown> = {}): Policy {
  return policySchema.parse({
    rules: [
      { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
      { role: 'kvm-operators', actions: ['create', 'list', 'info', 'revert', 'delete'] },
      { role: '@everyone', actions: ['list', 'info', 'hosts', 'audit'] },
    ],
    approvals: [{ actions: ['revert', 'delete'], approvers: ['@administrators'], ...approvals }],
    ...extra,
  });
}

const revert = (name: string): FakeCommandOption[] => [
  { name: 'revert', type: 1, options: [{ name: 'vm', type: 3, value: 'app-01' }, { name: 'name', type: 3, value: name }] },
];

function embedOf(message: FakeMessage | undefined): Record<string, unknown> {
  return ((message?.embeds ?? []) as Array<Record<string, unknown>>)[0] ?? {};
}

function buttonIds(message: FakeMessage): { approve: string; deny: string; disabled: boolean } {
  const text = JSON.stringify(message.components);
  return {
    approve: /"custom_id":"(approval:[0-9a-f]+:approve)"/.exec(text)![1]!,
    deny: /"custom_id":"(approval:[0-9a-f]+:deny)"/.exec(text)![1]!,
    disabled: /"disabled":true/.test(text),
  };
}

function revertCalls(name: string) {
  return fake.calls().filter((call) => call.argv.includes('snapshot-revert') && call.argv.includes(`--snapshotname=${name}`));
}

async function createSnapshot(name: string): Promise<void> {
  const result = await runSnapctl(['create', '--vm', 'app-01', '--name', name, '--mode', 'full', '--json'], { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix });
  expect(parseJsonOutput(result), result.stderr).toMatchObject({ ok: true });
}

async function requestRevert(harness: BotUnderTest, user: FakeUser, name: string): Promise<FakeMessage> {
  const before = harness.fake.channelMessages().length;
  const handle = await harness.fake.slashCommand(user.id, 'snapshot', revert(name));
  const reply = await handle.waitForOriginal((message) => message.content.startsWith('Approval requested'), 30_000);
  expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
  return harness.fake.waitForChannelMessage((message) => harness.fake.channelMessages().indexOf(message) >= before && String(embedOf(message).title).startsWith('🔐'), 10_000);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The clicker's private answer: a follow-up after the click was acknowledged. */
async function privateAnswer(handle: InteractionHandle): Promise<FakeMessage> {
  await until(() => handle.followUps().length > 0, 10_000);
  return handle.followUps()[0]!;
}

const fieldValue = (message: FakeMessage, name: string) =>
  String((embedOf(message).fields as Array<{ name: string; value: string }>).find((field) => field.name === name)?.value ?? '');

beforeAll(async () => {
  redis = await startTestRedis();
  fake = await FakeVirshHost.create();
  vmUuid = fake.addDomain({ name: 'app-01', state: 'running' }).uuid;
  prefix = uniquePrefix('approvals');
  worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: 'kvm-x', fake });
  await controlWith();
  for (const name of ['good', 'denied', 'racy', 'late', 'restart', 'stale', 'from-cli']) await createSnapshot(name);
}, 180_000);

afterAll(async () => {
  await stopControl();
  await worker?.stop();
  await fake?.dispose();
  await redis?.stop();
});

describe('an approval request with two approvers needed', () => {
  let harness: BotUnderTest;
  beforeAll(async () => {
    harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({ required: 2 }), sweepIntervalMs: 300 });
  });
  afterAll(async () => harness?.stop());

  it('posts the request with who, what, what is lost, the undo point and the expiry, and runs nothing yet', async () => {
    fake.clearCalls();
    const message = await requestRevert(harness, operator, 'good');
    expect(embedOf(message).title).toBe('🔐 Approval needed: revert app-01 to good');
    expect(fieldValue(message, 'Requested by')).toBe(`<@${operator.id}>`);
    expect(fieldValue(message, 'Host')).toBe('kvm-x');
    expect(fieldValue(message, 'VM')).toContain(vmUuid);
    expect(fieldValue(message, 'Snapshot')).toMatch(/^good — created <t:\d+:f> \(\d+ min ago\), memory \+ disk, internal/);
    expect(fieldValue(message, 'What will be lost')).toMatch(/Everything written on app-01 since .*comes back \*\*running\*\*/);
    expect(fieldValue(message, 'Undo point')).toMatch(/full snapshot `pre-revert-…`/);
    expect(fieldValue(message, 'Approvals')).toBe('0 of 2 (approvers: administrators; not the requester)');
    expect(fieldValue(message, 'Expires')).toMatch(/^<t:\d+:R>/);
    expect(revertCalls('good')).toEqual([]);
  });

  it('refuses the requester, a non-approver and a second click, then runs after two distinct approvals', async () => {
    const message = await requestRevert(harness, admin, 'good');
    const { approve } = buttonIds(message);

    // Every click is acknowledged at once (deferUpdate); refusals come privately after.
    const self = await harness.fake.clickButton(admin.id, message, approve);
    expect((await self.waitForCallback()).type).toBe(6);
    expect(await privateAnswer(self)).toMatchObject({ content: expect.stringContaining('someone else must approve'), flags: EPHEMERAL });
    const stranger = await harness.fake.clickButton(viewer.id, message, approve);
    expect(await privateAnswer(stranger)).toMatchObject({ content: expect.stringMatching(/^\*\*FORBIDDEN\*\*/), flags: EPHEMERAL });

    const first = await harness.fake.clickButton(secondAdmin.id, message, approve);
    expect((await first.waitForCallback()).type).toBe(6);
    await until(() => fieldValue(message, 'Approvals').startsWith('1 of 2'));
    const again = await harness.fake.clickButton(secondAdmin.id, message, approve);
    expect(await privateAnswer(again)).toMatchObject({ content: 'Your approval is already counted (1 of 2).' });
    expect(revertCalls('good')).toEqual([]);

    await harness.fake.clickButton(extraAdmins[1]!.id, message, approve);
    await until(() => String(embedOf(message).description).includes('Approved and done'), 30_000);
    expect(buttonIds(message).disabled).toBe(true);
    expect(revertCalls('good')).toHaveLength(1);
    const result = (message.embeds as Array<Record<string, unknown>>)[1]!;
    expect(result.title).toBe('✅ app-01 reverted to good');
    expect(String(result.description)).toMatch(/To undo this revert, revert to \*\*pre-revert-\d{8}-\d{6}\*\*/);
    // The undo point was taken before the revert.
    const order = fake.calls().map((call) => call.argv[1]);
    expect(order.lastIndexOf('snapshot-create-as')).toBeLessThan(order.lastIndexOf('snapshot-revert'));
    expect(fake.domain('app-01').snapshots.some((snapshot) => snapshot.name.startsWith('pre-revert-'))).toBe(true);
  });

  it('closes on one Deny and runs nothing', async () => {
    const message = await requestRevert(harness, operator, 'denied');
    await harness.fake.clickButton(admin.id, message, buttonIds(message).deny);
    await until(() => buttonIds(message).disabled);
    expect(embedOf(message).title).toBe('🔐 Approval denied: revert app-01 to denied');
    expect(String(embedOf(message).description)).toBe(`Denied (by <@${admin.id}>).`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(revertCalls('denied')).toEqual([]);
  });
});

describe('fifty approvers clicking at once', () => {
  it('runs the revert exactly once', async () => {
    const harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({ required: 1 }), sweepIntervalMs: 300 });
    try {
      const message = await requestRevert(harness, operator, 'racy');
      const { approve } = buttonIds(message);
      await Promise.allSettled(extraAdmins.map((user) => harness.fake.clickButton(user.id, message, approve)));
      await until(() => String(embedOf(message).description).includes('Approved and done'), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(revertCalls('racy')).toHaveLength(1);
    } finally {
      await harness.stop();
    }
  });
});

describe('expiry', () => {
  it('is enforced by the server: buttons disabled, later clicks refused, nothing runs', async () => {
    const harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({ ttlMinutes: 0.03 }), sweepIntervalMs: 200 });
    try {
      const message = await requestRevert(harness, operator, 'late');
      const id = /approval:([0-9a-f]+):/.exec(JSON.stringify(message.components))![1]!;
      await until(() => buttonIds(message).disabled, 10_000);
      expect(embedOf(message).title).toBe('🔐 Approval expired: revert app-01 to late');
      const late = await decideApproval(harness.core, { id, actor: { id: `discord:${admin.id}`, userId: admin.id, displayName: 'ada', roleIds: [], roleNames: [], isAdministrator: true }, decision: 'approve' });
      expect(late.outcome).toBe('closed:expired');
      expect(revertCalls('late')).toEqual([]);
    } finally {
      await harness.stop();
    }
  });

  it('still expires when the bot was restarted in between', async () => {
    const discord = await FakeDiscord.start(guild.options);
    const first = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({ ttlMinutes: 0.05 }), sweepIntervalMs: 200, discord });
    const message = await requestRevert(first, operator, 'restart');
    const id = /approval:([0-9a-f]+):/.exec(JSON.stringify(message.components))![1]!;
    await first.stop();
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    // A new bot process on the same Discord: it finds the request past its time and closes its message.
    const second = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({ ttlMinutes: 0.05 }), sweepIntervalMs: 200, discord });
    try {
      // Roomy: a loaded CI machine took over 10 s between the expiry and the redrawn message.
      await until(async () => (await getApproval(second.core, id))?.status === 'expired', 30_000);
      await until(() => buttonIds(message).disabled, 30_000);
      expect(revertCalls('restart')).toEqual([]);
    } finally {
      await second.stop();
      await discord.stop();
    }
  }, 90_000);
});

describe('an approval bound to the snapshot', () => {
  it('is refused by the worker when the snapshot was deleted and made again', async () => {
    const harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({ required: 1 }), sweepIntervalMs: 300 });
    try {
      const message = await requestRevert(harness, operator, 'stale');
      // Same name, new snapshot: libvirt's creation time has one-second resolution.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const env = { ...fake.env };
      execFileSync(fake.path, ['snapshot-delete', `--domain=${vmUuid}`, '--snapshotname=stale'], { env: { ...process.env, ...env } });
      execFileSync(fake.path, ['snapshot-create-as', `--domain=${vmUuid}`, '--name=stale'], { env: { ...process.env, ...env } });
      await harness.fake.clickButton(admin.id, message, buttonIds(message).approve);
      await until(() => String(embedOf(message).description).includes('APPROVAL_STALE'), 30_000);
      expect(revertCalls('stale')).toEqual([]);
    } finally {
      await harness.stop();
    }
  });
});

describe('snapctl revert', () => {
  it('opens the request in the channel, waits for the approval, and prints the result', async () => {
    const harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({ required: 1 }), sweepIntervalMs: 200 });
    await controlWith(writePolicyFile(mkdtempSync(join(tmpdir(), 'snapbot-policy-')), 'policy.json', { approvals: [{ actions: ['revert', 'delete'], approvers: ['@administrators'] }] }));
    try {
      const snapctl = spawn(process.execPath, [SNAPCTL, 'revert', '--vm', 'app-01', '--name', 'from-cli', '--json'], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix },
        cwd: PROJECT_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      snapctl.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => snapctl.on('exit', (code) => resolve(code)));
      const message = await harness.fake.waitForChannelMessage((candidate) => embedOf(candidate).title === '🔐 Approval needed: revert app-01 to from-cli', 20_000);
      expect(fieldValue(message, 'Requested by')).toMatch(/^snapctl:/);
      await harness.fake.clickButton(admin.id, message, buttonIds(message).approve);
      expect(await exited).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ ok: true, kind: 'revert', snapshot: { name: 'from-cli' }, undoPoint: { name: expect.stringMatching(/^pre-revert-/) } });
    } finally {
      await harness.stop();
    }
  }, 120_000);

  it('--no-wait returns the request id at once', async () => {
    await controlWith(writePolicyFile(mkdtempSync(join(tmpdir(), 'snapbot-policy-')), 'policy.json', { approvals: [{ actions: ['delete'], approvers: ['@administrators'] }] }));
    const result = await runSnapctl(['delete', '--vm', 'app-01', '--name', 'good', '--no-wait', '--json'], { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix });
    expect(parseJsonOutput(result)).toMatchObject({ ok: true, status: 'pending', requestId: expect.stringMatching(/^[0-9a-f]{16}$/) });
  }, 120_000);

  it('--break-glass runs at once only where the policy allows it, is audited, and is announced in the channel', async () => {
    const env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
    const dir = mkdtempSync(join(tmpdir(), 'snapbot-policy-'));
    const closed = writePolicyFile(dir, 'closed.json', {});
    const open = writePolicyFile(dir, 'open.json', { breakGlass: { snapctl: true } });
    const revertsBefore = revertCalls('good').length;
    // The policy is the control process's: with the closed one there, break-glass is refused…
    await controlWith(closed);
    const refused = parseJsonOutput(await runSnapctl(['revert', '--vm', 'app-01', '--name', 'good', '--break-glass', 'outage', '--json'], env));
    expect(refused).toMatchObject({ ok: false, code: 'FORBIDDEN', message: expect.stringContaining('Break-glass is not allowed by the policy') });
    // …and snapctl cannot choose another: its own SNAPBOT_POLICY (an open one) is ignored.
    const chosen = parseJsonOutput(await runSnapctl(['revert', '--vm', 'app-01', '--name', 'good', '--break-glass', 'outage', '--json'], { ...env, SNAPBOT_POLICY: open }));
    expect(chosen).toMatchObject({ ok: false, code: 'FORBIDDEN', message: expect.stringContaining('Break-glass is not allowed by the policy') });
    expect(revertCalls('good')).toHaveLength(revertsBefore);
    // A control process with the open policy allows it.
    await controlWith(open);
    const allowed = parseJsonOutput(await runSnapctl(['revert', '--vm', 'app-01', '--name', 'good', '--break-glass', 'outage INC-42', '--json'], env));
    expect(allowed).toMatchObject({ ok: true, kind: 'revert' });
    expect(revertCalls('good')).toHaveLength(revertsBefore + 1);
    const harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({}), sweepIntervalMs: 200 });
    try {
      const notice = await harness.fake.waitForChannelMessage((message) => message.content.includes('Break-glass'), 10_000);
      expect(notice.content).toMatch(/snapctl:.* is running revert of app-01 \/ good on kvm-x without approval\. Reason: outage INC-42/);
    } finally {
      await harness.stop();
    }
  }, 180_000);
});

describe('undo point retention', () => {
  it("keeps the newest undo points per the policy and deletes older ones of snapbot's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapbot-policy-'));
    writeFileSync(join(dir, 'keep-one.yaml'), 'rules:\n  - role: "@administrators"\n    actions: [revert]\napprovals: []\nundoPoints:\n  mode: full\n  keep: 1\nlocalAdministrator: true\n');
    await controlWith(join(dir, 'keep-one.yaml'));
    const env = { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix };
    const first = parseJsonOutput(await runSnapctl(['revert', '--vm', 'app-01', '--name', 'good', '--json'], env));
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // undo points are named to the second
    const second = parseJsonOutput(await runSnapctl(['revert', '--vm', 'app-01', '--name', 'good', '--json'], env));
    const firstUndo = (first.undoPoint as { name: string }).name;
    expect(second.prunedUndoPoints).toContain(firstUndo);
    const left = fake.domain('app-01').snapshots.map((snapshot) => snapshot.name);
    expect(left).not.toContain(firstUndo);
    expect(left).toContain((second.undoPoint as { name: string }).name);
  }, 120_000);
});

describe('the audit trail', () => {
  it('has every request, approval, denial, expiry, execution, failure and break-glass, with who and what', async () => {
    const result = await runSnapctl(['audit', '--vm', 'app-01', '--limit', '500', '--json'], { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix });
    const entries = parseJsonOutput(result).entries as Array<{ event: string; actor: string; snapshot?: string; detail?: string }>;
    const events = new Set(entries.map((entry) => entry.event));
    for (const event of ['requested', 'approved', 'denied', 'expired', 'executed', 'failed', 'direct', 'break-glass']) expect(events, event).toContain(event);
    expect(entries.find((entry) => entry.event === 'denied')).toMatchObject({ actor: `discord:${admin.id}`, snapshot: 'denied' });
    expect(entries.find((entry) => entry.event === 'break-glass')?.detail).toContain('outage INC-42');
    expect(entries.find((entry) => entry.event === 'failed' && entry.snapshot === 'stale')?.detail).toMatch(/^APPROVAL_STALE/);
  });

  it('is shown in Discord with /snapshot audit, privately, with the whole trail attached', async () => {
    const harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: policy({}) });
    try {
      const handle = await harness.fake.slashCommand(viewer.id, 'snapshot', [{ name: 'audit', type: 1, options: [{ name: 'vm', type: 3, value: 'app-01' }] }]);
      const reply = await handle.waitForOriginal((message) => embedOf(message).title === 'Audit · app-01', 10_000);
      expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
      expect(String(embedOf(reply).description)).toMatch(/WHEN \(UTC\)\s+EVENT\s+WHO\s+WHAT/);
      expect(reply.attachments[0]?.filename).toBe('audit.txt');
      expect(reply.attachments[0]?.data.toString()).toContain('break-glass');
    } finally {
      await harness.stop();
    }
  });
});
