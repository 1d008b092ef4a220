import { once } from 'node:events'
import { connect } from 'node:net'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { parseAnswer, rawConnection, rawExchange, upgradeHead } from '../helpers/upgrade.js'

// Workers and clients that misbehave around upgrades and informational answers (fixture bad-upgrades):
// each costs its own exchange at most, never the gateway, a lease or a socket.

const WAIT = { timeout: 10_000, interval: 10 }
const BASE = '/orgs/acme/plugins/bad-upgrades'

const portOf = (t: TestGateway) => Number(new URL(t.url).port)
const workerOf = (t: TestGateway) => t.gw.pool.list().find((w) => w.pluginId === 'bad-upgrades')
const isHealthy = async (t: TestGateway) => (await fetch(`${t.url}/healthz`)).status === 200

describe.each([
  ['the fast path', 'true'],
  ['the Hono app', 'false'],
])('misbehaving upgrades through %s', (_entry, fastPath) => {
  const start = () => startTestGateway({ env: { PUBLIC_FAST_PATH: fastPath } })

  it('a worker that switches, then closes or writes bytes of no protocol: the client gets the switch, then the end; nothing is held', async () => {
    const t = await start()
    await t.enable('acme', 'bad-upgrades')
    for (const mode of ['close', 'garbage']) {
      const answer = await rawExchange(portOf(t), upgradeHead(`${BASE}/ws?mode=${mode}`, 'raw'))
      expect([mode, parseAnswer(answer).statusLine]).toEqual([mode, 'HTTP/1.1 101 Switching Protocols'])
    }
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ state: 'ready', inFlight: 0, tunnels: 0 }), WAIT)
    expect(await isHealthy(t)).toBe(true)
  })

  it('a worker that exits on an upgrade request: a coded 502 on the raw socket, the gateway goes on', async () => {
    const t = await start()
    await t.enable('acme', 'bad-upgrades')
    const answer = parseAnswer(await rawExchange(portOf(t), upgradeHead(`${BASE}/ws?mode=exit`, 'raw')))
    expect([answer.statusLine, JSON.parse(answer.body).error.code]).toEqual(['HTTP/1.1 502 Bad Gateway', 'UPSTREAM_ERROR'])
    expect(await isHealthy(t)).toBe(true)
  })

  it('a worker that answers a plain request with a switch: a coded 502, nothing tunnelled', async () => {
    const t = await start()
    await t.enable('acme', 'bad-upgrades')
    const res = await fetch(`${t.url}${BASE}/plain?mode=switch`)
    expect(res.status).toBe(502)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UPSTREAM_ERROR')
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ inFlight: 0, tunnels: 0 }), WAIT)
    expect(await isHealthy(t)).toBe(true)
  })

  it('a 103 whose link is no link is dropped; the answer after it passes', async () => {
    const t = await start()
    await t.enable('acme', 'bad-upgrades')
    const res = await fetch(`${t.url}${BASE}/plain?mode=bad-hints`)
    expect([res.status, ((await res.json()) as { plain: boolean }).plain]).toEqual([200, true])
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ inFlight: 0, tunnels: 0 }), WAIT)
  })

  it('an upgrade pipelined behind a request on one connection is answered after that request, then tunnelled', async () => {
    const t = await start()
    await t.enable('acme', 'bad-upgrades')
    const conn = await rawConnection(portOf(t))
    // One write: Node parses the upgrade while the first request's answer is still to come.
    conn.socket.write(`GET ${BASE}/plain HTTP/1.1\r\nhost: gw.test\r\n\r\n${upgradeHead(`${BASE}/ws`, 'raw')}\r\n\r\nsent with the head;`)
    await vi.waitFor(() => expect(conn.received().toString('latin1')).toContain('sent with the head;'), WAIT)
    const text = conn.received().toString('latin1')
    const switchAt = text.indexOf('HTTP/1.1 101 Switching Protocols')
    expect([text.startsWith('HTTP/1.1 200 OK'), switchAt > text.indexOf('"plain":true')]).toEqual([true, true])
    expect(workerOf(t)).toMatchObject({ inFlight: 1, tunnels: 1 })
    conn.socket.end()
    await conn.ended
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ inFlight: 0, tunnels: 0 }), WAIT)
    expect(await isHealthy(t)).toBe(true)
  })

  it('a client that goes away right after its upgrade request (cold start): the worker starts, nothing is held', async () => {
    const t = await start()
    await t.enable('acme', 'bad-upgrades')
    const conn = await rawConnection(portOf(t))
    conn.socket.end(`${upgradeHead(`${BASE}/ws`, 'raw')}\r\n\r\n`)
    await conn.ended
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ state: 'ready', inFlight: 0, tunnels: 0 }), WAIT)
    expect(await isHealthy(t)).toBe(true)
  })

  it('a worker that half-closes a tunnel after more than the client takes, to a client that never reads: ended after STREAM_IDLE_TIMEOUT_MS, its lease released', async () => {
    const t = await startTestGateway({ env: { PUBLIC_FAST_PATH: fastPath, STREAM_IDLE_TIMEOUT_MS: '200' } })
    await t.enable('acme', 'bad-upgrades')
    // Never read (no 'data' listener): the worker's 16 MiB back up in the gateway, its end behind them.
    const client = connect(portOf(t), '127.0.0.1')
    onTestFinished(() => void client.destroy())
    const closed = once(client, 'close')
    client.on('error', () => {}) // reset by the gateway that ends the tunnel
    client.write(`${upgradeHead(`${BASE}/ws?mode=half-close&mib=16`, 'raw')}\r\n\r\n`)
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ inFlight: 1, tunnels: 1 }), WAIT)
    await vi.waitFor(() => expect(workerOf(t)).toMatchObject({ state: 'ready', inFlight: 0, tunnels: 0 }), WAIT)
    client.resume() // reads what reached it, then sees the end the gateway sent
    await closed
    expect(await isHealthy(t)).toBe(true)
  })
})
