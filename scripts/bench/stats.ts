/**
 * Percentiles and plain-text tables for the benchmark report. Nothing here measures;
 * it only summarises numbers the sections collected.
 */

export interface Distribution {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of values already sorted ascending (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The percentiles the report prints, of any list of numbers. */
export function summarize(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
  };
}

/** Milliseconds with one decimal, or "-" for a number that is not there. */
export function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : '-';
}

export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / (1024 * 1024)).toFixed(1) : '-';
}

/** One table row of a distribution: label, then n, p50, p90, p99, max (ms). */
export function distributionRow(label: string, distribution: Distribution): string[] {
  return [
    label,
    String(distribution.count),
    ms(distribution.p50),
    ms(distribution.p90),
    ms(distribution.p99),
    ms(distribution.max),
  ];
}

export const DISTRIBUTION_HEADERS = ['', 'n', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'];

/** Left-aligns the first `leftColumns` columns (labels) and right-aligns the others (numbers). */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], leftColumns = 1): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column < leftColumns ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** Calls that overlap in time form one step; steps follow each other (how sequential a job's virsh calls are). */
export function toSteps<T extends { start: number; end: number }>(records: readonly T[]): T[][] {
  const steps: T[][] = [];
  let current: T[] = [];
  let currentEnd = Number.NEGATIVE_INFINITY;
  for (const record of [...records].sort((a, b) => a.start - b.start)) {
    if (current.length > 0 && record.start >= currentEnd) {
      steps.push(current);
      current = [];
      currentEnd = Number.NEGATIVE_INFINITY;
    }
    current.push(record);
    currentEnd = Math.max(currentEnd, record.end);
  }
  if (current.length > 0) steps.push(current);
  return steps;
}
