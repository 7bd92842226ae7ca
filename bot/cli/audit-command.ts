import { readAudit } from '../core/audit.js';
import { renderAudit } from './render-text.js';
import { withCore, type GlobalOptions } from './session.js';

/** `snapctl audit`: who did what, newest first, from the audit stream. */
export async function runAudit(options: { vm?: string; limit: number }, global: GlobalOptions): Promise<void> {
  const entries = await withCore((core) => readAudit(core, { vm: options.vm, limit: options.limit }));
  if (global.json) process.stdout.write(`${JSON.stringify({ ok: true, entries })}\n`);
  else process.stdout.write(`${renderAudit(entries)}\n`);
}
