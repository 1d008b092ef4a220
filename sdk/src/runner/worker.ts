// What a running worker is made of: the registry onInitialize fills, the per-org contexts, the
// Express-compatible request/response, and the HTTP surface of CONTRACT.md §3.
//
// Deliberately one module (main.ts loads it alongside the plugin): the runner is on the cold-start
// path and every ES module file costs about 1 ms to resolve, read and link (measured with
// scripts/bench-runner.ts). What only some plugins or only the control plane need (validate-auth,
// config-update, cron, MCP) lives in control.ts / mcp.ts / mcp-stdio.ts, imported on first use.
import { createServer, IncomingMessage, ServerResponse, STATUS_CODES, type Server } from 'node:http'
import type {
  AuthState,
  ConfigFieldDescriptor,
  ConfigFieldReference,
  CronJobOptions,
  HayAuthRuntimeAPI,
  HayConfigRuntimeAPI,
  HayLogger,
  HayMcpRuntimeAPI,
  HayOrg,
  HayPluginDefinition,
  HayRegisterAPI,
  HayRequest,
  HayResponse,
  HayStartContext,
  HayToolContext,
  McpTool,
  McpToolDefinition,
  PluginPage,
  RegisterUIAPI,
  RouteHandler,
  UIExtensionDescriptor,
} from '../types.js'
import type { Control } from './control.js'
import type { McpRuntime } from './mcp.js'

export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A control endpoint's status and JSON body (CONTRACT.md §3 shapes). */
export interface Reply {
  status: number
  body: unknown
}

// ---------------------------------------------------------------------------------------------
// Registry: what onInitialize declares. Stored as given, not validated: judging metadata is the
// gateway's job (invalid metadata is an error state there, CONTRACT.md §3), so a plugin with a bad
// declaration still runs and its /metadata shows the problem.
// ---------------------------------------------------------------------------------------------

export interface Registry {
  readonly register: HayRegisterAPI
  readonly configSchema: Record<string, ConfigFieldDescriptor>
  readonly routes: readonly CompiledRoute[]
  readonly tools: ReadonlyMap<string, McpToolDefinition>
  readonly crons: ReadonlyMap<string, CronJobOptions>
  /** The GET /metadata body, serialised on first use. */
  metadataJson(): string
}

export function createRegistry(): Registry {
  const configSchema: Record<string, ConfigFieldDescriptor> = {}
  const authMethods: Record<string, unknown>[] = []
  const uiExtensions: UIExtensionDescriptor[] = []
  const pages: PluginPage[] = []
  const routeDecls: { method: unknown; path: unknown }[] = []
  const routes: CompiledRoute[] = []
  const tools = new Map<string, McpToolDefinition>()
  const crons = new Map<string, CronJobOptions>()
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
      // A declaration the server cannot match (no method, no path) is visible in /metadata only.
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
      // Executed by Hay core from the declaration; nothing for the worker to serve.
    },
  }

  return {
    register,
    configSchema,
    routes,
    tools,
    crons,
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

// ---------------------------------------------------------------------------------------------
// ctx.config, ctx.auth, ctx.logger
// ---------------------------------------------------------------------------------------------

export interface ConfigRuntimeDeps {
  /** Read on every call, so a context captured in onStart sees POST /config-update. */
  values: () => Record<string, unknown>
  schema: Record<string, ConfigFieldDescriptor>
  envAllowList: ReadonlySet<string>
  env: NodeJS.ProcessEnv
  logger: HayLogger
}

/** Hay's resolution order: org value → env var named by the field, if allow-listed → default. */
export function createConfigRuntime(deps: ConfigRuntimeDeps): HayConfigRuntimeAPI {
  const resolveValue = (key: string): unknown => {
    const own = deps.values()[key]
    if (own !== undefined && own !== null) return own
    const field = deps.schema[key]
    if (!field) return undefined
    if (typeof field.env === 'string' && deps.envAllowList.has(field.env)) {
      const text = deps.env[field.env]
      if (text !== undefined) return fromEnv(text, field, key, deps.logger)
    }
    return field.default
  }
  return {
    get<T = unknown>(key: string): T {
      const value = resolveValue(key)
      if (value === undefined && deps.schema[key]?.required) throw new Error(`config field "${key}" is required but not configured`)
      return value as T
    },
    getOptional<T = unknown>(key: string): T | undefined {
      return resolveValue(key) as T | undefined
    },
    keys: () => Object.keys(deps.schema),
    toEnv(mapping) {
      const out: Record<string, string> = {}
      for (const [key, envName] of Object.entries(mapping)) {
        const value = resolveValue(key)
        if (value !== undefined && value !== null) out[envName] = typeof value === 'string' ? value : JSON.stringify(value)
      }
      return out
    },
  }
}

function fromEnv(text: string, field: ConfigFieldDescriptor, key: string, logger: HayLogger): unknown {
  switch (field.type) {
    case 'number': {
      const n = Number(text)
      if (Number.isNaN(n)) logger.warn(`config field "${key}": env value is not a number`)
      return Number.isNaN(n) ? undefined : n
    }
    case 'boolean':
      return ['true', '1', 'yes'].includes(text.trim().toLowerCase())
    case 'json':
      try {
        return JSON.parse(text)
      } catch {
        logger.warn(`config field "${key}": env value is not valid JSON`)
        return undefined
      }
    default:
      return text
  }
}

export function toAuthState(value: unknown): AuthState | null {
  if (!isRecord(value)) return null
  const { methodId, credentials } = value
  if (typeof methodId !== 'string' || methodId === '' || !isRecord(credentials)) return null
  return { methodId, credentials }
}

export function createAuthRuntime(state: AuthState | null): HayAuthRuntimeAPI {
  return { get: () => (state ? { methodId: state.methodId, credentials: { ...state.credentials } } : null) }
}

/** One line per entry; info/debug to stdout, warn/error to stderr, as Hay's logger. */
export function createLogger(tags: { pluginId: string; orgId: string }, debug: boolean): HayLogger {
  const prefix = `[org:${tags.orgId}][plugin:${tags.pluginId}]`
  const line = (level: string, message: string, meta: unknown) =>
    `${new Date().toISOString()} ${prefix} ${level}: ${message}${meta === undefined ? '' : ` ${formatMeta(meta)}`}\n`
  return {
    debug: (message, meta) => void (debug && process.stdout.write(line('DEBUG', message, meta))),
    info: (message, meta) => void process.stdout.write(line('INFO', message, meta)),
    warn: (message, meta) => void process.stderr.write(line('WARN', message, meta)),
    error: (message, meta) => void process.stderr.write(line('ERROR', message, meta)),
  }
}

function formatMeta(meta: unknown): string {
  if (meta instanceof Error) return JSON.stringify({ name: meta.name, message: meta.message, stack: meta.stack })
  try {
    return JSON.stringify(meta) ?? String(meta)
  } catch {
    return String(meta) // circular or BigInt: the plain rendering will do
  }
}

// ---------------------------------------------------------------------------------------------
// Request and response: the Express subset route handlers get (Hay passes Express req/res). These
// are node:http's own classes, extended the way Express extends them, so streaming still works.
// ---------------------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0)

export class WorkerRequest extends IncomingMessage {
  path = '/'
  originalUrl = ''
  query: Record<string, string | string[]> = {}
  params: Record<string, string> = {}
  body: unknown = {}
  rawBody: Buffer = EMPTY

  get(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()]
    return Array.isArray(value) ? value.join(', ') : value
  }

  header(name: string): string | undefined {
    return this.get(name)
  }
}

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  html: 'text/html; charset=utf-8',
  bin: 'application/octet-stream',
}

export class WorkerResponse extends ServerResponse<WorkerRequest> {
  /**
   * A second answer throws ERR_HTTP_HEADERS_SENT, as Express does; left to node:http, ending a
   * finished response emits an 'error' event, which nothing handles by default.
   */
  private assertUnanswered(): void {
    if (this.writableEnded) {
      throw Object.assign(new Error('cannot answer twice: the response was already sent'), { code: 'ERR_HTTP_HEADERS_SENT' })
    }
  }

  status(code: number): this {
    this.statusCode = code
    return this
  }

  set(name: string, value: string | number | readonly string[]): this {
    return this.setHeader(name, value)
  }

  type(contentType: string): this {
    return this.setHeader('content-type', CONTENT_TYPES[contentType] ?? contentType)
  }

  json(body: unknown): this {
    this.assertUnanswered()
    if (!this.hasHeader('content-type')) this.type('json')
    return this.end(JSON.stringify(body) ?? '')
  }

  send(body?: string | Buffer | Uint8Array | object | number | boolean | null): this {
    this.assertUnanswered()
    if (body === undefined || body === null) return this.end()
    if (typeof body === 'string') {
      if (!this.hasHeader('content-type')) this.type('html')
      return this.end(body)
    }
    if (body instanceof Uint8Array) {
      if (!this.hasHeader('content-type')) this.type('bin')
      return this.end(body)
    }
    return this.json(body)
  }

  sendStatus(code: number): this {
    this.assertUnanswered()
    this.statusCode = code
    return this.type('text').end(STATUS_CODES[code] ?? String(code))
  }

  redirect(statusOrUrl: number | string, url?: string): this {
    this.assertUnanswered()
    const [status, location] = typeof statusOrUrl === 'number' ? [statusOrUrl, url ?? '/'] : [302, statusOrUrl]
    this.statusCode = status
    return this.setHeader('location', location).end()
  }
}

// Routes: Express 4 semantics for the common cases (`:name`, `:name?`, `*`, case-insensitive,
// optional trailing slash); HEAD is served by GET routes, as in Express.

export interface CompiledRoute {
  method: string
  pattern: RegExp
  keys: string[]
  handler: RouteHandler
}

const ROUTE_TOKEN = /(\/)?:([A-Za-z0-9_]+)(\?)?|\*|[.+^${}()|[\]\\]/g

export function compileRoute(method: string, path: string, handler: RouteHandler): CompiledRoute {
  const keys: string[] = []
  let wildcards = 0
  const source = path.replace(ROUTE_TOKEN, (token, slash: string | undefined, name: string | undefined, optional: string | undefined) => {
    if (name !== undefined) {
      keys.push(name)
      const segment = `${slash ? '\\/' : ''}([^\\/]+?)`
      return optional ? `(?:${segment})?` : segment
    }
    if (token === '*') {
      keys.push(String(wildcards++))
      return '(.*)'
    }
    return `\\${token}`
  })
  const trimmed = source.endsWith('\\/') ? source.slice(0, -2) : source
  return { method, pattern: new RegExp(`^${trimmed}\\/?$`, 'i'), keys, handler }
}

function matchRoute(routes: readonly CompiledRoute[], method: string, path: string) {
  const wanted = method === 'HEAD' ? 'GET' : method
  for (const route of routes) {
    if (route.method !== wanted && route.method !== method) continue
    const m = route.pattern.exec(path)
    if (!m) continue
    const params: Record<string, string> = {}
    route.keys.forEach((key, i) => {
      const raw = m[i + 1]
      if (raw !== undefined) params[key] = decodeParam(raw)
    })
    return { route, params }
  }
  return undefined
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw // malformed escapes are handed over as sent
  }
}

function parseQuery(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {}
  for (const [key, value] of new URLSearchParams(search)) {
    const prev = query[key]
    query[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
  }
  return query
}

// Bodies: buffered whole (routes get the exact bytes), bounded by maxBodyBytes.

class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: 'INVALID_JSON' | 'PAYLOAD_TOO_LARGE',
    message: string,
  ) {
    super(message)
  }
}

function readBody(req: WorkerRequest, maxBytes: number): Promise<Buffer> {
  const length = req.headers['content-length']
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) return Promise.resolve(EMPTY)
  if (length !== undefined && Number(length) > maxBytes) {
    req.resume() // drain it, so the client reads the 413 instead of a reset while still sending
    return Promise.reject(tooLarge(maxBytes))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBytes) return void chunks.push(chunk)
      cleanup()
      req.resume() // drain the rest; the reply then closes the connection
      reject(tooLarge(maxBytes))
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const cleanup = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError)
    }
    req.on('data', onData).on('end', onEnd).on('error', onError)
  })
}

const tooLarge = (maxBytes: number) => new BodyError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${maxBytes} bytes`)

/** Express's parsers, reduced: JSON (application/json, +json), urlencoded forms, else `{}`. */
function parseBody(contentType: string | undefined, raw: Buffer): unknown {
  if (contentType === undefined) return {}
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? ''
  if (type === 'application/json' || type.endsWith('+json')) return parseJson(raw)
  if (type === 'application/x-www-form-urlencoded') return parseQuery(raw.toString('utf8'))
  return {}
}

/** An empty body is `{}`; malformed JSON is a 400. */
function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return {}
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw new BodyError(400, 'INVALID_JSON', `malformed JSON body: ${messageOf(err)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// The worker: per-org contexts, hooks behind the control endpoints, and the HTTP server.
// ---------------------------------------------------------------------------------------------

export interface OrgData {
  org: HayOrg
  config: Record<string, unknown>
  auth: AuthState | null
}

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
  readonly server: Server<typeof WorkerRequest, typeof WorkerResponse>
  /** onDisable, then MCP servers stopped; runs once however many callers (POST /disable, shutdown). */
  disable(): Promise<Reply>
}

/** The state control.ts works on; passed in, so the lazily loaded module holds none of its own. */
export interface WorkerState {
  readonly deps: WorkerDeps
  readonly toolCtx: HayToolContext
  config(): Record<string, unknown>
  setConfig(config: Record<string, unknown>): void
  configOver(values: () => Record<string, unknown>): HayConfigRuntimeAPI
  mcp(): Promise<McpRuntime>
}

export function createWorker(deps: WorkerDeps): Worker {
  const { definition: plugin, registry, logger } = deps
  const { org } = deps.orgData
  let liveConfig = deps.orgData.config
  let mcpRuntime: Promise<McpRuntime> | undefined
  let control: Promise<Control> | undefined
  let disabling: Promise<Reply> | undefined

  const configOver = (values: () => Record<string, unknown>) =>
    createConfigRuntime({ values, schema: registry.configSchema, envAllowList: deps.envAllowList, env: deps.env, logger })
  const toolCtx: HayToolContext = { org, config: configOver(() => liveConfig), auth: createAuthRuntime(deps.orgData.auth), logger }

  // MCP is loaded on first use: most plugins never touch it.
  const mcp = (): Promise<McpRuntime> =>
    (mcpRuntime ??= import('./mcp.js').then((m) =>
      m.createMcpRuntime({ pluginDir: deps.pluginDir, tools: registry.tools, toolCtx, logger }),
    ))
  const mcpApi: HayMcpRuntimeAPI = {
    startLocal: async (id, initializer) => (await mcp()).api.startLocal(id, initializer),
    startLocalStdio: async (options) => (await mcp()).api.startLocalStdio(options),
    startExternal: async (options) => (await mcp()).api.startExternal(options),
  }

  const state: WorkerState = {
    deps,
    toolCtx,
    config: () => liveConfig,
    setConfig: (config) => {
      liveConfig = config
    },
    configOver,
    mcp,
  }
  const loadControl = () => (control ??= import('./control.js').then((m) => m.createControl(state)))

  const disable = () =>
    (disabling ??= (async () => {
      let reply: Reply = { status: 200, body: { success: true } }
      try {
        await plugin.onDisable?.({ org, logger })
      } catch (err) {
        reply = { status: 500, body: { success: false, error: messageOf(err) } }
      }
      if (mcpRuntime) await (await mcpRuntime).stopAll()
      return reply
    })())

  const healthJson = JSON.stringify({ status: 'healthy', pid: process.pid, orgId: org.id })

  const controlFor = (method: string, path: string): ((body: unknown) => Promise<Reply>) | undefined => {
    if (method === 'POST') {
      if (path === '/disable') return disable
      if (path === '/validate-auth') return async (body) => (await loadControl()).validateAuth(body)
      if (path === '/config-update') return async (body) => (await loadControl()).configUpdate(body)
      if (path === '/mcp/call-tool') return async (body) => (await loadControl()).callTool(body)
      if (path.startsWith('/cron/')) return async () => (await loadControl()).runCron(path.slice('/cron/'.length))
    } else if (method === 'GET' && path === '/mcp/list-tools') {
      return async () => (await loadControl()).listTools()
    }
    return undefined
  }

  // Control endpoints come first and shadow a plugin route with the same method and path, as in Hay.
  const handle = async (req: WorkerRequest, res: WorkerResponse): Promise<void> => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const method = req.method ?? 'GET'

    if (method === 'GET' && path === '/health') return sendJson(res, 200, healthJson)
    if (method === 'GET' && path === '/metadata') return sendJson(res, 200, registry.metadataJson())
    const control = controlFor(method, path)
    if (control) {
      const raw = await readBody(req, deps.maxBodyBytes)
      // Control bodies are JSON whatever the content-type (CONTRACT.md §3); an unparsable one
      // reaches the endpoint as "no body", so it answers a 400 in its own shape.
      let body: unknown
      try {
        body = parseJson(raw)
      } catch {
        body = undefined
      }
      const reply = await control(body)
      return sendJson(res, reply.status, JSON.stringify(reply.body))
    }

    const match = matchRoute(registry.routes, method, path)
    if (!match) return sendError(res, 404, 'NOT_FOUND', `no route for ${method} ${path}`)
    req.path = path
    req.originalUrl = url
    req.params = match.params
    if (q !== -1) req.query = parseQuery(url.slice(q + 1))
    req.rawBody = await readBody(req, deps.maxBodyBytes)
    req.body = parseBody(req.headers['content-type'], req.rawBody)
    // The classes carry every member of the public views; the cast only narrows what authors see.
    await match.route.handler(req as unknown as HayRequest, res as unknown as HayResponse)
  }

  const server = createServer<typeof WorkerRequest, typeof WorkerResponse>(
    { IncomingMessage: WorkerRequest, ServerResponse: WorkerResponse },
    (req, res) => {
      // A plugin writing to a finished response (res.end twice) must cost it that write, not the worker.
      res.on('error', (err) => logger.error(`${req.method} ${req.url}: response error`, err))
      handle(req, res).catch((err: unknown) => {
        if (err instanceof BodyError) {
          if (err.status === 413) res.setHeader('connection', 'close')
          return sendError(res, err.status, err.code, err.message)
        }
        logger.error(`${req.method} ${req.url} failed`, err)
        if (res.writableEnded) return // answered already: the failure is only the handler's own
        // Once bytes are on the wire there is no status left to change: cut the response short.
        if (res.headersSent) return void res.destroy()
        // Plugin routes face the public through the gateway: the details stay in the worker's log.
        sendError(res, 500, 'INTERNAL', 'internal error')
      })
    },
  )

  return { startCtx: { org, config: toolCtx.config, auth: toolCtx.auth, mcp: mcpApi, logger }, server, disable }
}

function sendJson(res: WorkerResponse, status: number, json: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) })
  res.end(json)
}

function sendError(res: WorkerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) return void res.end()
  sendJson(res, status, JSON.stringify({ error: { code, message } }))
}
