import type { Context, MiddlewareHandler } from 'hono'
import type { Logger } from '../core/index.js'
import type { ResponseStatus } from './request-metrics.js'

export interface RequestLoggingDeps {
  log: Logger
  /** The status actually sent (see ResponseStatus); defaults to `c.res.status`. */
  responseStatus?: ResponseStatus
  /** Monotonic milliseconds; injectable so tests and other runtimes can supply their own. */
  now?: () => number
}

/**
 * One debug line per request: method, path, status, ms, requestId. The path is logged without its
 * query string, which may carry tokens (the status page accepts `?token=`).
 */
export function requestLogging(deps: RequestLoggingDeps): MiddlewareHandler {
  const now = deps.now ?? (() => performance.now())
  const statusOf = deps.responseStatus ?? ((c: Context) => c.res.status)
  return async function logRequest(c, next) {
    const startedAt = now()
    try {
      await next()
    } finally {
      const ms = Math.round((now() - startedAt) * 10) / 10
      deps.log.debug(
        { method: c.req.method, path: c.req.path, status: statusOf(c), ms, requestId: c.get('requestId') as string | undefined },
        'request',
      )
    }
  }
}
