// The control endpoints only the gateway's control plane calls (CONTRACT.md §3): validate-auth,
// config-update, cron, and MCP listing/calls. Imported on first use, off the cold-start path.
import { createAuthRuntime, isRecord, messageOf, toAuthState, type Reply, type WorkerState } from './worker.js'

export interface Control {
  validateAuth(body: unknown): Promise<Reply>
  configUpdate(body: unknown): Promise<Reply>
  runCron(name: string): Promise<Reply>
  listTools(): Promise<Reply>
  callTool(body: unknown): Promise<Reply>
}

export function createControl(state: WorkerState): Control {
  const { definition: plugin, registry, logger } = state.deps
  const { org } = state.toolCtx

  return {
    async validateAuth(body) {
      const authState = toAuthState(isRecord(body) ? body.authState : undefined)
      if (!isRecord(body) || !authState) {
        return { status: 400, body: { valid: false, error: 'authState must be {"methodId": string, "credentials": object}' } }
      }
      if (!plugin.onValidateAuth) return { status: 200, body: { valid: true } }
      // As in Hay: the hook sees the stored config overlaid with the submitted config and credentials.
      const merged = { ...state.config(), ...(isRecord(body.config) ? body.config : {}), ...authState.credentials }
      try {
        const valid = await plugin.onValidateAuth({
          org,
          config: state.configOver(() => merged),
          auth: createAuthRuntime(authState),
          logger,
        })
        return { status: 200, body: { valid: Boolean(valid) } }
      } catch (err) {
        // Throwing is how a plugin says "invalid, and here is why" (Hay also counts a throw as invalid).
        return { status: 200, body: { valid: false, error: messageOf(err) } }
      }
    },

    async configUpdate(body) {
      const next = isRecord(body) ? body.config : undefined
      if (!isRecord(next)) return { status: 400, body: { success: false, error: 'config must be a JSON object' } }
      try {
        await plugin.onConfigUpdate?.({ org, config: state.configOver(() => next), logger })
      } catch (err) {
        return { status: 500, body: { success: false, error: messageOf(err) } }
      }
      state.setConfig(next) // only once the plugin accepted it; routes and tools read it from now on
      return { status: 200, body: { success: true } }
    },

    async runCron(name) {
      const job = registry.crons.get(name)
      if (!job) return { status: 404, body: { error: { code: 'NOT_FOUND', message: `no cron job named ${name}` } } }
      try {
        await job.handler(state.toolCtx)
        return { status: 200, body: { success: true } }
      } catch (err) {
        return { status: 500, body: { success: false, error: messageOf(err) } }
      }
    },

    async listTools() {
      return { status: 200, body: { tools: await (await state.mcp()).listTools() } }
    },

    async callTool(body) {
      const toolName = isRecord(body) ? body.toolName : undefined
      if (typeof toolName !== 'string' || toolName === '') {
        return { status: 400, body: { error: { code: 'BAD_REQUEST', message: 'toolName must be a non-empty string' } } }
      }
      const args = isRecord(body) && isRecord(body.arguments) ? body.arguments : {}
      try {
        const call = await (await state.mcp()).callTool(toolName, args)
        if (!call.found) return { status: 404, body: { error: { code: 'TOOL_NOT_FOUND', message: `no tool named ${toolName}` } } }
        return { status: 200, body: call.result ?? null }
      } catch (err) {
        return { status: 500, body: { error: { code: 'TOOL_FAILED', message: messageOf(err) } } }
      }
    },
  }
}
