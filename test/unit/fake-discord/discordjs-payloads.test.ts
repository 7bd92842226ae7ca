/**
 * The payloads discord.js 14 builds (SlashCommandBuilder, EmbedBuilder, ButtonBuilder,
 * StringSelectMenuBuilder, ActionRowBuilder, AttachmentBuilder) sent through the real
 * Client and REST to the fake: ordinary payloads pass, so the fake is not stricter
 * than Discord about what discord.js adds (tts, enforce_nonce, attachments, nulls).
 */
import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  Client,
  ContextMenuCommandBuilder,
  EmbedBuilder,
  Events,
  GatewayIntentBits,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  REST,
  Routes,
  SlashCommandBuilder,
  StringSelectMenuBuilder,
  ApplicationCommandType,
} from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeHttp, type FakeHttp } from './fake-http.js';

let http: FakeHttp;
let client: Client;

beforeAll(async () => {
  http = await startFakeHttp({ rateLimits: true });
  client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: http.fake.apiUrl } });
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(http.options.token);
  await ready;
});

afterAll(async () => {
  await client?.destroy();
  await http?.stop();
});

const commands = [
  new SlashCommandBuilder()
    .setName('snapshot')
    .setDescription('Manage VM snapshots')
    .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild)
    .setContexts(InteractionContextType.Guild)
    .addSubcommand((sub) =>
      sub
        .setName('create')
        .setDescription('Take a snapshot')
        .addStringOption((o) => o.setName('vm').setDescription('VM').setRequired(true).setAutocomplete(true).setMaxLength(100))
        .addStringOption((o) => o.setName('mode').setDescription('Mode').addChoices({ name: 'disk-only', value: 'disk-only' }, { name: 'full', value: 'full' }))
        .addIntegerOption((o) => o.setName('keep').setDescription('Keep').setMinValue(1).setMaxValue(30))
        .addBooleanOption((o) => o.setName('force').setDescription('Force')),
    )
    .addSubcommandGroup((group) => group.setName('policy').setDescription('Policy').addSubcommand((sub) => sub.setName('show').setDescription('Show it'))),
  new SlashCommandBuilder().setName('hosts').setDescription('The fleet view').setNSFW(false),
  new ContextMenuCommandBuilder().setName('Snapshot this VM').setType(ApplicationCommandType.Message),
];

describe('discord.js payloads through HTTP', () => {
  it('registers SlashCommandBuilder and ContextMenuCommandBuilder output with REST.put and commands.set', async () => {
    const rest = new REST({ api: http.fake.apiUrl }).setToken(http.options.token);
    const body = commands.map((c) => c.toJSON());
    await rest.put(Routes.applicationGuildCommands(http.options.applicationId, http.options.guildId), { body });
    await client.application?.commands.set(body, http.options.guildId);
    await client.application?.commands.set([{ name: 'hosts', description: 'The fleet view' }]);
    expect(http.fake.unexpectedRefusals()).toEqual([]);
  });

  it('sends and edits channel messages built with EmbedBuilder, ButtonBuilder, select menus and AttachmentBuilder', async () => {
    const channel = await client.channels.fetch(http.options.channelId);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const embed = new EmbedBuilder()
      .setTitle('web-01 · kvm-a')
      .setDescription('3 snapshots')
      .setColor(0x2ecc71)
      .addFields({ name: 'pre-upgrade', value: 'disk-only · 2 h ago', inline: true })
      .setFooter({ text: 'snapbot' })
      .setAuthor({ name: 'ada' })
      .setTimestamp(new Date());
    const buttons = new ActionRowBuilder<ButtonBuilder>().addComponents(
      new ButtonBuilder().setCustomId('page:prev').setLabel('◀').setStyle(ButtonStyle.Secondary).setDisabled(true),
      new ButtonBuilder().setCustomId('page:next').setLabel('▶').setStyle(ButtonStyle.Secondary),
      new ButtonBuilder().setCustomId('react').setEmoji('🔁').setStyle(ButtonStyle.Primary),
      new ButtonBuilder().setURL('https://example.org/docs').setLabel('Docs').setStyle(ButtonStyle.Link),
    );
    const menu = new ActionRowBuilder<StringSelectMenuBuilder>().addComponents(
      new StringSelectMenuBuilder().setCustomId('vm').setPlaceholder('VM').addOptions({ label: 'web-01', value: 'web-01' }, { label: 'web-02', value: 'web-02', description: 'kvm-b' }),
    );
    const file = new AttachmentBuilder(Buffer.from('vm,snapshot\nweb-01,nightly\n'), { name: 'list.csv', description: 'every snapshot' });
    const sent = await channel.send({ content: 'Snapshots of web-01', embeds: [embed], components: [buttons, menu], files: [file], allowedMentions: { parse: [] } });
    await sent.edit({ content: 'Snapshots of web-01 (page 2)', embeds: [EmbedBuilder.from(embed).setDescription('page 2')], components: [buttons] });
    await sent.edit({ content: 'No attachments any more', attachments: [] });
    await sent.edit({ files: [new AttachmentBuilder(Buffer.from('again'), { name: 'again.txt' })] });
    await sent.edit({ content: 'Keeps the attachment', attachments: [...sent.attachments.values()] });
    await channel.messages.fetch({ message: sent.id, force: true });
    await sent.delete();
    expect(http.fake.unexpectedRefusals()).toEqual([]);
  });

  it('answers interactions the usual ways: defer, edit, follow-up, reply with files, update, respond', async () => {
    const errors: unknown[] = [];
    client.on(Events.InteractionCreate, (interaction) => {
      const run = async (): Promise<void> => {
        if (interaction.isAutocomplete()) return interaction.respond([{ name: 'web-01 · kvm-a', value: 'web-01' }]);
        if (interaction.isButton()) {
          await interaction.update({ content: 'Approved', components: [] });
          await interaction.followUp({ content: 'done', flags: MessageFlags.Ephemeral });
          return;
        }
        if (!interaction.isChatInputCommand()) return;
        if (interaction.options.getSubcommand(false) === 'create') {
          await interaction.deferReply({ flags: MessageFlags.Ephemeral });
          await interaction.editReply({ content: 'queued', embeds: [new EmbedBuilder().setTitle('queued').addFields({ name: 'vm', value: 'web-01' })] });
          await interaction.editReply({ content: 'done', embeds: [], components: [] });
          await interaction.followUp({ content: 'details', files: [new AttachmentBuilder(Buffer.from('log'), { name: 'job.log' })] });
          return;
        }
        const approve = new ButtonBuilder().setCustomId('approve').setLabel('Approve').setStyle(ButtonStyle.Success);
        await interaction.reply({ content: 'Approve?', components: [new ActionRowBuilder<ButtonBuilder>().addComponents(approve)], files: [new AttachmentBuilder(Buffer.from('plan'), { name: 'plan.txt' })] });
      };
      run().catch((error: unknown) => errors.push(error));
    });
    const choices = await http.fake.autocomplete(http.userId, 'snapshot', [{ name: 'create', type: 1, options: [{ name: 'vm', type: 3, value: 'w', focused: true }] }]);
    expect(choices).toEqual([{ name: 'web-01 · kvm-a', value: 'web-01' }]);
    const create = await http.fake.slashCommand(http.userId, 'snapshot', [{ name: 'create', type: 1, options: [{ name: 'vm', type: 3, value: 'web-01' }] }]);
    await create.waitForOriginal((m) => m.content === 'done');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const hosts = await http.fake.slashCommand(http.userId, 'hosts');
    const reply = await hosts.waitForOriginal((m) => m.content === 'Approve?');
    const click = await http.fake.clickButton(http.userId, reply, 'approve');
    await click.waitForCallback();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(errors).toEqual([]);
    expect(create.followUps().map((m) => m.attachments.map((a) => a.filename))).toEqual([['job.log']]);
    expect(click.followUps()).toHaveLength(1);
    expect(http.fake.unexpectedRefusals()).toEqual([]);
  });
});
