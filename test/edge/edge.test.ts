import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import { pickOrigin } from '../../src/edge/index.js'
import { startGate } from '../helpers/gate.js'
import { startTestGateway } from '../helpers/gateway.js'
import { startDroppingServer } from '../helpers/http.js'
import { openWebSocket, parseAnswer, rawConnection, upgradeHead } from '../helpers/upgrade.js'
import { buildEdgeBundle, startEdge } from './harness.js'

const EDGE = 'http://edge.example'

async function workersOf(t: Awaited<ReturnType<typeof startTestGateway>>) {
  const { body } = await t.admin('GET', '/workers')
  return (body.workers as { orgId: string; pluginId: string; state: string }[]).map((w) => `${w.orgId}/${w.pluginId}:${w.state}`)
}

describe('edge entry (wrangler bundle in miniflare) in front of a real Node gateway', () => {
  it('builds with wrangler without nodejs_compat, and the bundle imports nothing from node:*', async () => {
    const code = await buildEdgeBundle()
    expect(code).toContain('GATEWAY_ORIGINS')
    expect(code).not.toMatch(/(from\s*|import\s*\(\s*|require\s*\(\s*)["']node:/)
  })

  it('forwards a plugin request to the Node gateway, which cold-starts the worker', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo', { prefix: 'edge' })
    const { mf } = await startEdge(t.url)

    const res = await mf.dispatchFetch(`${EDGE}/orgs/acme/plugins/echo/echo?via=edge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'edge-req-1', 'x-forwarded-for': '203.0.113.7' },
      body: JSON.stringify({ hello: 'edge' }),
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-plugin-cold-start')).toBe('1')
    expect(res.headers.get('server-timing')).toMatch(
      /^cold;dur=[\d.]+, queue;dur=[\d.]+, spawn;dur=[\d.]+, ready;dur=[\d.]+, metadata;dur=[\d.]+, proxy;dur=[\d.]+$/,
    )
    expect(res.headers.get('x-request-id')).toBe('edge-req-1')
    const body = (await res.json()) as { prefix: string; path: string; query: object; body: object; headers: Record<string, string> }
    expect(body).toMatchObject({ prefix: 'edge', path: '/echo', query: { via: 'edge' }, body: { hello: 'edge' } })
    expect(body.headers['x-request-id']).toBe('edge-req-1') // the worker sees the id the client sent
    expect(body.headers['x-forwarded-for']?.startsWith('203.0.113.7, ')).toBe(true)
    expect(await workersOf(t)).toEqual(['acme/echo:ready'])
    expect(t.spawned).toHaveLength(1)

    const warm = await mf.dispatchFetch(`${EDGE}/orgs/acme/plugins/echo/items/7`)
    expect(warm.status).toBe(200)
    expect(warm.headers.get('x-plugin-cold-start')).toBeNull()
    expect(warm.headers.get('x-request-id')).toMatch(/^[\w.:-]+$/) // minted at the edge, kept by the Node gateway
    expect(await warm.json()).toMatchObject({ id: '7' })
    expect(t.spawned).toHaveLength(1)
  })

  it('streams request and response bodies byte for byte', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const { mf } = await startEdge(t.url)
    const bytes = randomBytes(256 * 1024) // not valid UTF-8: any re-encoding would show

    const res = await mf.dispatchFetch(`${EDGE}/orgs/acme/plugins/echo/raw`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    })
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true)
  })

  it('refuses worker control endpoints itself, exactly as the Node gateway does, without reaching it', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const { mf } = await startEdge(t.url)

    for (const path of [
      '/metadata',
      '/health',
      '/HEALTH',
      '/%6detadata',
      '/disable',
      '/validate-auth',
      '/config-update',
      '/mcp/list-tools',
    ]) {
      const res = await mf.dispatchFetch(`${EDGE}/orgs/acme/plugins/echo${path}`, { method: path === '/metadata' ? 'GET' : 'POST' })
      expect({ path, status: res.status, body: await res.json() }).toEqual({
        path,
        status: 404,
        body: { error: { code: 'ROUTE_NOT_FOUND', message: 'plugin echo has no such route' } },
      })
    }
    const badId = await mf.dispatchFetch(`${EDGE}/orgs/ACME/plugins/echo/items/1`)
    expect(badId.status).toBe(404)
    expect(((await badId.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND')
    const admin = await mf.dispatchFetch(`${EDGE}/admin/workers`)
    // The admin API is not exposed at the edge: no such route there.
    expect([admin.status, await admin.json()]).toEqual([404, { error: { code: 'NOT_FOUND', message: 'no such route' } }])

    expect(t.spawned).toHaveLength(0)
    const metrics = await fetch(`${t.url}/metrics`).then((r) => r.text())
    expect(metrics).not.toMatch(/http_requests_total\{route="proxy"/) // nothing reached the Node gateway's public path
  })

  it('keeps each (org, plugin) pair on the same Node gateway, chosen by hashing the pair', async () => {
    const [a, b] = await Promise.all([startTestGateway(), startTestGateway()])
    const origins = [a.url, b.url]
    // One org that hashes to each gateway, found with the edge's own function.
    const candidates = Array.from({ length: 64 }, (_, i) => `org-${i}`)
    const orgFor = (url: string) => candidates.find((org) => pickOrigin(origins, org, 'echo') === url)!
    const [orgA, orgB] = [orgFor(a.url), orgFor(b.url)]
    for (const t of [a, b]) for (const org of [orgA, orgB]) await t.enable(org, 'echo')
    const { mf } = await startEdge(origins.join(','))

    const cold = await Promise.all([orgA, orgB].map((org) => mf.dispatchFetch(`${EDGE}/orgs/${org}/plugins/echo/items/1`)))
    const again = await Promise.all([orgA, orgB].map((org) => mf.dispatchFetch(`${EDGE}/orgs/${org}/plugins/echo/items/2`)))
    // Cold headers on the first round are asserted by the single-gateway test; here the point is where
    // each pair's worker lives: one per gateway, and the second round finds it warm.
    expect(cold.map((r) => r.status)).toEqual([200, 200])
    expect(again.map((r) => [r.status, r.headers.get('x-plugin-cold-start')])).toEqual([
      [200, null],
      [200, null],
    ])
    await Promise.all([...cold, ...again].map((r) => r.arrayBuffer()))

    expect(await workersOf(a)).toEqual([`${orgA}/echo:ready`])
    expect(await workersOf(b)).toEqual([`${orgB}/echo:ready`])
    expect([a.spawned.length, b.spawned.length]).toEqual([1, 1])
  })

  it('forwards each server-sent event as it is written: the first arrives while the handler still waits', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await t.enable('acme', 'legacy-streams')
    const { mf } = await startEdge(t.url)
    const res = await mf.dispatchFetch(`${EDGE}/orgs/acme/plugins/legacy-streams/events?gate=edge-sse`)
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream'])
    const reader = res.body!.getReader()
    await gate.arrived('edge-sse') // the worker wrote `first` and now waits for the test
    let text = ''
    while (!text.includes('\n\n')) {
      const { done, value } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    expect(text).toBe('id: 1\nevent: tick\ndata: first\n\n')
    gate.open('edge-sse')
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value)
    expect(text.match(/^data: .*$/gm)).toEqual(['data: first', 'data: second', 'data: third'])
  })

  it('carries a 64 MiB download and a 4 MiB upload intact', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'legacy-streams')
    const { mf } = await startEdge(t.url)
    const base = `${EDGE}/orgs/acme/plugins/legacy-streams`
    const res = await mf.dispatchFetch(`${base}/download?bytes=${64 * 1024 * 1024}&id=edge`)
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length
      hash.update(chunk)
    }
    const state = (await (await mf.dispatchFetch(`${base}/downloads/edge`)).json()) as { sha256: string; outcome: string }
    expect([bytes, hash.digest('hex'), state.outcome]).toEqual([64 * 1024 * 1024, state.sha256, 'finished'])

    const upload = randomBytes(4 * 1024 * 1024)
    const uploaded = await mf.dispatchFetch(`${base}/upload`, { method: 'POST', body: upload })
    expect(await uploaded.json()).toEqual({ bytes: upload.length, sha256: createHash('sha256').update(upload).digest('hex') })
  })

  it('forwards a WebSocket to the Node gateway, which cold-starts the worker: the 101 passes back, then messages both ways', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'legacy-streams')
    const { mf } = await startEdge(t.url)
    // A real client on workerd's own socket: dispatchFetch would not be a WebSocket client.
    const edge = await mf.ready
    const ws = `${edge.origin}/orgs/acme/plugins/legacy-streams/ws`

    const open = await openWebSocket(ws, { 'x-request-id': 'edge-ws-1' })
    expect(open.response.headers).toMatchObject({
      'x-plugin-cold-start': '1',
      'x-request-id': 'edge-ws-1',
      'x-worker-pid': String(t.spawned[0]?.pid),
    })
    const binary = randomBytes(256 * 1024)
    open.ws.send('hello through the edge')
    open.ws.send(binary)
    const [text, echoed] = await open.received(2)
    expect(text?.toString()).toBe('hello through the edge')
    expect(echoed?.equals(binary)).toBe(true)
    // On the Node gateway the tunnel holds its worker.
    expect(t.gw.pool.list()).toMatchObject([{ pluginId: 'legacy-streams', state: 'ready', inFlight: 1, tunnels: 1 }])

    open.ws.close(1000, 'done')
    expect(await open.closed).toEqual({ code: 1000, reason: 'done' })
    await vi.waitFor(() => expect(t.gw.pool.list()).toMatchObject([{ inFlight: 0, tunnels: 0 }]), { timeout: 10_000, interval: 10 })
    expect(t.spawned).toHaveLength(1)
  })

  it("passes back a worker's normal answer to a WebSocket upgrade, and refuses one to a control path itself", async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'legacy-streams')
    const { mf } = await startEdge(t.url)
    const base = `${(await mf.ready).origin}/orgs/acme/plugins/legacy-streams`

    await expect(openWebSocket(`${base}/ws?refuse=1`)).rejects.toThrow(
      'answered 403: {"error":{"code":"REFUSED","message":"no switch for you"}}',
    )
    await expect(openWebSocket(`${base}/metadata`)).rejects.toThrow(
      'answered 404: {"error":{"code":"ROUTE_NOT_FOUND","message":"plugin legacy-streams has no such route"}}',
    )
    expect(t.gw.pool.list()).toMatchObject([{ pluginId: 'legacy-streams', inFlight: 0, tunnels: 0 }])
  })

  it('forwards an Upgrade to another protocol as a plain request: workerd upgrades to WebSockets only', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'legacy-streams')
    const { mf } = await startEdge(t.url)
    const conn = await rawConnection(Number((await mf.ready).port))
    conn.socket.write(`${upgradeHead('/orgs/acme/plugins/legacy-streams/ws', 'echo-proto/1')}\r\n\r\n`)
    // workerd keeps the connection open after the answer: read until the answer is whole.
    await vi.waitFor(() => expect(conn.received().toString('latin1')).toMatch(/\r\n\r\n\{.*\}$/), { timeout: 10_000, interval: 10 })
    const answer = parseAnswer(conn.received().toString('latin1'))
    // The worker's answer to a GET /ws without an Upgrade.
    expect([answer.statusLine, JSON.parse(answer.body).error.code]).toEqual(['HTTP/1.1 426 Upgrade Required', 'UPGRADE_REQUIRED'])
    expect(t.gw.pool.list()).toMatchObject([{ pluginId: 'legacy-streams', inFlight: 0, tunnels: 0 }])
  })

  it('answers 502 UPSTREAM_ERROR in the gateway error shape when the Node gateway is unreachable', async () => {
    const { mf } = await startEdge(await startDroppingServer())
    const res = await mf.dispatchFetch(`${EDGE}/orgs/acme/plugins/echo/items/1`, { headers: { 'x-request-id': 'down-1' } })
    expect(res.status).toBe(502)
    expect(res.headers.get('x-request-id')).toBe('down-1')
    expect(await res.json()).toEqual({ error: { code: 'UPSTREAM_ERROR', message: 'the Node gateway for this plugin is unreachable' } })
  })

  it('answers 500 INTERNAL, without detail, when GATEWAY_ORIGINS is not a list of URLs', async () => {
    const { mf, logs } = await startEdge('not a url')
    const res = await mf.dispatchFetch(`${EDGE}/orgs/acme/plugins/echo/items/1`)
    expect(res.status).toBe(500)
    expect(await res.json()).toEqual({ error: { code: 'INTERNAL', message: 'the edge gateway is misconfigured' } })
    // The detail goes to the operator's log, not to the client.
    expect(logs.map((line) => JSON.parse(line) as { msg: string; error?: string })).toContainEqual(
      expect.objectContaining({ msg: 'edge bindings are invalid', error: expect.stringContaining('GATEWAY_ORIGINS') }),
    )
    const health = await mf.dispatchFetch(`${EDGE}/healthz`)
    expect(await health.json()).toEqual({ status: 'ok' })
  })
})
