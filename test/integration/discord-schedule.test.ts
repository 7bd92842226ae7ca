import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleQueue } from '../../bot/core/schedules/manage.js';
import { startScheduleRunner, type ScheduleRunner } from '../../bot/core/schedules/fire.js';
import { getSchedule } from '../../bot/core/schedules/store.js';
import { POLICY_ACTIONS, policySchema, type Policy } from '../../shared/policy.js';
import { FakeDiscord, snowflake, type FakeCommandOption, type FakeMessage, type FakeUser } from '../fixtures/fake-discord/fake-discord.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { guildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * /schedule as users meet it: the real discord.js client against the fake Discord, a
 * real Redis, one real worker process per KVM host on its own fake virsh, and the control
 * process's schedule runner, so `/schedule run` makes real firings whose summaries the
 * bot's sweeper posts. Cadences are yearly: nothing fires unless a test runs it.
 */
const EPHEMERAL = 64;
const YEARLY = '0 3 1 1 *';
const base = guildFixture();
const secondAdmin: FakeUser = { id: snowflake(), username: 'grace', roles: [base.adminRole.id] };
const guild = guildFixture({ ...base.options, users: [...base.options.users, secondAdmin] });
const { admin, viewer } = base;

let redis: TestRedis;
let prefix: string;
let discord: FakeDiscord;
const hosts: Record<'kvm-a' | 'kvm-b', FakeVirshHost> = {} as Record<'kvm-a' | 'kvm-b', FakeVirshHost>;
const workers: SpawnedProcess[] = [];

/** Admins may do everything (schedules too) without approvals; everyone may look. No space guard: the test machine's disk is not under test. */
function noApprovalPolicy(): Policy {
  return policySchema.parse({
    rules: [
      { role: '@administrators', actions: [...POLICY_ACTIONS] },
      { role: '@everyone', actions: ['list', 'info', 'hosts', 'audit'] },
    ],
    approvals: [],
    schedules: { minFreePercent: 0 },
  });
}

type OptionValue = string | { channel: string };

const sub = (name: string, options: Record<string, OptionValue> = {}): FakeCommandOption[] => [
  {
    name,
    type: 1,
    options: Object.entries(options).map(([option, value]) => (typeof value === 'string' ? { name: option, type: 3, value } : { name: option, type: 7, value: value.channel })),
  },
];

function embedOf(message: FakeMessage | undefined, index = 0): Record<string, unknown> {
  return ((message?.embeds ?? []) as Array<Record<string, unknown>>)[index] ?? {};
}

const title = (message: FakeMessage | undefined) => String(embedOf(message).title ?? '');
const description = (message: FakeMessage | undefined) => String(embedOf(message).description ?? '');

function field(message: FakeMessage | undefined, name: string | RegExp): string | undefined {
  const fields = (embedOf(message).fields ?? []) as Array<{ name: string; value: string }>;
  return fields.find((candidate) => (typeof name === 'string' ? candidate.name === name : name.test(candidate.name)))?.value;
}

function fieldNames(message: FakeMessage | undefined): string[] {
  return ((embedOf(message).fields ?? []) as Array<{ name: string }>).map((candidate) => candidate.name);
}

function customId(message: FakeMessage, pattern: RegExp): string {
  const found = pattern.exec(JSON.stringify(message.components));
  if (!found) throw new Error(`no button ${pattern} in ${JSON.stringify(message.components)}`);
  return found[1]!;
}

const snapshotsOf = (host: FakeVirshHost, vm: string) => host.domain(vm).snapshots.map((snapshot) => snapshot.name);

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs `/schedule <action>` and waits for the public answer (its deferred reply, edited). */
async function answer(user: FakeUser, action: string, options: Record<string, OptionValue> = {}): Promise<FakeMessage> {
  const handle = await discord.slashCommand(user.id, 'schedule', sub(action, options));
  expect(handle.callbacks()[0]?.type ?? (await handle.waitForCallback()).type).toBe(5);
  return handle.waitForOriginal((message) => message.content !== '' || message.embeds.length > 0, 15_000);
}

/** Runs `/schedule <action>` and returns the ephemeral refusal the user alone sees. */
async function refusal(user: FakeUser, action: string, options: Record<string, OptionValue> = {}): Promise<FakeMessage> {
  const handle = await discord.slashCommand(user.id, 'schedule', sub(action, options));
  await until(() => handle.followUps().length > 0, 15_000);
  const followUp = handle.followUps()[0]!;
  expect(followUp.flags & EPHEMERAL).toBe(EPHEMERAL);
  return followUp;
}

/** The next firing post of schedule `name` after `after` posts were already in the channel. */
function firingPost(name: string, after: number, timeoutMs = 45_000): Promise<FakeMessage> {
  return discord.waitForChannelMessage((message) => discord.channelMessages().indexOf(message) >= after && title(message).includes(` Schedule ${name} · `), timeoutMs);
}

beforeAll(async () => {
  redis = await startTestRedis();
  prefix = uniquePrefix('discord-schedule');
  hosts['kvm-a'] = await FakeVirshHost.create();
  hosts['kvm-b'] = await FakeVirshHost.create();
  for (const vm of ['web-01', 'web-02', 'db-01']) hosts['kvm-a'].addDomain({ name: vm });
  for (const vm of ['web-03', 'web-04']) hosts['kvm-b'].addDomain({ name: vm });
  // As discord-fleet.test.ts: production-like timings, so a loaded 2-core machine does not lapse locks.
  const env = { HEARTBEAT_TTL_MS: '5000', JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '5000', INVENTORY_INTERVAL_MS: '30000' };
  for (const hostId of ['kvm-a', 'kvm-b'] as const) workers.push(await startWorkerProcess({ redisUrl: redis.url, prefix, hostId, fake: hosts[hostId], env }));
  discord = await FakeDiscord.start(guild.options);
}, 120_000);

afterAll(async () => {
  await discord?.stop();
  for (const worker of workers) await worker.stop();
  for (const fake of Object.values(hosts)) await fake?.dispose();
  await redis?.stop();
});

describe('/schedule under a policy without delete approvals', () => {
  let harness: BotUnderTest;
  let runner: ScheduleRunner;
  beforeAll(async () => {
    harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: noApprovalPolicy(), discord, sweepIntervalMs: 300 });
    runner = await startScheduleRunner(harness.core, { jobTimeoutMs: 30_000, pollMs: 100 });
  });
  afterAll(async () => {
    await runner?.close();
    await harness?.stop();
  });

  it('registers /schedule with its subcommands, required options first', () => {
    const schedule = (discord.registeredCommands('guild') as Array<{ name: string; options?: Array<{ name: string; options?: Array<{ name: string; type: number; required?: boolean; autocomplete?: boolean }> }> }>).find(
      (command) => command.name === 'schedule',
    )!;
    expect(schedule.options!.map((subcommand) => subcommand.name)).toEqual(['create', 'list', 'show', 'pause', 'resume', 'run', 'delete']);
    const create = schedule.options![0]!.options!;
    expect(create.map((option) => [option.name, option.required === true])).toEqual([
      ['name', true],
      ['target', true],
      ['keep', true],
      ['cron', false],
      ['every', false],
      ['tz', false],
      ['mode', false],
      ['prefix', false],
      ['description', false],
      ['channel', false],
    ]);
    expect(create.find((option) => option.name === 'channel')?.type).toBe(7);
    expect(create.find((option) => option.name === 'target')?.autocomplete).toBe(true);
    for (const action of ['show', 'pause', 'resume', 'run', 'delete']) {
      expect(schedule.options!.find((subcommand) => subcommand.name === action)!.options).toEqual([expect.objectContaining({ name: 'name', required: true, autocomplete: true })]);
    }
  });

  it('creates an active schedule for an administrator, and /schedule show shows it', async () => {
    const created = await answer(admin, 'create', { name: 'nightly-web', target: 'web-*', keep: 'last=7,weekly=4', cron: '30 2 * * *', tz: 'europe/berlin', description: 'before **backups**' });
    expect(title(created)).toBe('📅 Schedule nightly-web · active');
    expect(description(created).split('\n')[0]).toBe(`✅ Created by <@${admin.id}>: active; its target matches 4 VMs now.`);
    expect(field(created, 'Cadence')).toBe('`cron "30 2 * * *" (Europe/Berlin)`');
    expect(field(created, 'Next firings')?.split('\n')).toHaveLength(3);
    const record = await getSchedule(harness.core, 'nightly-web');
    expect(record).toMatchObject({ status: 'active', definition: { target: 'web-*', owner: { userId: admin.id }, channelId: null } });
    expect(await scheduleQueue(harness.core).getJobScheduler('nightly-web')).toMatchObject({ pattern: '30 2 * * *', tz: 'Europe/Berlin' });

    const shown = await answer(viewer, 'show', { name: 'nightly-web' });
    expect(title(shown)).toBe('📅 Schedule nightly-web · active');
    expect(field(shown, 'Target')).toBe('`web-*`');
    expect(field(shown, 'Keep')).toBe('`last=7,weekly=4`');
    expect(field(shown, 'Owner')).toBe(`<@${admin.id}>`);
    expect(description(shown)).toBe('“before \\*\\*backups\\*\\*”');
    const listed = await answer(viewer, 'list');
    expect(description(listed)).toMatch(/^\*\*nightly-web\*\* — active · `cron "30 2 \* \* \*" \(Europe\/Berlin\)` · keep `last=7,weekly=4` · `web-\*`$/m);
  });

  it('refuses a member without the schedule action, ephemerally, and stores nothing', async () => {
    const before = discord.channelMessages().length;
    const refused = await refusal(viewer, 'create', { name: 'sneaky', target: 'all', keep: 'last=1', cron: YEARLY });
    expect(refused.content).toMatch(/^\*\*FORBIDDEN\*\* — You are not allowed to do that\.\nYou are not allowed to schedule\./);
    expect(await getSchedule(harness.core, 'sneaky')).toBeNull();
    expect(await scheduleQueue(harness.core).getJobScheduler('sneaky')).toBeUndefined();
    expect(discord.channelMessages().length).toBe(before);
    // Managing someone else's schedule needs the action too (this test makes its own, so it does not lean on the ones before).
    await answer(admin, 'create', { name: 'not-yours', target: 'web-*', keep: 'last=1', cron: YEARLY });
    expect((await refusal(viewer, 'pause', { name: 'not-yours' })).content).toMatch(/^\*\*FORBIDDEN\*\*/);
    expect((await getSchedule(harness.core, 'not-yours'))?.status).toBe('active');
  });

  it('tells the creator what is wrong with a definition, privately', async () => {
    expect((await refusal(admin, 'create', { name: 'typo', target: 'web-*', keep: 'daily=7,daily=3', cron: YEARLY })).content).toMatch(/^\*\*VALIDATION\*\*.*daily/s);
    expect((await refusal(admin, 'create', { name: 'both', target: 'web-*', keep: 'last=1', cron: YEARLY, every: '1h' })).content).toMatch(/either a cron expression or an interval/);
    expect(await getSchedule(harness.core, 'typo')).toBeNull();
  });

  it('autocompletes the names of existing schedules, and the target from the inventory', async () => {
    await answer(admin, 'create', { name: 'hourly-db', target: 'db-01', keep: 'last=3', cron: YEARLY });
    const names = await discord.autocomplete(admin.id, 'schedule', [{ name: 'show', type: 1, options: [{ name: 'name', type: 3, value: 'ly', focused: true }] }]);
    expect(names.map((choice) => choice.value)).toEqual(['hourly-db', 'nightly-web']);
    expect(names[0]!.name).toBe('hourly-db — active · db-01');
    const nightly = await discord.autocomplete(admin.id, 'schedule', [{ name: 'run', type: 1, options: [{ name: 'name', type: 3, value: 'night', focused: true }] }]);
    expect(nightly.map((choice) => choice.value)).toEqual(['nightly-web']);
    const targets = await discord.autocomplete(admin.id, 'schedule', [
      { name: 'create', type: 1, options: [{ name: 'name', type: 3, value: 'x' }, { name: 'target', type: 3, value: 'host:kvm', focused: true }] },
    ]);
    expect(targets.map((choice) => choice.value)).toEqual(['host:kvm-a', 'host:kvm-b']);
  });

  it('/schedule run fires it at once; the firing post shows the snapshots taken, and retention prunes the older ones', async () => {
    await answer(admin, 'create', { name: 'web-pair', target: 'web-01 web-03', keep: 'last=1', cron: YEARLY, channel: { channel: guild.options.channelId } });
    expect((await getSchedule(harness.core, 'web-pair'))?.definition.channelId).toBe(guild.options.channelId);

    let posts = discord.channelMessages().length;
    const fired = await answer(admin, 'run', { name: 'web-pair' });
    expect(fired.content).toMatch(new RegExp(`^▶️ Schedule \\*\\*web-pair\\*\\* fired by <@${admin.id}> \\(\`manual-web-pair-\\d+\`\\); its summary is posted in <#${guild.options.channelId}> when it ends\\.$`));
    const first = await firingPost('web-pair', posts);
    expect(first.channelId).toBe(guild.options.channelId);
    expect(title(first)).toMatch(/^✅ Schedule web-pair · \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC$/);
    expect(description(first)).toBe('**2 taken** · 0 failed · 0 skipped\nRetention: pruned 0, kept 2');
    expect(first.content).toBe('');
    const [taken] = snapshotsOf(hosts['kvm-a'], 'web-01');
    expect(taken).toMatch(/^web-pair-\d{8}-\d{6}$/);
    expect(snapshotsOf(hosts['kvm-b'], 'web-03')).toEqual([taken]);

    // A second firing (a later second, so another name) keeps only the newest: last=1.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    posts = discord.channelMessages().length;
    await answer(admin, 'run', { name: 'web-pair' });
    const second = await firingPost('web-pair', posts);
    expect(description(second)).toBe('**2 taken** · 0 failed · 0 skipped\nRetention: pruned 2, kept 2');
    const kept = snapshotsOf(hosts['kvm-a'], 'web-01');
    expect(kept).toHaveLength(1);
    expect(kept[0]).not.toBe(taken);
    expect(snapshotsOf(hosts['kvm-b'], 'web-03')).toEqual(kept);
    expect((await getSchedule(harness.core, 'web-pair'))?.lastFiring).toMatchObject({ outcome: 'ok', pruned: 2 });
  });

  it('posts a failing firing with its failures first, mentions the owner, and says so loudly in a row and in /hosts', async () => {
    await answer(admin, 'create', { name: 'web-all', target: 'web-0*', keep: 'last=5', cron: YEARLY });
    hosts['kvm-a'].setFaults([
      { match: { subcommand: 'snapshot-create-as', domain: 'web-02' }, exitCode: 1, stderr: 'error: argument unsupported: QEMU guest agent is not configured\n' },
    ]);
    try {
      let posts = discord.channelMessages().length;
      await answer(admin, 'run', { name: 'web-all' });
      const first = await firingPost('web-all', posts);
      expect(title(first)).toMatch(/^⚠️ Schedule web-all · .* UTC · partial$/);
      expect(description(first)).toBe('**3 taken** · 1 failed · 0 skipped\nRetention: pruned 0, kept 3');
      expect(fieldNames(first)[0]).toBe('Failures (1)');
      expect(field(first, 'Failures (1)')).toMatch(/^❌ \*\*web-02\*\* @ kvm-a: \*\*UNSUPPORTED\*\*: /);
      expect(first.content).toBe(`<@${admin.id}> your schedule **web-all** had failures.`);
      // Only the owner may be pinged by it.
      const sent = discord.requests().find((request) => request.method === 'POST' && request.path === `/channels/${guild.options.channelId}/messages` && JSON.stringify(request.body).includes('your schedule **web-all**'));
      expect((sent?.body as { allowed_mentions?: unknown }).allowed_mentions).toEqual({ users: [admin.id] });

      posts = discord.channelMessages().length;
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      await answer(admin, 'run', { name: 'web-all' });
      const second = await firingPost('web-all', posts);
      expect(description(second).split('\n')[0]).toBe('🚨 **Failed 2 times in a row.**');
      expect(second.content).toBe(`<@${admin.id}> your schedule **web-all** failed 2 times in a row.`);
    } finally {
      hosts['kvm-a'].setFaults([]);
    }

    const handle = await discord.slashCommand(viewer.id, 'hosts');
    const view = await handle.waitForOriginal((message) => title(message) === 'KVM hosts', 15_000);
    expect(field(view, 'Failing schedules (1)')).toMatch(/^🚨 \*\*web-all\*\* failed 2 times in a row, last <t:\d+:R>$/);
  });

  it('pauses, resumes and deletes a schedule, leaving its snapshots', async () => {
    const paused = await answer(admin, 'pause', { name: 'web-pair' });
    expect(paused.content).toBe(`⏸️ Schedule **web-pair** paused by <@${admin.id}>; \`/schedule resume\` starts it again.`);
    expect(await scheduleQueue(harness.core).getJobScheduler('web-pair')).toBeUndefined();
    expect((await refusal(admin, 'pause', { name: 'web-pair' })).content).toMatch(/^\*\*VALIDATION\*\*.*paused, not active/s);
    expect((await answer(admin, 'resume', { name: 'web-pair' })).content).toMatch(/^▶️ Schedule \*\*web-pair\*\* resumed by <@\d+>; next firing <t:\d+:R>\.$/);
    expect(await scheduleQueue(harness.core).getJobScheduler('web-pair')).toBeTruthy();
    const snapshots = snapshotsOf(hosts['kvm-a'], 'web-01');
    expect((await answer(admin, 'delete', { name: 'web-pair' })).content).toBe(`🗑️ Schedule **web-pair** deleted by <@${admin.id}>; its snapshots were left as they are.`);
    expect(await getSchedule(harness.core, 'web-pair')).toBeNull();
    expect(await scheduleQueue(harness.core).getJobScheduler('web-pair')).toBeUndefined();
    expect(snapshotsOf(hosts['kvm-a'], 'web-01')).toEqual(snapshots);
    expect((await refusal(admin, 'show', { name: 'web-pair' })).content).toMatch(/^\*\*VALIDATION\*\*.*No schedule named web-pair/s);
  });
});

describe('/schedule under the default policy (deletes need an approval)', () => {
  let harness: BotUnderTest;
  beforeAll(async () => {
    harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, discord, sweepIntervalMs: 300 });
  });
  afterAll(async () => harness?.stop());

  /** Creates `name` as the admin and returns the approval request posted in the channel. */
  async function requestFor(name: string, target: string): Promise<FakeMessage> {
    const created = await answer(admin, 'create', { name, target, keep: 'last=2', cron: YEARLY });
    expect(title(created)).toBe(`📅 Schedule ${name} · waiting for approval`);
    expect(description(created)).toMatch(/^🔐 Created by <@\d+>; its target matches \d+ VMs? now\. It fires once approved \(its retention deletes snapshots of .*\): http\S+ — expires <t:\d+:R>\.$/);
    return discord.waitForChannelMessage((message) => title(message) === `🔐 Approval needed: schedule ${name}`, 15_000);
  }

  it('posts an approval request; the requester cannot approve it; a second administrator activates the schedule', async () => {
    const request = await requestFor('nightly-db', 'db-01');
    expect(field(request, 'Requested by')).toBe(`<@${admin.id}>`);
    expect(field(request, 'Target')).toBe('`db-01`');
    expect(field(request, 'Cadence')).toBe(`\`cron "${YEARLY}" (UTC)\``);
    expect(field(request, 'VMs matched')).toMatch(/^1 now/);
    expect(field(request, 'Why approval')).toBe('its retention deletes snapshots of db-01, and deletes there need 1 approval(s)');
    const record = await getSchedule(harness.core, 'nightly-db');
    expect(record?.status).toBe('pending');
    expect(await scheduleQueue(harness.core).getJobScheduler('nightly-db')).toBeUndefined();
    const approvalId = record!.approvalId!;

    const self = await discord.clickButton(admin.id, request, customId(request, /"custom_id":"(approval:[^"]+:approve)"/));
    await until(() => self.followUps().length > 0);
    expect(self.followUps()[0]!.content).toContain('someone else must approve');
    expect(self.followUps()[0]!.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect((await getSchedule(harness.core, 'nightly-db'))?.status).toBe('pending');

    await discord.clickButton(secondAdmin.id, request, `approval:${approvalId}:approve`);
    await until(() => title(request) === '🔐 Approval approved: schedule nightly-db');
    expect(description(request)).toBe(`Approved by <@${secondAdmin.id}> — schedule **nightly-db** is active.`);
    expect(field(request, 'Approvals')).toBe(`1 of 1: <@${secondAdmin.id}> (approvers: administrators; not the requester)`);
    expect(JSON.stringify(request.components)).toMatch(/"disabled":true.*"disabled":true/);
    expect((await getSchedule(harness.core, 'nightly-db'))?.status).toBe('active');
    expect(await scheduleQueue(harness.core).getJobScheduler('nightly-db')).toMatchObject({ pattern: YEARLY, tz: 'UTC' });
  });

  it('leaves a denied schedule idle, and deleting a pending one closes its request', async () => {
    const denied = await requestFor('denied-web', 'web-01');
    await discord.clickButton(secondAdmin.id, denied, customId(denied, /"custom_id":"(approval:[^"]+:deny)"/));
    await until(() => title(denied) === '🔐 Approval denied: schedule denied-web');
    expect(description(denied)).toBe(`Denied: the schedule does not fire (denied by <@${secondAdmin.id}>).`);
    expect((await getSchedule(harness.core, 'denied-web'))?.status).toBe('denied');
    expect(await scheduleQueue(harness.core).getJobScheduler('denied-web')).toBeUndefined();

    const withdrawn = await requestFor('withdrawn-web', 'web-03');
    await answer(admin, 'delete', { name: 'withdrawn-web' });
    await until(() => title(withdrawn) === '🔐 Approval withdrawn: schedule withdrawn-web');
    expect(JSON.stringify(withdrawn.components)).toMatch(/"disabled":true.*"disabled":true/);
  });
});
