import type { Cluster } from '../cluster/index.js'
import { GatewayError } from '../core/index.js'
import type { MetadataPolicy } from '../metadata/index.js'
import type { PluginView } from '../registry/index.js'
import type { ControlResult, StopReason, Worker, WorkerPool } from '../workers/index.js'
import type { Target, Targets } from './targets.js'
import type { WorkerSpecs } from './worker-specs.js'

export type CallWorker = (
  worker: Worker,
  method: 'GET' | 'POST',
  path: string,
  payload: unknown,
  timeoutMs: number,
) => Promise<ControlResult>

export interface WorkerControlDeps {
  targets: Targets
  specs: WorkerSpecs
  pool: WorkerPool
  metadata: MetadataPolicy
  callWorker: CallWorker
  /** Bound on one control call (CONTROL_TIMEOUT_MS). */
  controlTimeoutMs: number
  /** Several gateways on one database: a worker another gateway owns is reached there. */
  cluster?: Pick<Cluster, 'remoteControl' | 'remoteStop'>
}

/**
 * The admin side of workers: start, stop, control calls (CONTRACT.md §3) and metadata refreshes,
 * run wherever in the cluster the worker lives.
 */
export function createWorkerControl(deps: WorkerControlDeps) {
  const { targets, specs, pool, metadata, cluster } = deps

  /** Runs fn on the target's local worker (started if needed), held like a request so the reaper leaves it alone. */
  async function withWorker<T>(t: Target, fn: (worker: Worker) => Promise<T>): Promise<T> {
    const lease = pool.leaseReady(t.instance.orgId, t.view.id) ?? (await pool.acquire(specs.specOf(t)))
    try {
      return await fn(lease.worker)
    } finally {
      lease.release()
    }
  }

  const call = (worker: Worker, method: 'GET' | 'POST', path: string, payload?: unknown) =>
    deps.callWorker(worker, method, path, payload, deps.controlTimeoutMs)

  /** A control call on the instance's worker, wherever in the cluster it runs (started if needed). */
  async function control(t: Target, method: 'GET' | 'POST', path: string, payload?: unknown): Promise<ControlResult> {
    const remote = await cluster?.remoteControl(t.instance.orgId, t.view.id, method, path, payload)
    return remote ?? withWorker(t, (w) => call(w, method, path, payload))
  }

  return {
    call,
    control,

    /** Stops the local worker of a key, if any; `reason` goes to logs and metrics. */
    stopLocal: (orgId: string, pluginId: string, reason: StopReason) => pool.stop(orgId, pluginId, reason),

    /** Starts the worker where it belongs; returns it when that is this gateway. */
    async start(orgId: string, pluginId: string): Promise<Worker | null> {
      const t = await targets.target(orgId, pluginId, { requireEnabled: true })
      if (await cluster?.remoteControl(orgId, pluginId, 'GET', '/health', undefined)) return null
      return withWorker(t, async (w) => w)
    },

    /** Stops the worker wherever it runs; true when there was one. */
    async stop(orgId: string, pluginId: string): Promise<boolean> {
      targets.plugin(pluginId)
      if (await cluster?.remoteStop(orgId, pluginId)) return true
      const wasRunning = pool.list().some((w) => w.orgId === orgId && w.pluginId === pluginId)
      await pool.stop(orgId, pluginId, 'admin')
      return wasRunning
    },

    /** A control call for a peer gateway that forwarded it here (this gateway owns the worker). */
    async localControl(orgId: string, pluginId: string, method: 'GET' | 'POST', path: string, payload: unknown) {
      const t = await targets.target(orgId, pluginId, { requireEnabled: false })
      return withWorker(t, (w) => call(w, method, path, payload))
    },

    async listTools(orgId: string, pluginId: string): Promise<unknown> {
      const t = await targets.target(orgId, pluginId, { requireEnabled: true })
      return passThrough(await control(t, 'GET', '/mcp/list-tools'))
    },

    async callTool(orgId: string, pluginId: string, toolName: string, args: unknown): Promise<unknown> {
      const t = await targets.target(orgId, pluginId, { requireEnabled: true })
      return passThrough(await control(t, 'POST', '/mcp/call-tool', { toolName, arguments: args }))
    },

    /** Marks metadata stale; asks a worker of the plugin running here at once (held like a request), otherwise the next start does. */
    async refreshMetadata(pluginId: string): Promise<PluginView> {
      targets.plugin(pluginId)
      const running = pool.list().find((w) => w.pluginId === pluginId && w.state === 'ready')
      if (!running) await metadata.refresh(pluginId)
      else {
        const t = await targets.target(running.orgId, pluginId, { requireEnabled: false })
        await withWorker(t, (worker) => metadata.refresh(pluginId, worker))
      }
      return targets.plugin(pluginId)
    },
  }
}

export type WorkerControl = ReturnType<typeof createWorkerControl>

function passThrough(reply: ControlResult): unknown {
  if (reply.status === 404) throw new GatewayError('NOT_FOUND', 404, messageOf(reply.body) ?? 'not found on the worker')
  if (reply.status >= 400) throw new GatewayError('UPSTREAM_ERROR', 502, messageOf(reply.body) ?? `worker answered ${reply.status}`)
  return reply.body
}

function messageOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const b = body as { error?: unknown; message?: unknown }
  if (typeof b.error === 'string') return b.error
  if (typeof b.error === 'object' && b.error !== null && typeof (b.error as { message?: unknown }).message === 'string') {
    return (b.error as { message: string }).message
  }
  return typeof b.message === 'string' ? b.message : undefined
}
