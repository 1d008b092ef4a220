import type { WorkerPool } from '../workers/index.js'

export interface QueueDepth {
  /** The same pool, with every acquire that has to wait for a start counted while it waits. */
  readonly pool: WorkerPool
  /** Requests waiting for a worker to start right now. */
  current(): number
}

/**
 * Counts requests queued behind cold starts by wrapping `acquire` (composition, not a pool change):
 * an acquire that finds no ready worker waits for a start, or fails fast on backoff, either way it
 * is counted until it settles.
 */
export function trackQueueDepth(pool: WorkerPool): QueueDepth {
  let waiting = 0
  const tracked: WorkerPool = {
    ...pool,
    async acquire(spec, signal) {
      if (pool.peek(spec.orgId, spec.pluginId)) return pool.acquire(spec, signal)
      waiting++
      try {
        return await pool.acquire(spec, signal)
      } finally {
        waiting--
      }
    },
  }
  return { pool: tracked, current: () => waiting }
}
