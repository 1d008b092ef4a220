import { describe, expect, it, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { sampleValue } from './prom-text.js'

const P = 'plugin_gateway_'
const TOKEN = 'metrics-admin-token-0123456789'
// Stops and crashes take a few process round trips; a loaded CI machine needs more than vitest's 1 s default.
const WAIT = { timeout: 10_000, interval: 20 }

async function scrape(t: TestGateway, token?: string): Promise<string> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
  const res = await fetch(`${t.url}/metrics`, { headers })
  expect(res.status).toBe(200)
  return res.text()
}

const drain = (res: Response) => res.arrayBuffer().then(() => res)

describe('GET /metrics on a real gateway', () => {
  it('is protected like the admin API and answers Prometheus text with a token', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }] as Record<string, string>[]) {
      const res = await fetch(`${t.url}/metrics`, { headers })
      expect(res.status).toBe(401)
      expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } })
    }
    const ok = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await ok.text()
    expect(text).toContain(`# TYPE ${P}cold_start_duration_seconds histogram`)
    expect(text).not.toContain(TOKEN)
  })

  it('reports a cold start by phase, requests by status, workers by state and the stop', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    await t.enable('acme', 'echo')
    await drain(await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)) // cold
    await drain(await fetch(`${t.url}/orgs/acme/plugins/echo/items/2`)) // warm
    await drain(await fetch(`${t.url}/orgs/acme/plugins/echo/nope`)) // undeclared route: refused by the gateway
    expect((await drain(await fetch(`${t.url}/orgs/acme/plugins/echo/boom`))).status).toBe(500) // the plugin's own 500

    let m = await scrape(t, TOKEN)
    expect(sampleValue(m, `${P}worker_spawns_total`)).toBe(1)
    for (const phase of ['queue', 'spawn', 'ready', 'metadata', 'total']) {
      expect({ phase, count: sampleValue(m, `${P}cold_start_duration_seconds_count`, { phase }) }).toEqual({ phase, count: 1 })
    }
    expect(sampleValue(m, `${P}proxy_duration_seconds_count`, { cold: 'true' })).toBe(1)
    expect(sampleValue(m, `${P}proxy_duration_seconds_count`, { cold: 'false' })).toBe(3)
    expect(sampleValue(m, `${P}http_requests_total`, { route: 'proxy', status: '200' })).toBe(2)
    expect(sampleValue(m, `${P}http_requests_total`, { route: 'proxy', status: '404' })).toBe(1)
    expect(sampleValue(m, `${P}http_requests_total`, { route: 'proxy', status: '500' })).toBe(1)
    expect(sampleValue(m, `${P}workers`, { state: 'ready' })).toBe(1)
    expect(sampleValue(m, `${P}queue_depth`)).toBe(0)

    expect((await t.admin('POST', '/orgs/acme/plugins/echo/stop')).status).toBe(200)
    m = await scrape(t, TOKEN)
    expect(sampleValue(m, `${P}workers`, { state: 'ready' })).toBe(0)
    expect(sampleValue(m, `${P}worker_stops_total`, { reason: 'admin' })).toBe(1)
    expect(sampleValue(m, `${P}http_requests_total`, { route: 'admin', status: '200' })).toBeGreaterThanOrEqual(2)
  })

  it('counts a crash, then the restart the next request causes', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'crash-mid-request')
    await drain(await fetch(`${t.url}/orgs/acme/plugins/crash-mid-request/ping`))
    const crashed = await fetch(`${t.url}/orgs/acme/plugins/crash-mid-request/crash`)
    expect(crashed.status).toBeGreaterThanOrEqual(500)
    await drain(crashed)
    await vi.waitFor(async () => expect(sampleValue(await scrape(t), `${P}worker_crashes_total`)).toBe(1), WAIT)

    const again = await drain(await fetch(`${t.url}/orgs/acme/plugins/crash-mid-request/ping`))
    expect(again.status).toBe(200)
    const m = await scrape(t)
    expect(sampleValue(m, `${P}worker_restarts_total`)).toBe(1)
    expect(sampleValue(m, `${P}worker_spawns_total`)).toBe(2)
    expect(sampleValue(m, `${P}worker_stops_total`, { reason: 'crashed' })).toBe(1)
  })

  it('counts an eviction under MAX_WORKERS', async () => {
    const t = await startTestGateway({ env: { MAX_WORKERS: '1' } })
    await t.enable('acme', 'echo')
    await t.enable('globex', 'echo')
    await drain(await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`))
    await drain(await fetch(`${t.url}/orgs/globex/plugins/echo/items/1`))
    await vi.waitFor(async () => expect(sampleValue(await scrape(t), `${P}worker_stops_total`, { reason: 'evicted' })).toBe(1), WAIT)
    const m = await scrape(t)
    expect(sampleValue(m, `${P}worker_evictions_total`)).toBe(1)
    expect(sampleValue(m, `${P}workers`, { state: 'ready' })).toBe(1)
  })

  it('shows requests queued behind a cold start while it lasts', async () => {
    // The plugin's onStart waits at a gate; the test decides when the start may finish.
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await t.enable('acme', 'gated', { startGate: 'start' })

    const pending = [1, 2, 3].map(() => fetch(`${t.url}/orgs/acme/plugins/gated/whoami`))
    await gate.arrived('start')
    await vi.waitFor(async () => expect(sampleValue(await scrape(t), `${P}queue_depth`)).toBe(3), WAIT)
    expect(sampleValue(await scrape(t), `${P}workers`, { state: 'starting' })).toBe(1)

    gate.open('start')
    const responses = await Promise.all(pending.map(async (p) => drain(await p)))
    expect(responses.map((r) => [r.status, r.headers.get('x-plugin-cold-start')])).toEqual([
      [200, '1'],
      [200, '1'],
      [200, '1'],
    ])
    const m = await scrape(t)
    expect(sampleValue(m, `${P}queue_depth`)).toBe(0)
    expect(sampleValue(m, `${P}cold_start_duration_seconds_count`, { phase: 'queue' })).toBe(3)
    expect(sampleValue(m, `${P}cold_start_duration_seconds_count`, { phase: 'spawn' })).toBe(1)
  })
})
