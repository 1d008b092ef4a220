import { Hono } from 'hono'
import type { Metrics } from '../observability/index.js'
import type { AppEnv } from './env.js'

/** `GET /metrics` in the metrics backend's exposition format; mounted behind the admin guard. */
export function metricsRoutes(deps: { metrics: Metrics }) {
  const app = new Hono<AppEnv>()
  app.get('/metrics', async (c) => {
    const { contentType, body } = await deps.metrics.render()
    return c.body(body, 200, { 'content-type': contentType, 'cache-control': 'no-store' })
  })
  return app
}
