import { readHostsOverview } from '../core/hosts.js';
import { renderHosts } from './render-text.js';
import { withCore, type GlobalOptions } from './session.js';

/** `snapctl hosts`: every KVM host that has reported, from the heartbeats in Redis. */
export async function runHosts(global: GlobalOptions): Promise<void> {
  const { hosts, summary } = await withCore((core) => readHostsOverview(core));
  if (global.json) process.stdout.write(`${JSON.stringify({ ok: true, summary, hosts })}\n`);
  else process.stdout.write(`${renderHosts({ hosts, summary })}\n`);
}
