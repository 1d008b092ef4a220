import type { MiddlewareHandler } from 'hono'
import type { Metrics, RouteClass } from './metrics.js'

export interface RequestMetricsDeps {
  metrics: Metrics
  now?: () => number
}

export function routeClassOf(path: string): RouteClass {
  if (path.startsWith('/orgs/')) return 'proxy'
  if (path === '/admin' || path.startsWith('/admin/')) return 'admin'
  if (path === '/metrics') return 'metrics'
  if (path === '/healthz') return 'health'
  return 'other'
}

// Server-Timing is the published measurement of a cold start (routes/public.ts); the queue phase is
// per request, so it is read here rather than from the pool's once-per-start `ready` event.
const QUEUE_TIMING = /(?:^|,)\s*queue;dur=([\d.]+)/

/** Counts every response by route class and status; times proxied ones to their response headers. */
export function requestMetrics(deps: RequestMetricsDeps): MiddlewareHandler {
  const now = deps.now ?? (() => performance.now())
  return async function measureRequest(c, next) {
    const startedAt = now()
    await next()
    const isCold = c.res.headers.get('x-plugin-cold-start') === '1'
    const queue = isCold ? QUEUE_TIMING.exec(c.res.headers.get('server-timing') ?? '')?.[1] : undefined
    deps.metrics.observeRequest({
      route: routeClassOf(c.req.path),
      status: c.res.status,
      durationMs: now() - startedAt,
      cold: isCold ? { queueMs: queue === undefined ? null : Number(queue) } : null,
    })
  }
}
