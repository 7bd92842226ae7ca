import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confirmFleet, fleetSummary, planFleet } from '../../bot/core/fleet/index.js';
import { policySchema, type Policy } from '../../shared/policy.js';
import { FakeDiscord, snowflake, type FakeCommandOption, type FakeMessage, type FakeUser } from '../fixtures/fake-discord/fake-discord.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { guildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

/**
 * /fleet as users meet it: the real discord.js client against the fake Discord, a real
 * Redis, and one real worker process per KVM host, each on its own fake virsh. kvm-a and
 * kvm-b are online; kvm-c has reported once and gone offline.
 */
const EPHEMERAL = 64;
const base = guildFixture();
const secondAdmin: FakeUser = { id: snowflake(), username: 'grace', roles: [base.adminRole.id] };
const guild = guildFixture({ ...base.options, users: [...base.options.users, secondAdmin] });
const { admin, viewer } = base;

let redis: TestRedis;
let prefix: string;
let discord: FakeDiscord;
const hosts: Record<'kvm-a' | 'kvm-b' | 'kvm-c', FakeVirshHost> = {} as Record<'kvm-a' | 'kvm-b' | 'kvm-c', FakeVirshHost>;
const workers: SpawnedProcess[] = [];

/** Admins may do everything, everyone may look; at most two jobs of a run at once per host. */
function fleetPolicy(approval: Record<string, unknown> = {}): Policy {
  return policySchema.parse({
    rules: [
      { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
      { role: '@everyone', actions: ['list', 'info', 'hosts', 'audit'] },
    ],
    fleet: { perHost: 2, approval },
  });
}

const sub = (name: string, options: Record<string, string>): FakeCommandOption[] => [
  { name, type: 1, options: Object.entries(options).map(([option, value]) => ({ name: option, type: 3, value })) },
];

function embedOf(message: FakeMessage | undefined, index = 0): Record<string, unknown> {
  return ((message?.embeds ?? []) as Array<Record<string, unknown>>)[index] ?? {};
}

/** The summary is the last embed (an approved run has the approval note above it). */
const summaryEmbed = (message: FakeMessage) => embedOf(message, message.embeds.length - 1);
const title = (message: FakeMessage) => String(summaryEmbed(message).title ?? '');
const description = (message: FakeMessage) => String(summaryEmbed(message).description ?? '');

function field(message: FakeMessage, name: string | RegExp, index?: number): string {
  const fields = (embedOf(message, index ?? message.embeds.length - 1).fields ?? []) as Array<{ name: string; value: string }>;
  return fields.find((candidate) => (typeof name === 'string' ? candidate.name === name : name.test(candidate.name)))?.value ?? '';
}

function customId(message: FakeMessage, pattern: RegExp): string {
  const found = pattern.exec(JSON.stringify(message.components));
  if (!found) throw new Error(`no button ${pattern} in ${JSON.stringify(message.components)}`);
  return found[1]!;
}

const runIdOf = (preview: FakeMessage) => customId(preview, /"custom_id":"fleet:([0-9a-f]+):confirm"/);

function createCalls(name: string, host?: FakeVirshHost): number {
  const fakes = host ? [host] : Object.values(hosts);
  return fakes.flatMap((fake) => fake.calls()).filter((call) => call.argv.includes('snapshot-create-as') && call.argv.includes(`--name=${name}`)).length;
}

const deleteCalls = () => Object.values(hosts).flatMap((fake) => fake.calls()).filter((call) => call.argv.includes('snapshot-delete')).length;

const snapshotsOf = (host: FakeVirshHost, vm: string) => host.domain(vm).snapshots.map((snapshot) => snapshot.name);

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs /fleet and waits for the preview. */
async function preview(user: FakeUser, action: 'snapshot' | 'delete', options: Record<string, string>): Promise<FakeMessage> {
  const handle = await discord.slashCommand(user.id, 'fleet', sub(action, options));
  const message = await handle.waitForOriginal((candidate) => String(embedOf(candidate).title).endsWith('— preview'), 15_000);
  expect(handle.callbacks()[0]?.type).toBe(5);
  expect(handle.ackLatencyMs()).toBeLessThan(3_000);
  return message;
}

/** The channel message that shows run `runId` (its summary, or its approval request). */
function runMessage(runId: string): Promise<FakeMessage> {
  return discord.waitForChannelMessage((message) => JSON.stringify(message.embeds).includes(runId), 15_000);
}

const isFinal = (message: FakeMessage) => /^(✅|⚠️|❌|🛑) Fleet .* · (done|cancelled|failed|\d+ failed)$/u.test(title(message));

/** Confirms a preview as `user` and returns the live summary message once it is final. */
async function confirmAndFinish(user: FakeUser, previewMessage: FakeMessage, timeoutMs = 30_000): Promise<FakeMessage> {
  const runId = runIdOf(previewMessage);
  const click = await discord.clickButton(user.id, previewMessage, `fleet:${runId}:confirm`);
  expect((await click.waitForCallback()).type).toBe(6);
  const summary = await runMessage(runId);
  await until(() => isFinal(summary), timeoutMs);
  return summary;
}

beforeAll(async () => {
  redis = await startTestRedis();
  prefix = uniquePrefix('discord-fleet');
  hosts['kvm-a'] = await FakeVirshHost.create();
  hosts['kvm-b'] = await FakeVirshHost.create();
  hosts['kvm-c'] = await FakeVirshHost.create();
  for (const vm of ['web-01', 'web-02', 'web-03', 'web-04', 'db-01']) hosts['kvm-a'].addDomain({ name: vm });
  for (const vm of ['web-05', 'web-06', 'web-07']) hosts['kvm-b'].addDomain({ name: vm });
  for (let index = 0; index < 20; index += 1) hosts['kvm-b'].addDomain({ name: `lab-${String(index).padStart(2, '0')}`, state: 'shut off' });
  for (const vm of ['web-08', 'web-09']) hosts['kvm-c'].addDomain({ name: vm });
  // web-02 already holds the name the first fleet snapshot uses.
  const web02 = hosts['kvm-a'].domain('web-02').uuid;
  await promisify(execFile)(hosts['kvm-a'].path, ['snapshot-create-as', `--domain=${web02}`, '--name=pre-rollout'], { env: { ...process.env, ...hosts['kvm-a'].env } });
  // Longer than the helper's crash-test timings: this file has no crashes, and on a busy
  // machine a 1.5 s heartbeat TTL or a 2 s job lock lapses for no reason.
  // INVENTORY_INTERVAL_MS at its production default: kvm-b has 23 VMs, and re-reading them
  // every 5 s (the helper's test timing) with a Node process per fake virsh call keeps a
  // 2-core machine busy with inventory reads alone; jobs keep the inventory current anyway.
  const env = { HEARTBEAT_TTL_MS: '5000', JOB_LOCK_MS: '15000', JOB_STALLED_CHECK_MS: '5000', INVENTORY_INTERVAL_MS: '30000' };
  for (const hostId of ['kvm-a', 'kvm-b', 'kvm-c'] as const) workers.push(await startWorkerProcess({ redisUrl: redis.url, prefix, hostId, fake: hosts[hostId], env }));
  // kvm-c reported its inventory, then its worker stopped: offline.
  await workers.pop()!.stop();
  discord = await FakeDiscord.start(guild.options);
}, 120_000);

afterAll(async () => {
  await discord?.stop();
  for (const worker of workers) await worker.stop();
  for (const fake of Object.values(hosts)) await fake?.dispose();
  await redis?.stop();
});

describe('/fleet with the default approval rules', () => {
  let harness: BotUnderTest;
  beforeAll(async () => {
    harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: fleetPolicy(), discord, editIntervalMs: 1_000, sweepIntervalMs: 300 });
  });
  afterAll(async () => harness?.stop());

  it('registers /fleet with snapshot, delete and list', () => {
    const fleet = (discord.registeredCommands('guild') as Array<{ name: string; options?: Array<{ name: string; options?: Array<{ name: string }> }> }>).find(
      (command) => command.name === 'fleet',
    )!;
    expect(fleet.options!.map((subcommand) => [subcommand.name, subcommand.options!.map((option) => option.name)])).toEqual([
      ['snapshot', ['target', 'name', 'mode', 'description']],
      ['delete', ['target', 'name']],
      ['list', ['target', 'name']],
    ]);
  });

  it('autocompletes the last word of the selector from the inventory', async () => {
    const choices = await discord.autocomplete(admin.id, 'fleet', [
      { name: 'snapshot', type: 1, options: [{ name: 'target', type: 3, value: 'web-* !host:kvm', focused: true }] },
    ]);
    expect(choices.map((choice) => choice.value)).toEqual(['web-* !host:kvm-a', 'web-* !host:kvm-b', 'web-* !host:kvm-c']);
  });

  it('previews per-host counts, names the offline host, skips VMs that hold the name, and queues nothing', async () => {
    const message = await preview(admin, 'snapshot', { target: 'web-*', name: 'pre-rollout' });
    expect(String(embedOf(message).title)).toBe('Fleet snapshot · pre-rollout — preview');
    const text = String(embedOf(message).description);
    expect(text).toContain('**6 VMs on 2 hosts** — snapshot `pre-rollout`, disk-only');
    expect(text).toMatch(/kvm-a\s+3\s+web-01, web-03, web-04/);
    expect(text).toMatch(/kvm-b\s+3\s+web-05, web-06, web-07/);
    expect(field(message, 'Excluded: 1 offline host')).toMatch(/^📴 \*\*kvm-c\*\* — last seen <t:\d+:R>; 2 VMs not included$/);
    expect(field(message, 'Skipped: 1 VM already holds the name')).toBe('web-02 @ kvm-a');
    expect(field(message, 'Approval')).toBe('Not needed: the run starts when you confirm.');
    expect(customId(message, /"custom_id":"(fleet:[0-9a-f]+:cancel)"/)).toMatch(/^fleet:/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(createCalls('pre-rollout')).toBe(1); // only the one made before the test
  });

  it('lets only the requester confirm; then the live summary reaches the final state, edited about once a second', async () => {
    for (const fake of [hosts['kvm-a'], hosts['kvm-b']]) fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 700 }]);
    try {
      const message = await preview(admin, 'snapshot', { target: 'web-*', name: 'pre-rollout' });
      const runId = runIdOf(message);
      const stranger = await discord.clickButton(secondAdmin.id, message, `fleet:${runId}:confirm`);
      await until(() => stranger.followUps().length > 0);
      expect(stranger.followUps()[0]!.flags & EPHEMERAL).toBe(EPHEMERAL);
      expect(stranger.followUps()[0]!.content).toMatch(/^\*\*FORBIDDEN\*\*.*Only ada, who asked for this run, can confirm it/s);
      expect(createCalls('pre-rollout')).toBe(1);

      const startedAt = Date.now();
      const summary = await confirmAndFinish(admin, message);
      const wallMs = Date.now() - startedAt;
      expect(String(embedOf(message).description)).toMatch(/^▶️ Started by <@\d+>; live summary: http/);
      expect(message.components).toEqual([]);
      expect(title(summary)).toBe('✅ Fleet snapshot · pre-rollout · done');
      expect(description(summary)).toMatch(/^\*\*6\/6 done\*\*\n▰{20} 100%\nTook \d+\.\d s/);
      expect(description(summary)).toMatch(/kvm-a\s+3\s+0\s+0\s+0\s+0\s+0\nkvm-b\s+3\s+0/);
      expect(field(summary, 'VMs').split('\n')).toHaveLength(6);
      expect(summary.components).toEqual([]);
      for (const vm of ['web-01', 'web-02', 'web-03', 'web-04']) expect(snapshotsOf(hosts['kvm-a'], vm)).toEqual(['pre-rollout']);
      for (const vm of ['web-05', 'web-06', 'web-07']) expect(snapshotsOf(hosts['kvm-b'], vm)).toEqual(['pre-rollout']);
      expect(createCalls('pre-rollout')).toBe(7);

      const lifeMs = summary.history.at(-1)!.at - summary.history[0]!.at;
      console.log(`fleet summary: ${summary.edits} edits over ${(lifeMs / 1000).toFixed(1)} s of summary life, ${(wallMs / 1000).toFixed(1)} s from Confirm to final`);
      expect(summary.edits).toBeGreaterThanOrEqual(1);
      expect(summary.edits).toBeLessThanOrEqual(Math.ceil(lifeMs / 1000) + 2);
      const gaps = summary.history.slice(1).map((version, index) => version.at - summary.history[index]!.at);
      // The final state goes out at once; the others are at least a second apart (minus timer slack).
      expect(gaps.slice(0, -1).every((gap) => gap >= 900), JSON.stringify(gaps)).toBe(true);
    } finally {
      for (const fake of Object.values(hosts)) fake.setFaults([]);
    }
  });

  it('cancels mid-run: targets that had not started are reported cancelled and never run', async () => {
    for (const fake of [hosts['kvm-a'], hosts['kvm-b']]) fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 1_500 }]);
    try {
      const message = await preview(admin, 'snapshot', { target: 'web-* lab-0*', name: 'slow-cancel' });
      expect(String(embedOf(message).description)).toContain('**17 VMs on 2 hosts**');
      const runId = runIdOf(message);
      await discord.clickButton(admin.id, message, `fleet:${runId}:confirm`);
      const summary = await runMessage(runId);
      await until(() => /\d+ running/.test(description(summary)), 10_000);
      const cancel = await discord.clickButton(admin.id, summary, `fleet:${runId}:cancel`);
      expect((await cancel.waitForCallback()).type).toBe(6);
      await until(() => isFinal(summary), 20_000);
      expect(title(summary)).toBe('🛑 Fleet snapshot · slow-cancel · cancelled');
      expect(field(summary, 'Cancelled by')).toBe(`<@${admin.id}>`);

      const final = (await fleetSummary(harness.core, runId))!;
      expect(final.counts.cancelled).toBeGreaterThanOrEqual(17 - 4 - 2); // at most two per host had started, plus a round in flight
      expect(final.counts.done + final.counts.failed + final.counts.cancelled).toBe(17);
      console.log(`fleet cancel: ${final.counts.done} done, ${final.counts.cancelled} cancelled of 17 in ${(final.durationMs / 1000).toFixed(1)} s`);
      expect(description(summary)).toContain(`${final.counts.cancelled} cancelled`);
      expect(String(summaryEmbed(summary).title)).not.toContain('running');
      // Nothing cancelled ever ran, also later.
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(createCalls('slow-cancel')).toBe(final.counts.done + final.counts.failed);
      const cancelled = final.targets.filter((target) => target.state.state === 'cancelled');
      for (const target of cancelled) expect(snapshotsOf(hosts[target.host as 'kvm-a' | 'kvm-b'], target.vm)).not.toContain('slow-cancel');
      // A long run's final summary carries every VM's result as a file.
      expect(summary.attachments.map((attachment) => attachment.filename)).toEqual([`fleet-${runId}.txt`]);
      const report = summary.attachments[0]!.data.toString();
      expect(report.split('\n').filter((line) => /^cancelled\s/.test(line))).toHaveLength(final.counts.cancelled);
    } finally {
      for (const fake of Object.values(hosts)) fake.setFaults([]);
    }
  });

  it('shows a failure with its code, and "Retry failed" previews and runs only the failed VMs', async () => {
    hosts['kvm-b'].setFaults([
      { match: { subcommand: 'snapshot-create-as', domain: 'web-06' }, exitCode: 1, stderr: 'error: argument unsupported: QEMU guest agent is not configured\n', times: 1 },
    ]);
    const message = await preview(admin, 'snapshot', { target: 'web-05 web-06', name: 'retry-me' });
    const runId = runIdOf(message);
    const summary = await confirmAndFinish(admin, message);
    expect(title(summary)).toBe('⚠️ Fleet snapshot · retry-me · 1 failed');
    expect(field(summary, 'Failures (1)')).toMatch(/^❌ \*\*web-06\*\* @ kvm-b — \*\*UNSUPPORTED\*\*: /);
    expect(field(summary, 'VMs').split('\n')[0]).toBe('❌ web-06 @ kvm-b — UNSUPPORTED');

    const retry = await discord.clickButton(admin.id, summary, customId(summary, /"custom_id":"(fleet:[0-9a-f]+:retry)"/));
    expect((await retry.waitForCallback()).type).toBe(5);
    const retryPreview = await retry.waitForOriginal((candidate) => String(embedOf(candidate).title).endsWith('— preview'), 10_000);
    expect(String(embedOf(retryPreview).description)).toContain('**1 VM on 1 host**');
    expect(String(embedOf(retryPreview).description)).toContain(`retrying the failures of run \`${runId}\``);
    const retried = await confirmAndFinish(admin, retryPreview);
    expect(title(retried)).toBe('✅ Fleet snapshot · retry-me · done');
    expect(snapshotsOf(hosts['kvm-b'], 'web-06')).toContain('retry-me');
    expect(createCalls('retry-me', hosts['kvm-b'])).toBe(3); // web-05, web-06 failed, web-06 again
  });

  it('asks for approval for a fleet delete; the requester cannot approve, another admin starts it', async () => {
    const message = await preview(admin, 'delete', { target: 'web-*', name: 'pre-rollout' });
    expect(String(embedOf(message).description)).toContain('**7 snapshots on 2 hosts** — delete snapshots matching `pre-rollout`');
    expect(field(message, 'Approval')).toBe('**Needed** (fleet deletes need approval): 1 approval from administrators, not the requester, within 15 min of confirming.');
    const runId = runIdOf(message);
    await discord.clickButton(admin.id, message, `fleet:${runId}:confirm`);
    const request = await runMessage(runId);
    expect(String(embedOf(request).title)).toBe('🔐 Approval needed: fleet delete of 7 targets');
    await until(() => String(embedOf(message).description).startsWith('🔐 Confirmed by'));
    expect(String(embedOf(message).description)).toContain(request.id);

    const self = await discord.clickButton(admin.id, request, `approval:${runId}:approve`);
    await until(() => self.followUps().length > 0);
    expect(self.followUps()[0]!.content).toContain('someone else must approve');
    const stranger = await discord.clickButton(viewer.id, request, `approval:${runId}:approve`);
    await until(() => stranger.followUps().length > 0);
    expect(stranger.followUps()[0]!.content).toMatch(/^\*\*FORBIDDEN\*\*/);
    expect(stranger.followUps()[0]!.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(hosts['kvm-a'].calls().some((call) => call.argv.includes('snapshot-delete'))).toBe(false);

    await discord.clickButton(secondAdmin.id, request, `approval:${runId}:approve`);
    await until(() => isFinal(request), 30_000);
    expect(title(request), field(request, /^Failures/)).toBe('✅ Fleet delete · pre-rollout · done');
    expect(embedOf(request, 0)).toMatchObject({ title: '🔐 Approved', description: `Approved by <@${secondAdmin.id}> (fleet deletes need approval).` });
    for (const vm of ['web-01', 'web-02', 'web-03', 'web-04']) expect(snapshotsOf(hosts['kvm-a'], vm)).not.toContain('pre-rollout');
    for (const vm of ['web-05', 'web-06', 'web-07']) expect(snapshotsOf(hosts['kvm-b'], vm)).not.toContain('pre-rollout');
  });

  it('posts a fleet request opened from snapctl, and runs it once approved in Discord', async () => {
    const plan = await planFleet(harness.core, {
      action: 'delete',
      target: 'web-05',
      name: 'retry-me',
      requester: { id: 'snapctl:ops@box', userId: null, displayName: 'ops@box' },
      origin: 'snapctl',
    });
    expect((await confirmFleet(harness.core, plan.id)).kind).toBe('pending');
    const request = await runMessage(plan.id);
    expect(field(request, 'Requested by', 0)).toBe('snapctl:ops@box');
    await discord.clickButton(secondAdmin.id, request, `approval:${plan.id}:approve`);
    await until(() => isFinal(request), 30_000);
    expect(snapshotsOf(hosts['kvm-b'], 'web-05')).not.toContain('retry-me');
  });

  it('refuses a member the policy does not allow, ephemerally, and queues nothing', async () => {
    const before = discord.channelMessages().length;
    const handle = await discord.slashCommand(viewer.id, 'fleet', sub('snapshot', { target: 'all', name: 'sneaky' }));
    await until(() => handle.followUps().length > 0);
    expect(handle.followUps()[0]!.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(handle.followUps()[0]!.content).toMatch(/^\*\*FORBIDDEN\*\* — You are not allowed to do that\.\nYou are not allowed to create/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(createCalls('sneaky')).toBe(0);
    expect(discord.channelMessages().length).toBe(before);
  });

  it('discards a preview on Cancel: nothing is queued', async () => {
    const message = await preview(admin, 'snapshot', { target: 'db-01', name: 'never' });
    const runId = runIdOf(message);
    await discord.clickButton(admin.id, message, `fleet:${runId}:cancel`);
    await until(() => String(embedOf(message).description).startsWith('🗑️ Cancelled by'));
    expect(message.components).toEqual([]);
    expect(createCalls('never')).toBe(0);
  });

  it('lists which VMs hold which snapshots, paged, with the whole table attached', async () => {
    const handle = await discord.slashCommand(viewer.id, 'fleet', sub('list', { target: 'lab-* web-*' }));
    const message = await handle.waitForOriginal((candidate) => String(embedOf(candidate).title).startsWith('Fleet snapshots'), 10_000);
    // The selector is text, escaped for Discord (which drops the backslashes).
    expect(String(embedOf(message).title)).toBe('Fleet snapshots · lab-\\* web-\\*');
    expect(embedOf(message).footer).toMatchObject({ text: expect.stringMatching(/^29 VM\(s\) on 3 host\(s\), \d+ with snapshots · page 1\/2$/) });
    expect(String(embedOf(message).description)).toMatch(/VM\s+HOST\s+SNAPSHOTS\nlab-00\s+kvm-b\s/);
    expect(message.attachments.map((attachment) => attachment.filename)).toEqual(['fleet-snapshots.txt']);
    const file = message.attachments[0]!.data.toString();
    expect(file).toMatch(/web-06\s+kvm-b\s+yes\s+running\s+.*retry-me/);
    expect(file).toMatch(/web-08\s+kvm-c\s+no\s/);
    const next = await discord.clickButton(viewer.id, message, customId(message, /"custom_id":"(fleet-list:[0-9a-f]+:1)"/));
    // Acknowledged at once (deferUpdate), then the page is edited in.
    expect((await next.waitForCallback()).type).toBe(6);
    await until(() => String((embedOf(message).footer as { text?: string } | undefined)?.text ?? '').includes('page 2/2'));
    expect(String(embedOf(message).description)).toMatch(/web-08\s+kvm-c \(offline\)/);
  });
});

describe('fleet approval expiry', () => {
  it('is enforced by the sweeper: the buttons are disabled and nothing runs', async () => {
    const harness = await startBotUnderTest({
      options: guild.options,
      redisUrl: redis.url,
      prefix,
      policy: fleetPolicy({ ttlMinutes: 0.03 }),
      discord,
      sweepIntervalMs: 200,
    });
    try {
      const deletesBefore = deleteCalls();
      const message = await preview(admin, 'delete', { target: 'web-0*', name: '*' });
      const runId = runIdOf(message);
      await discord.clickButton(admin.id, message, `fleet:${runId}:confirm`);
      const request = await runMessage(runId);
      await until(() => /"disabled":true/.test(JSON.stringify(request.components)), 10_000);
      expect(String(embedOf(request).title)).toMatch(/^🔐 Approval expired: fleet delete of \d+ targets$/);
      expect(String(embedOf(request).description)).toMatch(/^Expired: nothing was done\./);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(deleteCalls()).toBe(deletesBefore);
    } finally {
      await harness.stop();
    }
  });
});

describe('a bot restart in the middle of a run', () => {
  it('loses nothing: the next bot adopts the run and brings the same summary message to its end', async () => {
    for (const fake of [hosts['kvm-a'], hosts['kvm-b']]) fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 2_500 }]);
    const first = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: fleetPolicy(), discord, sweepIntervalMs: 300 });
    let second: BotUnderTest | undefined;
    let firstStopped = false;
    try {
      const message = await preview(admin, 'snapshot', { target: 'web-0*', name: 'survivor' });
      expect(String(embedOf(message).description)).toContain('**7 VMs on 2 hosts**');
      const runId = runIdOf(message);
      await discord.clickButton(admin.id, message, `fleet:${runId}:confirm`);
      const summary = await runMessage(runId);
      await until(() => /running/.test(description(summary)), 10_000);
      await first.stop();
      firstStopped = true;
      const editsAtStop = summary.edits;
      const stoppedAt = Date.now();
      second = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy: fleetPolicy(), discord, sweepIntervalMs: 300 });
      await until(() => summary.edits > editsAtStop, 20_000);
      const adoptedAfterMs = Date.now() - stoppedAt;
      await until(() => isFinal(summary), 40_000);
      console.log(`fleet restart: the new bot edited the summary ${(adoptedAfterMs / 1000).toFixed(1)} s after the old one stopped; ${summary.edits - editsAtStop} edit(s) by it`);
      expect(title(summary), field(summary, /^Failures/)).toBe('✅ Fleet snapshot · survivor · done');
      expect(description(summary)).toMatch(/^\*\*7\/7 done\*\*/);
      expect(discord.channelMessages().filter((candidate) => JSON.stringify(candidate.embeds).includes(runId))).toHaveLength(1);
      for (const vm of ['web-01', 'web-02', 'web-03', 'web-04']) expect(snapshotsOf(hosts['kvm-a'], vm)).toContain('survivor');
      for (const vm of ['web-05', 'web-06', 'web-07']) expect(snapshotsOf(hosts['kvm-b'], vm)).toContain('survivor');
      expect(createCalls('survivor')).toBe(7);
    } finally {
      for (const fake of Object.values(hosts)) fake.setFaults([]);
      await second?.stop();
      if (!firstStopped) await first.stop();
    }
  }, 90_000);
});
