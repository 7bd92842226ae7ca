import type { SnapbotCore } from './core.js';

/**
 * Redis's clock, in ms: expiries and lost-host timers are decided by the one clock every
 * process shares (the Lua scripts read the same `TIME`), not by each machine's own.
 */
export async function redisNow(core: SnapbotCore): Promise<number> {
  const [seconds, micros] = await core.redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
