import { randomBytes } from 'node:crypto'
import { appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createManualClock } from '../helpers/manual-clock.js'
import { copyPlugin, exitOf, FIXTURES_DIR, startTestGateway, type TestGateway, tempDir } from '../helpers/gateway.js'
import { openWebSocket, parseAnswer, rawConnection, rawExchange, upgradeHead } from '../helpers/upgrade.js'
import { sampleValue } from '../observability/prom-text.js'

// Upgrade requests (WebSocket and any other protocol) through both Node entries: the fast path and
// the Hono app run the same proxy rules, so every test here runs through each.

const WAIT = { timeout: 10_000, interval: 10 }
const WS = '/orgs/acme/plugins/legacy-streams/ws'

const portOf = (t: TestGateway) => Number(new URL(t.url).port)
const workerOf = (t: TestGateway) => t.gw.pool.list().find((w) => w.orgId === 'acme')
const scrape = async (t: TestGateway) => (await fetch(`${t.url}/metrics`)).text()

describe.each([
  ['the fast path', 'true'],
  ['the Hono app', 'false'],
])('upgrades through %s', (_entry, fastPath) => {
  const start = (env: Record<string, string> = {}, opts: Parameters<typeof startTestGateway>[0] = {}) =>
    startTestGateway({ ...opts, env: { PUBLIC_FAST_PATH: fastPath, ...env } })

  it('tunnels a WebSocket to a stopped worker (cold start): the 101 passes back, then messages both ways; the tunnel is in flight and counted', async () => {
    const t = await start()
    await t.enable('acme', 'legacy-streams')
    expect(t.spawned).toHaveLength(0)

    const open = await openWebSocket(`${t.url}${WS}`, { 'x-request-id': 'ws-1' })
    expect(open.response.statusCode).toBe(101)
    expect(open.response.headers).toMatchObject({
      'x-plugin-cold-start': '1',
      'x-request-id': 'ws-1',
      'x-worker-pid': String(t.spawned[0]?.pid),
    })
    const binary = randomBytes(512 * 1024)
    open.ws.send('hello over the gateway')
    open.ws.send(binary)
    const [text, echoed] = await open.received(2)
    expect(text?.toString()).toBe('hello over the gateway')
    expect(echoed?.equals(binary)).toBe(true)

    expect(workerOf(t)).toMatchObject({ state: 'ready', inFlight: 1, tunnels: 1 })
    let metrics = await scrape(t)
    expect(sampleValue(metrics, 'plugin_gateway_worker_tunnels_open')).toBe(1)
    expect(sampleValue(metrics, 'plugin_gateway_http_requests_total', { route: 'proxy', status: '101' })).toBe(1)
    const listed = await t.admin('GET', '/workers')
    expect(listed.body.workers).toMatchObject([{ pluginId: 'legacy-streams', inFlight: 1, tunnels: 1 }])

    open.ws.close(1000, 'done')
    expect(await open.closed).toEqual({ code: 1000, reason: 'done' })
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ inFlight: 0, tunnels: 0 }), WAIT)
    metrics = await scrape(t)
    expect(sampleValue(metrics, 'plugin_gateway_worker_tunnels_open')).toBe(0)
    expect(t.spawned).toHaveLength(1)
  })

  it('tunnels any other Upgrade as raw bytes both ways, the bytes sent right behind the request head included', async () => {
    const t = await start()
    await t.enable('acme', 'legacy-streams')
    const conn = await rawConnection(portOf(t))
    conn.socket.write(`${upgradeHead(WS, 'echo-proto/1')}\r\n\r\nsent with the head;`)
    await vi.waitFor(() => expect(conn.received().toString('latin1')).toContain('sent with the head;'), WAIT)
    const { statusLine, headers } = parseAnswer(conn.received().toString('latin1'))
    expect([statusLine, headers.connection, headers.upgrade]).toEqual(['HTTP/1.1 101 Switching Protocols', 'upgrade', 'echo-proto/1'])
    expect(headers['x-plugin-cold-start']).toBe('1')

    const payload = randomBytes(2 * 1024 * 1024)
    const bodyStart = conn.received().length
    conn.socket.write(payload)
    await vi.waitFor(() => expect(conn.received().length - bodyStart).toBe(payload.length), WAIT)
    expect(conn.received().subarray(bodyStart).equals(payload)).toBe(true)
    expect(workerOf(t)).toMatchObject({ inFlight: 1, tunnels: 1 })

    conn.socket.end() // a half-close reaches the worker, whose echo ends in turn: the tunnel closes
    await conn.ended
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ inFlight: 0, tunnels: 0 }), WAIT)
  })

  it('never idle-reaps a worker under an open tunnel, and closes the tunnel when the worker stops, without waiting DRAIN_TIMEOUT_MS', async () => {
    const clock = createManualClock(Date.now())
    const t = await start({ IDLE_TIMEOUT_MS: '1000', DRAIN_TIMEOUT_MS: '3600000' }, { clock })
    await t.enable('acme', 'legacy-streams')
    const open = await openWebSocket(`${t.url}${WS}`)

    clock.advance(60_000)
    expect(workerOf(t)).toMatchObject({ state: 'ready', tunnels: 1 })
    open.ws.send('still here')
    expect((await open.received(1))[0]?.toString()).toBe('still here')

    // An hour of drain would outlast the test: the stop goes ahead, the worker says goodbye (1001) and exits.
    const exited = exitOf(t.spawned[0]!)
    expect(await t.admin('POST', '/orgs/acme/plugins/legacy-streams/stop')).toMatchObject({ status: 200 })
    expect((await open.closed).code).toBe(1001)
    await exited
    expect(t.gw.pool.list()).toEqual([])
  })

  it('closes a tunnel silent for longer than STREAM_IDLE_TIMEOUT_MS, and releases its worker', async () => {
    const t = await start({ STREAM_IDLE_TIMEOUT_MS: '200' })
    await t.enable('acme', 'legacy-streams')
    const conn = await rawConnection(portOf(t))
    conn.socket.write(`${upgradeHead(WS, 'echo-proto/1')}\r\n\r\n`)
    // The client says nothing after its request: the gateway ends the connection, after the switch.
    const received = (await conn.ended).toString('latin1')
    expect(parseAnswer(received).statusLine).toBe('HTTP/1.1 101 Switching Protocols')
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ state: 'ready', inFlight: 0, tunnels: 0 }), WAIT)
  })

  it('passes back a normal answer to an upgrade request, from a worker that does not switch, and closes the connection after it', async () => {
    const t = await start()
    await t.enable('acme', 'legacy-streams')
    await t.enable('acme', 'echo')

    const refused = parseAnswer(await rawExchange(portOf(t), upgradeHead(`${WS}?refuse=1`, 'websocket')))
    expect([refused.statusLine, refused.headers.connection, JSON.parse(refused.body)]).toEqual([
      'HTTP/1.1 403 Forbidden',
      'close',
      { error: { code: 'REFUSED', message: 'no switch for you' } },
    ])
    // Our SDK's runner serves no upgrades: the route answers as to any GET.
    const plain = parseAnswer(await rawExchange(portOf(t), upgradeHead('/orgs/acme/plugins/echo/items/7', 'websocket')))
    expect([plain.statusLine, plain.headers.connection, JSON.parse(plain.body)]).toMatchObject(['HTTP/1.1 200 OK', 'close', { id: '7' }])
    await vi.waitFor(
      () =>
        expect(t.gw.pool.list().map((w) => [w.pluginId, w.inFlight, w.tunnels])).toEqual([
          ['legacy-streams', 0, 0],
          ['echo', 0, 0],
        ]),
      WAIT,
    )
  })

  it('refuses upgrades to control endpoints, undeclared routes and unknown plugins with a JSON error on the raw socket, starting nothing', async () => {
    const t = await start()
    await t.enable('acme', 'legacy-streams')
    for (const [path, status, code] of [
      ['/orgs/acme/plugins/legacy-streams/health', '404 Not Found', 'ROUTE_NOT_FOUND'],
      ['/orgs/acme/plugins/legacy-streams/metadata', '404 Not Found', 'ROUTE_NOT_FOUND'],
      ['/orgs/acme/plugins/legacy-streams/%6detadata', '404 Not Found', 'ROUTE_NOT_FOUND'],
      ['/orgs/acme/plugins/legacy-streams/ws/../disable', '404 Not Found', 'ROUTE_NOT_FOUND'],
      ['/orgs/acme/plugins/legacy-streams/nope', '404 Not Found', 'ROUTE_NOT_FOUND'],
      ['/orgs/acme/plugins/ghost/ws', '404 Not Found', 'PLUGIN_NOT_FOUND'],
      ['/healthz', '200 OK', undefined],
    ] as const) {
      const answer = parseAnswer(await rawExchange(portOf(t), upgradeHead(path, 'websocket')))
      expect([path, answer.statusLine, answer.headers.connection]).toEqual([path, `HTTP/1.1 ${status}`, 'close'])
      expect([path, JSON.parse(answer.body).error?.code]).toEqual([path, code])
    }
    expect(t.spawned).toHaveLength(0)
  })

  it('refuses an upgrade request with a body (400) or one over MAX_BODY_BYTES (413), and one whose headers are too large (431)', async () => {
    const t = await start({ MAX_BODY_BYTES: '1024', MAX_HEADER_BYTES: '4096' })
    await t.enable('acme', 'legacy-streams')
    const withBody = parseAnswer(await rawExchange(portOf(t), upgradeHead(WS, 'websocket', 'content-length: 5'), 'hello'))
    expect([withBody.statusLine, JSON.parse(withBody.body).error.code]).toEqual(['HTTP/1.1 400 Bad Request', 'BAD_REQUEST'])
    const tooLarge = parseAnswer(await rawExchange(portOf(t), upgradeHead(WS, 'websocket', 'content-length: 4096')))
    expect([tooLarge.statusLine, JSON.parse(tooLarge.body).error.code]).toEqual(['HTTP/1.1 413 Payload Too Large', 'PAYLOAD_TOO_LARGE'])
    const bigHeaders = parseAnswer(await rawExchange(portOf(t), upgradeHead(WS, 'websocket', `x-big: ${'x'.repeat(8192)}`)))
    expect([bigHeaders.statusLine, JSON.parse(bigHeaders.body).error.code]).toEqual([
      'HTTP/1.1 431 Request Header Fields Too Large',
      'HEADERS_TOO_LARGE',
    ])
    expect(workerOf(t)).toMatchObject({ inFlight: 0, tunnels: 0 })
  })

  it('on shutdown, stops a worker with an open tunnel without waiting DRAIN_TIMEOUT_MS: the WebSocket gets the worker’s goodbye', async () => {
    const t = await start({ DRAIN_TIMEOUT_MS: '3600000' })
    await t.enable('acme', 'legacy-streams')
    const ws = await openWebSocket(`${t.url}${WS}`)
    const raw = await rawConnection(portOf(t))
    raw.socket.write(`${upgradeHead(WS, 'echo')}\r\n\r\n`)
    await vi.waitFor(() => expect(workerOf(t)?.tunnels).toBe(2), WAIT)

    await t.gw.close()
    expect((await ws.closed).code).toBe(1001)
    await raw.ended
    expect(t.spawned[0]?.exitCode).toBe(0)
  })
})

describe('upgrades and live plugin changes', () => {
  it('a rescan that rolls a plugin closes its open tunnels without waiting for them; the next upgrade reaches the new worker', async () => {
    const plugins = join(await tempDir(), 'plugins')
    const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'legacy-streams'), plugins, 'legacy-streams')
    const t = await startTestGateway({ pluginDirs: [plugins], env: { DRAIN_TIMEOUT_MS: '3600000' } })
    await t.enable('acme', 'legacy-streams')
    const old = await openWebSocket(`${t.url}${WS}`)
    const oldPid = old.response.headers['x-worker-pid']

    await appendFile(join(pluginDir, 'index.js'), '// changed\n')
    expect(await t.admin('POST', '/plugins/rescan')).toMatchObject({ status: 200, body: { changed: ['legacy-streams'] } })
    expect((await old.closed).code).toBe(1001) // the old worker's goodbye as it stops
    const next = await openWebSocket(`${t.url}${WS}`)
    expect(next.response.headers['x-worker-pid']).not.toBe(oldPid)
    next.ws.send('on the new code')
    expect((await next.received(1))[0]?.toString()).toBe('on the new code')
    expect(t.spawned).toHaveLength(2)
  })
})
