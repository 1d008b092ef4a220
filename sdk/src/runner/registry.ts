import type {
  ConfigFieldDescriptor,
  ConfigFieldReference,
  CronJobOptions,
  HayRegisterAPI,
  McpTool,
  McpToolDefinition,
  PluginPage,
  RegisterUIAPI,
  RouteHandler,
  UIExtensionDescriptor,
} from '../types.js'
import { compileRoute, type CompiledRoute } from './http.js'

export interface Registry {
  readonly register: HayRegisterAPI
  readonly configSchema: Record<string, ConfigFieldDescriptor>
  readonly routes: readonly CompiledRoute[]
  readonly tools: ReadonlyMap<string, McpToolDefinition>
  readonly crons: ReadonlyMap<string, CronJobOptions>
  /** The GET /metadata body (CONTRACT.md §3), serialised once. */
  metadataJson(): string
}

/**
 * Records what onInitialize declares. Declarations are stored as given, not validated: judging
 * metadata is the gateway's job (an invalid schema is a metadata error state there, CONTRACT.md
 * §3), so a plugin with a bad declaration still runs and its /metadata shows the problem.
 */
export function createRegistry(): Registry {
  const configSchema: Record<string, ConfigFieldDescriptor> = {}
  const authMethods: Record<string, unknown>[] = []
  const uiExtensions: UIExtensionDescriptor[] = []
  const pages: PluginPage[] = []
  const routeDecls: { method: unknown; path: unknown }[] = []
  const routes: CompiledRoute[] = []
  const tools = new Map<string, McpToolDefinition>()
  const crons = new Map<string, CronJobOptions>()
  let cached: string | undefined

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
      // A declaration the server cannot match (no method, no path) stays visible in /metadata only.
      if (typeof decl.method === 'string' && typeof path === 'string') routes.push(compileRoute(decl.method, path, handler))
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
      // Executed by Hay core, not the worker; nothing for the runner to serve.
    },
  }

  return {
    register,
    configSchema,
    routes,
    tools,
    crons,
    metadataJson() {
      cached ??= JSON.stringify({
        configSchema,
        authMethods,
        uiExtensions,
        pages,
        routes: routeDecls,
        mcp: { local: [...tools.values()].map(describeTool), external: [] },
      })
      return cached
    },
  }
}

export function describeTool(tool: { name: string; description?: unknown; input_schema?: unknown; inputSchema?: unknown }): McpTool {
  const schema = tool.input_schema ?? tool.inputSchema
  return {
    name: tool.name,
    description: typeof tool.description === 'string' ? tool.description : '',
    input_schema: typeof schema === 'object' && schema !== null ? (schema as McpTool['input_schema']) : { type: 'object', properties: {} },
  }
}

const fieldName = (ref: ConfigFieldReference | string | undefined): string | undefined =>
  typeof ref === 'string' ? ref : ref?.name
