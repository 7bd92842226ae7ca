/** What each scenario hands back, and the table `npm run chaos` prints at the end. */

export interface Figures {
  jobs: number;
  done: number;
  /** Targets that failed, as the scenario expected (TIMEOUT of a hung virsh). */
  failedAsExpected: number;
  /** SIGKILLs of worker processes: by the chaos, and by faults (worker killed right after virsh succeeded). */
  workerKills: number;
  workerRestarts: number;
  redisKills: number;
  controlKills: number;
  lost: number;
  duplicates: number;
  forgedSent: number;
  forgedExecuted: number;
  /** Targets done exactly once whose BullMQ job still ended failed (see verify.ts, wrongRecords). */
  wrongRecords: number;
}

export interface ScenarioResult {
  key: string;
  title: string;
  ok: boolean;
  seed: number;
  durationMs: number;
  figures: Figures;
  /** Other measurements worth a line (re-runs that recovered, outage length, approval lateness…). */
  notes: string[];
  /** What was wrong; empty when ok. */
  problems: string[];
}

export function emptyFigures(): Figures {
  return { jobs: 0, done: 0, failedAsExpected: 0, workerKills: 0, workerRestarts: 0, redisKills: 0, controlKills: 0, lost: 0, duplicates: 0, forgedSent: 0, forgedExecuted: 0, wrongRecords: 0 };
}

export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

export function figuresTable(results: readonly ScenarioResult[]): string {
  const headers = ['scenario', 'jobs', 'done', 'failed (expected)', 'worker kills', 'restarts', 'redis kills', 'bot kills', 'lost', 'duplicates', 'forged sent', 'forged executed', 'done, job failed', 'time', 'result'];
  const rows = results.map((result) => {
    const f = result.figures;
    return [
      `${result.key} ${result.title}`,
      String(f.jobs),
      String(f.done),
      String(f.failedAsExpected),
      String(f.workerKills),
      String(f.workerRestarts),
      String(f.redisKills),
      String(f.controlKills),
      String(f.lost),
      String(f.duplicates),
      String(f.forgedSent),
      String(f.forgedExecuted),
      String(f.wrongRecords),
      `${(result.durationMs / 1000).toFixed(0)} s`,
      result.ok ? 'ok' : 'FAILED',
    ];
  });
  if (results.length > 1) {
    const sum = (pick: (f: Figures) => number) => String(results.reduce((total, result) => total + pick(result.figures), 0));
    rows.push([
      'total',
      sum((f) => f.jobs),
      sum((f) => f.done),
      sum((f) => f.failedAsExpected),
      sum((f) => f.workerKills),
      sum((f) => f.workerRestarts),
      sum((f) => f.redisKills),
      sum((f) => f.controlKills),
      sum((f) => f.lost),
      sum((f) => f.duplicates),
      sum((f) => f.forgedSent),
      sum((f) => f.forgedExecuted),
      sum((f) => f.wrongRecords),
      `${(results.reduce((total, result) => total + result.durationMs, 0) / 1000).toFixed(0)} s`,
      results.every((result) => result.ok) ? 'ok' : 'FAILED',
    ]);
  }
  return formatTable(headers, rows);
}
