import type { Clock } from './clock.js'

export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded'
  readonly code = 'DEADLINE_EXCEEDED'
  constructor(readonly ms: number) {
    super(`deadline of ${ms} ms exceeded`)
  }
}

/**
 * Runs fn with a signal that aborts after ms on the clock (or when parent aborts).
 * The timer is always cleared, so nothing outlives the call.
 */
export async function withDeadline<T>(clock: Clock, ms: number, fn: (signal: AbortSignal) => Promise<T>, parent?: AbortSignal): Promise<T> {
  const controller = new AbortController()
  const onParentAbort = () => controller.abort(parent?.reason)
  if (parent?.aborted) controller.abort(parent.reason)
  else parent?.addEventListener('abort', onParentAbort, { once: true })
  let cancel = () => {}
  const expired = new Promise<never>((_, reject) => {
    cancel = clock.setTimer(ms, () => {
      const err = new DeadlineExceeded(ms)
      controller.abort(err)
      reject(err)
    })
  })
  try {
    return await Promise.race([fn(controller.signal), expired])
  } finally {
    cancel()
    parent?.removeEventListener('abort', onParentAbort)
  }
}

/** promise, or its caller's abort first: a wait several callers share, each able to leave it. */
export function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
