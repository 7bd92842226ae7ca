import { SnapbotError } from '../errors.js';
import { KEEP_RULES, keepSpecSchema, PERIOD_RULES, type KeepRule, type KeepSpec, type PeriodRule } from './keep-spec.js';
import { isoWeek, localTimeReader, normalizeTimeZone, type LocalTime } from './time-zone.js';

/**
 * Which of a VM's snapshots a schedule keeps, prunes or has to leave alone after a firing.
 * Pure: the worker lists the VM's snapshots, asks this, then deletes `prune` in order
 * through `virsh snapshot-delete` (never by removing files) and reports all three lists.
 *
 * The rules:
 *
 * 1. Candidates. Only snapshots whose marker (stored with the snapshot, see the job
 *    marker in the description) is this schedule's id. Unmarked snapshots, manual ones
 *    and those of other schedules are invisible here: never in any list, never pruned,
 *    whatever their names. A marked snapbot undo point (`pre-revert-…`, which the revert
 *    code makes and prunes) and a marked snapshot whose creation time cannot be read are
 *    skipped before any rule looks at them.
 * 2. Keeping. Every candidate kept by at least one rule of the keep spec is kept:
 *    - `last=N` keeps the N newest candidates;
 *    - `hourly|daily|weekly|monthly=N` keeps, for each of the N most recent periods that
 *      have a candidate, the newest candidate of that period (restic's and sanoid's
 *      "keep N per period"; periods without a snapshot do not count). Periods are the
 *      wall-clock hour, calendar day, ISO week (Monday first) and calendar month in the
 *      schedule's time zone. The two 02:00 hours of a fall-back night are two hours.
 *    Every rule counts at least 1, so the newest candidate is always kept.
 * 3. Pruning, oldest first, of every candidate not kept, unless libvirt could not delete
 *    it safely; then it is skipped with a reason:
 *    - the VM's current snapshot (the one the VM runs on top of) is never pruned;
 *    - an external snapshot is pruned only where libvirt can merge it: it is a strict
 *      ancestor of the current snapshot (on the disk chain the VM runs on), it has
 *      exactly one child (libvirt refuses to delete one with several children), and no
 *      internal snapshot lives in the overlay it created (committing that overlay would
 *      leave those internal snapshots unusable, and libvirt does not stop it). Merging
 *      such a snapshot block-commits its overlay, so every kept descendant keeps its
 *      data: a kept external child does not block its parent, or `last=N` could never
 *      prune a disk-only schedule's chain;
 *    - an internal snapshot is pruned (libvirt drops it and re-parents its children),
 *      unless it lives in a disk image the VM no longer writes to because an external
 *      snapshot was taken after it: libvirt refuses that delete while the VM runs;
 *    - when the VM has external snapshots but its tree is incomplete (no single current
 *      snapshot, a parent missing from the list, a loop), nothing that needs the chain is
 *      pruned.
 *    Decisions are made on the tree as listed. Deleting oldest first keeps them valid:
 *    deleting a snapshot re-parents only its own children, which are newer. A snapshot
 *    skipped because of a child pruned in the same run goes in a later run.
 */

/** A VM's snapshot as the worker knows it. */
export interface RetentionSnapshot {
  name: string;
  /** ISO 8601 creation time. */
  createdAt: string;
  /** The id of the schedule that made it, from the marker stored with it; null for any other. */
  marker: string | null;
  parent: string | null;
  current: boolean;
  location: 'internal' | 'external';
}

export interface RetentionOptions {
  /** The schedule whose snapshots are candidates. */
  scheduleId: string;
  /** IANA zone of the hourly, daily, weekly and monthly periods (the schedule's zone). */
  timeZone: string;
}

export type SkipCause =
  | 'undo-point'
  | 'unknown-time'
  | 'current'
  | 'chain-unknown'
  | 'off-chain'
  | 'several-children'
  | 'holds-internal'
  | 'inactive-image';

export interface KeptSnapshot {
  name: string;
  /** The rules that keep it, in KEEP_RULES order. */
  rules: KeepRule[];
}

export interface SkippedSnapshot {
  name: string;
  cause: SkipCause;
  /** A sentence for the summary and the audit trail. */
  reason: string;
}

export interface RetentionChoice {
  /** Kept by a rule, newest first. */
  keep: KeptSnapshot[];
  /** To delete, in this order (oldest first). */
  prune: string[];
  /** Not kept by any rule but left alone, oldest first. */
  skip: SkippedSnapshot[];
}

/** snapbot's undo points (worker/snapshot-operations.ts UNDO_POINT_PREFIX; shared cannot import worker). */
export const UNDO_POINT_PREFIX = 'pre-revert-';

interface Candidate {
  snapshot: RetentionSnapshot;
  time: number;
}

/**
 * Decides what a schedule keeps, prunes and skips among a VM's snapshots (the rules are
 * at the top of this file). Throws VALIDATION for an empty schedule id, an invalid keep
 * spec, an unknown time zone, or two snapshots with one name.
 */
export function chooseRetention(snapshots: readonly RetentionSnapshot[], keep: KeepSpec, options: RetentionOptions): RetentionChoice {
  if (options.scheduleId.length === 0) throw new SnapbotError('VALIDATION', 'Retention needs the schedule id its snapshots are marked with.');
  // An empty or broken spec would keep nothing and prune everything.
  if (!keepSpecSchema.safeParse(keep).success) throw new SnapbotError('VALIDATION', 'Retention needs a valid keep spec (at least one rule, counts 1 to 1000).');
  const zone = normalizeTimeZone(options.timeZone);
  const tree = new SnapshotTree(snapshots);

  const skip: Array<{ snapshot: RetentionSnapshot } & Omit<SkippedSnapshot, 'name'>> = [];
  const candidates: Candidate[] = [];
  for (const snapshot of snapshots.filter((s) => s.marker === options.scheduleId)) {
    const time = Date.parse(snapshot.createdAt);
    if (snapshot.name.startsWith(UNDO_POINT_PREFIX)) {
      skip.push({ snapshot, cause: 'undo-point', reason: 'it is an undo point snapbot took before a revert; only the revert code prunes those.' });
    } else if (Number.isNaN(time)) {
      skip.push({ snapshot, cause: 'unknown-time', reason: `its creation time ${quote(snapshot.createdAt)} cannot be read, so no rule can place it.` });
    } else {
      candidates.push({ snapshot, time });
    }
  }
  candidates.sort((a, b) => compareOldestFirst(b.snapshot, a.snapshot));

  const keptBy = chooseKept(candidates, keep, zone);
  const prune: string[] = [];
  for (const { snapshot } of [...candidates].reverse()) {
    if (keptBy.has(snapshot.name)) continue;
    const refusal = tree.whyNotDeletable(snapshot);
    if (refusal) skip.push({ snapshot, ...refusal });
    else prune.push(snapshot.name);
  }

  return {
    keep: candidates
      .filter(({ snapshot }) => keptBy.has(snapshot.name))
      .map(({ snapshot }) => ({ name: snapshot.name, rules: KEEP_RULES.filter((rule) => keptBy.get(snapshot.name)!.has(rule)) })),
    prune,
    skip: skip
      .sort((a, b) => compareOldestFirst(a.snapshot, b.snapshot))
      .map(({ snapshot, cause, reason }) => ({ name: snapshot.name, cause, reason })),
  };
}

/** Names of the candidates each rule keeps; `candidates` is newest first. */
function chooseKept(candidates: readonly Candidate[], keep: KeepSpec, zone: string): Map<string, Set<KeepRule>> {
  const keptBy = new Map<string, Set<KeepRule>>();
  const mark = (name: string, rule: KeepRule) => {
    const rules = keptBy.get(name) ?? new Set<KeepRule>();
    rules.add(rule);
    keptBy.set(name, rules);
  };
  if (keep.last !== undefined) for (const { snapshot } of candidates.slice(0, keep.last)) mark(snapshot.name, 'last');

  if (!PERIOD_RULES.some((rule) => keep[rule] !== undefined)) return keptBy;
  const readLocal = localTimeReader(zone);
  const locals = new Map<Candidate, LocalTime>(candidates.map((candidate) => [candidate, readLocal(candidate.time)]));
  for (const rule of PERIOD_RULES) {
    const count = keep[rule];
    if (count === undefined) continue;
    // Newest first, so the first candidate met in a period is that period's newest. A set,
    // not "the previous period", because a fall-back at midnight revisits a day.
    const periods = new Set<string>();
    for (const candidate of candidates) {
      const period = periodOf(rule, locals.get(candidate)!);
      if (periods.has(period)) continue;
      if (periods.size === count) break;
      periods.add(period);
      mark(candidate.snapshot.name, rule);
    }
  }
  return keptBy;
}

function periodOf(rule: PeriodRule, local: LocalTime): string {
  const month = String(local.month).padStart(2, '0');
  const day = String(local.day).padStart(2, '0');
  switch (rule) {
    case 'hourly':
      return `${local.year}-${month}-${day}T${String(local.hour).padStart(2, '0')}${local.offset}`;
    case 'daily':
      return `${local.year}-${month}-${day}`;
    case 'weekly': {
      const week = isoWeek(local.year, local.month, local.day);
      return `${week.year}-W${String(week.week).padStart(2, '0')}`;
    }
    case 'monthly':
      return `${local.year}-${month}`;
  }
}

/** The snapshot tree of one VM: parents, children, the chain the VM runs on, disk images. */
class SnapshotTree {
  private readonly byName = new Map<string, RetentionSnapshot>();
  private readonly children = new Map<string, string[]>();
  private readonly current: RetentionSnapshot | null;
  /** Known when there is exactly one current snapshot and every parent link is sound. */
  private readonly chainKnown: boolean;
  private readonly hasExternal: boolean;
  private readonly currentAncestors = new Set<string>();
  /** The image the VM writes to: the overlay of an external snapshot (its name) or the base (''). */
  private readonly activeImage: string | null = null;
  private readonly images = new Map<string, string>();

  constructor(snapshots: readonly RetentionSnapshot[]) {
    for (const snapshot of snapshots) {
      if (this.byName.has(snapshot.name)) {
        throw new SnapbotError('VALIDATION', `The snapshot list names ${quote(snapshot.name)} twice.`);
      }
      this.byName.set(snapshot.name, snapshot);
    }
    // Oldest first, so reasons read the same however the listing was ordered.
    for (const snapshot of [...snapshots].sort(compareOldestFirst)) {
      if (snapshot.parent === null) continue;
      this.children.set(snapshot.parent, [...(this.children.get(snapshot.parent) ?? []), snapshot.name]);
    }
    const currents = snapshots.filter((s) => s.current);
    this.current = currents.length === 1 ? currents[0]! : null;
    this.hasExternal = snapshots.some((s) => s.location === 'external');
    const linksSound = snapshots.every((s) => this.ancestorsOf(s) !== null);
    this.chainKnown = this.current !== null && linksSound;
    if (this.chainKnown) {
      for (const snapshot of snapshots) {
        // The overlay made by the nearest external ancestor, or the base image ('').
        this.images.set(snapshot.name, this.ancestorsOf(snapshot)!.find((ancestor) => ancestor.location === 'external')?.name ?? '');
      }
      for (const ancestor of this.ancestorsOf(this.current!)!) this.currentAncestors.add(ancestor.name);
      this.activeImage = this.current!.location === 'external' ? this.current!.name : this.images.get(this.current!.name)!;
    }
  }

  /** Strict ancestors, nearest first; null when a parent is missing or the links loop. */
  private ancestorsOf(snapshot: RetentionSnapshot): RetentionSnapshot[] | null {
    const ancestors: RetentionSnapshot[] = [];
    const seen = new Set([snapshot.name]);
    let parentName = snapshot.parent;
    while (parentName !== null) {
      const parent = this.byName.get(parentName);
      if (!parent || seen.has(parentName)) return null;
      seen.add(parentName);
      ancestors.push(parent);
      parentName = parent.parent;
    }
    return ancestors;
  }

  /** Why libvirt could not delete this snapshot safely now, or null when it can. */
  whyNotDeletable(snapshot: RetentionSnapshot): Omit<SkippedSnapshot, 'name'> | null {
    if (snapshot.current) return { cause: 'current', reason: "it is the VM's current snapshot." };
    // Without external snapshots every internal one lives in the base image: nothing to merge.
    if (snapshot.location === 'internal' && !this.hasExternal) return null;
    if (!this.chainKnown) {
      return {
        cause: 'chain-unknown',
        reason:
          "the VM's snapshot tree is incomplete (no single current snapshot, or a parent missing from the list), so whether libvirt can delete it safely is unknown.",
      };
    }
    if (snapshot.location === 'internal') {
      if (this.images.get(snapshot.name) === this.activeImage) return null;
      return {
        cause: 'inactive-image',
        reason: 'it lives in a disk image the VM no longer writes to (an external snapshot was taken after it); libvirt refuses to delete it there.',
      };
    }
    if (!this.currentAncestors.has(snapshot.name)) {
      return {
        cause: 'off-chain',
        reason: 'it is not on the disk chain the VM runs on (a revert moved away from it), so libvirt cannot merge it.',
      };
    }
    const children = this.children.get(snapshot.name) ?? [];
    if (children.length > 1) {
      return {
        cause: 'several-children',
        reason: `it has ${children.length} child snapshots (${listNames(children)}); libvirt merges an external snapshot only into a single child.`,
      };
    }
    const inOverlay = [...this.byName.values()]
      .filter((other) => other.location === 'internal' && this.images.get(other.name) === snapshot.name)
      .sort(compareOldestFirst);
    if (inOverlay.length > 0) {
      return {
        cause: 'holds-internal',
        reason: `internal snapshot${inOverlay.length === 1 ? '' : 's'} ${listNames(inOverlay.map((s) => s.name))} live${inOverlay.length === 1 ? 's' : ''} in the overlay it created and would be lost when libvirt merges it.`,
      };
    }
    return null;
  }
}

/** Oldest first, by creation time then name; an unreadable time counts as the epoch. */
function compareOldestFirst(a: RetentionSnapshot, b: RetentionSnapshot): number {
  return timeKey(a) - timeKey(b) || compareNames(a.name, b.name);
}

function timeKey(snapshot: RetentionSnapshot): number {
  const time = Date.parse(snapshot.createdAt);
  return Number.isNaN(time) ? 0 : time;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 3).map(quote).join(', ');
  return names.length > 3 ? `${shown} and ${names.length - 3} more` : shown;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
