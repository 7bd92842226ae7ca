import { z } from 'zod';
import { SnapbotError } from './errors.js';
import { compileGlob, type GlobPredicate } from './glob.js';

/**
 * Fleet operations: one command over many VMs on many hosts. This module holds what
 * the bot and the workers share: selectors, name templates, the per-target states kept
 * in Redis and the atomic scripts that move a target from one state to the next.
 */

// ---------------------------------------------------------------------------------------
// Selectors: `web-* host:kvm-2? !web-canary all`

export interface FleetSelector {
  /** VM name globs; empty means every VM. */
  vms: string[];
  /** Host id globs; empty means every host. */
  hosts: string[];
  /** VM name globs to leave out. */
  excludeVms: string[];
  /** Host id globs to leave out. */
  excludeHosts: string[];
  /** The selector as typed, normalised (for previews and audit). */
  text: string;
}

/**
 * Parses a selector. Words are separated by blanks or commas. `all` selects every VM;
 * `host:<glob>` keeps VMs on matching hosts; `!<glob>` and `!host:<glob>` leave out;
 * anything else is a VM name glob. VM globs are OR-ed, host globs are OR-ed, and the
 * two kinds are AND-ed: `web-* host:kvm-1*` is the web VMs on the kvm-1 hosts.
 */
export function parseFleetSelector(text: string): FleetSelector {
  const words = text
    .split(/[\s,]+/)
    .map((word) => word.trim())
    .filter((word) => word.length > 0);
  if (words.length === 0) throw new SnapbotError('VALIDATION', "The target selector is empty: say 'all', VM globs like 'web-*', or 'host:<id>'.");
  const selector: FleetSelector = { vms: [], hosts: [], excludeVms: [], excludeHosts: [], text: words.join(' ') };
  let sawAll = false;
  for (const word of words) {
    const negated = word.startsWith('!');
    const body = negated ? word.slice(1) : word;
    const isHost = body.toLowerCase().startsWith('host:');
    const glob = isHost ? body.slice('host:'.length) : body;
    if (glob.length === 0) throw new SnapbotError('VALIDATION', `Selector word '${word}' has nothing after it.`);
    if (glob.length > 200 || /[\u0000-\u001f\u007f]/.test(glob)) throw new SnapbotError('VALIDATION', `Selector word '${word}' is not a valid glob.`);
    if (!negated && !isHost && glob.toLowerCase() === 'all') {
      sawAll = true;
      continue;
    }
    if (negated) (isHost ? selector.excludeHosts : selector.excludeVms).push(glob);
    else (isHost ? selector.hosts : selector.vms).push(glob);
  }
  if (!sawAll && selector.vms.length === 0 && selector.hosts.length === 0) {
    throw new SnapbotError('VALIDATION', `Selector '${selector.text}' only excludes; add 'all', VM globs or 'host:<id>' to say what to include.`);
  }
  return selector;
}

/** Compiled once per selector; used for every VM of the inventory. */
export function fleetMatcher(selector: FleetSelector): (hostId: string, vm: string) => boolean {
  const compile = (globs: string[]) => globs.map((glob) => compileGlob(glob));
  const [vms, hosts, excludeVms, excludeHosts] = [compile(selector.vms), compile(selector.hosts), compile(selector.excludeVms), compile(selector.excludeHosts)];
  const any = (patterns: GlobPredicate[], value: string) => patterns.some((matches) => matches(value));
  return (hostId, vm) =>
    (vms.length === 0 || any(vms, vm)) && (hosts.length === 0 || any(hosts, hostId)) && !any(excludeVms, vm) && !any(excludeHosts, hostId);
}

// ---------------------------------------------------------------------------------------
// Name templates: `pre-rollout-{date}`, `{vm}-{time}`

const TEMPLATE_FIELDS = ['vm', 'host', 'date', 'time'] as const;

/** Refuses unknown `{fields}` before anything is planned, so a typo does not name 1,000 snapshots. */
export function checkNameTemplate(template: string): void {
  for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!(TEMPLATE_FIELDS as readonly string[]).includes(match[1]!)) {
      throw new SnapbotError('VALIDATION', `Unknown field {${match[1]}} in name template '${template}'; use {vm}, {host}, {date} or {time}.`);
    }
  }
}

/** `{date}` is YYYYMMDD and `{time}` HHMMSS in UTC, both fixed when the run is planned so every VM gets the same. */
export function renderNameTemplate(template: string, values: { vm: string; host: string; at: Date }): string {
  const iso = values.at.toISOString();
  const fields: Record<(typeof TEMPLATE_FIELDS)[number], string> = {
    vm: values.vm,
    host: values.host,
    date: iso.slice(0, 10).replaceAll('-', ''),
    time: iso.slice(11, 19).replaceAll(':', ''),
  };
  return template.replace(/\{(vm|host|date|time)\}/g, (_, field: (typeof TEMPLATE_FIELDS)[number]) => fields[field]);
}

// ---------------------------------------------------------------------------------------
// Per-target states, one hash field per target (`<prefix>:fleet:<runId>:targets`)

export const fleetTargetStateSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('queued') }),
  z.object({ state: z.literal('running'), at: z.number() }),
  z.object({ state: z.literal('done'), at: z.number(), durationMs: z.number(), note: z.string().nullable() }),
  z.object({ state: z.literal('failed'), at: z.number(), code: z.string(), message: z.string() }),
  z.object({ state: z.literal('cancelled'), at: z.number() }),
]);
export type FleetTargetState = z.infer<typeof fleetTargetStateSchema>;
export type FleetTargetStateName = FleetTargetState['state'];

export function isTerminal(state: FleetTargetStateName): boolean {
  return state === 'done' || state === 'failed' || state === 'cancelled';
}


/** What a fleet job carries, besides the ordinary job fields. */
export const fleetJobRefSchema = z.object({
  runId: z.string().regex(/^[0-9a-f]{6,32}$/),
  index: z.number().int().min(0),
  /** At most this many of the run's jobs on one host at once (0: the worker's own limit only). */
  perHost: z.number().int().min(0),
  /** At most this many of the run's jobs at once across all hosts (0: no limit). */
  global: z.number().int().min(0),
});
export type FleetJobRef = z.infer<typeof fleetJobRefSchema>;

export function fleetKeys(prefix: string, runId: string) {
  const base = `${prefix}:fleet:${runId}`;
  return {
    /** Hash: the plan (`plan` JSON), `status`, approval fields, message location, timestamps. */
    run: base,
    /** Hash: target index → FleetTargetState JSON. */
    targets: `${base}:targets`,
    /** Sorted sets of the run's jobs holding a concurrency permit (score: lease expiry, ms). */
    permits: `${base}:permits`,
    hostPermits: (hostId: string) => `${base}:permits:${hostId}`,
    /** Exists while some process is keeping the run's summary up to date. */
    watcher: `${base}:watcher`,
  };
}

/** BullMQ's failed reason for a job that was active on workers that died more often than `maxStalledCount` allows. */
export const STALL_LIMIT_REASON = 'job stalled more than allowable limit';

/** What a fleet target failed for its job's stall limit says, whoever records it (its worker or the run's watcher). */
export function stalledTargetMessage(action: string, vm: string): string {
  return `The worker running this ${action} on ${vm} died (crashed, was killed or lost its lock) more often than snapbot runs a job again; not run again. Check the VM's snapshots: the last run may or may not have finished.`;
}

export function fleetJobId(runId: string, index: number): string {
  return `fleet-${runId}-${index}`;
}

/** Fleet run records and their targets are kept this long after they end. */
export const FLEET_RETENTION_SECONDS = 7 * 24 * 3600;

/**
 * The one state table of a fleet target: which state each state may be reached from.
 *
 *   queued ──▶ running ──▶ done
 *     │           │   └──▶ failed
 *     │           └──────▶ (running again: a retry, or a job taken again after a crash)
 *     ├──────────────────▶ done       (its job did the work, but the record of it running was
 *     │                                lost: a write taken by the old master in a Redis failover)
 *     ├──────────────────▶ failed     (given up with its host; refused before it started)
 *     └──────────────────▶ cancelled  (Cancel: it never runs)
 *
 * done, failed and cancelled are final: nothing overwrites a settled target.
 */
export const TARGET_MOVES: Record<Exclude<FleetTargetStateName, 'queued'>, readonly FleetTargetStateName[]> = {
  running: ['queued', 'running'],
  done: ['queued', 'running'],
  failed: ['queued', 'running'],
  cancelled: ['queued'],
};

// KEYS: targets hash. ARGV: new state JSON, the states it may come from (comma-separated), then the indexes.
// Moves each listed target that is in one of those states; returns, per index, 'ok' or the state it is in
// (or 'missing'), so a worker learns why it may not start and a canceller how many it stopped.
export const MOVE_TARGETS_SCRIPT = `
local from = {}
for state in string.gmatch(ARGV[2], '[^,]+') do from[state] = true end
local results = {}
for i = 3, #ARGV do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if not current then
    results[#results + 1] = 'missing'
  else
    local state = cjson.decode(current).state
    if from[state] then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
      results[#results + 1] = 'ok'
    else
      results[#results + 1] = state
    end
  end
end
return results
`;

/** The arguments of MOVE_TARGETS_SCRIPT for moving `indexes` to `state` (after the targets hash key). */
export function moveTargetsArgs(state: FleetTargetState, indexes: readonly number[], from: readonly FleetTargetStateName[] = movesInto(state.state)): string[] {
  return [JSON.stringify(state), from.join(','), ...indexes.map(String)];
}

function movesInto(state: FleetTargetStateName): readonly FleetTargetStateName[] {
  if (state === 'queued') throw new Error('a fleet target never moves back to queued');
  return TARGET_MOVES[state];
}

// KEYS: global permits zset, host permits zset. ARGV: member, global limit, host limit, lease ms.
// Takes one permit in both sets, or none. Limits of 0 mean unlimited. Leases expire, so a
// dead worker's permits come back. Returns 1 when taken (or already held).
export const ACQUIRE_PERMIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held then
  local globalLimit = tonumber(ARGV[2])
  local hostLimit = tonumber(ARGV[3])
  if globalLimit > 0 and redis.call('ZCARD', KEYS[1]) >= globalLimit then return 0 end
  if hostLimit > 0 and redis.call('ZCARD', KEYS[2]) >= hostLimit then return 0 end
end
local expiry = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('ZADD', KEYS[2], expiry, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 2)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * 2)
return 1
`;
