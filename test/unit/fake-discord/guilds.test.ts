/**
 * The fake as a bot in several guilds: its own roles and members per guild, interactions
 * from another guild and from DMs (only where a user could run them), GET /guilds/{id}/roles,
 * and roles created while the bot runs. Spoken to over raw HTTP and a raw gateway socket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FakeDiscord, Permission, snowflake, type FakeDiscordOptions, type FakeGuild, type FakeUser } from '../../fixtures/fake-discord/fake-discord.js';
import { startFakeHttp, type FakeHttp } from './fake-http.js';

interface Dispatch {
  t: string;
  d: Record<string, unknown>;
}

/** A raw gateway session that records every dispatch. */
async function gatewaySession(fake: FakeDiscord, token: string): Promise<{ dispatches: Dispatch[]; next(t: string): Promise<Dispatch>; close(): void }> {
  const info = (await (await fetch(`${fake.apiUrl}/v10/gateway`)).json()) as { url: string };
  const ws = new WebSocket(`${info.url}?v=10&encoding=json`);
  const dispatches: Dispatch[] = [];
  const listeners: Array<() => void> = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw)) as { op: number; t?: string; d?: Record<string, unknown> };
      if (frame.op === 10) ws.send(JSON.stringify({ op: 2, d: { token, intents: 1, properties: {} } }));
      if (frame.op === 0 && frame.t) {
        dispatches.push({ t: frame.t, d: frame.d ?? {} });
        for (const listener of listeners.splice(0)) listener();
      }
      if (frame.t === 'READY') resolve();
    });
  });
  return {
    dispatches,
    async next(t) {
      const from = dispatches.length;
      for (;;) {
        const found = dispatches.slice(from).find((dispatch) => dispatch.t === t);
        if (found) return found;
        await new Promise<void>((resolve) => listeners.push(resolve));
      }
    },
    close: () => ws.close(),
  };
}

const adminB = { id: snowflake(), name: 'kvm-admins', permissions: Permission.Administrator };
const opsB = { id: snowflake(), name: 'kvm-operators', permissions: Permission.SendMessages };
const bea: FakeUser = { id: snowflake(), username: 'bea', roles: [adminB.id] };

function guildB(overrides: Partial<FakeGuild> = {}): FakeGuild {
  return { id: snowflake(), name: 'someone else’s server', channelId: snowflake(), roles: [adminB, opsB], users: [bea], ...overrides };
}

let http: FakeHttp | undefined;
afterEach(async () => {
  await http?.stop();
  http = undefined;
});

async function start(overrides: Partial<FakeDiscordOptions> = {}): Promise<FakeHttp & { other: FakeGuild }> {
  const other = overrides.otherGuilds?.[0] ?? guildB();
  http = await startFakeHttp({ otherGuilds: [other], ...overrides });
  return Object.assign(http, { other });
}

const command = (extra: Record<string, unknown> = {}) => ({ name: 'snapshot', description: 'Manage snapshots', type: 1, ...extra });

describe('a bot in two guilds', () => {
  it('is told of both guilds at READY and gets a GUILD_CREATE for each, with its own channel, roles and members', async () => {
    const { fake, options, other } = await start();
    const session = await gatewaySession(fake, options.token);
    // READY and the GUILD_CREATEs are sent together, right after IDENTIFY.
    const deadline = Date.now() + 5_000;
    while (session.dispatches.filter((d) => d.t === 'GUILD_CREATE').length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const ready = session.dispatches.find((d) => d.t === 'READY')!;
    expect(ready.d['guilds']).toEqual([
      { id: options.guildId, unavailable: true },
      { id: other.id, unavailable: true },
    ]);
    const creates = session.dispatches.filter((d) => d.t === 'GUILD_CREATE').map((d) => d.d);
    const b = creates.find((guild) => guild['id'] === other.id)!;
    expect(b['name']).toBe('someone else’s server');
    expect((b['channels'] as Array<{ id: string }>).map((channel) => channel.id)).toEqual([other.channelId]);
    expect((b['roles'] as Array<{ id: string; name: string }>).map((role) => [role.id, role.name])).toEqual([
      [other.id, '@everyone'],
      [adminB.id, 'kvm-admins'],
      [opsB.id, 'kvm-operators'],
    ]);
    expect((b['members'] as Array<{ user: { id: string } }>).map((member) => member.user.id)).toEqual([bea.id, options.applicationId]);
    session.close();
  });

  it('answers GET /guilds/{id}/roles with that guild’s roles only, and 404 Unknown Guild for a guild the bot is not in', async () => {
    const { call, options, other } = await start();
    const a = await call('GET', `/guilds/${options.guildId}/roles`);
    expect(a.status).toBe(200);
    expect((a.body as Array<{ id: string; name: string; permissions: string }>).map((role) => [role.id, role.name])).toEqual([
      [options.guildId, '@everyone'],
      ...options.roles.map((role) => [role.id, role.name]),
    ]);
    const b = await call('GET', `/guilds/${other.id}/roles`);
    expect((b.body as Array<{ id: string }>).map((role) => role.id)).toEqual([other.id, adminB.id, opsB.id]);
    expect((b.body as Array<{ permissions: string }>)[1]!.permissions).toBe(String(Permission.Administrator));
    const unknown = await call('GET', `/guilds/${snowflake()}/roles`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 10004, message: 'Unknown Guild' });
    expect((await call('GET', `/guilds/${other.id}/roles`, undefined, { auth: false })).status).toBe(401);
    fakeOf(http).expectRefusal((refusal) => refusal.path.startsWith('/guilds/'));
  });

  it('lets the bot register commands in any guild it is in, and no other', async () => {
    const { call, options, other } = await start();
    expect((await call('PUT', `/applications/${options.applicationId}/guilds/${other.id}/commands`, [command()])).status).toBe(200);
    const refused = await call('PUT', `/applications/${options.applicationId}/guilds/${snowflake()}/commands`, [command()]);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 50001 });
    fakeOf(http).expectRefusal((refusal) => refusal.code === 50001);
  });

  it('posts to the text channel of any guild the bot is in, with that guild’s id on the message', async () => {
    const { call, other } = await start();
    const posted = await call('POST', `/channels/${other.channelId}/messages`, { content: 'hello B' });
    expect(posted.status).toBe(200);
    expect(posted.body).toMatchObject({ channel_id: other.channelId, guild_id: other.id, content: 'hello B' });
    const unknown = await call('POST', `/channels/${snowflake()}/messages`, { content: 'nowhere' });
    expect(unknown.body).toMatchObject({ code: 10003 });
    fakeOf(http).expectRefusal((refusal) => refusal.code === 10003);
  });
});

describe('where a command can be run', () => {
  it('runs a guild command only in its guild: not from another guild, not from a DM', async () => {
    const { call, fake, options, userId, other, connectGateway } = await start();
    await connectGateway();
    await call('PUT', `/applications/${options.applicationId}/guilds/${options.guildId}/commands`, [command()]);
    await expect(fake.slashCommand(userId, 'snapshot')).resolves.toBeDefined();
    await expect(fake.slashCommand(bea.id, 'snapshot', [], { guildId: other.id })).rejects.toThrow(/not available in guild/);
    await expect(fake.slashCommand(userId, 'snapshot', [], 'dm')).rejects.toThrow(/not available in the bot's DMs/);
  });

  it('runs a global command in every guild, and in DMs only where its contexts (or dm_permission) allow', async () => {
    const { call, fake, options, userId, other, connectGateway } = await start();
    await connectGateway();
    const global = `/applications/${options.applicationId}/commands`;
    await call('PUT', global, [command({ contexts: [0] })]);
    await expect(fake.slashCommand(bea.id, 'snapshot', [], { guildId: other.id })).resolves.toBeDefined();
    await expect(fake.slashCommand(userId, 'snapshot', [], 'dm')).rejects.toThrow(/DMs/);
    await call('PUT', global, [command({ contexts: [0, 1] })]);
    await expect(fake.slashCommand(userId, 'snapshot', [], 'dm')).resolves.toBeDefined();
    await call('PUT', global, [command({ dm_permission: false })]);
    await expect(fake.slashCommand(userId, 'snapshot', [], 'dm')).rejects.toThrow(/DMs/);
    await call('PUT', global, [command()]);
    await expect(fake.slashCommand(userId, 'snapshot', [], 'dm')).resolves.toBeDefined();
  });

  it('refuses a user who is not a member of the guild the interaction would come from', async () => {
    const { call, fake, options, userId, other, connectGateway } = await start();
    await connectGateway();
    await call('PUT', `/applications/${options.applicationId}/commands`, [command()]);
    await expect(fake.slashCommand(userId, 'snapshot', [], { guildId: other.id })).rejects.toThrow(/unknown user .* in guild/);
    await expect(fake.slashCommand(bea.id, 'snapshot', [], { guildId: snowflake() })).rejects.toThrow(/in no guild/);
  });
});

describe('interactions from another guild and from DMs', () => {
  it('sends another guild’s interaction with that guild, its channel, and the member’s roles and permissions there; the reply lands in its channel', async () => {
    const { call, fake, options, other } = await start();
    const session = await gatewaySession(fake, options.token);
    await call('PUT', `/applications/${options.applicationId}/commands`, [command()]);
    const handle = await fake.slashCommand(bea.id, 'snapshot', [], { guildId: other.id });
    const { d } = await session.next('INTERACTION_CREATE');
    expect(d).toMatchObject({ guild_id: other.id, channel_id: other.channelId, context: 0, authorizing_integration_owners: { '0': other.id } });
    expect(d['channel']).toMatchObject({ id: other.channelId, type: 0, guild_id: other.id });
    const member = d['member'] as { user: { id: string }; roles: string[]; permissions: string };
    expect(member.user.id).toBe(bea.id);
    expect(member.roles).toEqual([adminB.id]);
    expect(BigInt(member.permissions) & Permission.Administrator).toBe(Permission.Administrator);
    const reply = await call('POST', `/interactions/${handle.id}/${handle.token}/callback?with_response=true`, { type: 4, data: { content: 'no', flags: 64 } });
    expect(reply.body).toMatchObject({ resource: { message: { channel_id: other.channelId, guild_id: other.id } } });
    expect(handle.original()?.channelId).toBe(other.channelId);
    session.close();
  });

  it('sends a DM interaction without guild or member: the user, a DM channel, context 1 and "0" as the guild-install owner', async () => {
    const { call, fake, options, userId } = await start();
    const session = await gatewaySession(fake, options.token);
    await call('PUT', `/applications/${options.applicationId}/commands`, [command({ contexts: [0, 1] })]);
    const handle = await fake.slashCommand(userId, 'snapshot', [], 'dm');
    const { d } = await session.next('INTERACTION_CREATE');
    expect(d).not.toHaveProperty('guild_id');
    expect(d).not.toHaveProperty('member');
    expect(d).not.toHaveProperty('guild');
    expect(d).toMatchObject({ user: { id: userId }, context: 1, authorizing_integration_owners: { '0': '0' }, channel_id: fake.dmChannelOf(userId) });
    expect(d['channel']).toMatchObject({ id: fake.dmChannelOf(userId), type: 1, recipients: [{ id: userId }] });
    const reply = await call('POST', `/interactions/${handle.id}/${handle.token}/callback?with_response=true`, { type: 4, data: { content: 'no' } });
    const message = (reply.body as { resource: { message: Record<string, unknown> } }).resource.message;
    expect(message['channel_id']).toBe(fake.dmChannelOf(userId));
    expect(message).not.toHaveProperty('guild_id');
    session.close();
  });

  it('sends a button click from the guild its message is in, and only for a member of that guild', async () => {
    const { call, fake, options, userId, other } = await start();
    const session = await gatewaySession(fake, options.token);
    const button = { type: 1, components: [{ type: 2, style: 1, label: 'Approve', custom_id: 'approve:1' }] };
    await call('POST', `/channels/${other.channelId}/messages`, { content: 'in B', components: [button] });
    const [message] = fake.channelMessages(other.channelId);
    await expect(fake.clickButton(userId, message!, 'approve:1')).rejects.toThrow(/unknown user .* in guild/);
    await fake.clickButton(bea.id, message!, 'approve:1');
    const { d } = await session.next('INTERACTION_CREATE');
    expect(d).toMatchObject({ type: 3, guild_id: other.id, member: { roles: [adminB.id] }, message: { id: message!.id, guild_id: other.id } });
    session.close();
  });

  it('sends autocomplete from another guild and from DMs too', async () => {
    const { call, fake, options, userId, other } = await start();
    const session = await gatewaySession(fake, options.token);
    await call('PUT', `/applications/${options.applicationId}/commands`, [command({ options: [{ type: 3, name: 'vm', description: 'the vm', autocomplete: true }] })]);
    await fake.sendAutocomplete(bea.id, 'snapshot', [{ name: 'vm', type: 3, value: 'w', focused: true }], { guildId: other.id });
    expect((await session.next('INTERACTION_CREATE')).d).toMatchObject({ type: 4, guild_id: other.id });
    await fake.sendAutocomplete(userId, 'snapshot', [{ name: 'vm', type: 3, value: 'w', focused: true }], 'dm');
    const dm = (await session.next('INTERACTION_CREATE')).d;
    expect(dm).toMatchObject({ type: 4, context: 1 });
    expect(dm).not.toHaveProperty('guild_id');
    session.close();
  });
});

describe('roles while the bot runs, and what the fake refuses to model', () => {
  it('creates a role with a name another role already has, and sends GUILD_ROLE_CREATE', async () => {
    const { call, fake, options } = await start();
    const session = await gatewaySession(fake, options.token);
    const twin = { id: snowflake(), name: options.roles[0]!.name, permissions: 0n };
    fake.createRole(options.guildId, twin);
    expect((await session.next('GUILD_ROLE_CREATE')).d).toEqual({
      guild_id: options.guildId,
      role: expect.objectContaining({ id: twin.id, name: twin.name, permissions: '0' }),
    });
    const roles = (await call('GET', `/guilds/${options.guildId}/roles`)).body as Array<{ name: string }>;
    expect(roles.filter((role) => role.name === twin.name)).toHaveLength(2);
    expect(() => fake.createRole(options.guildId, twin)).toThrow(/taken/);
    session.close();
  });

  it('gives a member only roles of their own guild', async () => {
    const { fake, options, userId, other } = await start();
    fake.setMemberRoles(options.guildId, userId, [options.roles[0]!.id]);
    expect(options.users[0]!.roles).toEqual([options.roles[0]!.id]);
    expect(() => fake.setMemberRoles(options.guildId, userId, [opsB.id])).toThrow(/has no role/);
    expect(() => fake.setMemberRoles(other.id, userId, [])).toThrow(/not a member/);
  });

  it('refuses to start with a member holding another guild’s role, or with an id used twice', async () => {
    const base = { token: 't.AAAA.BBBB', applicationId: snowflake(), guildId: snowflake(), channelId: snowflake(), roles: [], rateLimits: false };
    await expect(FakeDiscord.start({ ...base, users: [{ id: snowflake(), username: 'x', roles: [opsB.id] }] })).rejects.toThrow(/does not have/);
    await expect(FakeDiscord.start({ ...base, users: [], otherGuilds: [guildB({ channelId: base.channelId })] })).rejects.toThrow(/used twice/);
  });
});

function fakeOf(harness: FakeHttp | undefined): FakeDiscord {
  return harness!.fake;
}
