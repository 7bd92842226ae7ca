/**
 * snapbot serves one server (DISCORD_GUILD_ID), and the policy matches roles by id.
 * The real discord.js client against the fake Discord, in which the bot is also in
 * another server (it is public: anyone can add it) with roles of the same names; a real
 * Redis and worker underneath. Nothing from another server or from a DM reaches core;
 * a role name in the policy stands for the one role of that name in DISCORD_GUILD_ID at
 * start, or for nobody.
 */
import { MessageFlags, type TextChannel } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getApproval } from '../../bot/core/approvals.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { startBot } from '../../bot/discord/bot.js';
import { COMMAND_DEFINITIONS } from '../../bot/discord/commands/index.js';
import { COLOR } from '../../bot/discord/render/colors.js';
import { createLogger } from '../../shared/logger.js';
import { policySchema } from '../../shared/policy.js';
import { FakeDiscord, Permission, snowflake, type FakeCommandOption, type FakeMessage, type FakeUser } from '../fixtures/fake-discord/fake-discord.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { guildFixture, otherGuildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

const EPHEMERAL = MessageFlags.Ephemeral;
const HOST = 'kvm-g';

// The served server: the fixture's kvm-admins (ada), kvm-operators (otto), vera with no role;
// plus a role named in the policy by id, two roles sharing one name, a second admin, and mia.
const base = guildFixture();
const byIdRole = { id: snowflake(), name: 'id-team', permissions: Permission.SendMessages };
const twinOne = { id: snowflake(), name: 'twins', permissions: Permission.SendMessages };
const twinTwo = { id: snowflake(), name: 'twins', permissions: Permission.SendMessages };
const ivan: FakeUser = { id: snowflake(), username: 'ivan', roles: [byIdRole.id] };
const tess: FakeUser = { id: snowflake(), username: 'tess', roles: [twinOne.id] };
const alan: FakeUser = { id: snowflake(), username: 'alan', roles: [base.adminRole.id] };
const mia: FakeUser = { id: snowflake(), username: 'mia', roles: [] };
// Another server with the bot in it: its Administrator, and roles named like ours.
const other = otherGuildFixture();
const guild = guildFixture({
  ...base.options,
  roles: [...base.options.roles, byIdRole, twinOne, twinTwo],
  users: [...base.options.users, ivan, tess, alan, mia],
  otherGuilds: [other.guild],
});
const { admin: ada, operator: otto } = base;
const inOther = { guildId: other.guild.id };

const policy = policySchema.parse({
  rules: [
    { role: '@administrators', actions: ['create', 'list', 'info', 'revert', 'delete', 'hosts', 'audit'] },
    { role: 'kvm-operators', actions: ['create', 'list', 'info'] },
    { role: byIdRole.id, actions: ['create', 'list', 'info'] },
    { role: 'twins', actions: ['create', 'list', 'info'] },
    { role: '@everyone', actions: ['list', 'info', 'hosts', 'audit'] },
  ],
  approvals: [{ actions: ['revert', 'delete'], approvers: ['kvm-admins'] }],
});

let redis: TestRedis;
let virsh: FakeVirshHost;
let worker: SpawnedProcess;
let harness: BotUnderTest;
const logs: Array<{ level: number; msg: string; [key: string]: unknown }> = [];

const sub = (name: string, options: Record<string, string> = {}): FakeCommandOption[] => [
  { name, type: 1, options: Object.entries(options).map(([option, value]) => ({ name: option, type: 3, value })) },
];
const vmFocus = (value: string): FakeCommandOption[] => [{ name: 'create', type: 1, options: [{ name: 'vm', type: 3, value, focused: true }] }];
const embedOf = (message: FakeMessage | undefined): Record<string, unknown> => ((message?.embeds ?? []) as Array<Record<string, unknown>>)[0] ?? {};
const isFinal = (message: FakeMessage) => embedOf(message).color !== undefined && embedOf(message).color !== COLOR.progress;
const createCalls = () => virsh.calls().filter((call) => call.argv.includes('snapshot-create-as'));

/** Every job BullMQ holds for the host, in any state. */
async function jobsOnHost(): Promise<number> {
  const counts = await harness.core.queueFor(HOST).getJobCounts();
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The bot's answer to an interaction refused for coming from elsewhere: one ephemeral reply, at once. */
async function expectOutsiderRefusal(handle: { waitForCallback(timeoutMs?: number): Promise<{ type: number; data?: unknown }>; callbacks(): unknown[]; followUps(): FakeMessage[] }) {
  const callback = await handle.waitForCallback();
  expect(callback.type).toBe(4);
  const data = callback.data as { content: string; flags: number };
  expect(data.flags & EPHEMERAL).toBe(EPHEMERAL);
  expect(data.content).toMatch(/^\*\*FORBIDDEN\*\*/);
  expect(data.content).toContain('snapbot serves only its own server');
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(handle.callbacks()).toHaveLength(1);
  expect(handle.followUps()).toEqual([]);
}

beforeAll(async () => {
  redis = await startTestRedis();
  virsh = await FakeVirshHost.create();
  virsh.addDomain({ name: 'web-01', state: 'running' });
  const prefix = uniquePrefix('guild');
  worker = await startWorkerProcess({ redisUrl: redis.url, prefix, hostId: HOST, fake: virsh });
  const logger = createLogger('snapbot-guild-test', 'warn', { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) });
  harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix, policy, editIntervalMs: 300, logger });
  // Commands registered globally as well (an earlier `npm run register` without a guild did
  // that): members of the other server can run them there, as on Discord.
  await harness.bot.client.application!.commands.set([...COMMAND_DEFINITIONS]);
  await until(async () => (await harness.fake.autocomplete(ada.id, 'snapshot', vmFocus('web'))).length > 0);
}, 120_000);

afterAll(async () => {
  await harness?.stop();
  await worker?.stop();
  await virsh?.dispose();
  await redis?.stop();
});

describe('interactions from another server', () => {
  it('refuses /snapshot create from an Administrator of another server, ephemerally, and queues nothing', async () => {
    const before = createCalls().length;
    const handle = await harness.fake.slashCommand(other.admin.id, 'snapshot', sub('create', { vm: 'web-01', name: 'from-elsewhere' }), inOther);
    await expectOutsiderRefusal(handle);
    expect(await jobsOnHost()).toBe(0);
    expect(createCalls()).toHaveLength(before);
    expect(logs).toContainEqual(expect.objectContaining({ level: 40, msg: 'refused an interaction from outside DISCORD_GUILD_ID', guild: other.guild.id, user: other.admin.id }));
  });

  it('answers autocomplete from another server with no choices (the inventory stays private)', async () => {
    expect(await harness.fake.autocomplete(other.admin.id, 'snapshot', vmFocus('web'), 5_000, inOther)).toEqual([]);
    expect(await harness.fake.autocomplete(ada.id, 'snapshot', vmFocus('web'))).toEqual([{ name: `web-01 · ${HOST} (running)`, value: 'web-01' }]);
  });

  it('does not count an approval click from another server, even by its Administrator', async () => {
    const made = await harness.fake.slashCommand(ada.id, 'snapshot', [
      { name: 'create', type: 1, options: [{ name: 'vm', type: 3, value: 'web-01' }, { name: 'name', type: 3, value: 'to-revert' }, { name: 'mode', type: 3, value: 'full' }] },
    ]);
    expect(embedOf(await made.waitForOriginal(isFinal, 30_000)).title).toBe('✅ Snapshot to-revert created');
    const posts = harness.fake.channelMessages(guild.options.channelId).length;
    const request = await harness.fake.slashCommand(ada.id, 'snapshot', sub('revert', { vm: 'web-01', name: 'to-revert' }));
    await request.waitForOriginal((message) => message.content.startsWith('Approval requested'), 30_000);
    const approvalMessage = await harness.fake.waitForChannelMessage(
      (message) => message.channelId === guild.options.channelId && harness.fake.channelMessages(guild.options.channelId).indexOf(message) >= posts && String(embedOf(message).title).startsWith('🔐'),
    );
    const approveId = /"custom_id":"(approval:([0-9a-f]+):approve)"/.exec(JSON.stringify(approvalMessage.components))!;
    const requestId = approveId[2]!;

    // The same button on a message in the other server (the bot posted there before this
    // fix; a public bot can be made to). Its Administrator clicks it.
    const channel = (await harness.bot.client.channels.fetch(other.guild.channelId)) as TextChannel;
    const copy = await channel.send({ content: 'approve?', components: [{ type: 1, components: [{ type: 2, style: 3, label: 'Approve', custom_id: approveId[1]! }] }] });
    const copied = harness.fake.channelMessages(other.guild.channelId).find((message) => message.id === copy.id)!;
    const click = await harness.fake.clickButton(other.admin.id, copied, approveId[1]!);
    await expectOutsiderRefusal(click);
    expect(await getApproval(harness.core, requestId)).toMatchObject({ status: 'pending', approvals: [] });

    // A second administrator of this server counts: the approver role, named in the
    // policy, was resolved to this server's kvm-admins id.
    const counted = await harness.fake.clickButton(alan.id, approvalMessage, approveId[1]!);
    await counted.waitForCallback();
    await until(async () => (await getApproval(harness.core, requestId))?.status === 'approved');
  });
});

describe('interactions from DMs', () => {
  it('refuses a command sent in a DM with the bot, and answers its autocomplete with nothing', async () => {
    // An older registration that allowed DMs (contexts 0 and 1).
    await harness.bot.client.application!.commands.set(COMMAND_DEFINITIONS.map((definition) => ({ ...definition, contexts: [0, 1] })));
    try {
      const handle = await harness.fake.slashCommand(ada.id, 'snapshot', sub('list', { vm: 'web-01' }), 'dm');
      await expectOutsiderRefusal(handle);
      expect(handle.original()?.channelId).toBe(harness.fake.dmChannelOf(ada.id));
      expect(await harness.fake.autocomplete(ada.id, 'snapshot', vmFocus('web'), 5_000, 'dm')).toEqual([]);
      expect(logs).toContainEqual(expect.objectContaining({ level: 40, msg: 'refused an interaction from outside DISCORD_GUILD_ID', guild: 'dm', user: ada.id }));
    } finally {
      await harness.bot.client.application!.commands.set([...COMMAND_DEFINITIONS]);
    }
  });
});

describe('policy roles by id', () => {
  async function createAs(user: FakeUser, name: string): Promise<{ forbidden: boolean; title?: unknown }> {
    const handle = await harness.fake.slashCommand(user.id, 'snapshot', sub('create', { vm: 'web-01', name }));
    await until(() => handle.followUps().length > 0 || isFinal(handle.original() ?? ({ embeds: [] } as unknown as FakeMessage)), 30_000);
    const [followUp] = handle.followUps();
    if (followUp) {
      expect(followUp.flags & EPHEMERAL).toBe(EPHEMERAL);
      return { forbidden: /^\*\*FORBIDDEN\*\*/.test(followUp.content) };
    }
    return { forbidden: false, title: embedOf(handle.original()).title };
  }

  it('lets in a member whose role the policy names by id', async () => {
    expect(await createAs(ivan, 'by-id')).toEqual({ forbidden: false, title: '✅ Snapshot by-id created' });
  });

  it('resolves a role name among this server’s roles only: another server’s role of that name is not a second match', async () => {
    expect(await createAs(otto, 'by-name')).toEqual({ forbidden: false, title: '✅ Snapshot by-name created' });
    expect(logs).toContainEqual(expect.objectContaining({ level: 40, role: 'kvm-operators', id: base.operatorRole.id }));
  });

  it('refuses a member whose role has the policy’s role name but another id (a role of that name made after start)', async () => {
    const impostor = { id: snowflake(), name: 'kvm-operators', permissions: Permission.SendMessages };
    harness.fake.createRole(guild.options.guildId, impostor);
    harness.fake.setMemberRoles(guild.options.guildId, mia.id, [impostor.id]);
    const jobs = await jobsOnHost();
    expect(await createAs(mia, 'impostor')).toEqual({ forbidden: true });
    expect(await jobsOnHost()).toBe(jobs);
  });

  it('lets nobody in by a name two roles of this server share, and logs it as an error', async () => {
    const jobs = await jobsOnHost();
    expect(await createAs(tess, 'twin')).toEqual({ forbidden: true });
    expect(await jobsOnHost()).toBe(jobs);
    expect(logs).toContainEqual(expect.objectContaining({ level: 50, role: 'twins', ids: [twinOne.id, twinTwo.id] }));
  });
});

describe('startup', () => {
  it('stops with an error naming DISCORD_GUILD_ID when the bot is not in that server', async () => {
    const lone = guildFixture();
    const discord = await FakeDiscord.start(lone.options);
    const logger = createLogger('t', 'silent');
    const core = await SnapbotCore.connect({ redisUrl: redis.url, prefix: uniquePrefix('noguild'), logger });
    const elsewhere = snowflake();
    try {
      await expect(startBot({ token: lone.options.token, guildId: elsewhere, apiUrl: discord.apiUrl, jobTimeoutMs: 1_000, core, logger })).rejects.toMatchObject({
        code: 'VALIDATION',
        message: `DISCORD_GUILD_ID ${elsewhere}: the bot is not a member of that server; invite it there, or correct the id.`,
      });
      expect(discord.registeredCommands()).toEqual([]);
    } finally {
      await core.close();
      await discord.stop();
    }
  });
});
