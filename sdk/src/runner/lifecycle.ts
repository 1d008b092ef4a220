import type {
  AuthState,
  HayLogger,
  HayPluginDefinition,
  HayStartContext,
  HayToolContext,
} from '../types.js'
import { messageOf } from './errors.js'
import type { LoadedManifest } from './manifest.js'
import { isRecord } from './manifest.js'
import { createMcpRuntime, type McpRuntime } from './mcp.js'
import { createAuthRuntime, createConfigRuntime, toAuthState, type OrgData } from './org-runtime.js'
import type { Registry } from './registry.js'

/** A control endpoint's answer (CONTRACT.md §3 shapes). */
export interface Reply {
  status: number
  body: unknown
}

export interface Lifecycle {
  readonly startCtx: HayStartContext
  validateAuth(body: unknown): Promise<Reply>
  configUpdate(body: unknown): Promise<Reply>
  /** onDisable, then stop MCP servers; runs once however many callers (POST /disable, shutdown). */
  disable(): Promise<Reply>
  runCron(name: string): Promise<Reply>
  listTools(): Promise<Reply>
  callTool(body: unknown): Promise<Reply>
}

export interface LifecycleDeps {
  definition: HayPluginDefinition
  registry: Registry
  manifest: LoadedManifest
  pluginDir: string
  orgData: OrgData
  env: NodeJS.ProcessEnv
  logger: HayLogger
}

/** Per-org runtime: builds the hook contexts and runs the hooks behind the control endpoints. */
export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const { definition: plugin, registry, logger } = deps
  const org = deps.orgData.org
  let liveConfig = deps.orgData.config
  const liveAuth: AuthState | null = deps.orgData.auth

  const configOver = (values: () => Record<string, unknown>) =>
    createConfigRuntime({ values, schema: registry.configSchema, envAllowList: deps.manifest.envAllowList, env: deps.env, logger })

  const config = configOver(() => liveConfig)
  const auth = createAuthRuntime(() => liveAuth)
  const toolCtx: HayToolContext = { org, config, auth, logger }
  const mcp: McpRuntime = createMcpRuntime({ pluginDir: deps.pluginDir, tools: registry.tools, toolCtx, logger })
  let disabling: Promise<Reply> | undefined

  return {
    startCtx: { org, config, auth, mcp: mcp.api, logger },

    async validateAuth(body) {
      const authState = toAuthState(isRecord(body) ? body['authState'] : undefined)
      if (!isRecord(body) || !authState) {
        return { status: 400, body: { valid: false, error: 'authState must be {"methodId": string, "credentials": object}' } }
      }
      if (!plugin.onValidateAuth) return { status: 200, body: { valid: true } }
      // As in Hay: the hook sees stored config, overlaid with the submitted config and credentials.
      const merged = { ...liveConfig, ...(isRecord(body['config']) ? body['config'] : {}), ...authState.credentials }
      try {
        const valid = Boolean(
          await plugin.onValidateAuth({ org, config: configOver(() => merged), auth: createAuthRuntime(() => authState), logger }),
        )
        return { status: 200, body: { valid } }
      } catch (err) {
        // Throwing is how a plugin says "invalid, and here is why" (Hay treats a throw as invalid).
        return { status: 200, body: { valid: false, error: messageOf(err) } }
      }
    },

    async configUpdate(body) {
      const next = isRecord(body) ? body['config'] : undefined
      if (!isRecord(next)) return { status: 400, body: { success: false, error: 'config must be a JSON object' } }
      try {
        await plugin.onConfigUpdate?.({ org, config: configOver(() => next), logger })
      } catch (err) {
        return { status: 500, body: { success: false, error: messageOf(err) } }
      }
      liveConfig = next // only once the plugin accepted it; routes and tools read it from now on
      return { status: 200, body: { success: true } }
    },

    disable() {
      disabling ??= (async () => {
        let reply: Reply = { status: 200, body: { success: true } }
        try {
          await plugin.onDisable?.({ org, logger })
        } catch (err) {
          reply = { status: 500, body: { success: false, error: messageOf(err) } }
        }
        await mcp.stopAll()
        return reply
      })()
      return disabling
    },

    async runCron(name) {
      const job = registry.crons.get(name)
      if (!job) return { status: 404, body: { error: { code: 'NOT_FOUND', message: `no cron job named ${name}` } } }
      try {
        await job.handler(toolCtx)
        return { status: 200, body: { success: true } }
      } catch (err) {
        return { status: 500, body: { success: false, error: messageOf(err) } }
      }
    },

    async listTools() {
      return { status: 200, body: { tools: await mcp.listTools() } }
    },

    async callTool(body) {
      const toolName = isRecord(body) ? body['toolName'] : undefined
      if (typeof toolName !== 'string' || toolName === '') {
        return { status: 400, body: { error: { code: 'BAD_REQUEST', message: 'toolName must be a non-empty string' } } }
      }
      const args = isRecord(body) && isRecord(body['arguments']) ? body['arguments'] : {}
      try {
        const call = await mcp.callTool(toolName, args)
        if (!call.found) return { status: 404, body: { error: { code: 'TOOL_NOT_FOUND', message: `no tool named ${toolName}` } } }
        return { status: 200, body: call.result ?? null }
      } catch (err) {
        return { status: 500, body: { error: { code: 'TOOL_FAILED', message: messageOf(err) } } }
      }
    },
  }
}
