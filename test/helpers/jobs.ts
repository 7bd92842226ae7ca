import type { Queue } from 'bullmq';

/**
 * The states of `jobIds` in `queue` once all of them are `completed`, or whatever they are
 * after `timeoutMs`. After a Redis failover a job whose completion the old master took
 * runs again (and finds its own snapshot), so it may finish after its fleet target did.
 */
export async function settledJobStates(queue: Queue, jobIds: readonly string[], timeoutMs = 30_000): Promise<string[]> {
  const states = () => Promise.all(jobIds.map((id) => queue.getJobState(id)));
  const deadline = Date.now() + timeoutMs;
  let current = await states();
  while (current.some((state) => state !== 'completed') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    current = await states();
  }
  return current;
}
