import { SnapbotError } from '../../shared/errors.js';
import { heartbeatSchema, judgeHost, queueDepthOf, type HostOverview, type HostStatus, type QueueDepth } from '../../shared/hosts.js';
import { hostIdSchema } from '../../shared/names.js';
import { registryKeys } from '../../shared/queues.js';
import { authorize, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';

/** Every host that ever sent a heartbeat, with whether it is alive now; sorted by id. */
export async function listHosts(core: SnapbotCore, options: { actor?: Actor } = {}): Promise<HostStatus[]> {
  if (options.actor) authorize(core.policy, options.actor, 'hosts');
  return readHosts(core);
}

/** Counts at the top of the fleet view; the states partition the hosts. */
export interface HostsSummary {
  total: number;
  online: number;
  stale: number;
  offline: number;
  /** Jobs waiting or delayed, over every host's queue. */
  queued: number;
  /** Jobs taken by a worker, over every host's queue. */
  running: number;
}

export interface HostsOverview {
  hosts: HostOverview[];
  summary: HostsSummary;
}

/**
 * The fleet view behind `/hosts` and `snapctl hosts`: every host with its state
 * (online, stale, offline), its queue depth and its last error, plus summary counts.
 * Heartbeats and queue counts are read side by side, each pipelined over the one Redis
 * connection, so the cost is a few round trips whether there are 2 hosts or 50.
 */
export async function readHostsOverview(core: SnapbotCore, options: { actor?: Actor } = {}): Promise<HostsOverview> {
  if (options.actor) authorize(core.policy, options.actor, 'hosts');
  const ids = await readHostIds(core);
  const [statuses, depths] = await Promise.all([readHosts(core, ids), readQueueDepths(core, ids)]);
  const hosts = statuses.map((host): HostOverview => ({ ...host, ...judgeHost(host, host.online), queue: depths.get(host.hostId) ?? null }));
  return { hosts, summary: summarizeHosts(hosts) };
}

export function summarizeHosts(hosts: readonly HostOverview[]): HostsSummary {
  const summary: HostsSummary = { total: hosts.length, online: 0, stale: 0, offline: 0, queued: 0, running: 0 };
  for (const host of hosts) {
    summary[host.state] += 1;
    summary.queued += (host.queue?.waiting ?? 0) + (host.queue?.delayed ?? 0);
    summary.running += host.queue?.active ?? 0;
  }
  return summary;
}

/**
 * Jobs not yet finished on each host's queue. The getJobCounts calls run concurrently,
 * and ioredis writes them out back to back on one connection, so 20+ hosts cost about
 * one round trip (plus one for a Queue's first use). A queue that cannot be read gives
 * null for its host rather than failing the whole view.
 */
async function readQueueDepths(core: SnapbotCore, ids: readonly string[]): Promise<Map<string, QueueDepth>> {
  const results = await Promise.allSettled(
    ids.map(async (id) => {
      const counts = await core.queueFor(id).getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      return [id, queueDepthOf(counts)] as const;
    }),
  );
  const depths = new Map<string, QueueDepth>();
  results.forEach((result, index) => {
    if (result.status === 'fulfilled') depths.set(...result.value);
    else core.logger.warn({ hostId: ids[index], err: String(result.reason) }, 'cannot read queue depth');
  });
  return depths;
}

async function readHostIds(core: SnapbotCore): Promise<string[]> {
  return (await core.redis.smembers(registryKeys(core.prefix).hosts)).sort();
}

/**
 * The host ids each core saw last. The next read asks for those hosts' records in the same
 * round trip as the set of ids, so a long-running process (the bot, the control process)
 * reads every heartbeat in one round trip; only hosts new since cost a second one.
 */
const lastSeenHostIds = new WeakMap<SnapbotCore, readonly string[]>();

async function readHosts(core: SnapbotCore, knownIds?: readonly string[]): Promise<HostStatus[]> {
  const keys = registryKeys(core.prefix);
  const pipeline = core.redis.pipeline();
  const guessed = knownIds ?? lastSeenHostIds.get(core) ?? [];
  if (knownIds === undefined) pipeline.smembers(keys.hosts);
  for (const id of guessed) pipeline.get(keys.host(id)).exists(keys.alive(id));
  const replies = guessed.length > 0 || knownIds === undefined ? ((await pipeline.exec()) ?? []) : [];
  const offset = knownIds === undefined ? 1 : 0;
  const records = new Map<string, readonly [unknown, unknown]>();
  guessed.forEach((id, index) => records.set(id, [replies[offset + index * 2]?.[1], replies[offset + index * 2 + 1]?.[1]]));

  let ids = guessed;
  if (knownIds === undefined) {
    const members = replies[0]?.[1];
    if (!Array.isArray(members)) throw replies[0]?.[0] ?? new Error('SMEMBERS gave no answer');
    ids = (members as string[]).slice().sort();
    lastSeenHostIds.set(core, ids);
    const unseen = ids.filter((id) => !records.has(id));
    if (unseen.length > 0) {
      const more = core.redis.pipeline();
      for (const id of unseen) more.get(keys.host(id)).exists(keys.alive(id));
      const moreReplies = (await more.exec()) ?? [];
      unseen.forEach((id, index) => records.set(id, [moreReplies[index * 2]?.[1], moreReplies[index * 2 + 1]?.[1]]));
    }
  }

  const hosts: HostStatus[] = [];
  for (const id of ids) {
    const [record, alive] = records.get(id) ?? [];
    if (typeof record !== 'string') continue;
    const parsed = heartbeatSchema.safeParse(JSON.parse(record));
    if (!parsed.success) {
      core.logger.warn({ hostId: id, issues: parsed.error.issues }, 'ignoring unreadable heartbeat');
      continue;
    }
    hosts.push({ ...parsed.data, online: alive === 1 });
  }
  return hosts;
}

export interface ResolvedTarget {
  host: HostStatus;
  /** The VM's UUID as the host's inventory reported it, when it did. */
  uuid: string | undefined;
}

/**
 * Finds the host that runs `vm`. With `hostId` given, that host must be known and
 * online; without it the VM name must be unique among the hosts' inventories.
 */
export async function resolveTarget(core: SnapbotCore, vm: string, hostId: string | undefined): Promise<ResolvedTarget> {
  const hosts = await readHosts(core);
  if (hostId !== undefined) {
    const parsedId = hostIdSchema.safeParse(hostId);
    if (!parsedId.success) throw new SnapbotError('VALIDATION', `Invalid host id '${hostId}': ${parsedId.error.issues[0]?.message}`);
    const host = hosts.find((candidate) => candidate.hostId === hostId);
    if (!host) {
      const known = hosts.map((candidate) => candidate.hostId).join(', ') || 'none yet';
      throw new SnapbotError('HOST_UNKNOWN', `No host '${hostId}' has ever reported to snapbot (known hosts: ${known}).`);
    }
    assertOnline(host);
    return { host, uuid: host.vms.find((candidate) => candidate.name === vm)?.uuid };
  }

  const holders = hosts.filter((host) => host.vms.some((candidate) => candidate.name === vm));
  if (holders.length === 0) {
    const online = hosts.filter((host) => host.online).map((host) => host.hostId);
    throw new SnapbotError(
      'DOMAIN_NOT_FOUND',
      `No host reports a VM named '${vm}' (online hosts: ${online.join(', ') || 'none'}). If it was defined just now, pass --host.`,
    );
  }
  if (holders.length > 1) {
    throw new SnapbotError(
      'VALIDATION',
      `VM name '${vm}' exists on several hosts: ${holders.map((host) => host.hostId).join(', ')}. Say which with --host.`,
    );
  }
  const host = holders[0]!;
  assertOnline(host);
  return { host, uuid: host.vms.find((candidate) => candidate.name === vm)?.uuid };
}

function assertOnline(host: HostStatus): void {
  if (host.online) return;
  throw new SnapbotError(
    'HOST_OFFLINE',
    `Host ${host.hostId} is offline: its worker last reported at ${host.lastSeen}. Nothing was queued.`,
  );
}
