import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/core/index.js'
import { createPrometheusMetrics } from '../../src/observability/node/index.js'
import type { PoolEvent, Worker, WorkerInfo } from '../../src/workers/index.js'
import { sampleValue } from './prom-text.js'

const P = 'plugin_gateway_'
const worker = (orgId: string, pluginId: string, gen = 1) => ({ orgId, pluginId, gen, key: `${orgId}:${pluginId}` }) as unknown as Worker
const exit = { code: 1, signal: null }
const timing = { queueMs: 0, spawnMs: 20, readyMs: 30, metadataMs: 40, totalMs: 95 }

function harness(workers: WorkerInfo[] = [], queueDepth = 0) {
  const metrics = createPrometheusMetrics({ workers: () => workers, queueDepth: () => queueDepth })
  const feed = (...events: PoolEvent[]) => {
    for (const e of events) metrics.observePoolEvent(e)
  }
  const text = async () => (await metrics.render()).body
  return { metrics, feed, text }
}

describe('Prometheus metrics', () => {
  it('counts spawns, and a restart only for a key whose last worker crashed or failed to start', async () => {
    const { feed, text } = harness()
    const failed = new GatewayError('WORKER_START_TIMEOUT', 504, 'not ready in time')
    feed(
      { type: 'starting', orgId: 'a', pluginId: 'echo', gen: 1, sdkVersion: 'v2' },
      { type: 'ready', worker: worker('a', 'echo'), timing },
      {
        type: 'stopped',
        orgId: 'a',
        pluginId: 'echo',
        gen: 1,
        reason: 'crashed',
        exit,
        error: 'worker exited unexpectedly (code 1)',
        superseded: false,
      },
      { type: 'starting', orgId: 'a', pluginId: 'echo', gen: 2, sdkVersion: 'v2' }, // restart 1
      { type: 'start-failed', orgId: 'a', pluginId: 'echo', gen: 2, error: failed, retryAt: 0 },
      { type: 'starting', orgId: 'a', pluginId: 'echo', gen: 3, sdkVersion: 'v2' }, // restart 2
      { type: 'starting', orgId: 'b', pluginId: 'echo', gen: 4, sdkVersion: 'v2' }, // first start of b
      { type: 'stopping', worker: worker('b', 'echo', 4), reason: 'idle' },
      { type: 'stopped', orgId: 'b', pluginId: 'echo', gen: 4, reason: 'idle', exit, superseded: false },
      { type: 'starting', orgId: 'b', pluginId: 'echo', gen: 5, sdkVersion: 'v2' }, // after idle: not a restart
    )
    const t = await text()
    expect(sampleValue(t, `${P}worker_spawns_total`)).toBe(5)
    expect(sampleValue(t, `${P}worker_restarts_total`)).toBe(2)
    expect(sampleValue(t, `${P}worker_crashes_total`)).toBe(1)
    expect(sampleValue(t, `${P}worker_start_failures_total`, { code: 'WORKER_START_TIMEOUT' })).toBe(1)
    expect(sampleValue(t, `${P}worker_stops_total`, { reason: 'crashed' })).toBe(1)
    expect(sampleValue(t, `${P}worker_stops_total`, { reason: 'idle' })).toBe(1)
  })

  it('counts an eviction when an idle worker is stopped to make room', async () => {
    const { feed, text } = harness()
    feed(
      { type: 'stopping', worker: worker('a', 'echo'), reason: 'evicted' },
      { type: 'stopped', orgId: 'a', pluginId: 'echo', gen: 1, reason: 'evicted', exit, superseded: false },
      { type: 'stopping', worker: worker('b', 'echo'), reason: 'admin' },
    )
    const t = await text()
    expect(sampleValue(t, `${P}worker_evictions_total`)).toBe(1)
    expect(sampleValue(t, `${P}worker_stops_total`, { reason: 'evicted' })).toBe(1)
  })

  it('observes spawn, ready, metadata and total once per start, and queue once per waiting request', async () => {
    const { metrics, feed, text } = harness()
    feed({ type: 'ready', worker: worker('a', 'echo'), timing })
    for (const queueMs of [1, 2, 3]) metrics.observeRequest({ route: 'proxy', status: 200, durationMs: 100, cold: { queueMs } })
    metrics.observeRequest({ route: 'proxy', status: 200, durationMs: 1, cold: null })
    const t = await text()
    const count = (phase: string) => sampleValue(t, `${P}cold_start_duration_seconds_count`, { phase })
    expect([count('spawn'), count('ready'), count('metadata'), count('total'), count('queue')]).toEqual([1, 1, 1, 1, 3])
    expect(sampleValue(t, `${P}cold_start_duration_seconds_sum`, { phase: 'metadata' })).toBeCloseTo(0.04)
    expect(sampleValue(t, `${P}proxy_duration_seconds_count`, { cold: 'true' })).toBe(3)
    expect(sampleValue(t, `${P}proxy_duration_seconds_count`, { cold: 'false' })).toBe(1)
  })

  it('counts responses by route class and status; only proxied ones are timed', async () => {
    const { metrics, text } = harness()
    metrics.observeRequest({ route: 'proxy', status: 404, durationMs: 1, cold: null })
    metrics.observeRequest({ route: 'admin', status: 401, durationMs: 1, cold: null })
    metrics.observeRequest({ route: 'admin', status: 401, durationMs: 1, cold: null })
    const t = await text()
    expect(sampleValue(t, `${P}http_requests_total`, { route: 'proxy', status: '404' })).toBe(1)
    expect(sampleValue(t, `${P}http_requests_total`, { route: 'admin', status: '401' })).toBe(2)
    expect(sampleValue(t, `${P}proxy_duration_seconds_count`, { cold: 'false' })).toBe(1)
  })

  it('reads workers by state, requests in flight and queue depth at scrape time', async () => {
    const info = (state: WorkerInfo['state'], inFlight: number) => ({ orgId: 'a', pluginId: 'p', gen: 1, state, inFlight }) as WorkerInfo
    const workers = [info('ready', 2), info('ready', 1), info('starting', 0), info('error', 0)]
    const { text } = harness(workers, 7)
    const t = await text()
    const state = (s: string) => sampleValue(t, `${P}workers`, { state: s })
    expect([state('starting'), state('ready'), state('stopping'), state('error')]).toEqual([1, 2, 0, 1])
    expect(sampleValue(t, `${P}worker_requests_in_flight`)).toBe(3)
    expect(sampleValue(t, `${P}queue_depth`)).toBe(7)

    workers.length = 0 // gauges follow the pool, not a running tally
    expect(sampleValue(await text(), `${P}workers`, { state: 'ready' })).toBe(0)
  })

  it('keeps each instance on its own registry (several gateways in one process)', async () => {
    const a = harness()
    const b = harness()
    a.feed({ type: 'starting', orgId: 'a', pluginId: 'echo', gen: 1, sdkVersion: 'v2' })
    expect(sampleValue(await a.text(), `${P}worker_spawns_total`)).toBe(1)
    expect(sampleValue(await b.text(), `${P}worker_spawns_total`)).toBe(0)
    expect((await a.metrics.render()).contentType).toMatch(/^text\/plain; version=0\.0\.4/)
  })
})
