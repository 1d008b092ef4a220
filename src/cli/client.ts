import { CliError } from './errors.js'

export interface AdminClientDeps {
  url: string
  token: string | undefined
  fetch?: typeof fetch
  /** Bound on one admin call; a stop drains in-flight requests first, so this is generous. */
  timeoutMs?: number
}

export type AdminClient = ReturnType<typeof createAdminClient>

interface ApiError {
  error?: { code?: unknown; message?: unknown }
}

/** The admin API over HTTP, with every failure turned into one coded, one-line CliError. */
export function createAdminClient(deps: AdminClientDeps) {
  const doFetch = deps.fetch ?? fetch
  const timeoutMs = deps.timeoutMs ?? 120_000

  async function call<T>(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<T> {
    const url = `${deps.url}/admin${path}`
    let res: Response
    try {
      res = await doFetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...(deps.token && { authorization: `Bearer ${deps.token}` }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      if ((err as Error).name === 'TimeoutError')
        throw new CliError('TIMEOUT', `the gateway at ${deps.url} did not answer within ${timeoutMs / 1000} s`)
      throw new CliError('UNREACHABLE', `cannot reach the gateway at ${deps.url} (${causeOf(err)}); is it running? (--url / GATEWAY_URL)`, {
        cause: err,
      })
    }
    const text = await res.text()
    let json: unknown
    try {
      json = text === '' ? null : JSON.parse(text)
    } catch {
      throw new CliError('BAD_RESPONSE', `${deps.url} answered ${res.status} with something that is not JSON; is it a plugin-gateway?`)
    }
    if (res.ok) return json as T
    const apiError = (json as ApiError | null)?.error
    const message = typeof apiError?.message === 'string' ? apiError.message : `HTTP ${res.status}`
    if (res.status === 401) {
      const hint = deps.token ? 'the admin token was rejected' : 'the gateway needs an admin token'
      throw new CliError('UNAUTHORIZED', `${hint} (--token / ADMIN_TOKEN)`)
    }
    if (res.status === 403) throw new CliError('FORBIDDEN', `${message} (set ADMIN_TOKEN on the gateway and pass --token)`)
    throw new CliError('API_ERROR', `${typeof apiError?.code === 'string' ? `${apiError.code}: ` : ''}${message}`)
  }

  const at = (orgId: string, pluginId: string) => `/orgs/${orgId}/plugins/${pluginId}`
  return {
    plugins: () => call<{ plugins: PluginJson[] }>('GET', '/plugins'),
    workers: () => call<WorkersJson>('GET', '/workers'),
    enable: (orgId: string, pluginId: string, config?: Record<string, unknown>) =>
      call<InstanceJson>('PUT', at(orgId, pluginId), { enabled: true, ...(config && { config }) }),
    stop: (orgId: string, pluginId: string) => call<{ stopped: boolean }>('POST', `${at(orgId, pluginId)}/stop`),
    refresh: (pluginId: string) => call<PluginJson>('POST', `/plugins/${pluginId}/refresh-metadata`),
    rescan: () => call<RescanJson>('POST', '/plugins/rescan'),
    restart: (pluginId: string) => call<{ pluginId: string; workers: number }>('POST', `/plugins/${pluginId}/restart`),
  }
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause
  if (typeof cause?.code === 'string') return cause.code
  return typeof cause?.message === 'string' ? cause.message : (err as Error).message
}

// The admin API's JSON (src/routes/admin.ts), as far as the CLI reads it.
export interface PluginJson {
  id: string
  name: string | null
  version: string | null
  sdkVersion: string | null
  valid: boolean
  metadataState: string | null
  metadataFetchedAt: string | null
  error: string | null
}

export interface RescanJson {
  added: string[]
  changed: string[]
  removed: string[]
  invalid: Array<{ id: string; error: string }>
}

export interface WorkersJson {
  workers: WorkerJson[]
  /** In a cluster: peers that did not answer. */
  unreachable?: Array<{ gatewayId: string; error: string }>
}

export interface WorkerJson {
  /** In a cluster: the gateway that runs it. */
  gatewayId?: string
  orgId: string
  pluginId: string
  gen: number
  state: string
  pid: number | null
  port: number | null
  startedAt: string | null
  lastActivityAt: string | null
  inFlight: number
  lastError: string | null
}

export interface InstanceJson {
  orgId: string
  pluginId: string
  enabled: boolean
  runtimeState: string
}
