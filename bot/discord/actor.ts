import { PermissionFlagsBits, type Interaction } from 'discord.js';
import type { Actor } from '../core/authorize.js';

/**
 * Who clicked or typed, as the policy sees them: user id, the ids of their roles (role
 * ids only: names are not unique), and whether they hold Administrator or Manage
 * Server. Read from the interaction itself on every use, since anyone who sees a
 * message can press its buttons. Only interactions from DISCORD_GUILD_ID get this far
 * (interactions/route-interaction.ts), so these are that server's roles.
 */
export function actorFromInteraction(interaction: Interaction): Actor {
  let roleIds: string[] = [];
  if (interaction.inCachedGuild()) roleIds = [...interaction.member.roles.cache.keys()];
  else if (interaction.member && Array.isArray(interaction.member.roles)) roleIds = interaction.member.roles;
  const permissions = interaction.memberPermissions;
  return {
    id: `discord:${interaction.user.id}`,
    userId: interaction.user.id,
    displayName: interaction.user.username,
    roleIds,
    isAdministrator: Boolean(permissions?.has(PermissionFlagsBits.Administrator) || permissions?.has(PermissionFlagsBits.ManageGuild)),
  };
}
