import type { APIActionRowComponent, APIButtonComponent, APIEmbed, AttachmentBuilder } from 'discord.js';

/** What a message shows; the same shape answers an interaction, edits its reply or a channel message. */
export interface ReplyPayload {
  content?: string;
  embeds?: APIEmbed[];
  components?: APIActionRowComponent<APIButtonComponent>[];
  files?: AttachmentBuilder[];
}
