import { Redis } from 'ioredis';

/**
 * One command to one redis-server (node, replica or Sentinel) on loopback, on a fresh
 * connection that never retries: the answer, or null when the server is not there (yet)
 * or refused it. For the Sentinel and Cluster helpers, which poll servers while they start,
 * switch roles or die.
 */
export async function redisOneShot(port: number, command: string[], password?: string): Promise<unknown> {
  const client = new Redis({ port, host: '127.0.0.1', ...(password === undefined ? {} : { password }), maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(command[0]!, ...command.slice(1));
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

/** Polls `probe` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
