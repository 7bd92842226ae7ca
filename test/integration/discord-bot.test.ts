import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBot } from '../../bot/discord/bot.js';
import { COLOR } from '../../bot/discord/render/colors.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { createLogger } from '../../shared/logger.js';
import { FakeDiscord, type FakeCommandOption, type FakeMessage } from '../fixtures/fake-discord/fake-discord.js';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';
import { guildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import type { SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { startWorkerProcess } from '../helpers/worker-process.js';
import { testAuthority } from '../helpers/authority.js';

/**
 * The bot as users meet it: the real discord.js client built by the bot's own factory,
 * a fake Discord on loopback, a real Redis and worker, and a fake virsh underneath.
 */
const EPHEMERAL = 64;
const guild = guildFixture();
let redis: TestRedis;
let fake: FakeVirshHost;
let worker: SpawnedProcess;
let harness: BotUnderTest;
let discord: FakeDiscord;
let workerPrefix: string;

const sub = (name: string, options: Record<string, string>): FakeCommandOption[] => [
  { name, type: 1, options: Object.entries(options).map(([option, value]) => ({ name: option, type: 3, value })) },
];

function embedOf(message: FakeMessage | undefined): Record<string, unknown> {
  const [embed] = (message?.embeds ?? []) as Array<Record<string, unknown>>;
  return embed ?? {};
}

/** Progress embeds are blue; every final state has another colour. */
const isFinal = (message: FakeMessage) => embedOf(message).color !== undefined && embedOf(message).color !== COLOR.progress;

beforeAll(async () => {
  redis = await startTestRedis();
  fake = await FakeVirshHost.create();
  fake.addDomain({ name: 'web-01', state: 'running' });
  const busy = fake.addDomain({ name: 'busy-vm', state: 'shut off' });
  // 40 snapshots: more than one page of /snapshot list.
  const run = promisify(execFile);
  for (let batch = 0; batch < 4; batch += 1) {
    await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        run(fake.path, ['snapshot-create-as', `--domain=${busy.uuid}`, `--name=old-${String(batch * 10 + index).padStart(2, '0')}`], { env: { ...process.env, ...fake.env } }),
      ),
    );
  }
  workerPrefix = uniquePrefix('discord');
  worker = await startWorkerProcess({ redisUrl: redis.url, prefix: workerPrefix, hostId: 'kvm-d', fake });
  harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix: workerPrefix, editIntervalMs: 300 });
  discord = harness.fake;
}, 120_000);

afterAll(async () => {
  await harness?.stop();
  await worker?.stop();
  await fake?.dispose();
  await redis?.stop();
});

describe('registration', () => {
  it('registers /snapshot, /hosts, /fleet and /schedule in the guild with the documented options', () => {
    const commands = discord.registeredCommands('guild') as Array<{ name: string; options?: Array<{ name: string; options?: Array<{ name: string; required?: boolean; autocomplete?: boolean }> }> }>;
    expect(commands.map((command) => command.name)).toEqual(['snapshot', 'hosts', 'fleet', 'schedule']);
    const snapshot = commands[0]!;
    expect(snapshot.options!.map((subcommand) => subcommand.name)).toEqual(['create', 'list', 'info', 'revert', 'delete', 'audit']);
    const create = snapshot.options![0]!.options!;
    expect(create.map((option) => option.name)).toEqual(['vm', 'name', 'host', 'mode', 'description']);
    expect(create[0]).toMatchObject({ name: 'vm', required: true, autocomplete: true });
    // Discord refuses the whole registration when a required option follows an optional one.
    for (const kind of ['info', 'revert', 'delete']) {
      const options = snapshot.options!.find((subcommand) => subcommand.name === kind)!.options!;
      expect(options.map((option) => [option.name, option.required === true])).toEqual([
        ['vm', true],
        ['name', true],
        ['host', false],
      ]);
    }
  });
});

describe('/snapshot create', () => {
  it('acknowledges at once, shows progress, and ends in a result embed', async () => {
    const handle = await discord.slashCommand(guild.admin.id, 'snapshot', sub('create', { vm: 'web-01', name: 'pre-deploy', description: 'before the deploy' }));
    const final = await handle.waitForOriginal(isFinal, 30_000);
    expect(handle.callbacks()[0]?.type).toBe(5);
    expect(handle.ackLatencyMs()).toBeLessThan(3_000);
    expect(embedOf(final)).toMatchObject({ title: '✅ Snapshot pre-deploy created' });
    const fields = Object.fromEntries((embedOf(final).fields as Array<{ name: string; value: string }>).map((field) => [field.name, field.value]));
    expect(fields).toMatchObject({ VM: 'web-01', Host: 'kvm-d', Mode: 'disk-only', Location: 'external', Description: 'before the deploy' });
    const stages = final.history.map((version) => String((version.embeds[0] as { description?: string } | undefined)?.description ?? ''));
    expect(stages.some((text) => text.includes('Queued on **kvm-d**'))).toBe(true);
  });

  it('shows a job that failed on the host in the public reply, with its code', async () => {
    const handle = await discord.slashCommand(guild.admin.id, 'snapshot', sub('create', { vm: 'web-01', name: 'pre-deploy' }));
    const final = await handle.waitForOriginal(isFinal, 30_000);
    expect(embedOf(final).title).toBe('❌ Create snapshot · web-01 · pre-deploy failed');
    expect(String(embedOf(final).description)).toMatch(/^\*\*SNAPSHOT_EXISTS\*\*/);
  });

  it('refuses a member the policy does not allow, ephemerally, and queues nothing', async () => {
    fake.clearCalls();
    const handle = await discord.slashCommand(guild.viewer.id, 'snapshot', sub('create', { vm: 'web-01', name: 'sneaky' }));
    await waitFor(() => handle.followUps().length > 0);
    const [followUp] = handle.followUps();
    expect(followUp!.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(followUp!.content).toMatch(/^\*\*FORBIDDEN\*\*/);
    expect(fake.calls().filter((call) => call.argv.includes('snapshot-create-as'))).toEqual([]);
  });

  it('answers a user mistake ephemerally with the code and sentence', async () => {
    const handle = await discord.slashCommand(guild.admin.id, 'snapshot', sub('create', { vm: 'no-such-vm' }));
    await waitFor(() => handle.followUps().length > 0);
    expect(handle.followUps()[0]!.content).toMatch(/^\*\*DOMAIN_NOT_FOUND\*\*/);
    expect(handle.followUps()[0]!.flags & EPHEMERAL).toBe(EPHEMERAL);
  });

  it('refuses a name typed past autocomplete that breaks the rules', async () => {
    const handle = await discord.slashCommand(guild.admin.id, 'snapshot', sub('create', { vm: 'web-01', name: 'a/b' }));
    await waitFor(() => handle.followUps().length > 0);
    expect(handle.followUps()[0]!.content).toMatch(/^\*\*VALIDATION\*\*.*'\/'/s);
  });
});

describe('autocomplete', () => {
  it('offers VMs from the live inventory as "vm · host (state)"', async () => {
    const choices = await discord.autocomplete(guild.viewer.id, 'snapshot', [
      { name: 'list', type: 1, options: [{ name: 'vm', type: 3, value: 'web', focused: true }] },
    ]);
    expect(choices).toEqual([{ name: 'web-01 · kvm-d (running)', value: 'web-01' }]);
  });

  it("offers the chosen VM's snapshots for the name", async () => {
    await waitFor(async () => {
      const choices = await discord.autocomplete(guild.admin.id, 'snapshot', [
        { name: 'revert', type: 1, options: [{ name: 'vm', type: 3, value: 'web-01' }, { name: 'name', type: 3, value: 'pre', focused: true }] },
      ]);
      return choices.some((choice) => choice.value === 'pre-deploy');
    });
  });

  it('never offers more than 25 choices', async () => {
    const choices = await discord.autocomplete(guild.admin.id, 'snapshot', [
      { name: 'info', type: 1, options: [{ name: 'vm', type: 3, value: 'busy-vm' }, { name: 'name', type: 3, value: 'old', focused: true }] },
    ]);
    expect(choices).toHaveLength(25);
  });
});

describe('/snapshot list', () => {
  it('pages a long list with buttons and attaches the whole list as a file', async () => {
    const handle = await discord.slashCommand(guild.viewer.id, 'snapshot', sub('list', { vm: 'busy-vm' }));
    const final = await handle.waitForOriginal((message) => String(embedOf(message).title ?? '').startsWith('Snapshots of'), 30_000);
    expect(embedOf(final).footer).toMatchObject({ text: expect.stringContaining('page 1/3') });
    expect(String(embedOf(final).description).length).toBeLessThanOrEqual(4096);
    expect(final.attachments.map((attachment) => attachment.filename)).toEqual(['snapshots-busy-vm.txt']);
    expect(final.attachments[0]!.data.toString().split('\n').filter((line) => line.includes('old-'))).toHaveLength(40);

    const older = JSON.stringify(final.components).match(/"custom_id":"(snapshot-list:[0-9a-f]+:1)"/)![1]!;
    const click = await discord.clickButton(guild.viewer.id, final, older);
    // Acknowledged at once (deferUpdate), then the page is edited in.
    expect((await click.waitForCallback()).type).toBe(6);
    const page = await click.waitForOriginal((message) => String((embedOf(message).footer as { text?: string } | undefined)?.text ?? '').includes('page 2/3'), 10_000);
    expect(embedOf(page).footer).toMatchObject({ text: expect.stringContaining('page 2/3') });
  });
});

describe('/hosts', () => {
  it('shows every host with status, versions and VM count', async () => {
    const handle = await discord.slashCommand(guild.viewer.id, 'hosts');
    const final = await handle.waitForOriginal((message) => embedOf(message).title === 'KVM hosts', 10_000);
    expect(String(embedOf(final).description)).toMatch(/kvm-d\s+online\s+9\.0\.0/);
  });
});

describe('a button no handler knows', () => {
  it('is answered, ephemerally, instead of leaving the click spinning', async () => {
    // A message of an older bot version, with a button id this version does not parse.
    const response = await fetch(`${discord.apiUrl}/v10/channels/${guild.options.channelId}/messages`, {
      method: 'POST',
      headers: { Authorization: `Bot ${guild.options.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ content: 'from an older snapbot', components: [{ type: 1, components: [{ type: 2, style: 2, label: 'Old', custom_id: 'retired:v0:abc' }] }] }),
    });
    expect(response.status).toBe(200);
    const message = discord.channelMessages(guild.options.channelId).find((candidate) => candidate.content === 'from an older snapbot')!;
    const click = await discord.clickButton(guild.viewer.id, message, 'retired:v0:abc');
    const reply = await click.waitForOriginal((original) => original.content.includes('no longer valid'), 10_000);
    expect(reply.flags & EPHEMERAL).toBe(EPHEMERAL);
  });
});

describe('when Discord misbehaves', () => {
  it('waits out a 429 on the reply edit and still shows the result', async () => {
    discord.rateLimitNext(/^PATCH \/webhooks\/\d+\/[^/]+\/messages\/@original$/, 700, 2);
    const handle = await discord.slashCommand(guild.admin.id, 'snapshot', sub('info', { vm: 'web-01', name: 'pre-deploy' }));
    const final = await handle.waitForOriginal(isFinal, 30_000);
    expect(embedOf(final).title).toBe('Snapshot pre-deploy');
    expect(discord.requests().filter((request) => request.status === 429).length).toBeGreaterThanOrEqual(1);
  });

  it('resumes after a gateway drop and answers the command sent meanwhile', async () => {
    discord.disconnectGateway();
    const handle = await discord.slashCommand(guild.admin.id, 'snapshot', sub('create', { vm: 'web-01', name: 'after-drop' }));
    const final = await handle.waitForOriginal(isFinal, 30_000);
    expect(embedOf(final).title).toBe('✅ Snapshot after-drop created');
  });

  it('reconnects with a new session when the old one cannot resume, losing no command', async () => {
    discord.disconnectGateway({ allowResume: false });
    await discord.waitForGatewayEvent('identify', 20_000);
    const handle = await discord.slashCommand(guild.admin.id, 'snapshot', sub('create', { vm: 'web-01', name: 'after-reconnect' }));
    const final = await handle.waitForOriginal(isFinal, 30_000);
    expect(embedOf(final).title).toBe('✅ Snapshot after-reconnect created');
  }, 60_000);
});

describe('work that outlives the interaction token', () => {
  it('reports in the channel, mentioning the requester, once the token has expired', async () => {
    const short = guildFixture({ interactionTokenTtlMs: 600 });
    const second = await startBotUnderTest({ options: short.options, redisUrl: redis.url, prefix: workerPrefix, editIntervalMs: 100 });
    fake.setFaults([{ match: { subcommand: 'snapshot-create-as' }, latencyMs: 1_500 }]);
    try {
      await second.fake.slashCommand(short.admin.id, 'snapshot', sub('create', { vm: 'web-01', name: 'slow-one' }));
      const posted = await second.fake.waitForChannelMessage((message) => isFinal(message), 30_000);
      expect(posted.content).toBe(`<@${short.admin.id}>`);
      expect(embedOf(posted).title).toBe('✅ Snapshot slow-one created');
    } finally {
      fake.setFaults([]);
      await second.stop();
    }
  });
});

describe('startup', () => {
  it('stops with a clear error when the token is wrong', async () => {
    const other = guildFixture();
    const fakeDiscord = await FakeDiscord.start(other.options);
    const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix: uniquePrefix('badtoken'), logger: createLogger('t', 'silent') });
    try {
      await expect(
        startBot({ token: 'wrong-token', guildId: other.options.guildId, apiUrl: fakeDiscord.apiUrl, jobTimeoutMs: 1000, core, logger: createLogger('t', 'silent') }),
      ).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('DISCORD_TOKEN was rejected') });
    } finally {
      await core.close();
      await fakeDiscord.stop();
    }
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
