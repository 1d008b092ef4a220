import type { Clock } from '../core/index.js'
import { sleep } from '../core/index.js'

// libSQL reports lock contention as SQLITE_BUSY (another connection holds the write lock) or
// SQLITE_LOCKED (a conflict inside one connection's shared cache). drizzle wraps driver errors
// in DrizzleQueryError with the LibsqlError as `cause`, so the whole cause chain is checked.
const BUSY_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED'])

export function isBusyError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && BUSY_CODES.has(code)) return true
  }
  return false
}

export interface BusyRetryOptions {
  clock: Clock
  /** Total tries, the first included. */
  attempts?: number
  /** Pause before retry n (the last entry repeats). */
  backoffMs?: readonly number[]
}

const DEFAULT_BACKOFF_MS = [20, 50, 100, 250, 500, 1000] as const

/**
 * Runs a write, retrying it while the database is busy. The connection's busy timeout already
 * waits for a plain lock; what reaches here is mostly SQLITE_BUSY_SNAPSHOT (a deferred
 * transaction whose read snapshot went stale before it could write), which SQLite reports at
 * once, so a short async pause and a fresh try is the fix. Any other error is rethrown as is.
 */
export async function withBusyRetry<T>(fn: () => Promise<T>, opts: BusyRetryOptions): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 8)
  const backoffMs = opts.backoffMs ?? DEFAULT_BACKOFF_MS
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if (attempt >= attempts || !isBusyError(err)) throw err
      await sleep(opts.clock, backoffMs[Math.min(attempt - 1, backoffMs.length - 1)] ?? 0)
    }
  }
}
