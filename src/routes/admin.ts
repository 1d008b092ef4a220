import { Hono } from 'hono'
import { z } from 'zod'
import { OrgId, PluginId } from '../contract/index.js'
import type { Cluster } from '../cluster/index.js'
import type { Instances, PluginCatalog, Targets, WorkerControl } from '../gateway/index.js'
import type { PluginInstanceRow } from '../db/index.js'
import type { PluginView, Registry } from '../registry/index.js'
import { maskConfig, maskMetadata } from '../secrets/index.js'
import type { WorkerInfo, WorkerPool } from '../workers/index.js'
import type { AppEnv } from './env.js'
import { jsonBody, params } from './validate.js'

const PluginParams = z.object({ pluginId: PluginId })
const InstanceParams = z.object({ orgId: OrgId, pluginId: PluginId })

const InstanceBody = z.strictObject({
  enabled: z.boolean().optional(),
  config: z.record(z.string(), z.unknown()).optional(),
})
const AuthBody = z.strictObject({
  methodId: z.string().min(1).max(128),
  credentials: z.record(z.string(), z.unknown()),
})
const ToolCallBody = z.strictObject({
  toolName: z.string().min(1).max(256),
  arguments: z.record(z.string(), z.unknown()).default({}),
})

export interface AdminRouteDeps {
  targets: Targets
  instances: Instances
  workers: WorkerControl
  /** Rescans of the plugin directories and restarts of a plugin's workers. */
  catalog: PluginCatalog
  registry: Registry
  pool: WorkerPool
  /** Present when several gateways share the database: GET /workers then lists theirs too. */
  cluster?: Pick<Cluster, 'gatewayId' | 'peerWorkers'>
}

const iso = (d: Date | number | null | undefined) => (d === null || d === undefined ? null : new Date(d).toISOString())

function pluginJson(v: PluginView) {
  return {
    id: v.id,
    name: v.row.name,
    version: v.row.version,
    sdkVersion: v.sdkVersion,
    valid: true,
    checksum: v.checksum,
    metadataState: v.row.metadataState,
    metadataFetchedAt: iso(v.row.metadataFetchedAt),
    metadata: maskMetadata(v.row.metadata),
    // A directory that turned invalid says so here; the version listed keeps serving.
    scanError: v.scanError,
    error: v.scanError ?? v.row.metadataError,
  }
}

// Secrets never leave the gateway: sealed values and `encrypted` fields show as MASK, auth as its method only.
function instanceJson(row: PluginInstanceRow, worker: WorkerInfo | undefined, view: PluginView | undefined) {
  return {
    orgId: row.orgId,
    pluginId: row.pluginId,
    enabled: row.enabled,
    config: maskConfig(row.config, view?.row.metadata?.configSchema ?? null),
    auth: row.authState ? { methodId: row.authState.methodId, configured: true } : null,
    runtimeState: row.runtimeState,
    sdkVersion: row.sdkVersion,
    lastError: row.lastError,
    lastStartedAt: iso(row.lastStartedAt),
    lastActivityAt: iso(row.lastActivityAt),
    restarts: row.restarts,
    worker: worker ? workerJson(worker) : null,
  }
}

export function workerJson(w: WorkerInfo) {
  return {
    orgId: w.orgId,
    pluginId: w.pluginId,
    gen: w.gen,
    state: w.state,
    sdkVersion: w.sdkVersion,
    pid: w.pid,
    port: w.port,
    startedAt: iso(w.startedAt),
    lastActivityAt: iso(w.lastActivityAt),
    inFlight: w.inFlight,
    tunnels: w.tunnels,
    replacing: w.replacing,
    lastError: w.lastError,
  }
}

export function adminRoutes(deps: AdminRouteDeps) {
  const { targets, instances, workers, registry, pool } = deps
  const app = new Hono<AppEnv>()
  const workerOf = (orgId: string, pluginId: string) => pool.list().find((w) => w.orgId === orgId && w.pluginId === pluginId)

  app.get('/plugins', (c) =>
    c.json({
      plugins: [
        ...registry.plugins().map(pluginJson),
        ...registry.invalidPlugins().map((p) => ({
          id: p.id,
          name: null,
          version: null,
          sdkVersion: null,
          valid: false,
          checksum: null,
          metadataState: null,
          metadataFetchedAt: null,
          metadata: null,
          scanError: p.error,
          error: p.error,
        })),
      ],
    }),
  )

  // Answers what this gateway's scan changed; the other gateways on the database follow on their own.
  app.post('/plugins/rescan', async (c) => c.json(await deps.catalog.rescan()))

  app.post('/plugins/:pluginId/restart', async (c) => {
    const { pluginId } = params(c, PluginParams)
    return c.json(await deps.catalog.restart(pluginId))
  })

  app.post('/plugins/:pluginId/refresh-metadata', async (c) => {
    const { pluginId } = params(c, PluginParams)
    return c.json(pluginJson(await workers.refreshMetadata(pluginId)))
  })

  app.get('/orgs/:orgId/plugins/:pluginId', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    const { view, instance } = await targets.target(orgId, pluginId, { requireEnabled: false })
    const stored = (await registry.storedInstance(orgId, pluginId)) ?? instance
    return c.json(instanceJson(stored, workerOf(orgId, pluginId), view))
  })

  app.put('/orgs/:orgId/plugins/:pluginId', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    const body = await jsonBody(c, InstanceBody)
    const row = await instances.updateInstance(orgId, pluginId, body)
    return c.json(instanceJson(row, workerOf(orgId, pluginId), registry.plugin(pluginId)))
  })

  app.put('/orgs/:orgId/plugins/:pluginId/auth', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    const body = await jsonBody(c, AuthBody)
    const row = await instances.setAuth(orgId, pluginId, body)
    return c.json(instanceJson(row, workerOf(orgId, pluginId), registry.plugin(pluginId)))
  })

  app.post('/orgs/:orgId/plugins/:pluginId/start', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    await workers.start(orgId, pluginId)
    const worker = workerOf(orgId, pluginId)
    return c.json({ worker: worker ? workerJson(worker) : null })
  })

  app.post('/orgs/:orgId/plugins/:pluginId/stop', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    return c.json({ stopped: await workers.stop(orgId, pluginId) })
  })

  app.get('/orgs/:orgId/plugins/:pluginId/mcp/tools', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    return c.json((await workers.listTools(orgId, pluginId)) as object)
  })

  app.post('/orgs/:orgId/plugins/:pluginId/mcp/call', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    const body = await jsonBody(c, ToolCallBody)
    return c.json((await workers.callTool(orgId, pluginId, body.toolName, body.arguments)) as object)
  })

  // In a cluster: every live gateway's workers, each tagged with its gatewayId (?scope=local: this one's).
  app.get('/workers', async (c) => {
    const local = pool.list().map(workerJson)
    const { cluster } = deps
    if (!cluster || c.req.query('scope') === 'local') return c.json({ workers: local, prewarmed: pool.prewarmed() })
    const peers = await cluster.peerWorkers()
    const tagged = (gatewayId: string, workers: readonly object[]) => workers.map((w) => ({ ...w, gatewayId }))
    return c.json({
      workers: [...tagged(cluster.gatewayId, local), ...peers.flatMap((p) => ('workers' in p ? tagged(p.gatewayId, p.workers) : []))],
      prewarmed: pool.prewarmed(),
      unreachable: peers.filter((p) => 'error' in p),
    })
  })

  return app
}
