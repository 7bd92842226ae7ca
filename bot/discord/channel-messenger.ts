import { AttachmentBuilder, DiscordAPIError, type APIEmbed, type Client, type Message } from 'discord.js';
import type { Logger } from '../../shared/logger.js';
import { fitMessage } from './render/discord-limits.js';
import type { ReplyPayload } from './reply-payload.js';

/** Where a channel message lives. */
export interface MessageRef {
  channelId: string;
  messageId: string;
}

/**
 * `urgent`: approval requests and their outcomes, final results — a person is waiting
 * for them. `progress`: live summaries and progress, where only the latest matters.
 */
export type SendPriority = 'urgent' | 'progress';

/** How many requests of one kind a channel takes per window (Discord: 5 posts and 5 edits per 5 s). */
export interface ChannelBudget {
  count: number;
  windowMs: number;
}

/** Discord's per-channel buckets as observed, with room for the network's jitter. */
export const DISCORD_CHANNEL_BUDGET: ChannelBudget = { count: 5, windowMs: 5_250 };

/** Discord's code for an edit of a message that was deleted: callers post a new one. */
export const UNKNOWN_MESSAGE = 10008;

interface Waiter {
  priority: SendPriority;
  /** True: the request went out; false: a skippable request gave way to an urgent one. */
  resolve: (sent: boolean) => void;
  skippable: boolean;
}

/**
 * Hands out a channel's request budget: at most `count` requests per `windowMs` per key,
 * urgent ones before progress, first come first served within a priority. Without it
 * every fleet summary and approval edit of a channel shares Discord's one edit bucket in
 * arrival order, so two live summaries saturate it and an approval's outcome waits
 * behind them.
 */
export class ChannelPacer {
  private readonly sentAt = new Map<string, number[]>();
  private readonly queues = new Map<string, Waiter[]>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly budget: ChannelBudget = DISCORD_CHANNEL_BUDGET) {}

  /**
   * Resolves with true when a request on `key` may go out. A `skippable` progress request
   * (an edit whose message's next update replaces it anyway) resolves with false instead
   * when urgent requests wait on `key`, or arrive while it waits: sent late, it would only
   * hold back its own message's next edit, which goes out after it.
   */
  slot(key: string, priority: SendPriority, options: { skippable?: boolean } = {}): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let queue = this.queues.get(key) ?? [];
      const skippable = priority === 'progress' && options.skippable === true;
      if (skippable && queue.some((waiter) => waiter.priority === 'urgent')) {
        resolve(false);
        return;
      }
      if (priority === 'urgent' && queue.some((waiter) => waiter.skippable)) {
        for (const waiter of queue) if (waiter.skippable) waiter.resolve(false);
        queue = queue.filter((waiter) => !waiter.skippable);
      }
      // Urgent requests go ahead of every progress request, behind earlier urgent ones.
      const at = priority === 'urgent' ? queue.findIndex((waiter) => waiter.priority === 'progress') : -1;
      queue.splice(at < 0 ? queue.length : at, 0, { priority, resolve, skippable });
      this.queues.set(key, queue);
      this.pump(key);
    });
  }

  /** Requests waiting for a slot on `key` (for tests and logs). */
  waiting(key: string): number {
    return this.queues.get(key)?.length ?? 0;
  }

  /** Stops the timers (waiters still pending are released at once). */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const queue of this.queues.values()) for (const waiter of queue.splice(0)) waiter.resolve(true);
  }

  private pump(key: string): void {
    const queue = this.queues.get(key);
    if (!queue || this.timers.has(key)) return;
    const now = Date.now();
    const recent = (this.sentAt.get(key) ?? []).filter((at) => now - at < this.budget.windowMs);
    while (queue.length > 0 && recent.length < this.budget.count) {
      recent.push(now);
      queue.shift()!.resolve(true);
    }
    this.sentAt.set(key, recent);
    if (queue.length === 0) {
      this.queues.delete(key);
      return;
    }
    const wait = recent[0]! + this.budget.windowMs - now;
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.pump(key);
      }, Math.max(1, wait)),
    );
  }
}

/**
 * Every message the bot posts or edits in a channel goes through here: fitted to
 * Discord's limits, paced per channel by priority, and never lost — when Discord refuses
 * an edit, the content is posted as a new message instead (and the refusal logged).
 */
export class ChannelMessenger {
  private readonly pacer: ChannelPacer;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    budget: ChannelBudget = DISCORD_CHANNEL_BUDGET,
  ) {
    this.pacer = new ChannelPacer(budget);
  }

  /** Posts a message (mentions only as `allowedMentions` says; none by default, see fitMessage). */
  async post(channelId: string, payload: ReplyPayload, priority: SendPriority = 'urgent'): Promise<Message> {
    const channel = await fetchSendableChannel(this.client, channelId);
    await this.pacer.slot(`post:${channel.id}`, priority);
    return channel.send(fitMessage(payload));
  }

  /**
   * Edits a message. An edit Discord refuses (other than for a deleted message, which
   * throws `UNKNOWN_MESSAGE` for the caller to re-post) is logged and its content posted
   * as a new message, so the channel still shows it.
   */
  async edit(ref: MessageRef, payload: ReplyPayload, priority: SendPriority = 'urgent'): Promise<Message> {
    const channel = await fetchSendableChannel(this.client, ref.channelId);
    if (!('messages' in channel)) throw new Error(`channel ${ref.channelId} has no messages to edit`);
    // A progress edit that urgent ones overtake is not sent: the caller sends its message's
    // next state after it, so sending it late would hold back that (newer, maybe final) state.
    const cached = priority === 'progress' ? channel.messages.cache.get(ref.messageId) : undefined;
    const sent = await this.pacer.slot(`edit:${channel.id}`, priority, { skippable: cached !== undefined });
    if (!sent && cached) return cached;
    try {
      return await channel.messages.edit(ref.messageId, fitMessage(payload));
    } catch (error) {
      if (!isRefusal(error)) throw error;
      this.logger.error({ err: error, channel: ref.channelId, message: ref.messageId }, 'Discord refused a message edit; posting its content as a new message');
      const guild = 'guildId' in channel && channel.guildId ? channel.guildId : '@me';
      return this.post(ref.channelId, refusedEditFallback(`https://discord.com/channels/${guild}/${ref.channelId}/${ref.messageId}`, payload), 'urgent');
    }
  }

  close(): void {
    this.pacer.close();
  }
}

/** A 4xx that retrying cannot fix (not a deleted message, not a rate limit: discord.js waits those out). */
export function isRefusal(error: unknown): error is DiscordAPIError {
  return error instanceof DiscordAPIError && error.status >= 400 && error.status < 500 && error.status !== 429 && error.code !== UNKNOWN_MESSAGE;
}

function embedText(embed: APIEmbed): string {
  return [embed.title, embed.description, ...(embed.fields ?? []).map((field) => `${field.name}: ${field.value}`), embed.footer?.text]
    .filter((part): part is string => Boolean(part))
    .join('\n');
}

/** The text of a payload Discord refused, as a short message with the whole text attached. */
export function refusedEditFallback(what: string, payload: ReplyPayload): ReplyPayload {
  const text = [payload.content ?? '', ...(payload.embeds ?? []).map(embedText)].filter(Boolean).join('\n\n') || '(no text)';
  return {
    content: `Discord refused an update of ${what}; here it is as text:\n${text}`,
    files: [...(payload.files ?? []), new AttachmentBuilder(Buffer.from(`${text}\n`), { name: 'update.txt' })].slice(0, 10),
  };
}

export async function fetchSendableChannel(client: Client, channelId: string | null) {
  if (!channelId) throw new Error('no channel to post in (set DISCORD_CHANNEL_ID)');
  const channel = await client.channels.fetch(channelId);
  if (!channel?.isSendable()) throw new Error(`channel ${channelId} cannot take messages from the bot`);
  return channel;
}
