// What onInitialize declares. Stored as given, not validated: judging metadata is the gateway's job
// (invalid metadata is an error state there, CONTRACT.md §3), so a plugin with a bad declaration
// still runs and its /metadata shows the problem.
import { createRouteTable, parseRoutePattern, type RouteTable } from '../../../src/contract/route-pattern.js'
import type {
  ConfigFieldDescriptor,
  ConfigFieldReference,
  CronJobOptions,
  HayLogger,
  HayRegisterAPI,
  McpTool,
  McpToolDefinition,
  PluginPage,
  RegisterUIAPI,
  RouteHandler,
  UIExtensionDescriptor,
} from '../types.js'
import { isRecord } from './guards.js'

export interface Registry {
  readonly register: HayRegisterAPI
  readonly configSchema: Record<string, ConfigFieldDescriptor>
  readonly tools: ReadonlyMap<string, McpToolDefinition>
  readonly crons: ReadonlyMap<string, CronJobOptions>
  /** The declared routes the runner serves, compiled on first use (declarations are over by then). */
  routes(): RouteTable<RouteHandler>
  /** The GET /metadata body, serialised on first use. */
  metadataJson(): string
}

export function createRegistry(logger: HayLogger): Registry {
  const configSchema: Record<string, ConfigFieldDescriptor> = {}
  const authMethods: Record<string, unknown>[] = []
  const uiExtensions: UIExtensionDescriptor[] = []
  const pages: PluginPage[] = []
  const routeDecls: { method: unknown; path: unknown }[] = []
  const served: { method: string; path: string; value: RouteHandler }[] = []
  const tools = new Map<string, McpToolDefinition>()
  const crons = new Map<string, CronJobOptions>()
  let routes: RouteTable<RouteHandler> | undefined
  let metadata: string | undefined

  // Callable like Hay's legacy register.ui({slot, component}), with .extension() and .page().
  const ui = ((extension: UIExtensionDescriptor) => void uiExtensions.push(extension)) as RegisterUIAPI
  ui.extension = (extension) => void uiExtensions.push(extension)
  ui.page = (page) => void pages.push(page)

  const register: HayRegisterAPI = {
    config(schema) {
      Object.assign(configSchema, schema) // several calls merge, as in Hay
    },
    auth: {
      apiKey: ({ id, label, configField }) => void authMethods.push({ type: 'apiKey', id, label, configField }),
      oauth2: ({ clientId, clientSecret, scopes, ...rest }) =>
        void authMethods.push({
          ...rest,
          type: 'oauth2',
          scopes: scopes ?? [],
          clientId: fieldName(clientId),
          clientSecret: fieldName(clientSecret),
        }),
    },
    route(method: unknown, path: unknown, handler: RouteHandler) {
      const decl = { method: typeof method === 'string' ? method.toUpperCase() : method, path }
      routeDecls.push(decl)
      // A declaration the server cannot match is visible in /metadata only (the gateway refuses it).
      if (typeof decl.method !== 'string' || typeof path !== 'string') return
      const pattern = parseRoutePattern(path)
      if (pattern.ok) served.push({ method: decl.method, path, value: handler })
      else logger.warn(`route ${decl.method} ${path} is not served: ${pattern.reason}`)
    },
    ui,
    mcp: {
      tool(tool) {
        tools.set(tool.name, tool as unknown as McpToolDefinition)
      },
    },
    cron(options) {
      crons.set(options.name, options)
    },
    webhookRouting() {
      // Executed by Hay core from the declaration; nothing for the worker to serve.
    },
  }

  return {
    register,
    configSchema,
    tools,
    crons,
    routes() {
      routes ??= createRouteTable(served)
      return routes
    },
    metadataJson() {
      metadata ??= JSON.stringify({
        configSchema,
        authMethods,
        uiExtensions,
        pages,
        routes: routeDecls,
        mcp: { local: [...tools.values()].map(describeTool), external: [] },
      })
      return metadata
    },
  }
}

const fieldName = (ref: ConfigFieldReference | string | undefined): string | undefined => (typeof ref === 'string' ? ref : ref?.name)

/** A tool as /mcp/list-tools shows it; MCP servers spell the schema `inputSchema`, Hay `input_schema`. */
export function describeTool(tool: { name: string; description?: unknown; input_schema?: unknown; inputSchema?: unknown }): McpTool {
  const schema = tool.input_schema ?? tool.inputSchema
  return {
    name: tool.name,
    description: typeof tool.description === 'string' ? tool.description : '',
    input_schema: isRecord(schema) ? schema : { type: 'object', properties: {} },
  }
}
