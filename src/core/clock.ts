// Pool and metadata logic never read Date.now() or call setTimeout directly: tests drive time.
export interface Clock {
  now(): number
  /**
   * Runs fn after ms; returns a function that cancels it. A pending timer keeps the process alive
   * (an awaited backoff must not let the event loop run dry), so owners cancel theirs on close.
   */
  setTimer(ms: number, fn: () => void): () => void
}

/** The longest delay Node's timers hold (2^31 - 1 ms, ~24.8 days): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    // Sums of long settings can pass the limit: fire late rather than at once (callers re-check time).
    const timer = setTimeout(fn, Math.min(ms, MAX_TIMER_MS))
    return () => clearTimeout(timer)
  },
}

/** Resolves after ms on the given clock, or rejects with the signal's reason when aborted first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      cancel()
      reject(signal?.reason)
    }
    const cancel = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    })
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
