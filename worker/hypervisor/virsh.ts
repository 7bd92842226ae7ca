import { randomBytes } from 'node:crypto';
import { SnapbotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { createVirshRunner, startLongRunningVirsh, type VirshRunner, type VirshRunResult } from './virsh-runner.js';
import { WATCH_LIFETIME_SECONDS, type LifecycleWatcherProcess } from '../domain-watch.js';

import { classifyVirshError, type VirshErrorContext } from './classify-virsh-error.js';
import type {
  CreateSnapshotRequest,
  DiskSource,
  DomainSummary,
  Hypervisor,
  InventoryDomain,
  HypervisorVersion,
  RawSnapshot,
  SnapshotName,
} from './hypervisor.js';
import {
  parseDomainState,
  parseDomblklistDetails,
  parseDominfoMemoryKiB,
  parseNameList,
  parseSingleName,
  parseSnapshotTable,
  parseSnapshotXml,
  parseUuidList,
  parseUuidNameList,
  parseVersion,
  type ParsedSnapshot,
} from './virsh-parsers.js';
import { chunkVirshCommands, composeVirshScript, splitScriptOutput } from './virsh-script.js';


export interface VirshHypervisorOptions {
  /** The virsh executable (VIRSH_PATH). */
  virshPath: string;
  /** The libvirt URI (LIBVIRT_URI), passed as `--connect=URI` on every call. */
  uri: string;
  /** Limit for create, revert and delete. */
  timeoutMs: number;
  /** Limit for everything that only reads. */
  queryTimeoutMs: number;
  logger?: Logger;
  /** This worker's host id, named in error messages. */
  hostId?: string;
  /** Defaults to running the real executable at `virshPath`. */
  runner?: VirshRunner;
  /** Told of every virsh call once it has ended (metrics); must not throw. */
  observer?: VirshObserver;
}

/** One finished virsh call: its subcommand, how long it took, and the error code it failed with (null when it succeeded). */
export interface VirshCallObservation {
  subcommand: string;
  durationMs: number;
  failure: SnapbotError['code'] | null;
}

export type VirshObserver = (call: VirshCallObservation) => void;

type CallKind = 'query' | 'mutation';

interface SharedVirshState {
  /** Names from the last listing, so that error messages can say "VM web-01" instead of a UUID. */
  domainNames: Map<string, string>;
  /** Set once this virsh turned out not to know `echo --err`: every command then gets its own process. */
  oneCommandPerProcess?: boolean;
}

/** What a virsh without `echo --err` says to a command line that uses it (it then runs none of the line). */
const NO_ECHO_ERR = /command 'echo' doesn't support option --err|unknown command: 'echo'/;

/**
 * The Hypervisor port over the `virsh` command line. Every call is one virsh process
 * started from an argv array (never a shell) as `virsh --connect=URI SUBCOMMAND
 * --option=value…`: the single-element `--opt=value` form keeps a value that starts
 * with `--` from being read as an option. Domains are addressed by UUID only.
 */
export class VirshHypervisor implements Hypervisor {
  private readonly virshPath: string;
  private readonly uri: string;
  private readonly timeoutMs: number;
  private readonly queryTimeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly hostId: string | undefined;
  private readonly runner: VirshRunner;
  /** Shared with the per-job views that `withLogger` makes. */
  private readonly shared: SharedVirshState;

  constructor(
    private readonly options: VirshHypervisorOptions,
    shared?: SharedVirshState,
  ) {
    this.virshPath = options.virshPath;
    this.uri = options.uri;
    this.timeoutMs = options.timeoutMs;
    this.queryTimeoutMs = options.queryTimeoutMs;
    this.logger = options.logger;
    this.hostId = options.hostId;
    this.runner = options.runner ?? createVirshRunner(options.virshPath);
    this.shared = shared ?? { domainNames: new Map() };
  }

  /** The same host, logging through `logger` (a job's child logger, so `virsh failed` lines name the job). */
  withLogger(logger: Logger): Hypervisor {
    return new VirshHypervisor({ ...this.options, logger, runner: this.runner }, this.shared);
  }

  /**
   * `uri` first, so that the ready line comes once virsh is connected; the event
   * registration is the next thing it does. One process, replaced every few minutes.
   */
  startLifecycleWatcher(readyLine: string): LifecycleWatcherProcess {
    const watch = `event --event lifecycle --loop --timeout ${WATCH_LIFETIME_SECONDS}`;
    return startLongRunningVirsh(this.virshPath, [`--connect=${this.uri}`, `uri\necho ${readyLine}\n${watch}`]);
  }

  /** libvirt daemon and QEMU versions, from `virsh version --daemon`. */
  async version(): Promise<HypervisorVersion> {
    const { libvirt, qemu } = parseVersion(await this.run('query', ['version', '--daemon'], {}));
    return { libvirt, qemu };
  }

  /**
   * Every defined domain with its name and state, in one virsh process: `list --all --uuid
   * --name` and the UUIDs in each common state (see describeDomains).
   */
  async listDomains(): Promise<DomainSummary[]> {
    return this.describeDomains(false);
  }

  /**
   * The whole host for the inventory: every domain with its state and snapshot names. Two
   * virsh processes up to ~570 VMs, one more per ~570 after (a command line has a size
   * limit), instead of 4 per VM.
   */
  async readInventory(): Promise<InventoryDomain[]> {
    return this.describeDomains(true);
  }

  /**
   * First process: names by UUID, and which UUIDs are running, paused or shut off (one
   * filtered `list` each). Then, in as few processes as fit: each domain's snapshot
   * lists (for the inventory), and `domstate` for a domain in none of those three states
   * (in shutdown, crashed, suspended…), whose state word only domstate gives. A domain
   * undefined in between is left out.
   */
  private async describeDomains(withSnapshots: false): Promise<DomainSummary[]>;
  private async describeDomains(withSnapshots: true): Promise<InventoryDomain[]>;
  private async describeDomains(withSnapshots: boolean): Promise<DomainSummary[] | InventoryDomain[]> {
    const [named, ...byState] = await this.runScript('query', 'list', [
      { args: ['list', '--all', '--uuid', '--name'], context: {} },
      ...LISTED_STATES.map(({ flag }) => ({ args: ['list', '--all', '--uuid', flag], context: {} })),
    ]);
    for (const step of [named, ...byState]) if (step!.error) throw step!.error;
    const domains = parseUuidNameList(named!.stdout);
    const stateOf = new Map<string, string>();
    byState.forEach((step, index) => {
      for (const uuid of parseUuidList(step!.stdout)) stateOf.set(uuid, LISTED_STATES[index]!.state);
    });

    const perDomain = domains.map(({ uuid }) => [
      ...(stateOf.has(uuid) ? [] : [{ kind: 'state' as const, args: ['domstate', `--domain=${uuid}`] }]),
      ...(withSnapshots
        ? [
            { kind: 'table' as const, args: ['snapshot-list', `--domain=${uuid}`] },
            { kind: 'external' as const, args: ['snapshot-list', `--domain=${uuid}`, '--name', '--external'] },
          ]
        : []),
    ]);
    const steps = await this.runScript(
      'query',
      withSnapshots ? 'inventory' : 'list',
      domains.flatMap(({ name }, index) => perDomain[index]!.map(({ args }) => ({ args, context: { vm: name } }))),
    );
    const found: InventoryDomain[] = [];
    let next = 0;
    for (const [index, { uuid, name }] of domains.entries()) {
      const own = new Map(perDomain[index]!.map(({ kind }) => [kind, steps[next++]!]));
      const failures = [...own.values()].flatMap((step) => (step.error ? [step.error] : []));
      // Undefined after the listing: left out, as a VM that is gone.
      if (failures.some((error) => error.code === 'DOMAIN_NOT_FOUND')) continue;
      if (failures[0]) throw failures[0];
      const stateStep = own.get('state');
      const state = stateStep ? parseDomainState(stateStep.stdout) : stateOf.get(uuid)!;
      const snapshots = withSnapshots ? await this.snapshotNamesFrom(uuid, own.get('table')!.stdout, own.get('external')!.stdout) : [];
      found.push({ uuid, name, state, snapshots });
    }
    // Replaced, not merged, so undefined domains do not pile up in a long-running worker.
    this.shared.domainNames = new Map(found.map((domain) => [domain.uuid, domain.name]));
    return withSnapshots ? found : found.map(({ uuid, name, state }) => ({ uuid, name, state }));
  }

  /** The domain's current name, from `virsh domname --domain=UUID`; DOMAIN_NOT_FOUND when it is gone. */
  async domainName(uuid: string): Promise<string> {
    const name = parseSingleName(await this.run('query', ['domname', `--domain=${uuid}`], this.context(uuid)));
    if (name === null) {
      throw new SnapbotError('INTERNAL', `virsh domname printed no name for VM ${uuid}`, { detail: { uuid } });
    }
    this.shared.domainNames.set(uuid, name);
    return name;
  }

  /** `virsh domstate` words: running, shut off, paused, … */
  async domainState(uuid: string): Promise<string> {
    return parseDomainState(await this.run('query', ['domstate', `--domain=${uuid}`], this.context(uuid)));
  }

  /**
   * Every snapshot of the domain, newest first (within one second: children before
   * their parents, then by name). A snapshot deleted while the list is being read is
   * left out.
   */
  async listSnapshots(uuid: string): Promise<RawSnapshot[]> {
    const context = this.context(uuid);
    // Two virsh processes however many snapshots: the names and the current one, then every snapshot's XML.
    const [names, current] = await this.runScript('query', 'snapshot-list', [
      { args: ['snapshot-list', `--domain=${uuid}`, '--name'], context },
      { args: ['snapshot-current', `--domain=${uuid}`, '--name'], context },
    ]);
    if (names!.error) throw names!.error;
    // "error: domain 'X' has no current snapshot" is an answer, not a failure.
    if (current!.error && current!.error.code !== 'SNAPSHOT_NOT_FOUND') throw current!.error;
    const currentName = current!.error ? null : parseSingleName(current!.stdout);
    const nameList = parseNameList(names!.stdout);
    const dumps = await this.runScript(
      'query',
      'snapshot-dumpxml',
      nameList.map((name) => ({ args: ['snapshot-dumpxml', `--domain=${uuid}`, `--snapshotname=${name}`], context: this.context(uuid, name) })),
    );
    const snapshots = dumps.map((dump) => {
      // Deleted while the list was being read: left out.
      if (dump.error?.code === 'SNAPSHOT_NOT_FOUND') return null;
      if (dump.error) throw dump.error;
      return parseSnapshotXml(dump.stdout);
    });
    const found = snapshots.filter((snapshot): snapshot is ParsedSnapshot => snapshot !== null);
    const depth = treeDepths(found);
    // creationTime has one-second resolution; within a second a child is newer than its parent.
    return found
      .map((snapshot) => ({ ...snapshot, current: snapshot.name === currentName }))
      .sort(
        (a, b) =>
          Date.parse(b.createdAt) - Date.parse(a.createdAt) ||
          (depth.get(b.name) ?? 0) - (depth.get(a.name) ?? 0) ||
          compareNames(a.name, b.name),
      );
  }

  /**
   * Names, creation times and locations: two virsh calls, however many snapshots (for the
   * inventory; a fleet delete binds each delete to the creation time it saw here).
   */
  async listSnapshotNames(uuid: string): Promise<SnapshotName[]> {
    const [table, external] = await Promise.all([
      this.run('query', ['snapshot-list', `--domain=${uuid}`], this.context(uuid)),
      this.run('query', ['snapshot-list', `--domain=${uuid}`, '--name', '--external'], this.context(uuid)),
    ]);
    return this.snapshotNamesFrom(uuid, table, external);
  }

  /** Snapshot names from `snapshot-list`'s table and `snapshot-list --name --external`. */
  private async snapshotNamesFrom(uuid: string, tableText: string, externalText: string): Promise<SnapshotName[]> {
    const table = parseSnapshotTable(tableText);
    const externalNames = new Set(parseNameList(externalText));
    const location = (name: string) => (externalNames.has(name) ? ('external' as const) : ('internal' as const));
    if (table) return table.map(({ name, createdAt }) => ({ name, createdAt, location: location(name) }));
    // A table we cannot read with certainty: names alone, without creation times.
    const names = parseNameList(await this.run('query', ['snapshot-list', `--domain=${uuid}`, '--name'], this.context(uuid)));
    return names.map((name) => ({ name, location: location(name) }));
  }

  /** One snapshot; SNAPSHOT_NOT_FOUND when the domain has none by that name. */
  async snapshotInfo(uuid: string, name: string, options: { knownCurrent?: boolean } = {}): Promise<RawSnapshot> {
    if (options.knownCurrent !== undefined) return { ...(await this.dumpSnapshot(uuid, name)), current: options.knownCurrent };
    const [snapshot, current] = await Promise.allSettled([this.dumpSnapshot(uuid, name), this.currentSnapshotName(uuid)]);
    // The snapshot's own failure says more than the current-snapshot lookup's.
    if (snapshot.status === 'rejected') throw snapshot.reason;
    if (current.status === 'rejected') throw current.reason;
    return { ...snapshot.value, current: snapshot.value.name === current.value };
  }

  /** The domain's disks and drives, from `virsh domblklist --domain=UUID --details` (its live XML). */
  async diskSources(uuid: string): Promise<DiskSource[]> {
    return parseDomblklistDetails(await this.run('query', ['domblklist', `--domain=${uuid}`, '--details'], this.context(uuid)));
  }

  /** The guest's current memory in KiB, from `virsh dominfo --domain=UUID`. */
  async memoryKiB(uuid: string): Promise<number> {
    return parseDominfoMemoryKiB(await this.run('query', ['dominfo', `--domain=${uuid}`], this.context(uuid)));
  }

  /**
   * disk-only: an atomic external snapshot of every disk (`--disk-only --atomic`);
   * full: an internal snapshot, with memory when the domain runs and disks only when it
   * is shut off (libvirt decides; the worker reports which one it got). The snapshot is
   * read back (`snapshot-dumpxml`: its real creation time, state and disks) in the same
   * virsh process, right after the create.
   */
  async createSnapshot(uuid: string, request: CreateSnapshotRequest): Promise<RawSnapshot> {
    const args = ['snapshot-create-as', `--domain=${uuid}`, `--name=${request.name}`];
    // virsh refuses `--description=` with an empty value ("Option argument is empty").
    if (request.description !== '') args.push(`--description=${request.description}`);
    if (request.mode === 'disk-only') args.push('--disk-only', '--atomic');
    const context = this.context(uuid, request.name);
    const [created, readBack] = await this.runScript('mutation', 'snapshot-create-as', [
      { args, context },
      { args: ['snapshot-dumpxml', `--domain=${uuid}`, `--snapshotname=${request.name}`], context },
    ]);
    if (created!.error) throw created!.error;
    // libvirt makes a snapshot it has just created the current one.
    if (!readBack!.error) return { ...parseSnapshotXml(readBack!.stdout), current: true };
    return this.snapshotInfo(uuid, request.name, { knownCurrent: true });
  }

  async revertSnapshot(uuid: string, name: string): Promise<void> {
    await this.run('mutation', ['snapshot-revert', `--domain=${uuid}`, `--snapshotname=${name}`], this.context(uuid, name));
  }

  async deleteSnapshot(uuid: string, name: string): Promise<void> {
    await this.run('mutation', ['snapshot-delete', `--domain=${uuid}`, `--snapshotname=${name}`], this.context(uuid, name));
  }

  private async dumpSnapshot(uuid: string, name: string): Promise<ParsedSnapshot> {
    const xml = await this.run(
      'query',
      ['snapshot-dumpxml', `--domain=${uuid}`, `--snapshotname=${name}`],
      this.context(uuid, name),
    );
    return parseSnapshotXml(xml);
  }

  /** The current snapshot's name, or null when the domain has none. */
  private async currentSnapshotName(uuid: string): Promise<string | null> {
    try {
      return parseSingleName(
        await this.run('query', ['snapshot-current', `--domain=${uuid}`, '--name'], this.context(uuid)),
      );
    } catch (error) {
      // "error: domain 'X' has no current snapshot" (exit 1) is an answer, not a failure.
      if (isCode(error, 'SNAPSHOT_NOT_FOUND')) return null;
      throw error;
    }
  }

  private context(uuid: string, snapshot?: string): VirshErrorContext {
    return {
      ...(this.hostId === undefined ? {} : { host: this.hostId }),
      vm: this.shared.domainNames.get(uuid) ?? uuid,
      ...(snapshot === undefined ? {} : { snapshot }),
    };
  }

  /**
   * Runs one virsh subcommand and returns its stdout, or throws a SnapbotError whose
   * `detail` carries argv, exit code, stderr, duration and whether it timed out.
   */
  private async run(kind: CallKind, subcommand: readonly string[], context: VirshErrorContext): Promise<string> {
    const [step] = await this.runEach(kind, [{ args: subcommand, context }]);
    if (step!.error) throw step!.error;
    return step!.stdout;
  }

  /**
   * Runs `commands` in as few virsh processes as the command-line length allows (see
   * virsh-script.ts) and returns, per command and in order, its stdout and its error (null
   * when it succeeded). Throws when a process as a whole failed (not started, timed out,
   * killed, no connection): then no command's result can be trusted.
   * `label`: the name the whole process gets in errors and metrics.
   */
  private async runScript(kind: CallKind, label: string, commands: readonly ScriptCommand[]): Promise<ScriptStep[]> {
    // Short, so that more commands fit a command line; random, so that no output can forge one.
    const mark = `m${randomBytes(4).toString('hex')}`;
    const steps: ScriptStep[] = [];
    if (this.shared.oneCommandPerProcess) return this.runEach(kind, commands);
    for (const chunk of chunkVirshCommands(commands.map((command) => command.args), mark)) {
      const chunkCommands = commands.slice(steps.length, steps.length + chunk.length);
      const { result, detail, timeoutMs } = await this.spawn(kind, [composeVirshScript(chunk, mark)]);
      const context = this.withHost(chunkCommands[0]?.context ?? {});
      const parts = splitScriptOutput(result.stdout, result.stderr, mark, chunk.length);
      if (parts === null && result.exitCode === 1 && NO_ECHO_ERR.test(result.stderr)) {
        // An older virsh: it parses a whole line before running any of it, so nothing of
        // this one ran. From now on, one process per command, as before command lines.
        this.shared.oneCommandPerProcess = true;
        this.logger?.warn({ stderr: result.stderr }, "this virsh has no 'echo --err': running one virsh process per command");
        return [...steps, ...(await this.runEach(kind, commands.slice(steps.length)))];
      }
      const failure =
        this.processFailure(label, result, context, timeoutMs, detail) ??
        (parts === null ? this.classified(result.stderr || `virsh ${label} stopped before it ran its commands\n`, context, detail) : null);
      const chunkSteps =
        failure === null && parts !== null
          ? parts.map((part, index) => ({
              stdout: part.stdout,
              error: part.stderr === '' ? null : this.classified(part.stderr, this.withHost(chunkCommands[index]!.context), { ...detail, stderr: part.stderr, command: chunk[index] }),
            }))
          : [];
      const error = failure ?? chunkSteps.find((step) => step.error)?.error ?? null;
      this.observe(label, result, error);
      if (failure) {
        this.logger?.warn({ ...detail, code: failure.code }, 'virsh failed');
        throw failure;
      }
      for (const step of chunkSteps) if (step.error) this.logger?.warn({ ...step.error.detail, code: step.error.code }, 'virsh failed');
      this.logger?.debug({ commands: chunk.length, durationMs: result.durationMs }, 'virsh script ran');
      steps.push(...chunkSteps);
    }
    return steps;
  }

  /**
   * One virsh process per command: each command's stdout and its error (null when it
   * succeeded). Throws when a process as a whole failed (not started, timed out, killed).
   * Single calls use it, and {@link runScript} with a virsh without `echo --err`.
   */
  private async runEach(kind: CallKind, commands: readonly ScriptCommand[]): Promise<ScriptStep[]> {
    const steps: ScriptStep[] = [];
    for (const { args, context } of commands) {
      const command = args[0] ?? 'virsh';
      const { result, detail, timeoutMs } = await this.spawn(kind, args);
      const fullContext = this.withHost(context);
      const failure = this.processFailure(command, result, fullContext, timeoutMs, detail);
      const error = failure ?? (result.exitCode === 0 ? null : this.classified(result.stderr, fullContext, detail));
      this.observe(command, result, error);
      if (error) this.logger?.warn({ ...detail, code: error.code }, 'virsh failed');
      else this.logger?.debug({ argv: detail.argv, durationMs: result.durationMs }, 'virsh succeeded');
      if (failure) throw failure;
      steps.push({ stdout: result.stdout, error });
    }
    return steps;
  }

  private async spawn(kind: CallKind, subcommand: readonly string[]) {
    const args = [`--connect=${this.uri}`, ...subcommand];
    const timeoutMs = kind === 'mutation' ? this.timeoutMs : this.queryTimeoutMs;
    const result = await this.runner({ args, timeoutMs });
    const detail: Record<string, unknown> & { argv: string[] } = {
      argv: [this.virshPath, ...args],
      exitCode: result.exitCode,
      signal: result.signal,
      stderr: result.stderr,
      durationMs: result.durationMs,
      timedOut: result.timedOut,
    };
    return { result, detail, timeoutMs };
  }

  private withHost(context: VirshErrorContext): VirshErrorContext {
    return { ...(this.hostId === undefined ? {} : { host: this.hostId }), ...context };
  }

  private observe(subcommand: string, result: VirshRunResult, error: SnapbotError | null): void {
    this.options.observer?.({ subcommand, durationMs: result.durationMs, failure: error?.code ?? null });
  }

  private classified(stderr: string, context: VirshErrorContext, detail: Record<string, unknown>): SnapbotError {
    const classified = classifyVirshError(stderr, context);
    return new SnapbotError(classified.code, classified.message, { detail, permanent: classified.permanent });
  }

  /** The process itself failed (not started, timed out, killed); null when it exited on its own. */
  private processFailure(
    command: string,
    result: VirshRunResult,
    context: VirshErrorContext,
    timeoutMs: number,
    detail: Record<string, unknown>,
  ): SnapbotError | null {
    const about = `${context.vm ? ` for VM ${context.vm}` : ''}${context.host ? ` on host ${context.host}` : ''}`;
    if (result.spawnError) {
      const { code, message } = result.spawnError;
      const problem = code === 'ENOENT' ? 'was not found' : `could not be started (${code ?? message})`;
      // Retrying cannot bring back a missing or broken executable: an operator must fix VIRSH_PATH.
      return new SnapbotError('HYPERVISOR_UNAVAILABLE', `virsh ${problem} at VIRSH_PATH=${this.virshPath}${about}`, {
        detail: { ...detail, spawnError: result.spawnError },
        permanent: true,
      });
    }
    if (result.timedOut) {
      return new SnapbotError(
        'TIMEOUT',
        `virsh ${command}${about} did not finish within ${formatSeconds(timeoutMs)} and was killed`,
        { detail, permanent: true },
      );
    }
    if (result.signal !== undefined) {
      return new SnapbotError('INTERNAL', `virsh ${command}${about} was killed by ${result.signal}`, {
        detail,
        permanent: false,
      });
    }
    return null;
  }
}

/** The states `virsh list` can filter on, with the word `domstate` prints for each. */
const LISTED_STATES = [
  { flag: '--state-running', state: 'running' },
  { flag: '--state-paused', state: 'paused' },
  { flag: '--state-shutoff', state: 'shut off' },
] as const;

/** One command of a script, with what its errors should name. */
interface ScriptCommand {
  args: readonly string[];
  context: VirshErrorContext;
}

/** What one command of a script printed, and how it failed (null: it succeeded). */
interface ScriptStep {
  stdout: string;
  error: SnapbotError | null;
}

function isCode(error: unknown, code: SnapbotError['code']): boolean {
  return error instanceof SnapbotError && error.code === code;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How many ancestors each snapshot has in the snapshot tree. */
function treeDepths(snapshots: readonly ParsedSnapshot[]): Map<string, number> {
  const parents = new Map(snapshots.map((snapshot) => [snapshot.name, snapshot.parent]));
  const depths = new Map<string, number>();
  for (const { name } of snapshots) {
    let depth = 0;
    // Bounded by the list size, so a malformed cycle cannot loop forever.
    for (let parent = parents.get(name); parent != null && depth < snapshots.length; parent = parents.get(parent)) {
      depth += 1;
    }
    depths.set(name, depth);
  }
  return depths;
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
