import type { APIActionRowComponent, APIButtonComponent, APIEmbed, AttachmentBuilder } from 'discord.js';
import type { FleetPlan } from '../../core/fleet/index.js';
import { clipText } from './discord-limits.js';
import { escapeText, inlineCode, requesterText as whoAsked } from './escape.js';

/** Pieces of text every fleet message uses: times, names in code, lists cut to a field, what a run does. */

export const FAILURES_SHOWN = 8;
export const HOSTS_SHOWN = 15;
export const FIELD_LIMIT = 1024;

export type Buttons = APIActionRowComponent<APIButtonComponent>[];

/** What one fleet message shows; `files` only on the final summary of a long run. */
export interface FleetMessagePayload {
  content?: string;
  embeds: APIEmbed[];
  components: Buttons;
  files?: AttachmentBuilder[];
}

export function unix(ms: number): number {
  return Math.floor(ms / 1000);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** `text` in at most `max` characters (see clipText: no half surrogate pairs, code blocks closed). */
export function clip(text: string, max: number): string {
  return clipText(text, max);
}

/** Who an actor string (`discord:<id>`, `snapctl:user@machine`) is: a mention for Discord users. */
export function actorText(actor: string): string {
  const user = /^discord:(\d+)$/.exec(actor);
  return user ? `<@${user[1]}>` : escapeText(actor);
}

/** Inline code that survives backticks and hidden characters in VM or snapshot names. */
export function code(text: string): string {
  return inlineCode(text);
}

/** Lines joined under a field's 1,024-character limit, with "… and N more" when cut. */
export function fieldLines(lines: string[], more = 0): string {
  const kept: string[] = [];
  let length = 0;
  for (const [index, line] of lines.entries()) {
    const rest = lines.length - index + more;
    const tail = `… and ${rest} more`;
    if (length + line.length + 1 + (index < lines.length - 1 || more > 0 ? tail.length + 1 : 0) > FIELD_LIMIT) {
      kept.push(tail);
      return kept.join('\n');
    }
    kept.push(line);
    length += line.length + 1;
  }
  if (more > 0) kept.push(`… and ${more} more`);
  return kept.join('\n');
}

export function requesterText(plan: FleetPlan): string {
  return whoAsked(plan.requester);
}

/** "snapshot `pre-rollout-{date}` (disk-only)" or "delete snapshots matching `pre-*`". */
export function whatItDoes(plan: FleetPlan): string {
  if (plan.action === 'delete') return `delete snapshots matching ${code(plan.name)}`;
  const example = plan.targets[0]?.snapshot;
  const rendered = example && example !== plan.name ? ` (e.g. ${code(example)})` : '';
  return `snapshot ${code(plan.name)}${rendered}, ${plan.mode ?? 'disk-only'}`;
}

export function headline(plan: FleetPlan): string {
  return plan.action === 'snapshot' ? `Fleet snapshot · ${escapeText(plan.name)}` : `Fleet delete · ${escapeText(plan.name)}`;
}


export function limitsSentence(plan: { perHost: number; maxConcurrent: number }): string {
  return `${plan.perHost || 'the worker’s own limit'} per host, ${plan.maxConcurrent || 'no limit'} at once across the fleet`;
}
