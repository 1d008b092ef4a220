// The plugin author's API. Names and shapes mirror Hay's SDK v2 (@hay/plugin-sdk, types/*.ts) so a
// plugin written for Hay type-checks and runs here unchanged (CONTRACT.md §4). Type-only module:
// nothing here exists at runtime, so importing it costs the worker's cold start nothing.
import type { IncomingHttpHeaders } from 'node:http'

// ---------------------------------------------------------------------------------------------
// Plugin definition and hooks
// ---------------------------------------------------------------------------------------------

export interface HayPluginDefinition {
  /** Display name; defaults to the manifest's `displayName` when omitted. */
  name?: string
  /** Plugin-global, once per process: declare config, auth, routes, UI, MCP tools. */
  onInitialize?: (ctx: HayGlobalContext) => void | Promise<void>
  /** Per org, before the worker listens: read config/auth, start MCP servers. Throwing fails the start. */
  onStart?: (ctx: HayStartContext) => void | Promise<void>
  /** Return true when the credentials are valid; return false or throw (the message is reported) when not. */
  onValidateAuth?: (ctx: HayAuthValidationContext) => boolean | Promise<boolean>
  onConfigUpdate?: (ctx: HayConfigUpdateContext) => void | Promise<void>
  /** Runs at most once per process: on POST /disable, or on shutdown if /disable never came. */
  onDisable?: (ctx: HayDisableContext) => void | Promise<void>
  /** Hay core-only hook; typed for compatibility, never called by the runner. */
  onEnable?: (ctx: HayGlobalContext) => void | Promise<void>
}

export type HayPluginFactory = (ctx: HayGlobalContext) => HayPluginDefinition

// ---------------------------------------------------------------------------------------------
// Contexts
// ---------------------------------------------------------------------------------------------

export interface HayOrg {
  id: string
  name?: string
}

export interface HayGlobalContext {
  register: HayRegisterAPI
  config: HayConfigDescriptorAPI
  logger: HayLogger
}

export interface HayStartContext {
  org: HayOrg
  config: HayConfigRuntimeAPI
  auth: HayAuthRuntimeAPI
  mcp: HayMcpRuntimeAPI
  logger: HayLogger
}

export interface HayAuthValidationContext {
  org: HayOrg
  config: HayConfigRuntimeAPI
  auth: HayAuthRuntimeAPI
  logger: HayLogger
}

export interface HayConfigUpdateContext {
  org: HayOrg
  config: HayConfigRuntimeAPI
  logger: HayLogger
}

export interface HayDisableContext {
  org: HayOrg
  logger: HayLogger
}

/** What an MCP tool handler receives besides its arguments. */
export interface HayToolContext {
  org: HayOrg
  config: HayConfigRuntimeAPI
  auth: HayAuthRuntimeAPI
  logger: HayLogger
}

export interface HayLogger {
  debug(message: string, meta?: unknown): void
  info(message: string, meta?: unknown): void
  warn(message: string, meta?: unknown): void
  error(message: string, meta?: unknown): void
}

// ---------------------------------------------------------------------------------------------
// Registration (onInitialize)
// ---------------------------------------------------------------------------------------------

export interface HayRegisterAPI {
  config(schema: Record<string, ConfigFieldDescriptor>): void
  auth: RegisterAuthAPI
  route(method: HttpMethod, path: string, handler: RouteHandler): void
  ui: RegisterUIAPI
  mcp: RegisterMcpAPI
  /** Hay's core-scheduled jobs; the runner serves them at POST /cron/:name. */
  cron(options: CronJobOptions): void
  /** Hay's shared-webhook routing declaration: plain data for the host; the runner only records it. */
  webhookRouting(descriptor: Record<string, unknown>): void
}

export type ConfigFieldType = 'string' | 'number' | 'boolean' | 'json'

export interface ConfigFieldDescriptor<T = unknown> {
  type: ConfigFieldType
  label?: string
  description?: string
  placeholder?: string
  required?: boolean
  /** Host env var fallback; it must be listed in the manifest's `hay-plugin.env` allow-list. */
  env?: string
  /** Encrypted at rest and masked by the host. */
  encrypted?: boolean
  default?: T
  options?: Array<{ label: string; value: string | number }>
}

export interface ConfigFieldReference {
  name: string
}

export interface HayConfigDescriptorAPI {
  /** A reference to a config field, for declarations such as OAuth2 client id/secret. */
  field(name: string): ConfigFieldReference
}

export interface RegisterAuthAPI {
  apiKey(options: ApiKeyAuthOptions): void
  oauth2(options: OAuth2AuthOptions): void
}

export interface ApiKeyAuthOptions {
  id: string
  label: string
  configField: string
}

export interface OAuth2AuthOptions {
  id: string
  label: string
  authorizationUrl: string
  tokenUrl: string
  scopes?: string[]
  /** `ctx.config.field('clientId')` (Hay) or the field name itself. */
  clientId: ConfigFieldReference | string
  clientSecret: ConfigFieldReference | string
  [extra: string]: unknown
}

export interface UIExtensionDescriptor {
  slot: string
  component: string
  [extra: string]: unknown
}

export interface PluginPage {
  id: string
  title: string
  component: string
  icon?: string
  slot?: 'standalone' | 'after-settings' | 'before-settings'
  requiresSetup?: boolean
}

/** Callable like Hay's legacy `register.ui({slot, component})`, plus `.extension()` and `.page()`. */
export interface RegisterUIAPI {
  (extension: UIExtensionDescriptor): void
  extension(extension: UIExtensionDescriptor): void
  page(page: PluginPage): void
}

export interface CronJobOptions {
  name: string
  schedule: string
  handler: (ctx: HayToolContext) => void | Promise<void>
  retryPolicy?: { maxRetries?: number; backoff?: 'fixed' | 'exponential' }
}

// ---------------------------------------------------------------------------------------------
// HTTP routes (an Express-compatible subset)
// ---------------------------------------------------------------------------------------------

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** A parsed query string or urlencoded form, as Express's qs gives it (its `ParsedQs`). */
export interface HayQuery {
  [key: string]: undefined | string | string[] | HayQuery | HayQuery[]
}

export interface HayRequest {
  readonly method: string
  /** Path without the query string, as Express's `req.path`. */
  readonly path: string
  /** Path and query string as received. */
  readonly url: string
  readonly originalUrl: string
  /** Always `''`: routes are mounted at the root. */
  readonly baseUrl: string
  /** Lower-cased header names, as node:http delivers them. */
  readonly headers: IncomingHttpHeaders
  /** Query string, as Express's extended parser (qs) gives it: `?a=1&a=2`, `?a[]=1` and `?a[0]=1` are arrays, `?a[b]=1` is `{ a: { b: '1' } }`. */
  readonly query: HayQuery
  /** `:name` segments of the matched route, URI-decoded. */
  readonly params: Record<string, string>
  /** Parsed JSON (content-type application/json or +json), an object for urlencoded forms (nested as `query` is), else `{}`. */
  readonly body: unknown
  /** The exact request bytes, for signature checks. Empty when the request had no body. */
  readonly rawBody: Buffer
  /** Case-insensitive header lookup (Express `req.get`). */
  get(name: string): string | undefined
  header(name: string): string | undefined
  /** The peer's address, as Express gives it without 'trust proxy' (through the gateway: the gateway's). */
  readonly ip: string | undefined
  /** Always `[]`: forwarding headers are not trusted, as in Express by default. */
  readonly ips: string[]
  /** The Host header without its port. */
  readonly hostname: string | undefined
  readonly protocol: 'http' | 'https'
  readonly secure: boolean
  /** `X-Requested-With: XMLHttpRequest`. */
  readonly xhr: boolean
}

export type HayHeaderValue = string | number | readonly string[]

export interface HayResponse {
  statusCode: number
  readonly headersSent: boolean
  status(code: number): this
  /** Express's per-response scratch space. */
  locals: Record<string, unknown>
  setHeader(name: string, value: HayHeaderValue): this
  getHeader(name: string): number | string | string[] | undefined
  /** Express `res.set`/`res.header`: one header or an object of them; a text or JSON content-type gets `charset=utf-8`. */
  set(field: string, value: HayHeaderValue): this
  set(fields: Record<string, HayHeaderValue>): this
  header(field: string, value: HayHeaderValue): this
  header(fields: Record<string, HayHeaderValue>): this
  /** Express `res.get`. */
  get(name: string): number | string | string[] | undefined
  /** Adds a value to a header. */
  append(name: string, value: string | readonly string[]): this
  /** An extension (`json`, `.png`; unknown ones are application/octet-stream) or a MIME type. */
  type(contentType: string): this
  contentType(contentType: string): this
  /** Sets Location, escaped as Express does; `back` is the Referer, else `/`. */
  location(url: string): this
  json(body: unknown): this
  /** string → text/html unless set (utf-8 either way); Buffer → application/octet-stream unless set; object → JSON; no body on a 204 or 304. */
  send(body?: string | Buffer | Uint8Array | object | number | boolean | null): this
  sendStatus(code: number): this
  /** 302 unless a status is given; the URL as `location()` sets it. */
  redirect(url: string): this
  redirect(status: number, url: string): this
  write(chunk: string | Uint8Array): boolean
  end(chunk?: string | Uint8Array): this
}

export type RouteHandler = (req: HayRequest, res: HayResponse) => void | Promise<void>

// ---------------------------------------------------------------------------------------------
// Runtime config and auth
// ---------------------------------------------------------------------------------------------

export interface HayConfigRuntimeAPI {
  /** Org value → allow-listed env fallback → default. Throws when a required field resolves to nothing. */
  get<T = unknown>(key: string): T
  getOptional<T = unknown>(key: string): T | undefined
  /** Registered field names. */
  keys(): string[]
  /** Maps config fields to env var names for child processes; unset fields are omitted. */
  toEnv(mapping: Record<string, string>): Record<string, string>
}

export interface AuthState {
  methodId: string
  credentials: Record<string, unknown>
}

export interface HayAuthRuntimeAPI {
  get(): AuthState | null
}

// ---------------------------------------------------------------------------------------------
// MCP
// ---------------------------------------------------------------------------------------------

/** JSON Schema for a tool's arguments. */
export type JsonSchema = Record<string, unknown>

/** A tool served by the plugin itself (`ctx.register.mcp.tool`). */
export interface McpToolDefinition<Args = Record<string, unknown>> {
  name: string
  description: string
  input_schema: JsonSchema
  handler: (args: Args, ctx: HayToolContext) => unknown
}

export interface RegisterMcpAPI {
  tool<Args = Record<string, unknown>>(tool: McpToolDefinition<Args>): void
}

/** Tool descriptor as /mcp/list-tools returns it. */
export interface McpTool {
  name: string
  description?: string
  input_schema: JsonSchema
}

/** Hay's in-process MCP server shape (`ctx.mcp.startLocal`). */
export interface McpServerInstance {
  listTools?(): Promise<unknown[]>
  callTool?(name: string, args?: Record<string, unknown>): Promise<unknown>
  stop?(): Promise<void> | void
}

export interface McpInitializerContext {
  config: HayConfigRuntimeAPI
  auth: HayAuthRuntimeAPI
  logger: HayLogger
}

export interface StdioMcpOptions {
  id: string
  command: string
  args: string[]
  /** Resolved against the plugin directory. */
  cwd: string
  env?: Record<string, string>
  /** Per-request timeout; 30 s when omitted. */
  timeout?: number
}

export interface ExternalMcpOptions {
  id: string
  url: string
  authHeaders?: Record<string, string>
}

export interface HayMcpRuntimeAPI {
  startLocal(id: string, initializer: (ctx: McpInitializerContext) => McpServerInstance | Promise<McpServerInstance>): Promise<void>
  startLocalStdio(options: StdioMcpOptions): Promise<void>
  startExternal(options: ExternalMcpOptions): Promise<void>
}
