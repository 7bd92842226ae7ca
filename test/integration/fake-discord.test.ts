/**
 * The real discord.js client against the in-project fake Discord: a tiny bot written
 * here logs in, registers commands, answers commands, autocomplete and buttons, and
 * survives 429s, gateway drops and expired interaction tokens.
 */
import { performance } from 'node:perf_hooks';
import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  Client,
  DiscordAPIError,
  DiscordjsError,
  Events,
  GatewayIntentBits,
  MessageFlags,
  REST,
  Routes,
  SlashCommandBuilder,
  type Interaction,
} from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FakeDiscord, Permission, snowflake, type FakeDiscordOptions, type FakeMessage } from '../fixtures/fake-discord/fake-discord.js';

const operatorRoleId = snowflake();
const viewerRoleId = snowflake();
const alice = { id: snowflake(), username: 'alice', roles: [operatorRoleId] };
const bob = { id: snowflake(), username: 'bob', roles: [viewerRoleId] };
const VMS = ['web-1', 'web-2', 'db-1', 'cache-1'];

function fakeOptions(overrides: Partial<FakeDiscordOptions> = {}): FakeDiscordOptions {
  return {
    token: 'fake-bot-token.AAAA.BBBB',
    applicationId: snowflake(),
    guildId: snowflake(),
    channelId: snowflake(),
    roles: [
      { id: operatorRoleId, name: 'kvm-operator', permissions: Permission.SendMessages },
      { id: viewerRoleId, name: 'viewer', permissions: 0n },
    ],
    users: [alice, bob],
    ...overrides,
  };
}

const commands = [
  new SlashCommandBuilder()
    .setName('snapshot')
    .setDescription('Manage VM snapshots')
    .addSubcommand((sub) =>
      sub
        .setName('create')
        .setDescription('Create a snapshot')
        .addStringOption((o) => o.setName('vm').setDescription('VM').setRequired(true).setAutocomplete(true))
        .addStringOption((o) => o.setName('name').setDescription('Snapshot name')),
    ),
  new SlashCommandBuilder().setName('report').setDescription('Send a report as a file'),
  new SlashCommandBuilder()
    .setName('later')
    .setDescription('Answer after a delay')
    .addIntegerOption((o) => o.setName('wait_ms').setDescription('delay').setRequired(true)),
].map((builder) => builder.toJSON());

interface TinyBot {
  client: Client;
  loginToReadyMs: number;
  /** Errors thrown inside handlers (DiscordAPIError etc.). */
  errors: unknown[];
  /** Attachment names discord.js parsed from the fetched reply of /report. */
  fetchedAttachmentNames: string[];
}

/** A bot small enough to read at a glance, built only on public discord.js API. */
async function startTinyBot(fake: FakeDiscord, options: FakeDiscordOptions): Promise<TinyBot> {
  const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiUrl } });
  const bot: TinyBot = { client, loginToReadyMs: 0, errors: [], fetchedAttachmentNames: [] };

  const handle = async (interaction: Interaction): Promise<void> => {
    if (interaction.isAutocomplete()) {
      const typed = String(interaction.options.getFocused());
      const choices = VMS.filter((vm) => vm.startsWith(typed)).map((vm) => ({ name: `${vm} · host-a`, value: vm }));
      await interaction.respond(choices.slice(0, 25));
      return;
    }
    if (interaction.isButton() && interaction.customId.startsWith('approve:')) {
      // Anyone who sees the message can click: check the clicker's roles on every click.
      if (!interaction.inCachedGuild() || !interaction.member.roles.cache.has(operatorRoleId)) {
        await interaction.reply({ content: 'Only kvm-operator may approve.', flags: MessageFlags.Ephemeral });
        return;
      }
      const roles = interaction.member.roles.cache.map((role) => role.name).sort().join(',');
      await interaction.update({ content: `Approved by ${interaction.user.username} (${roles})`, components: [] });
      return;
    }
    if (!interaction.isChatInputCommand()) return;
    const channel = interaction.channel;
    if (!channel?.isSendable()) throw new Error('no sendable channel');
    if (interaction.commandName === 'snapshot') {
      const vm = interaction.options.getString('vm', true);
      const name = interaction.options.getString('name') ?? 'auto';
      await interaction.deferReply();
      await interaction.editReply(`Creating snapshot ${name} of ${vm}…`);
      await interaction.editReply(`Snapshot ${name} of ${vm} created.`);
      const approve = new ButtonBuilder().setCustomId(`approve:${vm}:${name}`).setLabel('Approve revert').setStyle(ButtonStyle.Danger);
      await channel.send({
        content: `Revert of ${vm} to ${name} needs approval.`,
        components: [new ActionRowBuilder<ButtonBuilder>().addComponents(approve)],
      });
    } else if (interaction.commandName === 'report') {
      const csv = new AttachmentBuilder(Buffer.from('vm,snapshot\nweb-1,nightly\n'), { name: 'report.csv' });
      await interaction.reply({ content: 'Report attached.', files: [csv] });
      const reply = await interaction.fetchReply();
      bot.fetchedAttachmentNames.push(...reply.attachments.map((a) => a.name));
      await interaction.followUp({ content: 'The full log follows in the channel.', flags: MessageFlags.Ephemeral });
      await channel.send({ content: 'Full log', files: [new AttachmentBuilder(Buffer.from('line 1\nline 2\n'), { name: 'job.log' })] });
    } else if (interaction.commandName === 'later') {
      await interaction.deferReply();
      await new Promise((resolve) => setTimeout(resolve, interaction.options.getInteger('wait_ms', true)));
      try {
        await interaction.editReply('Done, finally.');
      } catch (error) {
        bot.errors.push(error);
        // Long work reports through the channel once the token is gone.
        await channel.send('Done, finally (the reply token had expired).');
      }
    }
  };
  client.on(Events.InteractionCreate, (interaction) => {
    handle(interaction).catch((error: unknown) => bot.errors.push(error));
  });

  const registered = new Promise<void>((resolve, reject) => {
    client.once(Events.ClientReady, (ready) => {
      bot.loginToReadyMs = performance.now() - started;
      ready.application.commands.set(commands, options.guildId).then(() => resolve(), reject);
    });
  });
  const started = performance.now();
  await client.login(options.token);
  await registered;
  return bot;
}

const createOptions = (vm: string, name = 'nightly') => [
  {
    name: 'create',
    type: 1,
    options: [
      { name: 'vm', type: 3, value: vm },
      { name: 'name', type: 3, value: name },
    ],
  },
];

describe('fake Discord driven by the real discord.js client', () => {
  const options = fakeOptions();
  let fake: FakeDiscord;
  let bot: TinyBot;
  const numbers: Record<string, number | undefined> = {};

  beforeAll(async () => {
    fake = await FakeDiscord.start(options);
    bot = await startTinyBot(fake, options);
    numbers['login → clientReady (ms)'] = bot.loginToReadyMs;
  });

  afterAll(async () => {
    await bot?.client.destroy();
    await fake?.stop();
    console.log('fake-discord measurements:', numbers);
    // Discord would have refused these too: fail unless the test declared them.
    fake?.assertNoUnexpectedRefusals();
  });

  it('logs in and registers the guild commands with one PUT', () => {
    expect(bot.client.isReady()).toBe(true);
    expect(bot.client.guilds.cache.get(options.guildId)?.members.cache.has(options.applicationId)).toBe(true);
    const names = fake.registeredCommands('guild').map((c) => (c as { name: string }).name);
    expect(names).toEqual(['snapshot', 'report', 'later']);
    const puts = fake.requests().filter((r) => r.method === 'PUT' && r.path.endsWith('/commands'));
    expect(puts).toHaveLength(1);
    expect(puts[0]?.path).toBe(`/applications/${options.applicationId}/guilds/${options.guildId}/commands`);
  });

  it('answers autocomplete with the matching VMs', async () => {
    const choices = await fake.autocomplete(alice.id, 'snapshot', [
      { name: 'create', type: 1, options: [{ name: 'vm', type: 3, value: 'web', focused: true }] },
    ]);
    expect(choices).toEqual([
      { name: 'web-1 · host-a', value: 'web-1' },
      { name: 'web-2 · host-a', value: 'web-2' },
    ]);
  });

  let approvalMessage: FakeMessage;

  it('defers, edits the reply twice and posts an approval button', async () => {
    const handle = await fake.slashCommand(alice.id, 'snapshot', createOptions('web-1'));
    const original = await handle.waitForOriginal((m) => m.content.endsWith('created.'));
    expect(handle.callbacks().map((c) => c.type)).toEqual([5]);
    expect(original.edits).toBe(2);
    expect(original.history.map((v) => v.content)).toEqual(['', 'Creating snapshot nightly of web-1…', 'Snapshot nightly of web-1 created.']);
    approvalMessage = await fake.waitForChannelMessage((m) => m.content.includes('needs approval'));
    expect(JSON.stringify(approvalMessage.components)).toContain('approve:web-1:nightly');
    numbers['slash command → defer (ms)'] = handle.ackLatencyMs();
  });

  it('refuses a click from a member without the operator role, and accepts one from an operator', async () => {
    const denied = await fake.clickButton(bob.id, approvalMessage, 'approve:web-1:nightly');
    const deniedCallback = await denied.waitForCallback();
    expect(deniedCallback.type).toBe(4);
    expect(deniedCallback.data).toMatchObject({ content: 'Only kvm-operator may approve.', flags: MessageFlags.Ephemeral });

    const approved = await fake.clickButton(alice.id, approvalMessage, 'approve:web-1:nightly');
    expect((await approved.waitForCallback()).type).toBe(7);
    expect(approvalMessage.content).toBe('Approved by alice (@everyone,kvm-operator)');
    expect(approvalMessage.components).toEqual([]);
    await expect(fake.clickButton(alice.id, approvalMessage, 'approve:web-1:nightly')).rejects.toThrow(/no button/);
    numbers['button click → update (ms)'] = approved.ackLatencyMs();
  });

  it('waits out a 429 on the reply edit and then applies it', async () => {
    const limited: number[] = [];
    bot.client.rest.on('rateLimited', (info) => limited.push(info.timeToReset));
    fake.rateLimitNext(/^PATCH \/webhooks\/\d+\/[^/]+\/messages\/@original$/, 600);
    const handle = await fake.slashCommand(alice.id, 'snapshot', createOptions('web-2'));
    await handle.waitForOriginal((m) => m.content.endsWith('created.'), 10_000);

    const patches = fake.requests().filter((r) => r.method === 'PATCH' && r.path.includes(handle.token));
    expect(patches.map((r) => r.status)).toEqual([429, 200, 200]);
    const [rejected, retried] = patches;
    const waitedMs = (retried?.at ?? 0) - (rejected?.at ?? 0);
    expect(waitedMs).toBeGreaterThanOrEqual(550);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    numbers['429 of 600 ms → retry after (ms)'] = waitedMs;
  });

  it('posts an attachment that the fake and discord.js both see', async () => {
    const handle = await fake.slashCommand(bob.id, 'report');
    const reply = await handle.waitForOriginal((m) => m.attachments.length > 0);
    expect(reply.attachments.map((a) => [a.filename, a.data.toString()])).toEqual([['report.csv', 'vm,snapshot\nweb-1,nightly\n']]);
    const log = await fake.waitForChannelMessage((m) => m.content === 'Full log');
    expect(log.attachments[0]?.filename).toBe('job.log');
    expect(log.attachments[0]?.data.toString()).toBe('line 1\nline 2\n');
    expect(bot.fetchedAttachmentNames).toEqual(['report.csv']);
    expect(handle.followUps().map((m) => [m.content, m.flags])).toEqual([['The full log follows in the channel.', MessageFlags.Ephemeral]]);
    const followUpPost = fake.requests().find((r) => r.method === 'POST' && r.path === `/webhooks/${options.applicationId}/${handle.token}`);
    expect(followUpPost?.query).toBe('?wait=true');
  });

  it('posts, edits and fetches a channel message through the channel routes', async () => {
    const channel = await bot.client.channels.fetch(options.channelId);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const sent = await channel.send('host-a: 3 jobs queued');
    await sent.edit('host-a: 2 jobs queued');
    const fetched = await channel.messages.fetch({ message: sent.id, force: true });
    expect(fetched.content).toBe('host-a: 2 jobs queued');
    const posted = fake.channelMessages(options.channelId).find((m) => m.id === sent.id);
    expect(posted?.history.map((v) => v.content)).toEqual(['host-a: 3 jobs queued', 'host-a: 2 jobs queued']);
    fake.expectRefusal((r) => r.code === 50035 && r.errors.some((e) => e.startsWith('content: BASE_TYPE_MAX_LENGTH')));
    await expect(channel.send('x'.repeat(2001))).rejects.toMatchObject({ code: 50035, status: 400 });
  });

  it('keeps global commands apart from guild commands', async () => {
    await bot.client.application?.commands.set([{ name: 'hosts', description: 'List KVM hosts' }]);
    expect(fake.registeredCommands('global')).toEqual([{ name: 'hosts', description: 'List KVM hosts' }]);
    expect(fake.registeredCommands('guild')).toHaveLength(3);
    expect(fake.requests().at(-1)?.path).toBe(`/applications/${options.applicationId}/commands`);
  });

  it('resumes after a gateway drop and replays the interaction sent meanwhile', async () => {
    const resumed = fake.waitForGatewayEvent('resume');
    fake.disconnectGateway();
    const handle = await fake.slashCommand(alice.id, 'snapshot', createOptions('db-1'));
    expect((await resumed).replayed).toBeGreaterThanOrEqual(1);
    await handle.waitForOriginal((m) => m.content.endsWith('created.'), 10_000);
    numbers['drop → resumed (ms, incl. discord.js 500 ms pause)'] = handle.ackLatencyMs();
  });

  it('re-identifies when the session cannot be resumed, then answers new interactions', async () => {
    const identified = fake.waitForGatewayEvent('identify', 20_000);
    const started = performance.now();
    fake.disconnectGateway({ allowResume: false });
    await identified;
    numbers['drop → re-identified (ms, incl. identify throttle)'] = performance.now() - started;
    expect(fake.gatewayEvents().map((e) => e.kind)).toContain('invalid-session');
    const handle = await fake.slashCommand(alice.id, 'snapshot', createOptions('cache-1'));
    await handle.waitForOriginal((m) => m.content.endsWith('created.'), 10_000);
  }, 30_000);

  it('records unknown routes as 404 and leaves the bot without handler errors', async () => {
    fake.expectRefusal((r) => r.path === '/no/such/route');
    await expect(bot.client.rest.get('/no/such/route')).rejects.toMatchObject({ status: 404 });
    expect(fake.requests().at(-1)).toMatchObject({ method: 'GET', path: '/no/such/route', status: 404 });
    expect(bot.errors).toEqual([]);
  });
});

describe('fake Discord faults that need their own instance', () => {
  it('rejects login with a wrong token as TokenInvalid', async () => {
    const options = fakeOptions();
    const fake = await FakeDiscord.start(options);
    const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiUrl } });
    try {
      const login = client.login('not-the-token');
      await expect(login).rejects.toBeInstanceOf(DiscordjsError);
      await expect(login).rejects.toMatchObject({ code: 'TokenInvalid' });
    } finally {
      await client.destroy();
      await fake.stop();
    }
  });

  it('closes the gateway with 4004 on IDENTIFY with a wrong token', async () => {
    const options = fakeOptions();
    const fake = await FakeDiscord.start(options);
    try {
      const info = (await (await fetch(`${fake.apiUrl}/v10/gateway`)).json()) as { url: string };
      const socket = new WebSocket(`${info.url}?v=10&encoding=json`);
      socket.on('message', () => socket.send(JSON.stringify({ op: 2, d: { token: 'wrong', intents: 1, properties: {} } })));
      const code = await new Promise<number>((resolve) => socket.on('close', (closeCode) => resolve(closeCode)));
      expect(code).toBe(4004);
      expect(fake.gatewayEvents().map((e) => e.kind)).toEqual(['auth-failed']);
    } finally {
      await fake.stop();
    }
  });

  it('answers 50027 to an edit after the interaction token expired', async () => {
    const options = fakeOptions({ interactionTokenTtlMs: 300 });
    const fake = await FakeDiscord.start(options);
    const bot = await startTinyBot(fake, options);
    try {
      await fake.slashCommand(alice.id, 'later', [{ name: 'wait_ms', type: 4, value: 500 }]);
      await fake.waitForChannelMessage((m) => m.content.includes('token had expired'));
      const [error] = bot.errors;
      expect(error).toBeInstanceOf(DiscordAPIError);
      expect(error).toMatchObject({ code: 50027, status: 401, message: 'Invalid Webhook Token' });
      // Provoked by the shortened token lifetime: recorded, but not held against the bot.
      expect(fake.refusals().map((r) => r.code)).toEqual([50027]);
      fake.assertNoUnexpectedRefusals();
    } finally {
      await bot.client.destroy();
      await fake.stop();
    }
  });
});

describe('fake Discord as strict as Discord: limits and refusals over HTTP', () => {
  const options = fakeOptions();
  let fake: FakeDiscord;
  let client: Client;
  const rest = () => new REST({ api: fake.apiUrl }).setToken(options.token);

  beforeAll(async () => {
    fake = await FakeDiscord.start(options);
    client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiUrl } });
    const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
    await client.login(options.token);
    await ready;
    await client.application?.commands.set([{ name: 'progress', description: 'Edit the reply twelve times' }], options.guildId);
    client.on(Events.InteractionCreate, (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      void (async () => {
        await interaction.deferReply();
        // Twelve edits at once: discord.js queues them and paces by X-RateLimit-*.
        await Promise.all(Array.from({ length: 12 }, (_, i) => interaction.editReply(`step ${i + 1} of 12`)));
      })();
    });
  });

  afterAll(async () => {
    await client?.destroy();
    await fake?.stop();
    fake?.assertNoUnexpectedRefusals();
  });

  it('sends Discord’s rate-limit headers, and discord.js paces 12 edits of one reply (5 per 2 s per token) without a 429', async () => {
    const me = await fetch(`${fake.apiUrl}/v10/users/@me`, { headers: { authorization: `Bot ${options.token}` } });
    for (const name of ['limit', 'remaining', 'reset', 'reset-after', 'bucket']) expect(me.headers.get(`x-ratelimit-${name}`), name).toMatch(/^[0-9a-f.]+$/);
    const handle = await fake.slashCommand(alice.id, 'progress');
    await handle.waitForOriginal((m) => m.edits === 12, 15_000);
    const patches = fake.requests().filter((r) => r.method === 'PATCH' && r.path.includes(handle.token));
    expect(patches.map((r) => r.status)).toEqual(Array.from({ length: 12 }, () => 200));
    const start = patches[0]?.at ?? 0;
    const offsets = patches.map((r) => r.at - start);
    // Windows of 2 s: requests 6 and 11 open the second and third.
    expect(offsets[5]).toBeGreaterThanOrEqual(1_900);
    expect(offsets[10]).toBeGreaterThanOrEqual(3_900);
    for (const [i, at] of offsets.entries()) expect(offsets.filter((o) => o >= at && o < at + 2_000).length, `window from edit ${i + 1}`).toBeLessThanOrEqual(5);
  }, 20_000);

  it('answers a second client on the same bucket with 429s that both clients wait out', async () => {
    const before = fake.requests().length;
    const [first, second] = [rest(), rest()];
    const limited: number[] = [];
    second.on('rateLimited', (info) => limited.push(info.retryAfter));
    first.on('rateLimited', (info) => limited.push(info.retryAfter));
    const post = (client: REST, i: number) => client.post(Routes.channelMessages(options.channelId), { body: { content: `post ${i}` } });
    const started = performance.now();
    await Promise.all([...[0, 1, 2, 3].map((i) => post(first, i)), ...[4, 5, 6, 7].map((i) => post(second, i))]);
    const posts = fake.requests().slice(before).filter((r) => r.method === 'POST' && r.path.endsWith('/messages'));
    expect(posts.filter((r) => r.status === 200)).toHaveLength(8);
    expect(posts.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(4_000);
    expect(fake.channelMessages()).toHaveLength(8);
    // 429s are waits, not refusals.
    expect(fake.unexpectedRefusals()).toEqual([]);
  }, 20_000);

  it('refuses a required option after an optional one as Discord did, and discord.js prints the same path', async () => {
    const body = [
      {
        name: 'snapshot',
        description: 'Manage snapshots',
        options: [
          { type: 1, name: 'list', description: 'list' },
          { type: 1, name: 'info', description: 'info' },
          { type: 1, name: 'create', description: 'create', options: [
            { type: 3, name: 'vm', description: 'vm', required: true },
            { type: 3, name: 'host', description: 'host' },
            { type: 3, name: 'name', description: 'name', required: true },
          ] },
        ],
      },
    ];
    fake.expectRefusal((r) => r.method === 'PUT' && r.errors.some((e) => e.includes('APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID')));
    const error = await client.application?.commands.set(body, options.guildId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscordAPIError);
    expect(error).toMatchObject({ status: 400, code: 50035 });
    expect((error as Error).message).toContain('0.options[2].options[2][APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID]: Required options must be placed before non-required options');
    expect(fake.registeredCommands('guild')).toHaveLength(1); // the earlier /progress stays
  });

  it('records a refusal the sender swallowed, and the harness check lists method, path, code and error path', async () => {
    await rest()
      .post(Routes.channelMessages(options.channelId), { body: { content: 'report', embeds: [{ title: 't'.repeat(300), fields: [{ name: 'vm', value: ' ' }] }] } })
      .catch(() => undefined);
    const check = () => fake.assertNoUnexpectedRefusals();
    expect(check).toThrow(`POST /channels/${options.channelId}/messages → 400 50035 Invalid Form Body`);
    expect(check).toThrow('embeds[0].title: BASE_TYPE_MAX_LENGTH: Must be 256 or fewer in length.');
    expect(check).toThrow('embeds[0].fields[0].value: BASE_TYPE_REQUIRED: This field is required');
    fake.expectRefusal((r) => r.path === `/channels/${options.channelId}/messages` && r.code === 50035);
    expect(check).not.toThrow();
  });
});
