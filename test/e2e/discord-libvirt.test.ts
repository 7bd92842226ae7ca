import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLOR } from '../../bot/discord/render/colors.js';
import type { FakeMessage } from '../fixtures/fake-discord/fake-discord.js';
import { guildFixture, startBotUnderTest, type BotUnderTest } from '../helpers/discord-bot.js';
import { spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';

/** A Discord command all the way down to QEMU: fake Discord, real discord.js, Redis, worker, virsh, libvirtd. */
const guild = guildFixture();
let redis: TestRedis;
let worker: SpawnedProcess;
let harness: BotUnderTest;
let domain: TinyDomain;

function embedOf(message: FakeMessage | undefined): Record<string, unknown> {
  return ((message?.embeds ?? []) as Array<Record<string, unknown>>)[0] ?? {};
}

beforeAll(async () => {
  await ensureLibvirt();
  domain = await createTinyDomain(`snapbot-e2e-discord-${process.pid}`, { start: true });
  redis = await startTestRedis();
  const prefix = uniquePrefix('e2e-discord');
  worker = spawnNode(WORKER_MAIN, { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix, HOST_ID: 'e2e-discord', LIBVIRT_URI: LIBVIRT_E2E_URI, LOG_LEVEL: 'info' });
  await worker.waitFor('worker ready', 60_000);
  harness = await startBotUnderTest({ options: guild.options, redisUrl: redis.url, prefix });
}, 600_000);

afterAll(async () => {
  await harness?.stop();
  await worker?.stop();
  await redis?.stop();
  if (domain) await destroyTinyDomain(domain.uuid);
});

describe('/snapshot create on real libvirt', () => {
  it('takes the snapshot and shows the result', async () => {
    const handle = await harness.fake.slashCommand(guild.admin.id, 'snapshot', [
      { name: 'create', type: 1, options: [{ name: 'vm', type: 3, value: domain.name }, { name: 'name', type: 3, value: 'from-discord' }, { name: 'mode', type: 3, value: 'full' }] },
    ]);
    const final = await handle.waitForOriginal((message) => embedOf(message).color !== undefined && embedOf(message).color !== COLOR.progress, 60_000);
    expect(embedOf(final).title).toBe('✅ Snapshot from-discord created');
    expect(virshRaw(['snapshot-info', `--domain=${domain.uuid}`, '--snapshotname=from-discord']).stdout).toMatch(/State:\s+running/);
  });
});
