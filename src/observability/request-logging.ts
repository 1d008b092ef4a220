import type { MiddlewareHandler } from 'hono'
import type { Logger } from '../core/index.js'

export interface RequestLoggingDeps {
  log: Logger
  /** Monotonic milliseconds; injectable so tests and other runtimes can supply their own. */
  now?: () => number
}

/**
 * One debug line per request: method, path, status, ms, requestId. The path is logged without its
 * query string, which may carry tokens (the status page accepts `?token=`).
 */
export function requestLogging(deps: RequestLoggingDeps): MiddlewareHandler {
  const now = deps.now ?? (() => performance.now())
  return async function logRequest(c, next) {
    const startedAt = now()
    try {
      await next()
    } finally {
      const ms = Math.round((now() - startedAt) * 10) / 10
      deps.log.debug(
        { method: c.req.method, path: c.req.path, status: c.res.status, ms, requestId: c.get('requestId') as string | undefined },
        'request',
      )
    }
  }
}
