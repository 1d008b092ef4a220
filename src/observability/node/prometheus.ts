import type { Registry } from 'prom-client'
import type { WorkerKey } from '../../core/index.js'
import { workerKey } from '../../core/index.js'
import type { PoolEvent, WorkerInfo, WorkerState } from '../../workers/index.js'
import type { Metrics, RequestSample } from '../metrics.js'
import { type CollectedMetric, eventCounter, tallyCounter, tallyHistogram } from './tallies.js'

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

/**
 * The gateway's metrics on a registry of its own (no prom-client globals, so several gateways can share
 * a process). They are counted in tallies; prom-client (with its dependencies, ~1.5 MB of a gateway's
 * resident memory, measured) is loaded by the first scrape, so a gateway nobody scrapes never holds it.
 */
export function createPrometheusMetrics(deps: PrometheusMetricsDeps): Metrics {
  const p = deps.prefix ?? 'plugin_gateway_'
  const coldStart = tallyHistogram({
    name: `${p}cold_start_duration_seconds`,
    help: 'Cold start phases: queue (per waiting request), spawn, ready, metadata and total (per start)',
    labelName: 'phase',
    buckets: COLD_START_BUCKETS,
  })
  const proxyDuration = tallyHistogram({
    name: `${p}proxy_duration_seconds`,
    help: 'Proxied requests: time until the response headers, by whether the request was cold',
    labelName: 'cold',
    buckets: PROXY_BUCKETS,
  })
  const requests = tallyCounter({
    name: `${p}http_requests_total`,
    help: 'Responses by route class and status',
    labelNames: ['route', 'status'],
  })
  const spawns = eventCounter({ name: `${p}worker_spawns_total`, help: 'Worker starts begun' })
  const restarts = eventCounter({
    name: `${p}worker_restarts_total`,
    help: 'Starts of a key whose previous worker crashed or failed to start',
  })
  const startFailures = eventCounter({
    name: `${p}worker_start_failures_total`,
    help: 'Worker starts that failed, by error code',
    labelName: 'code',
  })
  const evictions = eventCounter({
    name: `${p}worker_evictions_total`,
    help: 'Idle workers stopped to make room under MAX_WORKERS / MAX_WORKERS_PER_ORG',
  })
  const crashes = eventCounter({ name: `${p}worker_crashes_total`, help: 'Workers that exited unexpectedly' })
  const stops = eventCounter({
    name: `${p}worker_stops_total`,
    help: 'Workers stopped, by reason (idle, evicted, admin, shutdown, replaced, removed, lease-lost, crashed)',
    labelName: 'reason',
  })
  const counted = [coldStart, proxyDuration, requests, spawns, restarts, startFailures, evictions, crashes, stops].map((m) => m.metric)
  let registry: Promise<Registry> | undefined

  // Keys whose last worker crashed or failed to start: their next start is a restart.
  const failedKeys = new Set<WorkerKey>()
  const seconds = (ms: number) => ms / 1000

  return {
    observeRequest(s: RequestSample) {
      requests.inc(s.route, s.status)
      if (s.route !== 'proxy') return
      proxyDuration.observe(s.cold ? 'true' : 'false', seconds(s.durationMs))
      if (s.cold) coldStart.observe('queue', seconds(s.cold.queueMs))
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
          coldStart.observe('spawn', seconds(t.spawnMs))
          coldStart.observe('ready', seconds(t.readyMs))
          coldStart.observe('metadata', seconds(t.metadataMs))
          coldStart.observe('total', seconds(t.totalMs))
          return
        }
        case 'stopping':
          if (e.reason === 'evicted') evictions.inc()
          return
        case 'stopped':
          stops.inc(e.reason)
          if (e.reason === 'crashed') {
            crashes.inc()
            failedKeys.add(workerKey(e.orgId, e.pluginId))
          }
          return
        case 'start-failed':
          startFailures.inc(e.error.code)
          failedKeys.add(workerKey(e.orgId, e.pluginId))
          return
        case 'activity':
          return
      }
    },
    async render() {
      registry ??= createRegistry(counted, deps, p)
      const r = await registry
      return { contentType: r.contentType, body: await r.metrics() }
    },
  }
}

/** The registry a scrape reads: the tallies, then the gauges, which read the pool at scrape time. */
async function createRegistry(counted: readonly CollectedMetric[], deps: PrometheusMetricsDeps, p: string): Promise<Registry> {
  const { Gauge, Registry } = await import('prom-client')
  const registry = new Registry()
  for (const metric of counted) registry.registerMetric(metric as never) // a tally is read like prom-client's own (tallies.ts)
  const registers = [registry]
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
  // Gauges read when scraped, from the pool's own state.
  const sampled = (name: string, help: string, value: () => number) =>
    new Gauge({
      name: `${p}${name}`,
      help,
      registers,
      collect() {
        this.set(value())
      },
    })
  sampled('worker_requests_in_flight', 'Requests in flight on live workers', () => deps.workers().reduce((n, w) => n + w.inFlight, 0))
  sampled(
    'worker_tunnels_open',
    'Open tunnels (upgraded connections, e.g. WebSockets) to live workers; counted in worker_requests_in_flight too',
    () => deps.workers().reduce((n, w) => n + w.tunnels, 0),
  )
  sampled('queue_depth', 'Requests waiting for a worker to start', () => deps.queueDepth())
  return registry
}
