import { createHash } from 'node:crypto';
import type { HostStatus } from '../../shared/hosts.js';
import type { Policy } from '../../shared/policy.js';
import { isAllowed, type Actor } from './authorize.js';
import type { SnapbotCore } from './core.js';
import { listHosts } from './hosts.js';

/** One autocomplete choice: what the user sees, and the value that fills the option. */
export interface Suggestion {
  label: string;
  value: string;
}

/** Discord's limits: 25 choices, 100 characters per label and value. */
export const MAX_SUGGESTIONS = 25;
const MAX_LABEL = 100;
const MAX_VALUE = 100;
/** A long name's value keeps this much of the name, then `…#` and a hash of the whole name. */
const ABBREVIATED_PREFIX = 80;
const ABBREVIATION = /^([\s\S]{80})…#([0-9a-f]{10})$/;

function nameHash(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 10);
}

/**
 * The value a suggestion fills in for `name`. Discord refuses a whole autocomplete answer
 * when one value passes 100 characters, while libvirt names may be longer (VMs up to 200,
 * snapshots up to 128 here): such a name is offered as its first 80 characters, `…#` and
 * a hash of the whole name, which `expandSuggestedName` turns back into the name.
 */
export function suggestionValueFor(name: string): string {
  return name.length <= MAX_VALUE ? name : `${name.slice(0, ABBREVIATED_PREFIX)}…#${nameHash(name)}`;
}

/**
 * The name a submitted option means: itself when it is one of `names` or not an
 * abbreviation, else the one name whose abbreviation it is. An abbreviation that fits no
 * name (the VM or snapshot is gone) comes back unchanged and fails as unknown later.
 */
export function expandSuggestedName(value: string, names: Iterable<string>): string {
  const match = ABBREVIATION.exec(value);
  if (!match) return value;
  const [, prefix, hash] = match;
  const candidates = [...names];
  if (candidates.includes(value)) return value;
  return candidates.find((name) => name.length > MAX_VALUE && name.startsWith(prefix!) && nameHash(name) === hash) ?? value;
}

/**
 * The hosts' heartbeats, read at most once per `maxAgeMs`: autocomplete fires on every
 * keystroke, and re-reading a 10,000-VM inventory each time would be slow for no news.
 */
export class InventoryView {
  private cached: { at: number; hosts: HostStatus[] } | undefined;
  private refreshing: Promise<HostStatus[]> | undefined;

  constructor(
    core: SnapbotCore,
    private readonly maxAgeMs = 2_000,
    /** How the hosts are read: the registry in Redis; tests count reads through it. */
    private readonly readHosts: () => Promise<HostStatus[]> = () => listHosts(core),
  ) {}

  /**
   * The hosts as of at most `maxAgeMs` ago. Once anything is cached, a stale copy is
   * served at once while a fresh one is read in the background, so a keystroke never
   * waits for a large inventory to be read and parsed.
   */
  hosts(): Promise<HostStatus[]> {
    const cached = this.cached;
    if (cached && Date.now() - cached.at <= this.maxAgeMs) return Promise.resolve(cached.hosts);
    const refresh = this.refresh();
    return cached ? Promise.resolve(cached.hosts) : refresh;
  }

  private refresh(): Promise<HostStatus[]> {
    this.refreshing ??= this.readHosts()
      .then((hosts) => {
        this.cached = { at: Date.now(), hosts };
        return hosts;
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    // A failed background refresh keeps the old copy; the next call tries again.
    this.refreshing.catch(() => undefined);
    return this.refreshing;
  }
}

function clip(text: string): string {
  return text.length <= MAX_LABEL ? text : `${text.slice(0, MAX_LABEL - 1)}…`;
}

/** Orders matches: names starting with the query first, then the rest, each alphabetically. */
function rank<T>(items: T[], key: (item: T) => string, query: string): T[] {
  const needle = query.toLowerCase();
  return items
    .map((item) => ({ item, text: key(item).toLowerCase() }))
    .filter(({ text }) => text.includes(needle))
    .sort((a, b) => Number(!a.text.startsWith(needle)) - Number(!b.text.startsWith(needle)) || a.text.localeCompare(b.text))
    .map(({ item }) => item);
}

/**
 * The inventory as `actor` may see it in suggestions: only the VMs the policy lets them
 * list, and only hosts that have one. Autocomplete answers every keystroke of anyone in
 * the guild; it must not show the fleet to a member who may not list it.
 */
export function visibleInventory(policy: Policy, actor: Actor, hosts: readonly HostStatus[]): HostStatus[] {
  return hosts.flatMap((host) => {
    const vms = host.vms.filter((vm) => isAllowed(policy, actor, 'list', { host: host.hostId, vm: vm.name }));
    return vms.length === 0 ? [] : [{ ...host, vms }];
  });
}

/** VMs whose name (or host) contains the query, as "vm · host (state)"; offline hosts marked. */
export function suggestVms(hosts: HostStatus[], query: string): Suggestion[] {
  const entries = hosts.flatMap((host) => host.vms.map((vm) => ({ vm, host })));
  const matches = rank(entries, ({ vm, host }) => `${vm.name} ${host.hostId}`, query.trim());
  return matches
    .slice(0, MAX_SUGGESTIONS)
    .map(({ vm, host }) => ({ label: clip(`${vm.name} · ${host.hostId} (${host.online ? vm.state : 'host offline'})`), value: suggestionValueFor(vm.name) }));
}

/** Hosts matching the query; only those that have `vm` when the VM is already chosen. */
export function suggestHosts(hosts: HostStatus[], query: string, vm?: string): Suggestion[] {
  const candidates = vm ? hosts.filter((host) => host.vms.some((candidate) => candidate.name === vm)) : hosts;
  return rank(candidates, (host) => host.hostId, query.trim())
    .slice(0, MAX_SUGGESTIONS)
    .map((host) => ({
      label: clip(`${host.hostId} (${host.online ? 'online' : 'offline'}, ${host.vms.length} VMs)`),
      value: host.hostId,
    }));
}

/** Snapshot names of the chosen VM (on the chosen host, if any) that contain the query. */
export function suggestSnapshots(hosts: HostStatus[], vm: string, host: string | undefined, query: string): Suggestion[] {
  const names = hosts
    .filter((candidate) => host === undefined || candidate.hostId === host)
    .flatMap((candidate) => candidate.vms.filter((entry) => entry.name === vm).flatMap((entry) => entry.snapshots));
  return rank(names, (snapshot) => snapshot.name, query.trim())
    .slice(0, MAX_SUGGESTIONS)
    .map((snapshot) => ({ label: clip(`${snapshot.name} (${snapshot.location})`), value: suggestionValueFor(snapshot.name) }));
}

/**
 * Completions of the last word of a fleet selector (`web-* host:kvm-1 !web-canary`):
 * `all`, `host:<id>` and VM names, each also as an exclusion after `!`. The words
 * typed before it are kept, so the value is the whole selector.
 */
export function suggestFleetTargets(hosts: HostStatus[], typed: string): Suggestion[] {
  const trimmedStart = typed.replace(/^\s+/, '');
  const lastBreak = Math.max(trimmedStart.lastIndexOf(' '), trimmedStart.lastIndexOf(','));
  const before = trimmedStart.slice(0, lastBreak + 1);
  const partial = trimmedStart.slice(lastBreak + 1);
  const negated = partial.startsWith('!');
  const needle = negated ? partial.slice(1) : partial;
  const vmCounts = new Map<string, number>();
  for (const host of hosts) for (const vm of host.vms) vmCounts.set(vm.name, (vmCounts.get(vm.name) ?? 0) + 1);
  const total = hosts.reduce((sum, host) => sum + host.vms.length, 0);
  const candidates: Array<{ word: string; detail: string }> = [
    ...(negated ? [] : [{ word: 'all', detail: `every VM (${total})` }]),
    ...hosts.map((host) => ({ word: `host:${host.hostId}`, detail: `${host.vms.length} VMs${host.online ? '' : ', offline'}` })),
    ...[...vmCounts].map(([name, count]) => ({ word: name, detail: count > 1 ? `VM on ${count} hosts` : 'VM' })),
  ];
  return rank(candidates, (candidate) => candidate.word, needle)
    .map((candidate) => ({ ...candidate, value: `${before}${negated ? '!' : ''}${candidate.word}` }))
    .filter((candidate) => candidate.value.length <= MAX_VALUE)
    .slice(0, MAX_SUGGESTIONS)
    .map((candidate) => ({ label: clip(`${candidate.value} — ${negated ? 'leave out ' : ''}${candidate.detail}`), value: candidate.value }));
}

/** Snapshot names held by the VMs a selector names, with how many VMs hold each (for a fleet delete or list). */
export function suggestFleetSnapshotNames(hosts: HostStatus[], matches: (hostId: string, vm: string) => boolean, query: string): Suggestion[] {
  const holders = new Map<string, number>();
  for (const host of hosts) {
    for (const vm of host.vms) {
      if (!matches(host.hostId, vm.name)) continue;
      for (const snapshot of vm.snapshots) holders.set(snapshot.name, (holders.get(snapshot.name) ?? 0) + 1);
    }
  }
  return rank([...holders], ([name]) => name, query.trim())
    .slice(0, MAX_SUGGESTIONS)
    .map(([name, count]) => ({ label: clip(`${name} (${count} VM${count === 1 ? '' : 's'})`), value: suggestionValueFor(name) }));
}
