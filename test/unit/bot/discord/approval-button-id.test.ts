import { describe, expect, it } from 'vitest';
import { approvalButtonId } from '../../../../bot/discord/buttons/ids.js';
import { DISCORD_LIMITS } from '../../../../bot/discord/render/discord-limits.js';

/** Schedule approval ids are core's `schedule-<name>-<version>-<base 36 time>` (bot/core/schedules/manage.ts). */
describe('the approve and deny buttons of a schedule approval request', () => {
  it('parse back to the request, within Discord’s 100 characters for the longest name', () => {
    const name = `a${'-b'.repeat(23)}9`; // 48 characters, the longest schedule name
    for (const id of [`schedule-nightly-web-1-${Date.now().toString(36)}`, `schedule-${name}-999999-${(2 ** 46).toString(36)}`]) {
      for (const decision of ['approve', 'deny'] as const) {
        const built = approvalButtonId.build(id, decision);
        expect(built.length).toBeLessThanOrEqual(DISCORD_LIMITS.customId);
        expect(approvalButtonId.parse(built)).toEqual({ id, decision });
      }
    }
  });

  it('claim no other shape', () => {
    for (const id of ['schedule-Nightly-1-abc', 'schedule--1-abc', 'schedule-web-x-abc', 'schedule-web-1-', `schedule-${'a'.repeat(49)}-1-abc`, 'schedule-web-1-ab:c']) {
      expect(approvalButtonId.parse(`approval:${id}:approve`), id).toBeUndefined();
    }
  });
});
