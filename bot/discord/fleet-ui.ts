import { DiscordAPIError, MessageFlags, type APIEmbed, type ButtonInteraction, type Client } from 'discord.js';
import { SnapbotError } from '../../shared/errors.js';
import type { Actor } from '../core/authorize.js';
import {
  approvedNotStarted,
  cancelFleet,
  claimFleetWatcher,
  confirmFleet,
  decideFleet,
  expireDueFleetApprovals,
  fleetSummary,
  getFleetRun,
  orphanedFleetRuns,
  planRetryOfFailed,
  setFleetMessage,
  startFleetRun,
  takeFleetRequestToPost,
  watchFleetRun,
  type FleetRequester,
  type FleetRun,
  type FleetSummary,
} from '../core/fleet.js';
import { ProgressCoalescer } from '../core/progress-coalescer.js';
import { actorFromInteraction } from './actor.js';
import type { BotContext, ButtonHandler } from './context.js';
import { UNKNOWN_MESSAGE, type MessageRef, type SendPriority } from './channel-messenger.js';
import type { ReplyPayload } from './reply-payload.js';
import { COLOR } from './render/colors.js';
import {
  FLEET_APPROVAL_PREFIX,
  FLEET_BUTTON_PREFIX,
  fleetApprovalPayload,
  fleetPreviewPayload,
  fleetSummaryPayload,
  renderFleetPreview,
} from './render/render-fleet.js';
import { renderUserError } from './render/render-job.js';
import { userFacingError } from './run-command.js';
import { fitMessage } from './render/discord-limits.js';


/**
 * The fleet runs this bot process keeps a summary message of. Each run is followed at
 * most once per process; `stop` ends them all (the runs go on, and another bot process
 * — or this one after a restart — adopts them once their watcher lease lapses).
 */
export class FleetWatchers {
  private readonly following = new Map<string, Promise<void>>();
  private readonly shutdown = new AbortController();

  has(runId: string): boolean {
    return this.following.has(runId);
  }

  /** Starts `work` for the run unless this process follows it already; says whether it started. */
  follow(runId: string, work: (signal: AbortSignal) => Promise<void>): boolean {
    if (this.following.has(runId) || this.shutdown.signal.aborted) return false;
    const done = work(this.shutdown.signal).finally(() => this.following.delete(runId));
    this.following.set(runId, done);
    return true;
  }

  /** Waits until every run followed so far has finished (tests, and `stop`). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.following.values()]);
  }

  async stop(): Promise<void> {
    this.shutdown.abort();
    await this.settled();
  }
}

/**
 * The one message that shows a run's progress: a channel message (interaction tokens die
 * after 15 minutes, fleet runs may not), edited at most once per `editIntervalMs`, found
 * again from Redis after a restart. When it was deleted, a new one is posted.
 */
class FleetSummaryMessage {
  private readonly coalescer: ProgressCoalescer<{ payload: ReplyPayload; priority: SendPriority }>;
  private messageUrl: string | undefined;

  constructor(
    private readonly context: BotContext,
    private readonly client: Client,
    private readonly runId: string,
    private message: MessageRef | null,
    /** Where to post when the run has no message yet. */
    private readonly postIn: string | null,
  ) {
    this.coalescer = new ProgressCoalescer((payload) => this.deliver(payload), context.editIntervalMs, (error) =>
      context.logger.warn({ err: error, fleetRun: runId }, 'fleet summary edit failed'),
    );
  }

  get url(): string | undefined {
    return this.messageUrl;
  }

  /** Shows `payload` now (posting the message if there is none yet). */
  async open(payload: ReplyPayload): Promise<void> {
    await this.coalescer.flush({ payload, priority: 'urgent' });
  }

  /** Keeps the message up to date until the run ends (or the bot stops); returns the last summary. */
  async follow(signal: AbortSignal): Promise<FleetSummary> {
    const run = await getFleetRun(this.context.core, this.runId);
    const header = run ? approvedNote(run) : [];
    const final = await watchFleetRun(this.context.core, this.runId, {
      signal,
      // The final summary is what people wait for: it goes ahead of other runs' progress.
      onUpdate: (summary) => this.coalescer.push({ payload: fleetSummaryPayload(summary, header), priority: summary.status === 'finished' ? 'urgent' : 'progress' }),
    });
    // The last state goes out even when the bot is stopping, so the message is not left behind.
    await this.coalescer.flush();
    return final;
  }

  private async deliver({ payload, priority }: { payload: ReplyPayload; priority: SendPriority }): Promise<void> {
    if (this.message) {
      try {
        const edited = await this.context.messenger.edit(this.message, payload, priority);
        this.messageUrl = edited.url;
        return;
      } catch (error) {
        if (!(error instanceof DiscordAPIError && error.code === UNKNOWN_MESSAGE)) throw error;
        this.context.logger.info({ fleetRun: this.runId }, 'fleet summary message was deleted; posting a new one');
        this.message = null;
      }
    }
    const channelId = this.postIn ?? this.context.channelId ?? null;
    if (!channelId) return; // An adopted snapctl run with no channel configured: followed silently.
    const sent = await this.context.messenger.post(channelId, payload, priority);
    this.message = { channelId: sent.channelId, messageId: sent.id };
    this.messageUrl = sent.url;
    await setFleetMessage(this.context.core, this.runId, this.message);
  }
}

/** A line above the summary of an approved run, since the summary replaces the request message. */
function approvedNote(run: FleetRun): APIEmbed[] {
  if (!run.plan.approval || run.approvals.length === 0) return [];
  return [
    {
      title: '🔐 Approved',
      color: COLOR.neutral,
      description: `Approved by ${run.approvals.map((id) => `<@${id}>`).join(', ')} (${run.plan.approval.reason}).`,
    },
  ];
}

/**
 * Follows a run in this process and keeps its summary message up to date; `postIn` is
 * where a new message goes when the run has none.
 */
function followRun(context: BotContext, client: Client, runId: string, message: MessageRef | null, postIn: string | null, opened?: FleetSummaryMessage): void {
  const keeper = opened ?? new FleetSummaryMessage(context, client, runId, message, postIn);
  context.fleetWatchers.follow(runId, async (signal) => {
    try {
      const final = await keeper.follow(signal);
      context.logger.info({ fleetRun: runId, status: final.status, counts: final.counts, durationMs: final.durationMs }, 'fleet run followed to its end');
    } catch (error) {
      context.logger.warn({ err: error, fleetRun: runId }, 'following a fleet run failed; another sweep will adopt it');
    }
  });
}

/** Posts a fleet approval request with its buttons in the channel, and remembers the message. */
export async function postFleetApprovalRequest(context: BotContext, client: Client, run: FleetRun, channelId: string | null): Promise<string> {
  const target = context.channelId ?? channelId;
  if (!target) throw new Error('no channel to post in (set DISCORD_CHANNEL_ID)');
  const message = await context.messenger.post(target, fleetApprovalPayload(run));
  await setFleetMessage(context.core, run.plan.id, { channelId: message.channelId, messageId: message.id });
  return message.url;
}

function requesterOf(actor: Actor): FleetRequester {
  return { id: actor.id, userId: actor.userId, displayName: actor.displayName };
}

/** Tells the clicker alone what went wrong: their mistake with its code, anything else as internal with a reference. */
async function answerPrivately(interaction: ButtonInteraction, context: BotContext, error: unknown): Promise<void> {
  await tellClicker(interaction, renderUserError(userFacingError(context, error, { button: interaction.customId, user: interaction.user.id })));
}

function tellClicker(interaction: ButtonInteraction, content: string): Promise<unknown> {
  return interaction.followUp({ content, flags: MessageFlags.Ephemeral });
}

type FleetButtonAction = 'confirm' | 'cancel' | 'retry';

/** The requester's Confirm on a preview: an approval request in the channel, or the run starts with its summary message. */
async function confirm(interaction: ButtonInteraction, runId: string, context: BotContext): Promise<void> {
  const actor = actorFromInteraction(interaction);
  // Taken before the run becomes active, so no sweeper adopts it while this process posts its summary.
  await claimFleetWatcher(context.core, runId);
  const outcome = await confirmFleet(context.core, runId, actor);
  const { plan } = outcome.run;
  if (outcome.kind === 'pending') {
    const url = await postFleetApprovalRequest(context, interaction.client, outcome.run, interaction.channelId);
    const expires = outcome.run.expiresAt ? ` It expires <t:${Math.floor(Date.parse(outcome.run.expiresAt) / 1000)}:R>.` : '';
    await interaction.editReply(fitMessage({ embeds: [renderFleetPreview(plan, Date.now(), `🔐 Confirmed by <@${actor.userId}>; approval requested: ${url}${expires}`)], components: [] }));
    return;
  }
  const keeper = new FleetSummaryMessage(context, interaction.client, runId, null, context.channelId ?? interaction.channelId);
  const summary = await fleetSummary(context.core, runId);
  if (summary) await keeper.open(fleetSummaryPayload(summary));
  const where = keeper.url ?? 'in the channel';
  await interaction.editReply(fitMessage({ embeds: [renderFleetPreview(plan, Date.now(), `▶️ Started by <@${actor.userId}>; live summary: ${where}`)], components: [] }));
  followRun(context, interaction.client, runId, null, null, keeper);
}

/** Cancel on a preview (discard), Withdraw on a request, or Cancel on a running summary (what has not started never runs). */
async function cancel(interaction: ButtonInteraction, runId: string, context: BotContext): Promise<void> {
  const actor = actorFromInteraction(interaction);
  const run = await cancelFleet(context.core, runId, { id: actor.id, actor });
  if (run.status === 'discarded') {
    const onRequest = run.message?.messageId === interaction.message.id;
    await interaction.editReply(fitMessage(
      onRequest
        ? fleetApprovalPayload(run)
        : { embeds: [renderFleetPreview(run.plan, Date.now(), `🗑️ Cancelled by <@${actor.userId}>; nothing was queued.`)], components: [] },
    ));
    return;
  }
  if (run.status === 'cancelling') {
    // The summary's watcher (here or in another process) shows the cancelled targets; one
    // that died is adopted by the next sweep.
    return;
  }
  await tellClicker(interaction, `Fleet run \`${runId}\` is ${run.status}; there is nothing left to cancel.`);
}

/** "Retry failed" on a final summary: a new preview of the failed targets, with its own Confirm. */
async function retry(interaction: ButtonInteraction, runId: string, context: BotContext): Promise<void> {
  const actor = actorFromInteraction(interaction);
  const plan = await planRetryOfFailed(context.core, runId, requesterOf(actor), actor);
  await interaction.editReply(fitMessage(fleetPreviewPayload(plan)));
}

export const fleetButton: ButtonHandler<{ runId: string; action: FleetButtonAction }> = {
  parse(customId) {
    const match = new RegExp(`^${FLEET_BUTTON_PREFIX}:([0-9a-f]{6,32}):(confirm|cancel|retry)$`).exec(customId);
    return match ? { runId: match[1]!, action: match[2] as FleetButtonAction } : undefined;
  },
  async run(interaction, { runId, action }, context) {
    // Acknowledge first: starting or cancelling a large run touches every target's queue.
    // Retry answers with a new message (the new preview); the others edit theirs.
    if (action === 'retry') await interaction.deferReply();
    else await interaction.deferUpdate();
    try {
      if (action === 'confirm') await confirm(interaction, runId, context);
      else if (action === 'cancel') await cancel(interaction, runId, context);
      else await retry(interaction, runId, context);
    } catch (error) {
      if (action === 'retry') await interaction.deleteReply().catch(() => undefined);
      await answerPrivately(interaction, context, error);
    }
  },
};

export const fleetApprovalButton: ButtonHandler<{ runId: string; decision: 'approve' | 'deny' }> = {
  parse(customId) {
    const match = new RegExp(`^${FLEET_APPROVAL_PREFIX}:([0-9a-f]{6,32}):(approve|deny)$`).exec(customId);
    return match ? { runId: match[1]!, decision: match[2] as 'approve' | 'deny' } : undefined;
  },
  async run(interaction, { runId, decision }, context) {
    await interaction.deferUpdate();
    try {
      const actor = actorFromInteraction(interaction);
      // If this click is the deciding one, this process follows the run: no sweeper should adopt it meanwhile.
      if (decision === 'approve') await claimFleetWatcher(context.core, runId);
      const { outcome, approvals, run } = await decideFleet(context.core, { runId, actor, decision });
      const required = run?.plan.approval?.required ?? 0;
      switch (outcome) {
        case 'missing':
          await tellClicker(interaction, 'This fleet request no longer exists.');
          return;
        case 'not-approver':
          await tellClicker(interaction, renderUserError({ code: 'FORBIDDEN', message: `Only ${run?.plan.approval?.approvers.join(', ')} may approve or deny this fleet run.` }));
          return;
        case 'self':
          await tellClicker(interaction, 'You asked for this run, so your click does not count: someone else must approve it.');
          return;
        case 'duplicate':
          await tellClicker(interaction, `Your approval is already counted (${approvals} of ${required}).`);
          return;
        case 'counted':
        case 'denied':
          await interaction.editReply(fitMessage(fleetApprovalPayload(run!)));
          return;
        case 'expired':
        case 'closed:expired':
          await interaction.editReply(fitMessage(fleetApprovalPayload(run!)));
          await tellClicker(interaction, renderUserError({ code: 'APPROVAL_EXPIRED', message: `It expired at ${run?.expiresAt}; nothing was done.` }));
          return;
        case 'approved': {
          const message = run?.message ?? { channelId: interaction.channelId, messageId: interaction.message.id };
          followRun(context, interaction.client, runId, message, null);
          return;
        }
        default:
          await tellClicker(interaction, `This fleet request is already ${outcome.replace(/^closed:/, '')}.`);
      }
    } catch (error) {
      await answerPrivately(interaction, context, error);
    }
  },
};

/**
 * What every bot process does every few seconds for fleet runs: close approval requests
 * past their time (disabling their buttons), post requests opened from snapctl, start
 * approved runs whose fan-out was interrupted, and adopt runs nobody follows any more
 * (their watcher died), keeping their summary message up to date.
 */
export function startFleetSweeper(context: BotContext, client: Client, intervalMs = 2_000): () => void {
  let busy = false;
  const sweep = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const run of await expireDueFleetApprovals(context.core)) {
        if (run.message) await context.messenger.edit(run.message, fleetApprovalPayload(run)).catch((error: unknown) => context.logger.warn({ err: error }, 'could not mark fleet request expired'));
      }
      for (let runId = await takeFleetRequestToPost(context.core); runId !== null; runId = await takeFleetRequestToPost(context.core)) {
        const run = await getFleetRun(context.core, runId);
        if (run?.status === 'pending') await postFleetApprovalRequest(context, client, run, null);
      }
      for (const runId of await approvedNotStarted(context.core)) {
        const run = await getFleetRun(context.core, runId);
        // 'running' but still listed: the process that started it died during the fan-out, which is safe to repeat.
        if (run?.status === 'approved' || run?.status === 'running') await startFleetRun(context.core, runId, run.status);
      }
      for (const runId of await orphanedFleetRuns(context.core)) {
        if (context.fleetWatchers.has(runId) || !(await claimFleetWatcher(context.core, runId))) continue;
        const run = await getFleetRun(context.core, runId);
        context.logger.info({ fleetRun: runId }, 'adopting a fleet run nobody follows');
        followRun(context, client, runId, run?.message ?? null, context.channelId ?? null);
      }
    } catch (error) {
      context.logger.warn({ err: error instanceof SnapbotError ? error.message : error }, 'fleet sweep failed');
    } finally {
      busy = false;
    }
  };
  void sweep();
  const timer = setInterval(() => void sweep(), intervalMs);
  return () => clearInterval(timer);
}
