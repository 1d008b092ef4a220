import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { WorkerKey } from '../../core/index.js'
import { workerKey } from '../../core/index.js'
import type { PoolEvent, WorkerInfo, WorkerState } from '../../workers/index.js'
import type { Metrics, RequestSample } from '../metrics.js'
import { tallyCounter, tallyHistogram } from './tallies.js'

export interface PrometheusMetricsDeps {
  /** Live workers, read at scrape time (no per-request bookkeeping for gauges). */
  workers: () => readonly WorkerInfo[]
  /** Requests waiting for a cold start, read at scrape time. */
  queueDepth: () => number
  /** Prepended to every metric name. */
  prefix?: string
}

const WORKER_STATES: readonly WorkerState[] = ['starting', 'ready', 'stopping', 'error']
// Cold starts are tens of ms to seconds; proxied requests are sub-ms to the upstream timeout.
const COLD_START_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const PROXY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The gateway's metrics on a registry of its own (no prom-client globals, so several gateways can share a process). */
export function createPrometheusMetrics(deps: PrometheusMetricsDeps): Metrics & { readonly registry: Registry } {
  const p = deps.prefix ?? 'plugin_gateway_'
  const registry = new Registry()
  const registers = [registry]

  const coldStart = new Histogram({
    name: `${p}cold_start_duration_seconds`,
    help: 'Cold start phases: queue (per waiting request), spawn, ready, metadata and total (per start)',
    labelNames: ['phase'] as const,
    buckets: COLD_START_BUCKETS,
    registers,
  })
  const proxyDuration = tallyHistogram(registry, {
    name: `${p}proxy_duration_seconds`,
    help: 'Proxied requests: time until the response headers, by whether the request was cold',
    labelName: 'cold',
    buckets: PROXY_BUCKETS,
  })
  const requests = tallyCounter(registry, {
    name: `${p}http_requests_total`,
    help: 'Responses by route class and status',
    labelNames: ['route', 'status'],
  })
  const spawns = new Counter({ name: `${p}worker_spawns_total`, help: 'Worker starts begun', registers })
  const restarts = new Counter({
    name: `${p}worker_restarts_total`,
    help: 'Starts of a key whose previous worker crashed or failed to start',
    registers,
  })
  const startFailures = new Counter({
    name: `${p}worker_start_failures_total`,
    help: 'Worker starts that failed, by error code',
    labelNames: ['code'] as const,
    registers,
  })
  const evictions = new Counter({
    name: `${p}worker_evictions_total`,
    help: 'Idle workers stopped to make room under MAX_WORKERS / MAX_WORKERS_PER_ORG',
    registers,
  })
  const crashes = new Counter({ name: `${p}worker_crashes_total`, help: 'Workers that exited unexpectedly', registers })
  const stops = new Counter({
    name: `${p}worker_stops_total`,
    help: 'Workers stopped, by reason (idle, evicted, admin, shutdown, replaced, removed, lease-lost, crashed)',
    labelNames: ['reason'] as const,
    registers,
  })
  new Gauge({
    name: `${p}workers`,
    help: 'Workers by state',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const counts = new Map<WorkerState, number>(WORKER_STATES.map((s) => [s, 0]))
      for (const w of deps.workers()) counts.set(w.state, (counts.get(w.state) ?? 0) + 1)
      for (const [state, n] of counts) this.set({ state }, n)
    },
  })
  new Gauge({
    name: `${p}worker_requests_in_flight`,
    help: 'Requests in flight on live workers',
    registers,
    collect() {
      this.set(deps.workers().reduce((n, w) => n + w.inFlight, 0))
    },
  })
  new Gauge({
    name: `${p}worker_tunnels_open`,
    help: 'Open tunnels (upgraded connections, e.g. WebSockets) to live workers; counted in worker_requests_in_flight too',
    registers,
    collect() {
      this.set(deps.workers().reduce((n, w) => n + w.tunnels, 0))
    },
  })
  new Gauge({
    name: `${p}queue_depth`,
    help: 'Requests waiting for a worker to start',
    registers,
    collect() {
      this.set(deps.queueDepth())
    },
  })

  // Keys whose last worker crashed or failed to start: their next start is a restart.
  const failedKeys = new Set<WorkerKey>()
  const seconds = (ms: number) => ms / 1000

  return {
    registry,
    observeRequest(s: RequestSample) {
      requests.inc(s.route, s.status)
      if (s.route !== 'proxy') return
      proxyDuration.observe(s.cold ? 'true' : 'false', seconds(s.durationMs))
      if (s.cold) coldStart.observe({ phase: 'queue' }, seconds(s.cold.queueMs))
    },
    observePoolEvent(e: PoolEvent) {
      switch (e.type) {
        case 'starting': {
          spawns.inc()
          if (failedKeys.delete(workerKey(e.orgId, e.pluginId))) restarts.inc()
          return
        }
        case 'ready': {
          const t = e.timing
          coldStart.observe({ phase: 'spawn' }, seconds(t.spawnMs))
          coldStart.observe({ phase: 'ready' }, seconds(t.readyMs))
          coldStart.observe({ phase: 'metadata' }, seconds(t.metadataMs))
          coldStart.observe({ phase: 'total' }, seconds(t.totalMs))
          return
        }
        case 'stopping':
          if (e.reason === 'evicted') evictions.inc()
          return
        case 'stopped':
          stops.inc({ reason: e.reason })
          if (e.reason === 'crashed') {
            crashes.inc()
            failedKeys.add(workerKey(e.orgId, e.pluginId))
          }
          return
        case 'start-failed':
          startFailures.inc({ code: e.error.code })
          failedKeys.add(workerKey(e.orgId, e.pluginId))
          return
        case 'activity':
          return
      }
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}
