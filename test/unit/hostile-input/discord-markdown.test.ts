/**
 * Names, descriptions, host ids, virsh's messages and selectors are shown in Discord as
 * text, never as markup: a snapshot named `**urgent**` stays two stars, `urgent`, two
 * stars; `@everyone` pings nobody; `[link](http://evil)` is not a link; a hidden
 * character is written out (`<U+200B>`). Checked through the renderers, then through
 * fitMessage (escaping lengthens text; fitting still keeps Discord's limits).
 */
import type { APIEmbed } from 'discord.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ApprovalState } from '../../../bot/core/approvals.js';
import type { AuditEntry } from '../../../bot/core/audit.js';
import { summarize, type FleetPlan, type FleetRun } from '../../../bot/core/fleet/index.js';
import { DISCORD_LIMITS, embedCharacters, fitChoices, fitMessage } from '../../../bot/discord/render/discord-limits.js';
import { codeBlock, codeText, escapeText, inlineCode } from '../../../bot/discord/render/escape.js';
import { renderApprovalFailure, renderApprovalRequest } from '../../../bot/discord/render/render-approval.js';
import { renderAuditReply } from '../../../bot/discord/render/render-audit.js';
import { renderFleetListPage } from '../../../bot/discord/render/render-fleet-list.js';
import { renderFleetSummary } from '../../../bot/discord/render/render-fleet-summary.js';
import { renderFleetApprovalRequest, renderFleetPreview } from '../../../bot/discord/render/render-fleet.js';
import { renderHostsReply } from '../../../bot/discord/render/render-hosts.js';
import { renderJobFailure, renderJobResult, renderJobStage, renderUserError } from '../../../bot/discord/render/render-job.js';
import { renderSnapshotListPage } from '../../../bot/discord/render/render-snapshot-list.js';
import type { HostOverview } from '../../../shared/hosts.js';
import type { SnapshotInfo } from '../../../shared/jobs.js';
import { revealHiddenCharacters } from '../../../shared/names.js';

const NOW = Date.parse('2026-11-28T12:00:00.000Z');
const ISO = new Date(NOW - 3_600_000).toISOString();

/** What Discord shows for markdown text outside code: a backslash before ASCII punctuation is dropped. */
function display(markdown: string): string {
  return markdown.replace(/\\([!-/:-@[-`{-~])/g, '$1');
}

/**
 * The markup an unescaped stretch of `text` would start: emphasis, code, spoilers,
 * strikethrough, tags and mentions, masked links, and line-start headings, quotes and lists.
 */
function markupIn(text: string): string[] {
  const found: string[] = [];
  let lineStart = true;
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index]!;
    if (character === '\\' && /[!-/:-@[-`{-~]/.test(text[index + 1] ?? '')) {
      index += 1;
      lineStart = false;
      continue;
    }
    if ('*_~|`<[]'.includes(character)) found.push(character);
    if (character === '@' && /^@(everyone|here)/i.test(text.slice(index))) found.push('@everyone');
    if (lineStart && /^[ \t]*(#|>|-|\+|\d+\.)/.test(text.slice(index))) found.push(`line start ${JSON.stringify(text.slice(index, index + 3))}`);
    if (character === '\n') lineStart = true;
    else if (character !== ' ' && character !== '\t') lineStart = false;
  }
  return found;
}

const HOSTILE = [
  '**urgent**',
  '@everyone look',
  '@here',
  '`rm -rf`',
  '```js\nevil()\n```',
  '~~struck~~',
  '||spoiler||',
  '[link](http://evil.example)',
  '<@123456789012345678>',
  '<@&123456789012345678>',
  '<#123456789012345678>',
  '<t:0:R>',
  '__under__ _it_',
  '# Heading',
  '-# subtext',
  '> quoted',
  '1. listed',
  '- bullet',
  '\\*escaped\\*',
  'baseline\u200b',
  '\u202eexe.txt',
];

describe('escapeText', () => {
  it.each(HOSTILE)('shows %j as itself, without markup', (text) => {
    const escaped = escapeText(text);
    expect(display(escaped)).toBe(revealHiddenCharacters(text));
    expect(markupIn(escaped)).toEqual([]);
  });

  it('writes out hidden characters, so a look-alike name does not pass for the real one', () => {
    expect(display(escapeText('baseline\u200b'))).toBe('baseline<U+200B>');
    expect(display(escapeText('\u202eexe.txt'))).toBe('<U+202E>exe.txt');
  });

  it('leaves ordinary names as they are', () => {
    for (const name of ['web-01', 'pre-rollout-20261128', 'kvm-a.dc1', 'ünïcødé 快照', 'it\'s 5 o\'clock (UTC)', 'a+b=c', 'user@example.com']) {
      expect(escapeText(name)).toBe(name);
    }
  });

  it('shows any text as itself and lets no markup through (property)', () => {
    const markdownish = fc.constantFrom('*', '_', '~', '|', '`', '<', '>', '[', ']', '(', ')', '#', '-', '+', '.', '1', '\\', '@', 'everyone', 'here', '\n', ' ', '\t', '\u200b', '\u202e', 'a');
    const text = fc.oneof(fc.string({ unit: markdownish, maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }));
    fc.assert(
      fc.property(text, (value) => {
        const escaped = escapeText(value);
        expect(display(escaped)).toBe(revealHiddenCharacters(value));
        expect(markupIn(escaped)).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });
});

describe('code spans and blocks', () => {
  it('keep only what code needs: no backtick closes them early, hidden characters shown', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('`', 'a', '*', '\u200b', '\n'), maxLength: 40 }), (value) => {
        expect(codeText(value)).not.toMatch(/[`\u200b]/);
        expect(inlineCode(value).slice(1, -1)).not.toContain('`');
        expect(codeBlock(value).split('```')).toHaveLength(3);
      }),
      { numRuns: 200 },
    );
    expect(inlineCode('**bold**')).toBe('`**bold**`');
  });
});

// ── through the renderers ────────────────────────────────────────────────────

const BOLD = '**urgent**';
const DESCRIPTION = '@everyone look: `x` ~~old~~ ||secret|| [link](http://evil.example)';
const VIRSH = "error: Requested operation is not valid: **domain** 'x' has `[link](http://evil)` @here\n# not a heading";

function snapshot(name: string, description: string | null = DESCRIPTION): SnapshotInfo {
  return { name, createdAt: ISO, state: 'running', location: 'internal', memory: true, parent: '||p||', current: false, description, jobId: 'job-1' };
}

function approvalState(): ApprovalState {
  return {
    request: {
      id: 'a'.repeat(32),
      subject: {
        kind: 'snapshot',
        action: 'revert',
        host: 'kvm-1',
        vm: 'baseline\u200b',
        uuid: '6f1c1b1e-1111-4222-8333-444455556666',
        snapshot: snapshot(BOLD),
        undoPoint: { mode: 'full', keep: 3 },
        jobId: 'approval-1',
      },
      requester: { id: 'snapctl:**eve**@[evil](http://x)', userId: null, displayName: '@everyone' },
      origin: 'snapctl',
      reason: 'policy',
      requestedAt: ISO,
      expiresAt: new Date(NOW + 900_000).toISOString(),
      required: 1,
      allowSelfApproval: false,
      approvers: ['@everyone', '**ops**'],
    },
    status: 'pending',
    approvals: [],
    deniedBy: null,
    withdrawnBy: null,
    message: null,
  } as ApprovalState;
}

/** Every piece of an embed Discord renders as markdown. */
function markdownParts(embed: APIEmbed): string[] {
  return [embed.title ?? '', embed.description ?? '', ...(embed.fields ?? []).map((field) => field.value)];
}

function expectNoHostileMarkup(texts: string[]): void {
  const all = texts.join('\n');
  const raw = [/\*\*urgent\*\*/, /(?<!\\)@(everyone|here)/, /~~old~~/, /\|\|secret\|\|/, /\[link\]\(http/, /[\u200b\u202e]/, /(^|\n)# not a heading/, /\*\*eve\*\*/, /\*\*domain\*\*/];
  for (const pattern of raw) expect(all, `${pattern} in ${all}`).not.toMatch(pattern);
}

describe('the approval request', () => {
  it('shows a hostile snapshot name, description, VM name, requester and approvers as text', () => {
    const embed = renderApprovalRequest(approvalState(), NOW);
    expectNoHostileMarkup(markdownParts(embed));
    expect(embed.title).toBe('🔐 Approval needed: revert baseline\\<U+200B> to \\*\\*urgent\\*\\*');
    const field = (name: string) => embed.fields!.find((each) => each.name === name)!.value;
    expect(field('VM')).toBe('baseline\\<U+200B>\n`6f1c1b1e-1111-4222-8333-444455556666`');
    expect(field('Snapshot')).toContain('“\\@everyone look: \\`x\\` \\~\\~old\\~\\~ \\|\\|secret\\|\\| \\[link\\](http://evil.example)”');
    expect(field('Requested by')).toBe('snapctl:\\*\\*eve\\*\\*@\\[evil\\](http://x)');
    expect(field('Approvals')).toContain('approvers: everyone, \\*\\*ops\\*\\*');
  });

  it('shows a failure message from virsh as text', () => {
    const text = renderApprovalFailure({ code: 'INTERNAL', message: VIRSH });
    expectNoHostileMarkup([text]);
    expect(text.startsWith('❌ **INTERNAL** — ')).toBe(true);
  });
});

describe('job replies', () => {
  const heading = { kind: 'revert' as const, vm: '||vm||', snapshot: BOLD };

  it('escape names, notes, descriptions and progress messages', () => {
    const embeds = [
      renderJobStage(heading, { stage: 'queued', host: 'kvm-1', jobId: 'job-1' }),
      renderJobStage(heading, { stage: 'progress', progress: { phase: 'running', host: '**kvm**', message: VIRSH } as never }),
      renderJobResult({ kind: 'info', host: 'kvm-1', vm: { name: 'baseline\u200b', uuid: 'u' }, durationMs: 1, snapshot: snapshot(BOLD) }),
      renderJobResult({
        kind: 'revert', host: 'kvm-1', vm: { name: '~~vm~~', uuid: 'u' }, durationMs: 1, snapshot: snapshot(BOLD), vmState: 'running',
        undoPoint: snapshot('pre-revert-**x**'), prunedUndoPoints: ['@everyone'], recovered: false, note: VIRSH,
      }), // prettier-ignore
      renderJobFailure(heading, { code: 'DOMAIN_NOT_FOUND', message: VIRSH }, '**kvm**'),
    ];
    expectNoHostileMarkup(embeds.flatMap(markdownParts));
    expect(embeds[0]!.title).toBe('Revert to snapshot · \\|\\|vm\\|\\| · \\*\\*urgent\\*\\*');
    expect(embeds[4]!.description).toContain("\\*\\*domain\\*\\* 'x' has \\`\\[link\\](http://evil)\\` \\@here\n\\# not a heading");
  });

  it('escapes a user error shown in the ephemeral reply', () => {
    const text = renderUserError({ code: 'VALIDATION', message: `Selector word '${BOLD}' is not a valid glob. @everyone` });
    expectNoHostileMarkup([text]);
    expect(text.startsWith('**VALIDATION** — ')).toBe(true);
    expect(text.endsWith("\nSelector word '\\*\\*urgent\\*\\*' is not a valid glob. \\@everyone")).toBe(true);
  });
});

describe('listings and tables', () => {
  it('keeps a snapshot list code block closed whatever the names hold', () => {
    const embed = renderSnapshotListPage(
      { kind: 'list', host: '**kvm**', vm: { name: '```', uuid: 'u' }, durationMs: 1, snapshots: [snapshot('```\n@everyone'), snapshot('a\u200bb', '```')] },
      0,
    );
    expect(embed.description!.split('```')).toHaveLength(3);
    expect(embed.description).toContain('a<U+200B>b');
    expect(embed.title).toBe('Snapshots of \\`\\`\\` on \\*\\*kvm\\*\\*');
  });

  it('keeps the audit code block closed when a name holds backticks', () => {
    const entry: AuditEntry = { id: '1-0', at: ISO, event: 'requested', actor: 'discord:1', action: 'revert', host: 'kvm-1', vm: '```', snapshot: '``` **x**', requestId: undefined, detail: undefined } as unknown as AuditEntry;
    const reply = renderAuditReply([entry], '**vm**');
    expect(reply.embeds[0]!.description!.split('```')).toHaveLength(3);
    expect(reply.embeds[0]!.title).toBe('Audit · \\*\\*vm\\*\\*');
  });

  it('escapes hosts notes: stale reasons and libvirt errors', () => {
    const host: HostOverview = {
      hostId: 'kvm-1', state: 'stale', staleReason: '**libvirt** [down](http://evil)', lastSeen: ISO, workerVersion: '0.1.0', libvirtVersion: '```', qemuVersion: null,
      capabilities: { externalRevert: false, externalDelete: false }, vms: [], queue: null,
      lastError: { code: 'INTERNAL', at: ISO, kind: 'revert', vm: '@everyone', message: VIRSH },
    } as unknown as HostOverview; // prettier-ignore
    const reply = renderHostsReply({ hosts: [host], summary: { total: 1, online: 0, stale: 1, offline: 0, queued: 0, running: 0 } } as never, NOW);
    const description = reply.embeds[0]!.description!;
    expect(description.split('```')).toHaveLength(3);
    expectNoHostileMarkup([description.split('```')[2]!]);
    expect(description).toContain('stale: \\*\\*libvirt\\*\\* \\[down\\](http://evil)');
  });

  it('escapes the /fleet list title and keeps its table closed', () => {
    const embed = renderFleetListPage([{ host: 'kvm-1', online: true, vm: '```', state: 'running', snapshots: ['**x**', 'a\u200b'] }], { target: '**web-*', name: '@everyone' }, 0);
    expect(embed.title).toBe('Fleet snapshots · \\*\\*web-\\* · \\@everyone');
    expect(embed.description!.split('```')).toHaveLength(3);
    expect(embed.description).toContain('a<U+200B>');
  });
});

describe('fleet messages', () => {
  function plan(overrides: Partial<FleetPlan> = {}): FleetPlan {
    return {
      id: 'a1b2c3d4e5f6', action: 'delete', selector: '`web-*` [x](http://evil)', name: '**pre-*', mode: null, description: null,
      createdAt: ISO, requester: { id: 'snapctl:eve@m', userId: null, displayName: '@everyone' }, origin: 'snapctl',
      targets: [{ index: 0, host: 'kvm-1', vm: '||vm||', uuid: '00000000-0000-4000-8000-000000000000', snapshot: '**pre-1' }],
      skipped: { offlineHosts: [{ hostId: '**kvm-9**', lastSeen: '[not](http://a-date)', vms: 1 }], existing: [], forbidden: [{ host: 'kvm-1', vm: '~~secret~~' }], withoutMatch: 0 },
      perHost: 4, maxConcurrent: 64,
      approval: { reason: 'fleet deletes need approval', approvers: ['@everyone'], required: 1, allowSelfApproval: false, ttlMinutes: 15 },
      retryOf: null, ...overrides,
    }; // prettier-ignore
  }

  it('escape the preview and the approval request', () => {
    const preview = renderFleetPreview(plan(), NOW);
    const run: FleetRun = { plan: plan(), status: 'discarded', targets: new Map(), approvals: [], deniedBy: null, expiresAt: null, startedAt: null, finishedAt: null, cancelledBy: 'snapctl:**eve**', message: null };
    const request = renderFleetApprovalRequest(run, undefined, NOW);
    // Outside code (inside, nothing is markup).
    const parts = [...markdownParts(preview), ...markdownParts(request)].map((part) => part.replace(/```[\s\S]*?```/g, '').replace(/`[^`]*`/g, ''));
    expect(parts.join('\n')).not.toMatch(/\*\*pre-|\|\|vm\|\||~~secret~~|\*\*kvm-9\*\*|\(by snapctl:\*\*eve\*\*\)/);
    expect(preview.title).toBe('Fleet delete · \\*\\*pre-\\* — preview');
    expect(preview.description).toContain('Target: `\'web-*\' [x](http://evil)`');
    expect(request.description).toContain('(by snapctl:\\*\\*eve\\*\\*)');
    expect(preview.footer!.text).toContain('only @everyone can confirm');
  });

  it('escape failures in the summary', () => {
    const run: FleetRun = {
      plan: plan(), status: 'finished', targets: new Map([[0, { state: 'failed', at: NOW, code: 'INTERNAL', message: VIRSH }]]), approvals: [], deniedBy: null,
      expiresAt: null, startedAt: NOW - 1000, finishedAt: NOW, cancelledBy: null, message: null,
    }; // prettier-ignore
    const embed = renderFleetSummary(summarize(run, [], NOW));
    expectNoHostileMarkup(markdownParts(embed).map((part) => part.replace(/```[\s\S]*?```/g, '')));
    expect(embed.fields!.find((field) => field.name.startsWith('Failures'))!.value).toContain('**\\|\\|vm\\|\\|** @ kvm-1 — **INTERNAL**');
  });
});

// ── escape first, then fit ───────────────────────────────────────────────────

describe('fitting after escaping', () => {
  it("keeps Discord's limits when escaping doubles every character", () => {
    const stars = '*'.repeat(1000);
    const state = approvalState();
    state.request.subject = { ...state.request.subject, vm: '_'.repeat(200), snapshot: snapshot('~'.repeat(128), stars) } as never;
    state.request.approvers = Array.from({ length: 40 }, () => '|'.repeat(100));
    const embeds = [
      renderApprovalRequest(state, NOW),
      renderJobFailure({ kind: 'create', vm: '*'.repeat(200), snapshot: '`'.repeat(128) }, { code: 'INTERNAL', message: '['.repeat(5000) }),
      renderJobResult({ kind: 'info', host: 'kvm-1', vm: { name: '\u200b'.repeat(200), uuid: 'u' }, durationMs: 1, snapshot: snapshot('<'.repeat(128), stars) }),
    ];
    const fitted = fitMessage({ content: renderUserError({ code: 'VALIDATION', message: '@everyone '.repeat(500) }), embeds });
    expect(fitted.content!.length).toBeLessThanOrEqual(DISCORD_LIMITS.content);
    for (const embed of fitted.embeds!) {
      expect(embed.title!.length).toBeLessThanOrEqual(DISCORD_LIMITS.embedTitle);
      expect((embed.description ?? '').length).toBeLessThanOrEqual(DISCORD_LIMITS.embedDescription);
      for (const field of embed.fields ?? []) expect(field.value.length).toBeLessThanOrEqual(DISCORD_LIMITS.fieldValue);
    }
    expect(fitted.embeds!.reduce((sum, embed) => sum + embedCharacters(embed), 0)).toBeLessThanOrEqual(DISCORD_LIMITS.embedsTotal);
  });

  it('shows hidden characters in autocomplete choice names, leaving the values alone', () => {
    expect(fitChoices([{ name: 'baseline\u200b · kvm-1', value: 'baseline\u200b' }])).toEqual([{ name: 'baseline<U+200B> · kvm-1', value: 'baseline\u200b' }]);
  });
});

describe('mentions', () => {
  it('pings nobody unless the payload names whom', () => {
    expect(fitMessage({ content: '@everyone <@&1> <@2>' }).allowedMentions).toEqual({ parse: [] });
    expect(fitMessage({ content: '<@2> done', allowedMentions: { users: ['2'] } }).allowedMentions).toEqual({ users: ['2'] });
  });
});

describe('approvers as Discord shows them', () => {
  it('draws role ids as role mentions and user:<id> as user mentions, names the two special roles, escapes the rest', async () => {
    const { approverText } = await import('../../../bot/discord/render/escape.js');
    expect(approverText(['1180000000000000002', 'user:1180000000000000099', '@administrators', '@everyone', '**ops**'])).toBe(
      '<@&1180000000000000002>, <@1180000000000000099>, administrators, everyone, \\*\\*ops\\*\\*',
    );
  });
});
