import type { Clock, Logger, WorkerKey } from '../core/index.js'
import { workerKey } from '../core/index.js'
import type { ActivityEntry, InstancesRepo, RuntimePatch } from '../db/index.js'
import type { PoolEvent } from '../workers/index.js'

export interface RuntimeRecorder {
  /** Pool event sink: never throws, never blocks the pool. */
  record(event: PoolEvent): void
  /** Resolves when every transition seen so far is persisted and activity is flushed. */
  flush(): Promise<void>
  /** Stops the activity timer after a final flush. */
  close(): Promise<void>
}

export interface RecorderDeps {
  instances: InstancesRepo
  clock: Clock
  log: Logger
  flushEveryMs: number
  gatewayId?: string
}

/**
 * Persists runtime transitions in order per key, off the request path (a cold start never waits on
 * a DB write), and lastActivityAt in one batch per interval (DESIGN.md: never a write per request).
 */
export function createRuntimeRecorder(deps: RecorderDeps): RuntimeRecorder {
  const { instances, clock, log } = deps
  const chains = new Map<WorkerKey, Promise<void>>()
  const activity = new Map<WorkerKey, ActivityEntry>()
  let cancelTimer = clock.setTimer(deps.flushEveryMs, tick)
  let closed = false
  // A key's first write waits for a later turn of the event loop instead of running in the microtasks
  // of the event that caused it: a libSQL write holds the thread ~0.5 ms, which would otherwise delay
  // the cold start that emitted it (the prewarmed runner's specialize message, the first request).
  // A yield, not a delay: the real timer queue even where the clock is a test's manual one.
  const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

  function enqueue(orgId: string, pluginId: string, transition: RuntimePatch): void {
    // In a cluster the owner claims the row when it starts a worker; later writes are fenced on it.
    const patch: RuntimePatch = !deps.gatewayId
      ? transition
      : transition.runtimeState === 'starting'
        ? { ...transition, ownerGatewayId: deps.gatewayId }
        : { ...transition, onlyIfOwner: deps.gatewayId }
    const key = workerKey(orgId, pluginId)
    const next = (chains.get(key) ?? nextTurn())
      .then(() => instances.setRuntime(orgId, pluginId, patch))
      .then(
        () => {},
        (err: unknown) => log.error({ err, orgId, pluginId, state: patch.runtimeState }, 'failed to persist runtime state'),
      )
    chains.set(key, next)
    void next.then(() => {
      if (chains.get(key) === next) chains.delete(key)
    })
  }

  function patchFor(event: PoolEvent): [string, string, RuntimePatch] | null {
    switch (event.type) {
      case 'starting':
        return [event.orgId, event.pluginId, { runtimeState: 'starting', sdkVersion: event.sdkVersion, lastError: null }]
      case 'ready': {
        const w = event.worker
        return [
          w.orgId,
          w.pluginId,
          {
            runtimeState: 'ready',
            pid: w.pid,
            port: w.port,
            sdkVersion: w.sdkVersion,
            lastStartedAt: w.startedAt,
            ownerGatewayId: deps.gatewayId ?? null,
          },
        ]
      }
      case 'stopping':
        return [event.worker.orgId, event.worker.pluginId, { runtimeState: 'stopping' }]
      case 'stopped':
        if (event.superseded) return null // the row is the next generation's now
        if (event.reason !== 'crashed') return [event.orgId, event.pluginId, { runtimeState: 'stopped', lastError: null }]
        return [event.orgId, event.pluginId, { runtimeState: 'error', lastError: event.error, restartsIncrement: 1 }]
      case 'start-failed':
        return [event.orgId, event.pluginId, { runtimeState: 'error', lastError: event.error.message }]
      case 'activity':
        return null
    }
  }

  async function flushActivity(): Promise<void> {
    if (activity.size === 0) return
    const batch = [...activity.values()]
    activity.clear()
    try {
      await instances.touchActivity(batch)
    } catch (err) {
      log.error({ err, count: batch.length }, 'failed to persist activity')
    }
  }

  function tick(): void {
    void flushActivity().finally(() => {
      if (!closed) cancelTimer = clock.setTimer(deps.flushEveryMs, tick)
    })
  }

  return {
    record(event) {
      if (event.type === 'activity') {
        const w = event.worker
        activity.set(w.key, { orgId: w.orgId, pluginId: w.pluginId, at: w.lastActiveAt })
        return
      }
      const patch = patchFor(event)
      if (patch) enqueue(...patch)
    },
    async flush() {
      await Promise.all([...chains.values()])
      await flushActivity()
    },
    async close() {
      closed = true
      cancelTimer()
      await this.flush()
    },
  }
}
