import { Hono } from 'hono'
import { z } from 'zod'
import { OrgId, PluginId } from '../contract/index.js'
import type { Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import type { AppEnv } from '../routes/index.js'
import { isControlPath, notFound, onError, params, requestIdMiddleware } from '../routes/index.js'
import { parseEdgeBindings, type EdgeBindings, type EdgeConfigResult } from './env.js'
import { forwardToGateway } from './forward.js'
import { pickOrigin } from './pick-origin.js'

export interface EdgeAppDeps {
  log: Logger
  /** The runtime's fetch; injectable for tests. */
  fetch?: typeof fetch
}

export type EdgeEnv = AppEnv & { Bindings: EdgeBindings }

const Params = z.object({ orgId: OrgId, pluginId: PluginId })

/**
 * The Workers entry's app. A Worker cannot spawn processes, so plugin traffic goes to the Node
 * gateway chosen for its (org, plugin) pair, where cold starts happen. Same request ids, error shape,
 * id rules and control-path refusal as the Node app (src/routes), shared rather than copied.
 */
export function createEdgeApp(deps: EdgeAppDeps) {
  const doFetch = deps.fetch ?? ((input, init) => fetch(input, init))
  const app = new Hono<EdgeEnv>()
  // Bindings are fixed for an isolate's life; parse them once per distinct value.
  let parsed: { raw: unknown; result: EdgeConfigResult } | null = null
  const configOf = (env: EdgeBindings | undefined) => {
    const raw = env?.GATEWAY_ORIGINS
    const result = parsed !== null && parsed.raw === raw ? parsed.result : parseEdgeBindings(env)
    parsed = { raw, result }
    if (result.ok) return result.config
    deps.log.error({ error: result.error }, 'edge bindings are invalid')
    throw new GatewayError('INTERNAL', 500, 'the edge gateway is misconfigured')
  }

  app.use(requestIdMiddleware())
  app.onError(onError(deps.log))
  app.notFound(notFound)

  app.get('/healthz', (c) => c.json({ status: 'ok' }))

  app.all('/orgs/:orgId/plugins/:pluginId/*', async function forwardToNode(c) {
    const { orgId, pluginId } = params(c, Params)
    const url = new URL(c.req.url) // WHATWG parsing already resolved dot-segments, encoded ones too
    const prefix = `/orgs/${orgId}/plugins/${pluginId}`
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) || '/' : null
    // Refused here too, so control paths never even leave the edge.
    if (path === null || isControlPath(path)) throw new GatewayError('ROUTE_NOT_FOUND', 404, `plugin ${pluginId} has no such route`)

    const { origins } = configOf(c.env)
    const client = c.req.header('cf-connecting-ip')
    return forwardToGateway({
      origin: pickOrigin(origins, orgId, pluginId),
      pathAndQuery: url.pathname + url.search,
      request: c.req.raw,
      headers: {
        'x-forwarded-for': [c.req.header('x-forwarded-for'), client].filter(Boolean).join(', '),
        'x-forwarded-proto': url.protocol.slice(0, -1),
        'x-forwarded-host': c.req.header('host') ?? url.host,
        'x-request-id': c.get('requestId'),
      },
      fetch: doFetch,
    })
  })

  return app
}
