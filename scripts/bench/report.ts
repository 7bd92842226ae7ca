import { formatTable } from './stats.js';

/** One figure held against a target in the final summary. */
export interface TargetCheck {
  what: string;
  target: string;
  measured: string;
  /** null when the figure is informational only. */
  met: boolean | null;
}

/** What a section hands back for the final summary. */
export interface SectionResult {
  section: string;
  checks: TargetCheck[];
}

export function printHeading(title: string): void {
  process.stdout.write(`\n=== ${title} ===\n`);
}

export function printTable(title: string, headers: readonly string[], rows: readonly (readonly string[])[], leftColumns = 1): void {
  process.stdout.write(`\n${title}\n${formatTable(headers, rows, leftColumns)}\n`);
}

export function printLine(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Progress goes to stderr, so that stdout holds only the report. */
export function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

export function verdict(met: boolean | null): string {
  return met === null ? 'info' : met ? 'met' : 'NOT MET';
}

export function printSummary(results: readonly SectionResult[]): void {
  const rows = results.flatMap((result) =>
    result.checks.map((check) => [result.section, check.what, check.target, check.measured, verdict(check.met)]),
  );
  printTable('Summary', ['section', 'figure', 'target', 'measured', 'verdict'], rows, 2);
}
