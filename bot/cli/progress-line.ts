import { revealHiddenCharacters } from '../../shared/names.js';

/**
 * snapctl's progress on stderr. Not on a terminal (pipes, cron, logs, tests) every
 * status is a plain line, as it always was. On a terminal the latest status is a live
 * line rewritten every second with the time since the command started
 * (`running: create on web-01 … 12 s`), so a memory snapshot that takes minutes is not
 * silent; when the next status comes the live line stays, with the time it reached.
 */

/** What a progress line writes to: process.stderr, or a fake in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/** `12 s`, `2 min 05 s`, `1 h 02 min`: whole seconds, rounded down. */
export function formatElapsed(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/**
 * The live line: `status … elapsed`, cut to fit `columns` (a line that wraps cannot be
 * rewritten in place), with control and hidden characters written out (a host's message
 * must not move the cursor).
 */
export function renderProgressLine(status: string, elapsedMs: number, columns = 80): string {
  const suffix = ` … ${formatElapsed(elapsedMs)}`;
  // A newline or a tab would break the one-line, one-column-per-character reckoning.
  const text = revealHiddenCharacters(status.replace(/\s*\n\s*|\t/g, ' '));
  const room = Math.max(columns - 1 - suffix.length, 1);
  const characters = [...text];
  const shown = characters.length > room ? `${characters.slice(0, Math.max(room - 1, 0)).join('')}…` : text;
  return `${shown}${suffix}`;
}

/** Erases the terminal line the cursor is on and goes back to its start. */
const CLEAR_LINE = '\r\x1b[2K';

export interface ProgressLineOptions {
  /** --json: nothing at all on stderr. */
  quiet?: boolean;
  /** How often the live line is redrawn (ms). */
  intervalMs?: number;
  now?: () => number;
}

export class ProgressLine {
  private readonly live: boolean;
  private readonly quiet: boolean;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly startedAt: number;
  private status: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ProgressStream,
    options: ProgressLineOptions = {},
  ) {
    this.quiet = Boolean(options.quiet);
    this.live = !this.quiet && stream.isTTY === true;
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? 1000;
    this.startedAt = this.now();
  }

  /** A new status: a plain line, or on a terminal the new live line (the previous one stays as it was last drawn). */
  update(status: string): void {
    if (this.quiet) return;
    if (!this.live) {
      this.stream.write(`${status}\n`);
      return;
    }
    if (this.status !== undefined) this.stream.write('\n');
    this.status = status;
    this.draw();
    if (!this.timer) {
      this.timer = setInterval(() => this.draw(), this.intervalMs);
      // Following a job must never be what keeps snapctl from exiting.
      this.timer.unref();
    }
  }

  /** Ends the live line where it is (with its last time) and stops redrawing. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.live && this.status !== undefined) {
      this.draw();
      this.stream.write('\n');
    }
    this.status = undefined;
  }

  private draw(): void {
    if (this.status === undefined) return;
    this.stream.write(`${CLEAR_LINE}${renderProgressLine(this.status, this.now() - this.startedAt, this.stream.columns || 80)}`);
  }
}
