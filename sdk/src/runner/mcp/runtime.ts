import type {
  ExternalMcpOptions,
  HayLogger,
  HayMcpRuntimeAPI,
  HayToolContext,
  McpServerInstance,
  McpTool,
  McpToolDefinition,
} from '../../types.js'
import { isRecord, messageOf } from '../guards.js'
import { describeTool } from '../registry.js'
import { startStdioServer } from './stdio.js'

type McpServer = { kind: 'local'; id: string; instance: McpServerInstance } | { kind: 'external'; id: string; options: ExternalMcpOptions }

export type ToolCallResult = { found: false } | { found: true; result: unknown }

export interface McpRuntime {
  /** `ctx.mcp` for onStart (Hay's API). */
  readonly api: HayMcpRuntimeAPI
  listTools(): Promise<McpTool[]>
  callTool(name: string, args: Record<string, unknown>): Promise<ToolCallResult>
  stopAll(): Promise<void>
}

export interface McpRuntimeDeps {
  pluginDir: string
  /** Tools the plugin registered itself (`ctx.register.mcp.tool`); they come first. */
  tools: ReadonlyMap<string, McpToolDefinition>
  toolCtx: HayToolContext
  logger: HayLogger
}

/**
 * ctx.mcp and the /mcp endpoints: the plugin's own tools plus the MCP servers onStart started (Hay's
 * startLocal, startLocalStdio, startExternal).
 */
export function createMcpRuntime(deps: McpRuntimeDeps): McpRuntime {
  const servers = new Map<string, McpServer>()

  const add = (server: McpServer) => {
    if (servers.has(server.id)) throw new Error(`MCP server "${server.id}" is already running`)
    servers.set(server.id, server)
  }

  const serverTools = async (server: McpServer): Promise<McpTool[]> => {
    const raw =
      server.kind === 'local'
        ? ((await server.instance.listTools?.()) ?? [])
        : toolsFrom(await rpc(server.options, 'tools/list', {}, 10_000))
    return raw.filter(isNamed).map(describeTool)
  }

  return {
    api: {
      async startLocal(id, initializer) {
        const instance = await initializer({ config: deps.toolCtx.config, auth: deps.toolCtx.auth, logger: deps.logger })
        if (!isRecord(instance)) throw new Error(`MCP server "${id}": initializer must return an object`)
        add({ kind: 'local', id, instance })
      },
      async startLocalStdio(options) {
        add({ kind: 'local', id: options.id, instance: startStdioServer(options, deps.pluginDir, deps.logger) })
      },
      async startExternal(options) {
        add({ kind: 'external', id: options.id, options })
      },
    },

    async listTools() {
      const tools = [...deps.tools.values()].map(describeTool)
      for (const server of servers.values()) {
        try {
          tools.push(...(await serverTools(server)))
        } catch (err) {
          deps.logger.warn(`MCP server "${server.id}": listing tools failed`, { error: messageOf(err) })
        }
      }
      return tools
    },

    async callTool(name, args) {
      const own = deps.tools.get(name)
      if (own) return { found: true, result: await own.handler(args, deps.toolCtx) }
      for (const server of servers.values()) {
        let tools: McpTool[]
        try {
          tools = await serverTools(server)
        } catch (err) {
          deps.logger.warn(`MCP server "${server.id}": listing tools failed`, { error: messageOf(err) })
          continue
        }
        if (!tools.some((t) => t.name === name)) continue
        if (server.kind === 'external') {
          return { found: true, result: await rpc(server.options, 'tools/call', { name, arguments: args }, 30_000) }
        }
        if (!server.instance.callTool) throw new Error(`MCP server "${server.id}" cannot call tools`)
        return { found: true, result: await server.instance.callTool(name, args) }
      }
      return { found: false }
    },

    async stopAll() {
      const stopping = [...servers.values()].map(async (server) => {
        if (server.kind !== 'local') return
        try {
          await server.instance.stop?.()
        } catch (err) {
          deps.logger.warn(`MCP server "${server.id}": stop failed`, { error: messageOf(err) })
        }
      })
      servers.clear()
      await Promise.all(stopping)
    },
  }
}

const isNamed = (t: unknown): t is { name: string } => isRecord(t) && typeof t.name === 'string'

const toolsFrom = (result: unknown): unknown[] =>
  Array.isArray(result) ? result : isRecord(result) && Array.isArray(result.tools) ? result.tools : []

/** One JSON-RPC 2.0 call over HTTP POST, as Hay's runner talks to external MCP servers. */
async function rpc(options: ExternalMcpOptions, method: string, params: unknown, timeoutMs: number): Promise<unknown> {
  const res = await fetch(options.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.authHeaders },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(timeoutMs),
  })
  if (!res.ok) throw new Error(`external MCP server answered HTTP ${res.status}`)
  const body: unknown = await res.json()
  if (!isRecord(body)) throw new Error('external MCP server sent a non-object reply')
  if (body.error !== undefined) {
    const e = body.error
    throw new Error(`MCP RPC error: ${isRecord(e) && typeof e.message === 'string' ? e.message : JSON.stringify(e)}`)
  }
  return body.result
}
