// The control endpoints the gateway's control plane calls (CONTRACT.md §3): disable, validate-auth,
// config-update, cron, and MCP listing and calls. Each answers a status and a JSON body.
import type { CronJobOptions, HayConfigRuntimeAPI, HayLogger, HayOrg, HayPluginDefinition, HayToolContext } from '../types.js'
import { createAuthRuntime } from './contexts.js'
import { isRecord, messageOf } from './guards.js'
import type { McpRuntime } from './mcp/runtime.js'
import { toAuthState } from './org-env.js'

export interface Reply {
  status: number
  body: unknown
}

/** One control endpoint: the parsed JSON body (undefined when there is none or it is not JSON) in, a reply out. */
export type ControlEndpoint = (body: unknown) => Promise<Reply>

export interface ControlDeps {
  plugin: HayPluginDefinition
  crons: ReadonlyMap<string, CronJobOptions>
  org: HayOrg
  logger: HayLogger
  toolCtx: HayToolContext
  config(): Record<string, unknown>
  setConfig(config: Record<string, unknown>): void
  configOver(values: () => Record<string, unknown>): HayConfigRuntimeAPI
  mcp(): McpRuntime
  disable(): Promise<Reply>
}

/** The control endpoint serving a method and path, if one does. */
export function createControl(deps: ControlDeps): (method: string, path: string) => ControlEndpoint | undefined {
  const { plugin, org, logger } = deps

  const validateAuth: ControlEndpoint = async (body) => {
    const authState = toAuthState(isRecord(body) ? body.authState : undefined)
    if (!isRecord(body) || !authState) {
      return { status: 400, body: { valid: false, error: 'authState must be {"methodId": string, "credentials": object}' } }
    }
    if (!plugin.onValidateAuth) return { status: 200, body: { valid: true } }
    // As in Hay: the hook sees the stored config overlaid with the submitted config and credentials.
    const merged = { ...deps.config(), ...(isRecord(body.config) ? body.config : {}), ...authState.credentials }
    try {
      const valid = await plugin.onValidateAuth({ org, config: deps.configOver(() => merged), auth: createAuthRuntime(authState), logger })
      return { status: 200, body: { valid: Boolean(valid) } }
    } catch (err) {
      // Throwing is how a plugin says "invalid, and here is why" (Hay also counts a throw as invalid).
      return { status: 200, body: { valid: false, error: messageOf(err) } }
    }
  }

  const configUpdate: ControlEndpoint = async (body) => {
    const next = isRecord(body) ? body.config : undefined
    if (!isRecord(next)) return { status: 400, body: { success: false, error: 'config must be a JSON object' } }
    try {
      await plugin.onConfigUpdate?.({ org, config: deps.configOver(() => next), logger })
    } catch (err) {
      return { status: 500, body: { success: false, error: messageOf(err) } }
    }
    deps.setConfig(next) // only once the plugin accepted it; routes and tools read it from now on
    return { status: 200, body: { success: true } }
  }

  const runCron = async (name: string): Promise<Reply> => {
    const job = deps.crons.get(name)
    if (!job) return { status: 404, body: { error: { code: 'NOT_FOUND', message: `no cron job named ${name}` } } }
    try {
      await job.handler(deps.toolCtx)
      return { status: 200, body: { success: true } }
    } catch (err) {
      return { status: 500, body: { success: false, error: messageOf(err) } }
    }
  }

  const listTools: ControlEndpoint = async () => ({ status: 200, body: { tools: await deps.mcp().listTools() } })

  const callTool: ControlEndpoint = async (body) => {
    const toolName = isRecord(body) ? body.toolName : undefined
    if (typeof toolName !== 'string' || toolName === '') {
      return { status: 400, body: { error: { code: 'BAD_REQUEST', message: 'toolName must be a non-empty string' } } }
    }
    const args = isRecord(body) && isRecord(body.arguments) ? body.arguments : {}
    try {
      const call = await deps.mcp().callTool(toolName, args)
      if (!call.found) return { status: 404, body: { error: { code: 'TOOL_NOT_FOUND', message: `no tool named ${toolName}` } } }
      return { status: 200, body: call.result ?? null }
    } catch (err) {
      return { status: 500, body: { error: { code: 'TOOL_FAILED', message: messageOf(err) } } }
    }
  }

  return (method, path) => {
    if (method === 'POST') {
      if (path === '/disable') return deps.disable
      if (path === '/validate-auth') return validateAuth
      if (path === '/config-update') return configUpdate
      if (path === '/mcp/call-tool') return callTool
      if (path.startsWith('/cron/')) return () => runCron(path.slice('/cron/'.length))
    } else if (method === 'GET' && path === '/mcp/list-tools') {
      return listTools
    }
    return undefined
  }
}
