// One organization's worker: its live config, the contexts its hooks, routes and tools get, its
// control endpoints and its HTTP server.
import type { HayLogger, HayMcpRuntimeAPI, HayPluginDefinition, HayStartContext, HayToolContext } from '../types.js'
import { createAuthRuntime, createConfigRuntime } from './contexts.js'
import { createControl, type Reply } from './control.js'
import { messageOf } from './guards.js'
import { createWorkerServer, type WorkerServer } from './http/server.js'
import { createMcpRuntime, type McpRuntime } from './mcp/runtime.js'
import type { OrgData } from './org-env.js'
import type { Registry } from './registry.js'

export interface WorkerDeps {
  definition: HayPluginDefinition
  registry: Registry
  orgData: OrgData
  pluginDir: string
  envAllowList: ReadonlySet<string>
  env: NodeJS.ProcessEnv
  logger: HayLogger
  maxBodyBytes: number
}

export interface Worker {
  readonly startCtx: HayStartContext
  readonly server: WorkerServer
  /** onDisable, then MCP servers stopped; runs once however many callers (POST /disable, shutdown). */
  disable(): Promise<Reply>
}

export function createWorker(deps: WorkerDeps): Worker {
  const { definition: plugin, registry, logger } = deps
  const { org } = deps.orgData
  let liveConfig = deps.orgData.config
  let mcpRuntime: McpRuntime | undefined
  let disabling: Promise<Reply> | undefined

  const configOver = (values: () => Record<string, unknown>) =>
    createConfigRuntime({ values, schema: registry.configSchema, envAllowList: deps.envAllowList, env: deps.env, logger })
  const toolCtx: HayToolContext = { org, config: configOver(() => liveConfig), auth: createAuthRuntime(deps.orgData.auth), logger }
  const mcp = () => (mcpRuntime ??= createMcpRuntime({ pluginDir: deps.pluginDir, tools: registry.tools, toolCtx, logger }))
  // Created on first use: most plugins never touch MCP.
  const mcpApi: HayMcpRuntimeAPI = {
    startLocal: (id, initializer) => mcp().api.startLocal(id, initializer),
    startLocalStdio: (options) => mcp().api.startLocalStdio(options),
    startExternal: (options) => mcp().api.startExternal(options),
  }

  const disable = () =>
    (disabling ??= (async () => {
      let reply: Reply = { status: 200, body: { success: true } }
      try {
        await plugin.onDisable?.({ org, logger })
      } catch (err) {
        reply = { status: 500, body: { success: false, error: messageOf(err) } }
      }
      await mcpRuntime?.stopAll()
      return reply
    })())

  const control = createControl({
    plugin,
    crons: registry.crons,
    org,
    logger,
    toolCtx,
    config: () => liveConfig,
    setConfig: (config) => {
      liveConfig = config
    },
    configOver,
    mcp,
    disable,
  })

  const server = createWorkerServer({
    healthJson: JSON.stringify({ status: 'healthy', pid: process.pid, orgId: org.id }),
    metadataJson: registry.metadataJson,
    control,
    routes: registry.routes,
    maxBodyBytes: deps.maxBodyBytes,
    logger,
  })

  return { startCtx: { org, config: toolCtx.config, auth: toolCtx.auth, mcp: mcpApi, logger }, server, disable }
}
