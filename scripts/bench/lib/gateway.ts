// The gateway under test runs as `npm start` runs it: its own node process on dist/, with a fresh
// libSQL file in a temp directory, so the load generator never shares its event loop.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jsonCall, timedRequest, type TimedResponse } from './http.js'
import { EXAMPLES_DIR, GATEWAY_MAIN } from './paths.js'
import { minimalEnv, noteDescendants, startProcess, type Proc } from './procs.js'

export interface WorkerJson {
  orgId: string
  pluginId: string
  gen: number
  state: 'starting' | 'ready' | 'stopping' | 'error'
  pid: number | null
  port: number | null
  inFlight: number
}

export interface PluginJson {
  id: string
  metadataState: string | null
  metadataFetchedAt: string | null
}

export interface BenchGateway {
  proc: Proc
  url: string
  pid: number
  admin<T>(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<T>
  enable(orgId: string, pluginId: string): Promise<void>
  /** A public-path request with its time to first byte. */
  get(orgId: string, pluginId: string, route: string): Promise<TimedResponse>
  /** Stops the key's worker through the admin API; resolves once its process has exited. */
  stopWorker(orgId: string, pluginId: string): Promise<void>
  workers(): Promise<WorkerJson[]>
  plugin(id: string): Promise<PluginJson>
  /** Counts gateway log lines (pino JSON on stdout) matching a predicate from now on. */
  countLogs(match: (entry: Record<string, unknown>) => boolean): () => number
  /** Every worker pid currently alive under the gateway. */
  workerPids(): number[]
  stop(): Promise<void>
}

export interface BenchGatewayOptions {
  name?: string
  /** Gateway environment on top of the bench defaults (LOG_LEVEL=warn, examples plugins, fresh DB). */
  env?: Record<string, string>
  /** Node flags before the entry, e.g. --cpu-prof. */
  nodeArgs?: string[]
  /** Another checkout's dist/node/main.js (A/B comparisons); this checkout's by default. */
  main?: string
  /** The node binary to run the gateway (and so its workers) with; this process's by default. */
  node?: string
}

export async function startBenchGateway(opts: BenchGatewayOptions = {}): Promise<BenchGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-bench-'))
  const env = minimalEnv({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
    // Another checkout serves its own examples, so its runner resolves its own SDK build.
    PLUGINS_DIR: opts.main ? join(opts.main, '..', '..', '..', 'examples', 'plugins') : EXAMPLES_DIR,
    LOG_LEVEL: 'warn',
    ...opts.env,
  })
  const proc = startProcess(opts.name ?? 'gateway', opts.node ?? process.execPath, [...(opts.nodeArgs ?? []), opts.main ?? GATEWAY_MAIN], {
    env,
  })
  // The database goes with the process, however it was stopped (stop() below, or stopAll()).
  void proc.exited.then(() => rm(dir, { recursive: true, force: true }))
  let url: string
  try {
    url = (await proc.waitForLine(/listening on (http:\/\/\S+)/, 20_000))[1] as string
  } catch (err) {
    await proc.stop()
    throw err
  }

  const admin = <T>(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown) => jsonCall<T>(`${url}/admin${path}`, method, body)

  return {
    proc,
    url,
    pid: proc.pid,
    admin,
    async enable(orgId, pluginId) {
      await admin('PUT', `/orgs/${orgId}/plugins/${pluginId}`, { enabled: true })
    },
    get: (orgId, pluginId, route) => timedRequest(`${url}/orgs/${orgId}/plugins/${pluginId}${route}`),
    async stopWorker(orgId, pluginId) {
      await admin('POST', `/orgs/${orgId}/plugins/${pluginId}/stop`)
    },
    async workers() {
      // This gateway's own workers (in a cluster, /admin/workers lists every gateway's).
      return (await admin<{ workers: WorkerJson[] }>('GET', '/workers?scope=local')).workers
    },
    async plugin(id) {
      const { plugins } = await admin<{ plugins: PluginJson[] }>('GET', '/plugins')
      const found = plugins.find((p) => p.id === id)
      if (!found) throw new Error(`plugin ${id} is not loaded`)
      return found
    },
    countLogs(match) {
      let n = 0
      proc.onLine((line) => {
        if (!line.startsWith('{')) return
        try {
          if (match(JSON.parse(line) as Record<string, unknown>)) n++
        } catch {
          // not a log line (partial or plain text): ignored
        }
      })
      return () => n
    },
    workerPids: () => noteDescendants(proc),
    async stop() {
      await proc.stop()
      await rm(dir, { recursive: true, force: true }) // also removed on exit; awaited here so stop() means gone
    },
  }
}
