import type { Clock } from '../../src/core/index.js'

export interface PendingTimer {
  /** The delay it was set with. */
  readonly ms: number
  readonly dueAt: number
}

export interface ManualClock extends Clock {
  /** Moves time forward, firing every timer that falls due, in due order (ties: set order). */
  advance(ms: number): void
  pending(): PendingTimer[]
  /**
   * Resolves once a pending timer matches (at once if one already does). Lets a test wait for
   * the code under test to reach a backoff or deadline before advancing, without sleeping.
   */
  waitForTimer(match?: (t: PendingTimer) => boolean): Promise<void>
}

interface Timer extends PendingTimer {
  readonly seq: number
  readonly fn: () => void
}

export function createManualClock(startMs = 0): ManualClock {
  let nowMs = startMs
  let seq = 0
  const timers = new Set<Timer>()
  const waiters = new Set<{ match: (t: PendingTimer) => boolean; resolve: () => void }>()

  const notify = () => {
    for (const w of waiters) {
      if ([...timers].some(w.match)) {
        waiters.delete(w)
        w.resolve()
      }
    }
  }

  return {
    now: () => nowMs,
    setTimer(ms, fn) {
      const timer: Timer = { ms, dueAt: nowMs + Math.max(0, ms), seq: seq++, fn }
      timers.add(timer)
      notify()
      return () => {
        timers.delete(timer)
      }
    },
    advance(ms) {
      const target = nowMs + ms
      for (;;) {
        let next: Timer | undefined
        for (const t of timers) {
          if (t.dueAt <= target && (!next || t.dueAt < next.dueAt || (t.dueAt === next.dueAt && t.seq < next.seq))) {
            next = t
          }
        }
        if (!next) break
        timers.delete(next)
        nowMs = Math.max(nowMs, next.dueAt)
        next.fn()
      }
      nowMs = target
    },
    pending: () => [...timers].map(({ ms, dueAt }) => ({ ms, dueAt })),
    waitForTimer(match = () => true) {
      return new Promise<void>((resolve) => {
        waiters.add({ match, resolve })
        notify()
      })
    },
  }
}
