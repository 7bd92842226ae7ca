import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { runNode, START_MAIN } from '../helpers/processes.js';

/** `npm start`'s failure paths: each ends at once with one line that says what to do. */
describe('npm start without a usable Redis', () => {
  let blocker: Server | undefined;

  afterAll(() => {
    blocker?.close();
  });

  it('says how to install redis-server when it is missing', async () => {
    const result = await runNode(START_MAIN, [], { PATH: '/nonexistent', SNAPBOT_DATA_DIR: '/tmp/snapbot-start-missing' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/apt-get install redis-server.*REDIS_URL/);
  });

  it('says the managed Redis port is taken instead of starting a second Redis', async () => {
    blocker = createServer();
    // Something else (a previous run) may hold the port already: the message is the same.
    await new Promise<void>((resolve) => {
      blocker!.once('error', () => resolve());
      blocker!.listen(6380, '127.0.0.1', () => resolve());
    });
    const result = await runNode(START_MAIN, [], { SNAPBOT_DATA_DIR: '/tmp/snapbot-start-busy' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Port 6380 .* already in use.*REDIS_URL/);
  });
});
