import { DiscordAPIError, type Message, type RepliableInteraction } from 'discord.js';
import type { Logger } from '../../shared/logger.js';
import { ProgressCoalescer } from '../core/progress-coalescer.js';
import { isRefusal, refusedEditFallback, type ChannelMessenger, type SendPriority } from './channel-messenger.js';
import { fitMessage } from './render/discord-limits.js';
import type { ReplyPayload } from './reply-payload.js';

export type { ReplyPayload } from './reply-payload.js';
export { fetchSendableChannel } from './channel-messenger.js';

export interface LiveReplyOptions {
  logger: Logger;
  /** Posts and edits channel messages once the interaction's own reply cannot be used. */
  messenger: ChannelMessenger;
  /** Where to continue when the interaction token has expired; the interaction's own channel otherwise. */
  fallbackChannelId?: string | undefined;
  /** Interaction tokens last 15 minutes; stop using them a little before. */
  tokenLifetimeMs?: number;
  /** At most one edit per this interval (Discord queues edits past its rate limit). */
  editIntervalMs?: number;
}

/** Discord's answer to a webhook call with an expired interaction token. */
const INVALID_WEBHOOK_TOKEN = 50027;

interface Delivery {
  payload: ReplyPayload;
  priority: SendPriority;
}

/**
 * The reply of a deferred interaction, kept up to date while a job runs: edits are
 * coalesced to about one a second, and when the 15-minute interaction token runs out
 * the reply continues as a message in the channel, mentioning the requester. Nothing is
 * lost when Discord refuses an edit: the content goes to the channel instead.
 */
export class LiveReply {
  private readonly startedAt = Date.now();
  private readonly coalescer: ProgressCoalescer<Delivery>;
  private channelMessage: Message | undefined;

  constructor(
    private readonly interaction: RepliableInteraction,
    private readonly options: LiveReplyOptions,
  ) {
    this.coalescer = new ProgressCoalescer((delivery) => this.deliver(delivery), options.editIntervalMs ?? 1_000, (error) =>
      options.logger.warn({ err: error }, 'reply edit failed'),
    );
  }

  /** Edits sent so far (for tests and benchmarks). */
  get edits(): number {
    return this.coalescer.sent;
  }

  update(payload: ReplyPayload): void {
    this.coalescer.push({ payload, priority: 'progress' });
  }

  /** Shows the final state now, after any edit in flight. */
  async finish(payload: ReplyPayload): Promise<void> {
    await this.coalescer.flush({ payload, priority: 'urgent' });
  }

  private tokenExpired(): boolean {
    return Date.now() - this.startedAt > (this.options.tokenLifetimeMs ?? 14 * 60_000);
  }

  private async deliver({ payload, priority }: Delivery): Promise<void> {
    if (!this.channelMessage && !this.tokenExpired()) {
      try {
        await this.interaction.editReply(fitMessage(payload));
        return;
      } catch (error) {
        if (isRefusal(error) && error.code !== INVALID_WEBHOOK_TOKEN) {
          this.options.logger.error({ err: error, command: this.commandName() }, 'Discord refused a reply edit; posting its content in the channel');
          await this.deliverToChannel(refusedEditFallback('the reply', payload), 'urgent');
          return;
        }
        if (!(error instanceof DiscordAPIError && error.code === INVALID_WEBHOOK_TOKEN)) throw error;
      }
    }
    await this.deliverToChannel(payload, priority);
  }

  private commandName(): string | undefined {
    return this.interaction.isCommand() ? this.interaction.commandName : undefined;
  }

  private async deliverToChannel(payload: ReplyPayload, priority: SendPriority): Promise<void> {
    if (this.channelMessage) {
      this.channelMessage = await this.options.messenger.edit({ channelId: this.channelMessage.channelId, messageId: this.channelMessage.id }, payload, priority);
      return;
    }
    const channelId = this.options.fallbackChannelId ?? this.interaction.channelId;
    if (!channelId) throw new Error('no channel to post in (set DISCORD_CHANNEL_ID)');
    this.channelMessage = await this.options.messenger.post(
      channelId,
      { ...payload, content: `<@${this.interaction.user.id}> ${payload.content ?? ''}`.trim(), allowedMentions: { users: [this.interaction.user.id] } },
      priority,
    );
  }
}
