import type { Context, MiddlewareHandler } from 'hono'
import type { AppEnv } from '../routes/env.js'
import type { Metrics, RouteClass } from './metrics.js'

export interface RequestMetricsDeps {
  metrics: Metrics
  /** The status actually sent; see ResponseStatus. Defaults to `c.res.status`. */
  responseStatus?: ResponseStatus
  now?: () => number
}

/**
 * The status a response was sent with. Runtime-specific: the Node forwarder writes proxied responses
 * to the socket itself and leaves `c.res` a placeholder, so the Node entry injects its own reader.
 */
export type ResponseStatus = (c: Context) => number

export function routeClassOf(path: string): RouteClass {
  if (path.startsWith('/orgs/')) return 'proxy'
  if (path === '/admin' || path.startsWith('/admin/')) return 'admin'
  if (path === '/metrics') return 'metrics'
  if (path === '/healthz') return 'health'
  return 'other'
}

/** Counts every response by route class and status; times proxied ones to their response headers. */
export function requestMetrics(deps: RequestMetricsDeps): MiddlewareHandler<AppEnv> {
  const now = deps.now ?? (() => performance.now())
  const statusOf = deps.responseStatus ?? ((c: Context) => c.res.status)
  return async function measureRequest(c, next) {
    const startedAt = now()
    await next()
    // The queue phase is per request (each waiter queues for its own time), so it comes from the
    // request's lease, not from the pool's once-per-start `ready` event.
    const cold = c.get('coldStart') ?? null
    deps.metrics.observeRequest({
      route: routeClassOf(c.req.path),
      status: statusOf(c),
      durationMs: now() - startedAt,
      cold: cold ? { queueMs: cold.queueMs } : null,
    })
  }
}
