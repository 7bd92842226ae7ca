import { DiscordAPIError, type APIEmbed } from 'discord.js';
import { getFleetRun, setFleetMessage, watchFleetRun, type FleetRun, type FleetSummary } from '../core/fleet/index.js';
import { ProgressCoalescer } from '../core/progress-coalescer.js';
import { UNKNOWN_MESSAGE, type MessageRef, type SendPriority } from './channel-messenger.js';
import type { BotContext } from './context.js';
import type { ReplyPayload } from './reply-payload.js';
import { COLOR } from './render/colors.js';
import { escapeText } from './render/escape.js';
import { fleetSummaryPayload } from './render/render-fleet-summary.js';

/**
 * The one message that shows a run's progress: a channel message (interaction tokens die
 * after 15 minutes, fleet runs may not), edited at most once per `editIntervalMs` and
 * paced with the channel's other edits, found again from Redis after a restart. When it
 * was deleted, a new one is posted.
 */
export class FleetSummaryMessage {
  private readonly coalescer: ProgressCoalescer<{ payload: ReplyPayload; priority: SendPriority }>;
  private messageUrl: string | undefined;

  constructor(
    private readonly context: BotContext,
    private readonly runId: string,
    private message: MessageRef | null,
    /** Where to post when the run has no message yet. */
    private readonly postIn: string | null,
  ) {
    this.coalescer = new ProgressCoalescer((delivery) => this.deliver(delivery), context.editIntervalMs, (error) =>
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
      description: `Approved by ${run.approvals.map((id) => `<@${id}>`).join(', ')} (${escapeText(run.plan.approval.reason)}).`,
    },
  ];
}

/**
 * Follows a run in this process and keeps its summary message up to date; `postIn` is
 * where a new message goes when the run has none.
 */
export function followRun(context: BotContext, runId: string, message: MessageRef | null, postIn: string | null, opened?: FleetSummaryMessage): void {
  const keeper = opened ?? new FleetSummaryMessage(context, runId, message, postIn);
  context.fleetWatchers.follow(runId, async (signal) => {
    try {
      const final = await keeper.follow(signal);
      context.logger.info({ fleetRun: runId, status: final.status, counts: final.counts, durationMs: final.durationMs }, 'fleet run followed to its end');
    } catch (error) {
      context.logger.warn({ err: error, fleetRun: runId }, 'following a fleet run failed; another sweep will adopt it');
    }
  });
}
