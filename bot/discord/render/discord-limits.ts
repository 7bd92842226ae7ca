import type { APIEmbed, APIEmbedField } from 'discord.js';
import { plainText } from './escape.js';

/**
 * Discord's documented limits on what a bot sends. Discord refuses a whole message (or a
 * whole autocomplete answer) when one part is over, so everything the bot sends passes
 * through `fitMessage` / `fitChoices` first: names of any length from libvirt, virsh
 * messages and descriptions of 1,000 characters then cut, never refused.
 */
export const DISCORD_LIMITS = {
  content: 2000,
  embeds: 10,
  embedTitle: 256,
  embedDescription: 4096,
  embedFields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footerText: 2048,
  authorName: 256,
  /** Title, description, field names and values, footer text and author name of all embeds together. */
  embedsTotal: 6000,
  buttonLabel: 80,
  customId: 100,
  choices: 25,
  choiceName: 100,
  choiceValue: 100,
} as const;

/** Shown where text was cut; the full text is in an attached file where one exists. */
export const ELLIPSIS = '…';
/** What a field shows when it would be blank (Discord refuses empty and whitespace-only names and values). */
const BLANK = '—';

/**
 * `text` in at most `max` characters (UTF-16 code units, as Discord counts), ending in
 * "…" when cut. A cut inside a ``` code block closes the block, so the rest of the
 * message does not turn into code.
 */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  const fence = '\n```';
  let kept = cutAt(text, max - ELLIPSIS.length);
  if (countFences(kept) % 2 === 1) {
    kept = cutAt(text, Math.max(0, max - ELLIPSIS.length - fence.length));
    // Re-check: the shorter cut may have dropped the opening fence itself.
    return countFences(kept) % 2 === 1 ? `${kept}${ELLIPSIS}${fence}` : `${kept}${ELLIPSIS}`;
  }
  return `${kept}${ELLIPSIS}`;
}

/**
 * The first `length` code units, without leaving half of a surrogate pair at the end, nor
 * a zero-width joiner whose emoji was cut off (alone at the end it is a hidden character).
 */
function cutAt(text: string, length: number): string {
  let cut = text.slice(0, Math.max(0, length));
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut.endsWith('\u200d') ? cut.slice(0, -1) : cut;
}

function countFences(text: string): number {
  return text.split('```').length - 1;
}

function nonBlank(text: string): string {
  return text.trim() === '' ? BLANK : text;
}

function fitField(field: APIEmbedField): APIEmbedField {
  return { ...field, name: clipText(nonBlank(field.name), DISCORD_LIMITS.fieldName), value: clipText(nonBlank(field.value), DISCORD_LIMITS.fieldValue) };
}

/** One embed within its own limits: title, description, fields (count, names, values, none blank), footer, author. */
export function fitEmbed(embed: APIEmbed): APIEmbed {
  const fitted: APIEmbed = { ...embed };
  if (embed.title !== undefined) fitted.title = clipText(embed.title, DISCORD_LIMITS.embedTitle);
  if (embed.description !== undefined) {
    if (embed.description.trim() === '') delete fitted.description;
    else fitted.description = clipText(embed.description, DISCORD_LIMITS.embedDescription);
  }
  if (embed.fields) {
    const fields = embed.fields.map(fitField);
    if (fields.length > DISCORD_LIMITS.embedFields) {
      const hidden = fields.length - DISCORD_LIMITS.embedFields + 1;
      fitted.fields = [...fields.slice(0, DISCORD_LIMITS.embedFields - 1), { name: ELLIPSIS, value: `${hidden} more not shown` }];
    } else {
      fitted.fields = fields;
    }
  }
  if (embed.footer) fitted.footer = { ...embed.footer, text: clipText(nonBlank(embed.footer.text), DISCORD_LIMITS.footerText) };
  if (embed.author) fitted.author = { ...embed.author, name: clipText(nonBlank(embed.author.name), DISCORD_LIMITS.authorName) };
  return fitted;
}

/** The characters Discord counts towards the 6,000 across a message's embeds. */
export function embedCharacters(embed: APIEmbed): number {
  return (
    (embed.title?.length ?? 0) +
    (embed.description?.length ?? 0) +
    (embed.fields ?? []).reduce((sum, field) => sum + field.name.length + field.value.length, 0) +
    (embed.footer?.text.length ?? 0) +
    (embed.author?.name.length ?? 0)
  );
}

/** The longest shrinkable text of the embeds (a description or a field value), to cut first. */
function longestText(embeds: APIEmbed[]): { embed: number; field?: number; length: number } | undefined {
  let best: { embed: number; field?: number; length: number } | undefined;
  embeds.forEach((embed, index) => {
    const description = embed.description?.length ?? 0;
    if (description > (best?.length ?? 0)) best = { embed: index, length: description };
    embed.fields?.forEach((field, fieldIndex) => {
      if (field.value.length > (best?.length ?? 0)) best = { embed: index, field: fieldIndex, length: field.value.length };
    });
  });
  return best;
}

/**
 * The embeds of one message within Discord's limits: each embed fitted, at most 10, and
 * at most 6,000 characters together — the longest descriptions and field values are cut
 * first (they carry tables and lists; titles and counts stay whole).
 */
export function fitEmbeds(embeds: readonly APIEmbed[]): APIEmbed[] {
  const fitted = embeds.slice(0, DISCORD_LIMITS.embeds).map(fitEmbed);
  const minimum = 64;
  for (;;) {
    const excess = fitted.reduce((sum, embed) => sum + embedCharacters(embed), 0) - DISCORD_LIMITS.embedsTotal;
    if (excess <= 0) return fitted;
    const target = longestText(fitted);
    if (!target || target.length <= minimum) break;
    const length = Math.max(minimum, target.length - excess);
    const embed = fitted[target.embed]!;
    if (target.field === undefined) {
      embed.description = clipText(embed.description ?? '', length);
    } else {
      const fields = [...(embed.fields ?? [])];
      const field = fields[target.field]!;
      fields[target.field] = { ...field, value: clipText(field.value, length) };
      embed.fields = fields;
    }
  }
  // Still over (many short fields): drop fields from the end, then whole embeds.
  while (fitted.reduce((sum, embed) => sum + embedCharacters(embed), 0) > DISCORD_LIMITS.embedsTotal) {
    const last = fitted[fitted.length - 1]!;
    if (last.fields?.length) last.fields = last.fields.slice(0, -1);
    else if (fitted.length > 1) fitted.pop();
    else {
      last.description = clipText(last.description ?? '', 1000);
      last.fields = [];
    }
  }
  return fitted;
}

/** Whom a message may ping: nobody, unless the payload names the users it mentions on purpose. */
export interface AllowedMentions {
  parse?: [];
  users?: string[];
}

/**
 * A message body (content and embeds) within Discord's limits, pinging nobody unless its
 * `allowedMentions` names someone; everything else is passed through. Escape first, then
 * fit: escaping lengthens text, fitting is what keeps it within the limits.
 */
export function fitMessage<T extends { content?: string | undefined; embeds?: readonly APIEmbed[] | undefined; allowedMentions?: AllowedMentions | undefined }>(
  payload: T,
): T & { allowedMentions: AllowedMentions } {
  // The bot's messages ping nobody by default: user text (`@everyone`, `<@&role>`) in them stays text.
  const fitted = { ...payload, allowedMentions: payload.allowedMentions ?? { parse: [] } };
  if (payload.content !== undefined) fitted.content = clipText(payload.content, DISCORD_LIMITS.content);
  if (payload.embeds !== undefined) fitted.embeds = fitEmbeds(payload.embeds);
  return fitted;
}

/** Autocomplete choices Discord accepts: at most 25, names 1–100 characters, values at most 100. */
export function fitChoices(choices: ReadonlyArray<{ name: string; value: string }>): Array<{ name: string; value: string }> {
  return choices
    .filter((choice) => choice.value.length <= DISCORD_LIMITS.choiceValue)
    .slice(0, DISCORD_LIMITS.choices)
    .map((choice) => ({ name: clipText(nonBlank(plainText(choice.name)), DISCORD_LIMITS.choiceName), value: choice.value }));
}
