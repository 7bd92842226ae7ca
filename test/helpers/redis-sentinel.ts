import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findFreePort, startRedisServer, type RedisServerHandle } from '../../scripts/redis-server.js';
import { redisOneShot, waitFor } from './redis-probe.js';

/**
 * A Sentinel group on loopback, from the Debian `redis-server` binary alone: one master,
 * one replica, three Sentinels (quorum 2), each its own process. For the HA tests.
 */
export interface SentinelGroup {
  name: string;
  /** REDIS_SENTINELS for snapbot: host:port,host:port,host:port. */
  sentinels: string;
  /** The data nodes, master first at the start. */
  nodes: RedisServerHandle[];
  /** The port of the current master, as the Sentinels say. */
  masterPort(): Promise<number>;
  /** `SENTINEL FAILOVER <name>`, then waits until the Sentinels name another master that answers as master. */
  failover(): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

export async function startSentinelGroup(name = 'snapbot-ha'): Promise<SentinelGroup> {
  const dir = mkdtempSync(join(tmpdir(), 'snapbot-sentinel-'));
  for (const node of ['master', 'replica']) mkdirSync(join(dir, node));
  const masterPort = await findFreePort();
  const master = await startRedisServer({ port: masterPort, dir: join(dir, 'master'), durable: true });
  const replicaPort = await findFreePort();
  const replica = await startRedisServer({ port: replicaPort, dir: join(dir, 'replica'), durable: true });
  const admin = new Redis({ port: replicaPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  await admin.call('REPLICAOF', '127.0.0.1', String(masterPort));
  admin.disconnect();
  await waitFor(async () => {
    const info = await redisOneShot(replicaPort, ['INFO', 'replication']);
    return /master_link_status:up/.test(String(info));
  }, 'the replica to sync');

  const sentinels: Array<{ port: number; process: ChildProcess }> = [];
  for (let i = 0; i < 3; i += 1) {
    const port = await findFreePort();
    const conf = join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 2000`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    sentinels.push({ port, process: child });
  }
  for (const sentinel of sentinels) {
    await waitFor(async () => String(await redisOneShot(sentinel.port, ['SENTINEL', 'get-master-addr-by-name', name])).includes(String(masterPort)), `Sentinel ${sentinel.port} to watch the master`);
  }
  // Each Sentinel must know the replica and the other Sentinels before a failover can be agreed on.
  await waitFor(async () => {
    const replicas = await redisOneShot(sentinels[0]!.port, ['SENTINEL', 'replicas', name]);
    const others = await redisOneShot(sentinels[0]!.port, ['SENTINEL', 'sentinels', name]);
    return Array.isArray(replicas) && replicas.length === 1 && Array.isArray(others) && others.length === 2;
  }, 'the Sentinels to discover the replica and each other', 30_000);

  const masterPortNow = async () => {
    const address = (await redisOneShot(sentinels[0]!.port, ['SENTINEL', 'get-master-addr-by-name', name])) as string[];
    return Number(address[1]);
  };
  return {
    name,
    sentinels: sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(','),
    nodes: [master, replica],
    masterPort: masterPortNow,
    async failover() {
      const from = await masterPortNow();
      await redisOneShot(sentinels[0]!.port, ['SENTINEL', 'FAILOVER', name]);
      await waitFor(async () => (await masterPortNow()) !== from, 'the Sentinels to name a new master', 30_000);
      const to = await masterPortNow();
      await waitFor(async () => /role:master/.test(String(await redisOneShot(to, ['INFO', 'replication']))), 'the new master to take writes', 30_000);
      return { from, to };
    },
    async stop() {
      for (const sentinel of sentinels) sentinel.process.kill('SIGTERM');
      await Promise.all([master.stop(), replica.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
