import { SnapbotError } from '../../shared/errors.js';
import { heartbeatSchema, type HostStatus } from '../../shared/hosts.js';
import { hostIdSchema } from '../../shared/names.js';
import { registryKeys } from '../../shared/queues.js';
import { authorize, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';

/** Every host that ever sent a heartbeat, with whether it is alive now; sorted by id. */
export async function listHosts(core: SnapbotCore, options: { actor?: Actor } = {}): Promise<HostStatus[]> {
  if (options.actor) authorize(core.policy, options.actor, 'hosts');
  return readHosts(core);
}

async function readHosts(core: SnapbotCore): Promise<HostStatus[]> {
  const keys = registryKeys(core.prefix);
  const ids = (await core.redis.smembers(keys.hosts)).sort();
  if (ids.length === 0) return [];
  const pipeline = core.redis.pipeline();
  for (const id of ids) pipeline.get(keys.host(id)).exists(keys.alive(id));
  const replies = (await pipeline.exec()) ?? [];
  const hosts: HostStatus[] = [];
  ids.forEach((id, index) => {
    const record = replies[index * 2]?.[1];
    const alive = replies[index * 2 + 1]?.[1];
    if (typeof record !== 'string') return;
    const parsed = heartbeatSchema.safeParse(JSON.parse(record));
    if (!parsed.success) {
      core.logger.warn({ hostId: id, issues: parsed.error.issues }, 'ignoring unreadable heartbeat');
      return;
    }
    hosts.push({ ...parsed.data, online: alive === 1 });
  });
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
