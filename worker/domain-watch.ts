import type { Logger } from '../shared/logger.js';

/**
 * Whether the worker's map of VM names to UUIDs can still be trusted without asking
 * libvirt again. Before every job the worker used to run `virsh domname` on the UUID it
 * was about to act on, to be sure the VM still has the name the operator gave: a virsh
 * process of its own, ~20 ms of every job (most of it virsh starting, not libvirt).
 *
 * Now a long-lived `virsh event --event lifecycle --loop` tells the worker when a name may
 * have moved: a domain defined, undefined or renamed, started or stopped (a transient
 * domain appears and goes that way). A name read from libvirt while the watcher was surely
 * listening, with no such event received since, is trusted; anything else (no watcher, not
 * yet surely registered, an event, the watcher gone) means "ask again", as before. The
 * window is the same as the old check's: a rename that libvirt has done but whose event has
 * not reached the worker yet, against one done between `domname` and the operation.
 */

/** What a name read is stamped with: valid while the watch's generation has not moved. */
export type NameStamp = number | null;

/** One lifecycle event line of `virsh event`, split. */
export interface LifecycleEvent {
  domain: string;
  event: string;
  detail: string;
}

/**
 * `event 'lifecycle' for domain 'NAME': Event Detail` (virsh 9.0, `virsh-domain-event.c`),
 * optionally after `--timestamp`'s date and time. The name may hold quotes and colons; the
 * event and detail are single words, so the line is read from both ends.
 */
export function parseLifecycleEvent(line: string): LifecycleEvent | null {
  const match = /^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d{4}: )?event 'lifecycle' for domain '(.*)': (\S+) (\S+)$/s.exec(line);
  if (!match) return null;
  return { domain: match[1]!, event: match[2]!, detail: match[3]! };
}

/**
 * Events after which a name may belong to another UUID. "Defined Updated" is a changed
 * definition of the same domain (libvirt refuses a definition that would rename one), and
 * suspend, resume and the like keep names: those do not count.
 */
export function movesNames(event: LifecycleEvent): boolean {
  if (event.event === 'Defined') return event.detail !== 'Updated';
  return event.event === 'Undefined' || event.event === 'Started' || event.event === 'Stopped';
}

/** A running watcher process, as the hypervisor starts it. */
export interface LifecycleWatcherProcess {
  /** Called with each complete line of its standard output. */
  onLine(listener: (line: string) => void): void;
  /** Called once when it has exited, with what it wrote to standard error. */
  onExit(listener: (stderr: string) => void): void;
  stop(): void;
}

/**
 * Starts the watcher; its output starts with `readyLine` once it is connected, right before
 * it registers. It ends by itself after a while, saying {@link WATCH_TIMED_OUT}, and is
 * started again: a watcher orphaned by a worker killed with SIGKILL does not outlive it
 * for more than that.
 */
export type StartLifecycleWatcher = (readyLine: string) => LifecycleWatcherProcess;

/** What `virsh event --loop --timeout N` prints when its time is up (virsh 9.0). */
export const WATCH_TIMED_OUT = 'event loop timed out';
/** Seconds a watcher runs before it is replaced (`--timeout`). */
export const WATCH_LIFETIME_SECONDS = 300;

export interface DomainWatchOptions {
  start: StartLifecycleWatcher;
  logger: Logger;
  /**
   * After the ready line, how long until the registration that follows it is surely done:
   * one local RPC, normally well under a millisecond; generous, since a name read before
   * it is not trusted anyway and is only asked again.
   */
  registrationGraceMs?: number;
  /** Wait before restarting a watcher that exited, doubling up to `maxRestartDelayMs`. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

export class DomainWatch {
  /** Moves on every event that may move a name, and whenever the watcher starts or stops. */
  private generation = 0;
  private listening = false;
  private process: LifecycleWatcherProcess | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;
  private readonly readyLine = `snapbot-watch-ready-${Math.random().toString(16).slice(2, 10)}`;

  constructor(private readonly options: DomainWatchOptions) {}

  start(): void {
    this.stopped = false;
    this.launch();
  }

  stop(): void {
    this.stopped = true;
    this.invalidate();
    this.listening = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.restartTimer = this.graceTimer = null;
    this.process?.stop();
    this.process = null;
  }

  /** Whether a watcher surely listens now (the worker's /metrics shows it). */
  get isListening(): boolean {
    return this.listening;
  }

  /** Take before reading names from libvirt; names read under it are trusted while `holds(stamp)`. */
  stamp(): NameStamp {
    return this.listening ? this.generation : null;
  }

  holds(stamp: NameStamp | undefined): boolean {
    return this.listening && stamp !== null && stamp !== undefined && stamp === this.generation;
  }

  private invalidate(): void {
    this.generation += 1;
  }

  private launch(): void {
    let watcher: LifecycleWatcherProcess;
    try {
      watcher = this.options.start(this.readyLine);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'cannot start the libvirt event watcher; VM names are checked before every job');
      this.scheduleRestart();
      return;
    }
    this.process = watcher;
    let timedOut = false;
    watcher.onLine((line) => {
      if (line === WATCH_TIMED_OUT) timedOut = true;
      if (line === this.readyLine) {
        this.graceTimer = setTimeout(() => {
          this.graceTimer = null;
          if (this.process !== watcher) return;
          this.invalidate();
          this.listening = true;
          this.options.logger.info(
            this.failures > 0 ? 'libvirt event watcher listening again' : 'libvirt event watcher listening: jobs skip the name check while no VM name moved',
          );
          this.failures = 0;
        }, this.options.registrationGraceMs ?? 1_000);
        return;
      }
      const event = parseLifecycleEvent(line);
      if (event && movesNames(event)) {
        this.invalidate();
        this.options.logger.debug({ event }, 'libvirt lifecycle event: VM names are checked again');
      }
    });
    watcher.onExit((stderr) => {
      if (this.process !== watcher) return;
      this.process = null;
      this.listening = false;
      this.invalidate();
      if (this.graceTimer) clearTimeout(this.graceTimer);
      this.graceTimer = null;
      if (this.stopped) return;
      if (timedOut && !/error:/.test(stderr)) {
        // Its lifetime is up: replaced at once (names read meanwhile are checked, as always).
        this.options.logger.debug('libvirt event watcher replaced after its lifetime');
        this.launch();
        return;
      }
      if (/unknown command|unknown event type/i.test(stderr)) {
        // A virsh without `event` (or a fake one): names are checked before every job, as always.
        this.options.logger.info({ stderr: stderr.trim().slice(0, 300) }, 'virsh cannot watch libvirt events; VM names are checked before every job');
        return;
      }
      this.options.logger.warn({ stderr: stderr.trim().slice(0, 300) }, 'libvirt event watcher stopped; VM names are checked before every job until it is back');
      this.scheduleRestart();
    });
  }

  private scheduleRestart(): void {
    if (this.stopped) return;
    const base = this.options.restartDelayMs ?? 1_000;
    const delay = Math.min(base * 2 ** this.failures, this.options.maxRestartDelayMs ?? 30_000);
    this.failures += 1;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.stopped) this.launch();
    }, delay);
    this.restartTimer.unref();
  }
}
