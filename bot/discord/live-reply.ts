import {
  DiscordAPIError,
  type APIActionRowComponent,
  type APIButtonComponent,
  type APIEmbed,
  type AttachmentBuilder,
  type Client,
  type Message,
  type RepliableInteraction,
} from 'discord.js';
import type { Logger } from '../../shared/logger.js';
import { ProgressCoalescer } from '../core/progress-coalescer.js';

/** What a reply shows; the same shape edits the interaction reply or a channel message. */
export interface ReplyPayload {
  content?: string;
  embeds?: APIEmbed[];
  components?: APIActionRowComponent<APIButtonComponent>[];
  files?: AttachmentBuilder[];
}

export interface LiveReplyOptions {
  logger: Logger;
  /** Where to continue when the interaction token has expired; the interaction's own channel otherwise. */
  fallbackChannelId?: string | undefined;
  /** Interaction tokens last 15 minutes; stop using them a little before. */
  tokenLifetimeMs?: number;
  /** At most one edit per this interval (Discord queues edits past its rate limit). */
  editIntervalMs?: number;
}

/** Discord's answer to a webhook call with an expired interaction token. */
const INVALID_WEBHOOK_TOKEN = 50027;

/**
 * The reply of a deferred interaction, kept up to date while a job runs: edits are
 * coalesced to about one a second, and when the 15-minute interaction token runs out
 * the reply continues as a message in the channel, mentioning the requester.
 */
export class LiveReply {
  private readonly startedAt = Date.now();
  private readonly coalescer: ProgressCoalescer<ReplyPayload>;
  private channelMessage: Message | undefined;

  constructor(
    private readonly interaction: RepliableInteraction,
    private readonly options: LiveReplyOptions,
  ) {
    this.coalescer = new ProgressCoalescer((payload) => this.deliver(payload), options.editIntervalMs ?? 1_000, (error) =>
      options.logger.warn({ err: error }, 'reply edit failed'),
    );
  }

  /** Edits sent so far (for tests and benchmarks). */
  get edits(): number {
    return this.coalescer.sent;
  }

  update(payload: ReplyPayload): void {
    this.coalescer.push(payload);
  }

  /** Shows the final state now, after any edit in flight. */
  async finish(payload: ReplyPayload): Promise<void> {
    await this.coalescer.flush(payload);
  }

  private tokenExpired(): boolean {
    return Date.now() - this.startedAt > (this.options.tokenLifetimeMs ?? 14 * 60_000);
  }

  private async deliver(payload: ReplyPayload): Promise<void> {
    if (!this.channelMessage && !this.tokenExpired()) {
      try {
        await this.interaction.editReply(payload);
        return;
      } catch (error) {
        if (!(error instanceof DiscordAPIError && error.code === INVALID_WEBHOOK_TOKEN)) throw error;
      }
    }
    await this.deliverToChannel(payload);
  }

  private async deliverToChannel(payload: ReplyPayload): Promise<void> {
    if (this.channelMessage) {
      await this.channelMessage.edit(payload);
      return;
    }
    const channel = await fetchSendableChannel(this.interaction.client, this.options.fallbackChannelId ?? this.interaction.channelId);
    this.channelMessage = await channel.send({
      ...payload,
      content: `<@${this.interaction.user.id}> ${payload.content ?? ''}`.trim(),
      allowedMentions: { users: [this.interaction.user.id] },
    });
  }
}

export async function fetchSendableChannel(client: Client, channelId: string | null) {
  if (!channelId) throw new Error('no channel to post in (set DISCORD_CHANNEL_ID)');
  const channel = await client.channels.fetch(channelId);
  if (!channel?.isSendable()) throw new Error(`channel ${channelId} cannot take messages from the bot`);
  return channel;
}
