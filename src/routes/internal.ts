import type { MiddlewareHandler } from 'hono'
import { Hono } from 'hono'
import { z } from 'zod'
import type { Cluster, WorkerListing } from '../cluster/index.js'
import { notOwner, requireSecret, seenGeneration } from '../cluster/index.js'
import { OrgId, PluginId } from '../contract/index.js'
import type { Instances, WorkerControl } from '../gateway/index.js'
import type { AppEnv } from './env.js'
import { jsonBody, params } from './validate.js'

const InstanceParams = z.object({ orgId: OrgId, pluginId: PluginId })
const ControlBody = z.strictObject({
  method: z.enum(['GET', 'POST']),
  path: z.enum(['/health', '/validate-auth', '/config-update', '/mcp/list-tools', '/mcp/call-tool']),
  payload: z.unknown().optional(),
})

export interface InternalRouteDeps {
  instances: Pick<Instances, 'instanceChangedElsewhere'>
  workers: Pick<WorkerControl, 'localControl' | 'stop'>
  cluster: Pick<Cluster, 'secret' | 'claim'>
  /** This gateway's workers, as GET /admin/workers shows them. */
  localWorkers: () => WorkerListing[]
}

function clusterSecret(secret: string): MiddlewareHandler {
  return async function requireClusterSecret(c, next) {
    requireSecret((name) => c.req.header(name), secret)
    return next()
  }
}

/** `/internal/*`: what peer gateways ask of the owner of a worker. Cluster secret required. */
export function internalRoutes(deps: InternalRouteDeps) {
  const { instances, workers, cluster } = deps
  const app = new Hono<AppEnv>()
  app.use('*', clusterSecret(cluster.secret))

  app.get('/workers', (c) => c.json({ workers: deps.localWorkers() }))

  app.post('/orgs/:orgId/plugins/:pluginId/changed', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    await instances.instanceChangedElsewhere(orgId, pluginId)
    return c.json({ applied: true })
  })

  app.post('/orgs/:orgId/plugins/:pluginId/control', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    const body = await jsonBody(c, ControlBody)
    const placement = await cluster.claim(
      orgId,
      pluginId,
      seenGeneration((name) => c.req.header(name)),
    )
    if (placement.kind === 'remote') throw notOwner(orgId, pluginId)
    return c.json(await workers.localControl(orgId, pluginId, body.method, body.path, body.payload))
  })

  app.post('/orgs/:orgId/plugins/:pluginId/stop', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    return c.json({ stopped: await workers.stop(orgId, pluginId) })
  })

  return app
}
