import { revealHiddenCharacters } from '../../../shared/names.js';

/**
 * Text that came from people or hosts (VM and snapshot names, descriptions, host ids,
 * virsh's messages, selectors, display names) shown in Discord as itself: a snapshot
 * named `**urgent**` or a description with `[link](http://evil)`, `@everyone`, `||…||`
 * or `# heading` must not turn into markup in an approval embed. Hidden characters are
 * written out (`<U+200B>`) first, so `baseline\u200b` cannot pass for `baseline`.
 *
 * Why not discord.js's `escapeMarkdown`: by default it leaves headings, lists, quotes,
 * masked links, mentions and `<t:…>` / `<#…>` tags alone, and its italic rule runs a
 * look-behind per `_` (quadratic on long virsh output). Discord drops a backslash in front
 * of any ASCII punctuation, so escaping every character that can start markup is safe to
 * over-apply, and linear.
 */

/** Characters that start or end markup anywhere in a line (`<` opens mentions, `<t:…>`, `<#…>`, `<:emoji:…>`). */
const INLINE_MARKUP = /[\\*_~|`<[\]]/g;
/** The two mentions written without `<…>`. */
const BARE_MENTIONS = /@(everyone|here)/gi;
/** Line starts that make headings (`#`, `-#`), quotes (`>`), and bulleted or numbered lists. */
const LINE_START_MARKUP = /^([ \t]*)(#|>|-|\+|\d+(?=\.))/gm;

/** `text` for Discord markdown (message content, embed titles, descriptions, field values). */
export function escapeText(text: string): string {
  return revealHiddenCharacters(text)
    .replace(INLINE_MARKUP, '\\$&')
    .replace(BARE_MENTIONS, '\\$&')
    .replace(LINE_START_MARKUP, (_, indent: string, marker: string) => (/^\d/.test(marker) ? `${indent}${marker}\\` : `${indent}\\${marker}`));
}

/**
 * `text` for where Discord shows no markdown (embed footers, author names, autocomplete
 * choice names) and for attached files: only the hidden characters are written out, since
 * a backslash there would show.
 */
export function plainText(text: string): string {
  return revealHiddenCharacters(text);
}

/** `text` as inline code: nothing inside is markup, so only its backticks are replaced (by `'`). */
export function inlineCode(text: string): string {
  return `\`${codeText(text)}\``;
}

/** `text` for inside inline code or a code block (a table cell): hidden characters written out, backticks replaced. */
export function codeText(text: string): string {
  return revealHiddenCharacters(text).replace(/`/g, "'");
}

/** `text` (a monospaced table) as a code block that no backtick inside can close early. */
export function codeBlock(text: string): string {
  return `\`\`\`\n${codeText(text)}\n\`\`\``;
}

/**
 * Who may approve, as Discord shows it: a role id as a role mention (Discord draws the
 * role's name; allowedMentions keeps it from pinging), `user:<id>` as a user mention,
 * `@administrators` / `@everyone` as words, anything else escaped.
 */
export function approverText(approvers: readonly string[]): string {
  return approvers
    .map((approver) => {
      if (/^\d{15,21}$/.test(approver)) return `<@&${approver}>`;
      const user = /^user:(\d{15,21})$/.exec(approver);
      if (user) return `<@${user[1]}>`;
      if (approver === '@administrators') return 'administrators';
      if (approver === '@everyone') return 'everyone';
      return escapeText(approver);
    })
    .join(', ');
}

/**
 * Who asked, as Discord shows it: a mention when they are a Discord user (an id of
 * digits), else their snapbot id as text (`snapctl:alice`; an operator who is not linked
 * to a Discord user has `operator:<name>` there, which is no one to mention).
 */
export function requesterText(requester: { id: string; userId: string | null; displayName?: string }): string {
  if (requester.userId && /^\d{15,21}$/.test(requester.userId)) return `<@${requester.userId}>`;
  return escapeText(requester.id);
}
