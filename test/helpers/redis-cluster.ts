import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '../../scripts/redis-server.js';
import { redisOneShot, waitFor } from './redis-probe.js';

/**
 * A Redis Cluster on loopback, from the Debian `redis-server` binary alone: three masters
 * and one replica each, every node its own process with a password, built with
 * `redis-cli --cluster create`. For the HA tests.
 */
export interface RedisCluster {
  /** REDIS_CLUSTER_NODES for snapbot: host:port of every node. */
  nodes: string;
  password: string;
  ports: number[];
  /** The master serving `key`'s slot, and its replica. */
  shardOf(key: string): Promise<{ master: number; replica: number }>;
  /**
   * `CLUSTER FAILOVER` on the replica of the master serving `key`'s slot, then waits until
   * that replica answers as master and the cluster is ok again. Resolves with the ports.
   */
  failover(key: string): Promise<{ from: number; to: number }>;
  /**
   * SIGKILL to the master serving `key`'s slot, then waits until its replica has taken
   * over (after cluster-node-timeout, 2 s here). Resolves with the ports.
   */
  killMaster(key: string): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

interface ClusterNode {
  port: number;
  process: ChildProcess;
}

export async function startRedisCluster(options: { masters?: number; replicas?: number } = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const password = `cluster-${Math.random().toString(36).slice(2)}`;
  const dir = mkdtempSync(join(tmpdir(), 'snapbot-cluster-'));
  const nodes: ClusterNode[] = [];
  // A free port is free only until someone binds it: never hand one out twice here (a node's
  // bus port taken as another node's port would stop that node from starting).
  const taken = new Set<number>();
  const freshPort = async () => {
    let port = await findFreePort();
    while (taken.has(port)) port = await findFreePort();
    taken.add(port);
    return port;
  };
  const ping = (port: number) => redisOneShot(port, ['PING'], password);
  /** One node on fresh ports; again on others when it exits before answering (a port taken meanwhile). */
  const startNode = async (attempt = 1): Promise<ClusterNode> => {
    const port = await freshPort();
    // The bus port is port + 10000 unless told: a free port above 55535 would have none.
    const busPort = await freshPort();
    const nodeDir = join(dir, `node-${port}`);
    mkdirSync(nodeDir);
    const conf = join(nodeDir, 'redis.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        `cluster-port ${busPort}`,
        'bind 127.0.0.1',
        `dir ${nodeDir}`,
        'cluster-enabled yes',
        'cluster-config-file nodes.conf',
        'cluster-node-timeout 2000',
        'save ""',
        'appendonly no',
        'maxmemory-policy noeviction',
        `requirepass ${password}`,
        `masterauth ${password}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const child = spawn('redis-server', [conf], { stdio: 'ignore' });
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    await waitFor(async () => exited() || (await ping(port)) === 'PONG', `cluster node ${port} to start`);
    if (!exited()) return { port, process: child };
    if (attempt >= 3) throw new Error(`cluster node on port ${port} (bus ${busPort}) exited at start ${attempt} times`);
    return startNode(attempt + 1);
  };
  for (let i = 0; i < masters * (1 + replicas); i += 1) nodes.push(await startNode());
  const created = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
    { env: { ...process.env, REDISCLI_AUTH: password }, encoding: 'utf8', timeout: 60_000 },
  );
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`);
  const clusterOk = async () => {
    for (const node of nodes) {
      if (!/cluster_state:ok/.test(String(await redisOneShot(node.port, ['CLUSTER', 'INFO'], password)))) return false;
    }
    return true;
  };
  await waitFor(clusterOk, 'the cluster to be ok on every node', 60_000);
  // Every replica linked to its master, so that a failover has a replica in step to promote.
  await waitFor(async () => {
    for (const node of nodes) {
      const info = String(await redisOneShot(node.port, ['INFO', 'replication'], password));
      if (/role:slave/.test(info) && !/master_link_status:up/.test(info)) return false;
    }
    return true;
  }, 'the replicas to sync', 60_000);

  /** The slot map as `port` sees it: the master of `key`'s slot and its replicas (null when it cannot say). */
  const slotOwners = async (key: string, port = nodes[0]!.port) => {
    const slot = Number(await redisOneShot(port, ['CLUSTER', 'KEYSLOT', key], password));
    const ranges = (await redisOneShot(port, ['CLUSTER', 'SLOTS'], password)) as Array<[number, number, ...Array<[string, number, string]>]> | null;
    const range = ranges?.find(([from, to]) => slot >= from && slot <= to);
    if (!range) return null;
    const [, , master, ...replicas] = range;
    return { master: master![1], replicas: replicas.map((replica) => replica[1]) };
  };
  const shardOf = async (key: string) => {
    const owners = await slotOwners(key);
    if (!owners?.replicas[0]) throw new Error(`the slot of ${key} has no replica: ${JSON.stringify(owners)}`);
    return { master: owners.master, replica: owners.replicas[0] };
  };
  return {
    nodes: nodes.map((node) => `127.0.0.1:${node.port}`).join(','),
    password,
    ports: nodes.map((node) => node.port),
    shardOf,
    async failover(key: string) {
      const { master, replica } = await shardOf(key);
      const answer = await redisOneShot(replica, ['CLUSTER', 'FAILOVER'], password);
      if (answer !== 'OK') throw new Error(`CLUSTER FAILOVER on ${replica} answered ${String(answer)}`);
      await waitFor(async () => /role:master/.test(String(await redisOneShot(replica, ['INFO', 'replication'], password))), 'the replica to take over', 30_000);
      // Every node's slot map names the new master (the old one becomes its replica a moment later).
      await waitFor(async () => {
        for (const node of nodes) if ((await slotOwners(key, node.port))?.master !== replica) return false;
        return true;
      }, 'the cluster to name the new master', 30_000);
      await waitFor(clusterOk, 'the cluster to be ok again', 30_000);
      return { from: master, to: replica };
    },
    async killMaster(key: string) {
      const { master, replica } = await shardOf(key);
      nodes.find((node) => node.port === master)!.process.kill('SIGKILL');
      await waitFor(async () => /role:master/.test(String(await redisOneShot(replica, ['INFO', 'replication'], password))), 'the replica to take over', 30_000);
      return { from: master, to: replica };
    },
    async stop() {
      await Promise.all(
        nodes.map(
          (node) =>
            new Promise<void>((resolve) => {
              if (node.process.exitCode !== null || node.process.signalCode !== null) return resolve();
              node.process.once('exit', () => resolve());
              node.process.kill('SIGTERM');
            }),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
