import { AttachmentBuilder, type APIEmbed } from 'discord.js';
import type { HostStatus } from '../../../shared/hosts.js';
import { renderTable } from '../../core/text-table.js';
import { COLOR } from './colors.js';

function hostsTable(hosts: HostStatus[], detailed: boolean): string {
  const header = ['HOST', 'STATUS', ...(detailed ? ['LAST SEEN'] : []), 'LIBVIRT', 'QEMU', 'EXT-REVERT', ...(detailed ? ['EXT-DELETE'] : []), 'VMS'];
  return renderTable(
    header,
    hosts.map((host) => [
      host.hostId,
      host.online ? 'online' : 'offline',
      ...(detailed ? [host.lastSeen] : []),
      host.libvirtVersion ?? '?',
      host.qemuVersion ?? '?',
      host.capabilities.externalRevert ? 'yes' : 'no',
      ...(detailed ? [host.capabilities.externalDelete ? 'yes' : 'no'] : []),
      String(host.vms.length),
    ]),
  );
}

/** Every host in one monospaced table; past the embed's limit, a summary and the table as a file. */
export function renderHostsReply(hosts: HostStatus[]): { embeds: APIEmbed[]; files: AttachmentBuilder[] } {
  if (hosts.length === 0) {
    return {
      embeds: [{ title: 'KVM hosts', color: COLOR.neutral, description: 'No host has reported yet. Start a worker on each KVM host.' }],
      files: [],
    };
  }
  const online = hosts.filter((host) => host.online).length;
  const block = `\`\`\`\n${hostsTable(hosts, false)}\n\`\`\``;
  const fits = block.length <= 4096;
  return {
    embeds: [
      {
        title: 'KVM hosts',
        color: online === hosts.length ? COLOR.success : COLOR.warning,
        description: fits ? block : `${online} of ${hosts.length} hosts online; the full table is attached.`,
        footer: { text: `${online}/${hosts.length} online` },
      },
    ],
    files: fits ? [] : [new AttachmentBuilder(Buffer.from(`${hostsTable(hosts, true)}\n`), { name: 'hosts.txt' })],
  };
}
