import type { APIEmbed } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { DISCORD_LIMITS, clipText, embedCharacters, fitChoices, fitEmbed, fitEmbeds, fitMessage } from '../../../../../bot/discord/render/discord-limits.js';
import { findHiddenCharacter } from '../../../../../shared/names.js';

const total = (embeds: APIEmbed[]) => embeds.reduce((sum, embed) => sum + embedCharacters(embed), 0);

describe('clipText', () => {
  it('leaves text within the limit alone', () => {
    expect(clipText('web-01', 6)).toBe('web-01');
  });

  it('cuts to the limit and ends in an ellipsis', () => {
    const clipped = clipText('x'.repeat(300), 256);
    expect(clipped).toHaveLength(256);
    expect(clipped.endsWith('…')).toBe(true);
  });

  it('closes a code block it cuts through, so the rest of the message is not code', () => {
    const clipped = clipText(`head\n\`\`\`\n${'row\n'.repeat(100)}\`\`\``, 120);
    expect(clipped.length).toBeLessThanOrEqual(120);
    expect(clipped.split('```').length - 1).toBe(2);
  });

  it('never leaves half of a surrogate pair', () => {
    const clipped = clipText('a'.repeat(8) + '😀'.repeat(10), 10);
    expect(clipped.length).toBeLessThanOrEqual(10);
    expect(() => encodeURIComponent(clipped)).not.toThrow();
  });
});

describe('clipText and joined emoji', () => {
  it('never leaves a zero-width joiner whose emoji was cut off (found by the hostile-input property test)', () => {
    const coder = '\u{1F469}\u200d\u{1F4BB}'; // woman technologist: 👩 ZWJ 💻
    for (let max = 4; max <= 40; max += 1) {
      const clipped = clipText(coder.repeat(20), max);
      expect(clipped.replace('…', '').endsWith('\u200d'), `max ${max}`).toBe(false);
      expect(findHiddenCharacter(clipped), `max ${max}`).toBeUndefined();
    }
  });
});

describe('fitEmbed', () => {
  it('cuts a title built from a 200-character VM and a 128-character snapshot name to 256', () => {
    const embed = fitEmbed({ title: `✅ Snapshot ${'s'.repeat(128)} of ${'v'.repeat(200)} created` });
    expect(embed.title!.length).toBe(DISCORD_LIMITS.embedTitle);
  });

  it('shows a dash for a blank field name or value instead of sending a refused blank', () => {
    const embed = fitEmbed({ fields: [{ name: 'Description', value: '   \n ' }, { name: ' ', value: 'x' }] });
    expect(embed.fields).toEqual([
      { name: 'Description', value: '—' },
      { name: '—', value: 'x' },
    ]);
  });

  it('drops a whitespace-only description', () => {
    expect(fitEmbed({ title: 't', description: '  ' })).toEqual({ title: 't' });
  });

  it('keeps 25 fields at most, the last saying how many were left out', () => {
    const fields = Array.from({ length: 30 }, (_, index) => ({ name: `f${index}`, value: 'v' }));
    const embed = fitEmbed({ fields });
    expect(embed.fields).toHaveLength(25);
    expect(embed.fields![24]).toEqual({ name: '…', value: '6 more not shown' });
  });

  it('cuts field values to 1,024, footers to 2,048 and author names to 256', () => {
    const embed = fitEmbed({ fields: [{ name: 'n'.repeat(300), value: 'v'.repeat(2000) }], footer: { text: 'f'.repeat(3000) }, author: { name: 'a'.repeat(300) } });
    expect(embed.fields![0]!.name).toHaveLength(256);
    expect(embed.fields![0]!.value).toHaveLength(1024);
    expect(embed.footer!.text).toHaveLength(2048);
    expect(embed.author!.name).toHaveLength(256);
  });
});

describe('fitEmbeds', () => {
  it('keeps everything when the embeds are within 6,000 characters together', () => {
    const embeds = [{ title: 'a', description: 'b'.repeat(4000) }, { title: 'c', description: 'd'.repeat(1000) }];
    expect(fitEmbeds(embeds)).toEqual(embeds);
  });

  it('cuts the longest texts first until all embeds together hold 6,000 characters', () => {
    const embeds: APIEmbed[] = [
      { title: 'Approved', description: 'x'.repeat(3000) },
      { title: 'Summary', description: 'y'.repeat(4096), fields: [{ name: 'Failures', value: 'z'.repeat(1024) }] },
    ];
    const fitted = fitEmbeds(embeds);
    expect(total(fitted)).toBeLessThanOrEqual(6000);
    expect(fitted.map((embed) => embed.title)).toEqual(['Approved', 'Summary']);
    expect(fitted[1]!.fields![0]!.name).toBe('Failures');
  });

  it('drops trailing fields when many short ones pass 6,000 together', () => {
    const fields = Array.from({ length: 25 }, (_, index) => ({ name: `n${index}`.padEnd(200, '.'), value: 'v'.repeat(60) }));
    const fitted = fitEmbeds(Array.from({ length: 3 }, () => ({ title: 't', fields })));
    expect(total(fitted)).toBeLessThanOrEqual(6000);
  });

  it('sends at most 10 embeds', () => {
    expect(fitEmbeds(Array.from({ length: 12 }, () => ({ title: 't' })))).toHaveLength(10);
  });
});

describe('fitMessage', () => {
  it('cuts content to 2,000 characters and fits the embeds, passing other fields through', () => {
    const components = [{ type: 1 }];
    const fitted = fitMessage({ content: 'c'.repeat(2500), embeds: [{ title: 't'.repeat(300) }], components });
    expect(fitted.content).toHaveLength(2000);
    expect(fitted.embeds![0]!.title).toHaveLength(256);
    expect(fitted.components).toBe(components);
  });
});

describe('fitChoices', () => {
  it('leaves out values over 100 characters, cuts names to 100, and answers 25 at most', () => {
    const choices = [
      { name: 'n'.repeat(150), value: 'ok' },
      { name: 'long value', value: 'v'.repeat(101) },
      ...Array.from({ length: 30 }, (_, index) => ({ name: `c${index}`, value: `c${index}` })),
    ];
    const fitted = fitChoices(choices);
    expect(fitted).toHaveLength(25);
    expect(fitted[0]!.name).toHaveLength(100);
    expect(fitted.some((choice) => choice.name === 'long value')).toBe(false);
  });
});
