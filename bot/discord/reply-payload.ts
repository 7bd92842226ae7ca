import type { APIActionRowComponent, APIButtonComponent, APIEmbed, AttachmentBuilder } from 'discord.js';
import type { AllowedMentions } from './render/discord-limits.js';

/** What a message shows; the same shape answers an interaction, edits its reply or a channel message. */
export interface ReplyPayload {
  content?: string;
  embeds?: APIEmbed[];
  components?: APIActionRowComponent<APIButtonComponent>[];
  files?: AttachmentBuilder[];
  /** Whom the message may ping; nobody when absent (fitMessage), so names and descriptions never ping. */
  allowedMentions?: AllowedMentions;
}
