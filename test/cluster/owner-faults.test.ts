// The owner of a worker fails while other gateways send it traffic (README: Several gateways on
// one database): silent but alive (SIGSTOP), or dead with a request in flight (SIGKILL).
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { createServer } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { type Gate, startGate } from '../helpers/gate.js'
import { isRunning, tempDir } from '../helpers/gateway.js'
import { enable, type GatewayProcess, startGatewayProcess, startWorker, workersOf } from '../helpers/gateway-process.js'
import { listeningPorts } from '../helpers/process.js'
import { SECRET, startCluster } from './harness.js'

const WAIT = { timeout: 20_000, interval: 50 }

interface ErrorBody {
  error: { code: string; message: string }
}

/** A request's outcome: 200 with the answering worker's pid, a coded error, or how the connection failed. */
async function outcome(url: string, init?: RequestInit): Promise<{ status: number; pid?: number; code?: string } | { failed: string }> {
  try {
    const res = await fetch(url, init)
    const body = (await res.json()) as { pid?: number } & Partial<ErrorBody>
    return res.status === 200 ? { status: 200, pid: body.pid ?? -1 } : { status: res.status, code: body.error?.code ?? '?' }
  } catch (err) {
    return { failed: (err as { cause?: { code?: string } }).cause?.code ?? String(err) }
  }
}

/** A TCP relay to the port `state.target`; it resets the next `state.resets` connections once they send. */
async function startBlipRelay() {
  const state = { target: 0, resets: 0, reset: 0 }
  const sockets = new Set<Socket>()
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  }
  const server = createNetServer((client) => {
    track(client)
    client.on('error', () => client.destroy())
    if (state.resets > 0) {
      state.resets--
      client.once('data', () => {
        state.reset++
        client.resetAndDestroy()
      })
      return
    }
    const upstream = connect(state.target, '127.0.0.1')
    track(upstream)
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.pipe(upstream).pipe(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

/** Sends raw HTTP/1.1 bytes to url's port and resolves with everything answered until the server closes. */
async function rawExchange(url: string, request: string): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  onTestFinished(() => void socket.destroy())
  await once(socket, 'connect')
  let answer = ''
  socket.setEncoding('utf8').on('data', (d: string) => (answer += d))
  socket.on('error', () => {})
  socket.write(request)
  await once(socket, 'close')
  return answer
}

/**
 * One connection to a lone gateway: a request held in its worker keeps it busy through the shutdown's
 * sweep of idle connections; then SIGTERM, and `requestLine` sent behind the held one (pipelined) lands
 * on a gateway that has begun draining. Both carry `headers`. Resolves with the answer to the second.
 */
async function sentWhileDraining(owner: GatewayProcess, gate: Gate, headers: string, requestLine: string) {
  const socket = connect(Number(new URL(owner.url).port), '127.0.0.1')
  onTestFinished(() => void socket.destroy())
  await once(socket, 'connect')
  let answer = ''
  socket.setEncoding('utf8').on('data', (d: string) => (answer += d))
  const ended = once(socket, 'end')
  socket.write(`GET /orgs/acme/plugins/gated/hold/busy HTTP/1.1\r\n${headers}\r\n`)
  await gate.arrived('busy')
  owner.proc.child.kill('SIGTERM')
  await vi.waitFor(() => expect(listeningPorts(owner.proc.child.pid as number)).toEqual([]), WAIT) // draining
  socket.write(`${requestLine} HTTP/1.1\r\n${headers}\r\n`)
  gate.open('busy')
  await ended
  const [, second = ''] = answer.split(/(?=HTTP\/1\.1 )/)
  const [head = '', body = ''] = second.split('\r\n\r\n')
  return { head, body }
}

describe('an owner gateway that fails under load', () => {
  it('is asked again at once when it heartbeats after its connection failed (a reset), not waited out', async () => {
    const relay = await startBlipRelay()
    const dir = await tempDir()
    const env = (id: string) => ({ CLUSTER_SECRET: SECRET, GATEWAY_ID: id, LEASE_TTL_MS: '3000', HEARTBEAT_MS: '250' })
    // Peers reach gw0 through the relay (its INTERNAL_URL), as through a network.
    const owner = await startGatewayProcess(dir, { ...env('gw0'), INTERNAL_URL: relay.url })
    relay.state.target = Number(new URL(owner.url).port)
    const peer = await startGatewayProcess(dir, env('gw1'))
    await enable(owner.url, 'acme', 'echo')
    const first = await fetch(`${owner.url}/orgs/acme/plugins/echo/items/1`)
    expect(first.status).toBe(200) // gw0 owns the key and runs its worker
    await first.body?.cancel()
    relay.state.resets = 1 // the next connection to the owner is reset
    const res = await fetch(`${peer.url}/orgs/acme/plugins/echo/items/2`)
    expect([relay.state.reset, res.status, await res.json()]).toEqual([1, 200, { prefix: 'echo', id: '2', query: {} }])
  })

  it('answers a request a peer forwarded while it starts the worker, after the start, as it answers its own', async () => {
    const gate = await startGate()
    // The peer hop waits for the owner's start (START_TIMEOUT_MS), not only for the plugin (UPSTREAM_TIMEOUT_MS).
    const { gateways } = await startCluster(2, { GATE_URL: gate.url, UPSTREAM_TIMEOUT_MS: '300', START_TIMEOUT_MS: '20000' })
    const [owner, peer] = [gateways[0]!, gateways[1]!]
    await enable(owner.url, 'acme', 'gated', { enabled: true, config: { startGate: 'start' } })
    const direct = fetch(`${owner.url}/orgs/acme/plugins/gated/whoami`) // takes the lease; its start is held
    await gate.arrived('start')
    const viaPeer = fetch(`${peer.url}/orgs/acme/plugins/gated/whoami`)
    // Held past UPSTREAM_TIMEOUT_MS (a condition, not a measurement): a 504 would have come by then.
    await Promise.race([viaPeer, delay(1_000)])
    gate.open('start')
    expect((await direct).status).toBe(200)
    const res = await viaPeer
    expect([res.status, await res.text()]).toEqual([200, expect.stringContaining('"orgId":"acme"')])
  })

  it('is replaced once its lease lapses when it is SIGSTOPped (alive, silent); resumed, it stops its worker', async () => {
    const { gateways, repo, instances, allWorkers } = await startCluster(3)
    const [owner, a, b] = [gateways[0]!, gateways[1]!, gateways[2]!]
    const oldPid = await startWorker(owner.url, 'acme', 'gated', '/whoami')
    const before = await repo.lease('acme', 'gated')
    expect(before?.ownerGatewayId).toBe('gw0')

    // Load: four clients keep sending through the other two gateways, which forward to the owner.
    const outcomes: Array<Awaited<ReturnType<typeof outcome>>> = []
    let loading = true
    onTestFinished(() => {
      loading = false
    })
    const load = Promise.all(
      [a, b, a, b].map(async (g, client) => {
        for (let i = 0; loading; i++) outcomes.push(await outcome(`${g.url}/orgs/acme/plugins/gated/whoami?client=${client}&i=${i}`))
      }),
    )
    await vi.waitFor(() => expect(outcomes.length).toBeGreaterThan(20), WAIT)

    const ownerPid = owner.proc.child.pid as number
    process.kill(ownerPid, 'SIGSTOP')
    const resume = () => void process.kill(ownerPid, 'SIGCONT')
    onTestFinished(resume) // a stopped process cannot act on the teardown's SIGTERM
    // Its lease lapses and a request after that is served by a new owner's worker, while the
    // owner's own (still alive) worker is never reached.
    const served = await vi.waitFor(async () => {
      const o = await outcome(`${a.url}/orgs/acme/plugins/gated/whoami?probe`, { signal: AbortSignal.timeout(2_000) })
      expect(o).toMatchObject({ status: 200 })
      return o as { status: number; pid: number }
    }, WAIT)
    const after = await repo.lease('acme', 'gated')
    expect(after?.ownerGatewayId).not.toBe('gw0')
    expect(after?.generation).toBeGreaterThan(before?.generation ?? Infinity)
    const newOwner = gateways[Number(after?.ownerGatewayId?.slice('gw'.length))]! // GATEWAY_ID gw<i>
    const [replacement] = await workersOf(newOwner.url)
    expect(replacement?.pid).not.toBe(oldPid)
    expect(isRunning(oldPid)).toBe(true) // the silent owner's worker lives on meanwhile

    resume()
    // Back, it finds its lease gone and stops its worker; the key's row stays the new owner's.
    await vi.waitFor(() => expect(isRunning(oldPid)).toBe(false), WAIT)
    loading = false
    await load
    expect((await allWorkers()).map((w) => w.pid)).toEqual([replacement?.pid])
    expect(await repo.lease('acme', 'gated')).toMatchObject({ ownerGatewayId: after?.ownerGatewayId, generation: after?.generation })
    expect(await instances.get('acme', 'gated')).toMatchObject({ runtimeState: 'ready', pid: replacement?.pid })
    // Every request was answered: served, or refused with a coded error; none lost on the wire.
    expect(outcomes.filter((o) => !('status' in o) || (o.status !== 200 && o.code === undefined))).toEqual([])
    expect(served.pid).toBe(replacement?.pid)
  })

  it('sends a bodyless GET in flight when its owner dies again, to the new owner; a POST (with a body or not) gets a coded 502', async () => {
    const gate = await startGate()
    const { gateways, repo, allWorkers } = await startCluster(2, { GATE_URL: gate.url })
    const [owner, other] = [gateways[0]!, gateways[1]!]
    const oldPid = await startWorker(owner.url, 'acme', 'gated', '/whoami')
    const get = outcome(`${other.url}/orgs/acme/plugins/gated/hold/get`)
    const post = outcome(`${other.url}/orgs/acme/plugins/gated/hold/post`, { method: 'POST', body: '{"n":1}' })
    // A POST without a body (no content-length, no transfer-encoding: fetch would send a length of 0).
    const trigger = rawExchange(other.url, 'POST /orgs/acme/plugins/gated/hold/trigger HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n')
    const [first] = await gate.arrived('get') // forwarded to the owner, and held in its worker
    await gate.arrived('post')
    await gate.arrived('trigger')
    expect(Number(first?.get('pid'))).toBe(oldPid)

    owner.proc.child.kill('SIGKILL')
    await owner.proc.exited
    expect(await post).toEqual({ status: 502, code: 'UPSTREAM_ERROR' }) // its body was already streamed to the dead owner
    // The dead owner's worker may have run it: not idempotent, so not run a second time.
    expect((await trigger).split('\r\n')[0]).toBe('HTTP/1.1 502 Bad Gateway')
    const [, again] = await gate.arrived('get', 2) // sent again once the lease lapsed: a new worker holds it now
    expect(Number(again?.get('pid'))).not.toBe(oldPid)
    gate.open('get')
    const answered = await get
    expect(answered).toEqual({ status: 200, pid: Number(again?.get('pid')) })
    expect((await repo.lease('acme', 'gated'))?.ownerGatewayId).toBe('gw1')
    expect((await allWorkers()).map((w) => w.pid)).toEqual([Number(again?.get('pid'))])
    expect(gate.arrivals('trigger')).toHaveLength(1)
    await vi.waitFor(() => expect(isRunning(oldPid)).toBe(false), WAIT)
  })

  it('gives its keys back as it starts to drain: a peer serves the key (a new generation) while its request in flight finishes', async () => {
    const gate = await startGate()
    const { gateways } = await startCluster(2, { GATE_URL: gate.url })
    const [owner, peer] = [gateways[0]!, gateways[1]!]
    const oldPid = await startWorker(owner.url, 'acme', 'gated', '/whoami')
    const held = fetch(`${owner.url}/orgs/acme/plugins/gated/hold/busy`)
    await gate.arrived('busy')
    owner.proc.child.kill('SIGTERM')
    await vi.waitFor(() => expect(listeningPorts(owner.proc.child.pid as number)).toEqual([]), WAIT) // draining

    const res = await fetch(`${peer.url}/orgs/acme/plugins/gated/whoami`)
    const body = (await res.json()) as { pid?: number }
    gate.open('busy')
    expect((await held).status).toBe(200) // the request in flight finished on the old worker
    expect([res.status, body.pid === oldPid]).toEqual([200, false])
  })

  it('takes no key while it shuts down: a client request for a key nobody owns is refused, its lease left free', async () => {
    const gate = await startGate()
    const { gateways, repo } = await startCluster(1, { GATE_URL: gate.url })
    const owner = gateways[0]!
    await startWorker(owner.url, 'acme', 'gated', '/whoami')
    await enable(owner.url, 'acme', 'echo')
    const { head, body } = await sentWhileDraining(owner, gate, 'host: gw\r\n', 'GET /orgs/acme/plugins/echo/items/1') // a client's
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable')
    expect(JSON.parse(body)).toEqual({ error: { code: 'SHUTTING_DOWN', message: 'gateway is shutting down' } })
    expect(await repo.lease('acme', 'echo')).toBeUndefined()
  })

  it('answers a request forwarded to it while it shuts down with the draining mark, which a peer does not relay', async () => {
    const gate = await startGate()
    const { gateways } = await startCluster(1, { GATE_URL: gate.url })
    const owner = gateways[0]!
    await startWorker(owner.url, 'acme', 'gated', '/whoami')
    // As a peer's connection: both requests carry the cluster headers.
    const peerHeaders = `host: peer\r\nx-plugin-gateway-hop: 1\r\nx-plugin-gateway-secret: ${SECRET}\r\nx-plugin-gateway-generation: 1\r\n`
    const { head, body } = await sentWhileDraining(owner, gate, peerHeaders, 'GET /orgs/acme/plugins/gated/whoami')
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable')
    expect(head.toLowerCase()).toContain('\r\nx-plugin-gateway-draining: 1')
    expect(JSON.parse(body)).toEqual({ error: { code: 'SHUTTING_DOWN', message: 'gateway is shutting down' } })
    expect(await owner.proc.exited).toEqual({ code: 0, signal: null })
  })

  it('places the key again, instead of relaying the refusal, when the owner it forwards to is shutting down', async () => {
    const { gateways, repo, allWorkers } = await startCluster(1)
    const gw = gateways[0]!
    await enable(gw.url, 'acme', 'gated')
    // The test plays a peer that owns the key and is shutting down: its worker has stopped (the lease
    // is given back) and it refuses the forwarded request with the draining mark.
    const forwarded: Array<string | string[] | undefined> = []
    const peer = createServer((req, res) => {
      forwarded.push(req.headers['x-plugin-gateway-secret'])
      void repo.releaseLease('gw-draining', { orgId: 'acme', pluginId: 'gated', generation: held.generation }).then(() => {
        res.writeHead(503, { 'content-type': 'application/json', 'x-plugin-gateway-draining': '1', 'retry-after': '1' })
        res.end(JSON.stringify({ error: { code: 'SHUTTING_DOWN', message: 'gateway is shutting down' } }))
      })
    })
    peer.listen(0, '127.0.0.1')
    await once(peer, 'listening')
    onTestFinished(() => new Promise<void>((resolve) => peer.close(() => resolve())))
    await repo.heartbeat('gw-draining', `http://127.0.0.1:${(peer.address() as AddressInfo).port}`)
    const held = await repo.acquireLease('acme', 'gated', 'gw-draining', 60_000)

    // A body was streamed to the owner already: the client is told to come back.
    const post = await fetch(`${gw.url}/orgs/acme/plugins/gated/hold/x`, { method: 'POST', body: 'sent once' })
    expect([post.status, post.headers.get('retry-after'), await post.json()]).toEqual([
      503,
      '1',
      { error: { code: 'WORKER_UNAVAILABLE', message: 'the owner of acme/gated is shutting down' } },
    ])
    // Without one, the request goes where the key went: here, once the lease was given back.
    const res = await fetch(`${gw.url}/orgs/acme/plugins/gated/whoami`)
    expect([res.status, res.headers.get('x-plugin-cold-start')]).toEqual([200, '1']) // started here instead
    const [worker] = await allWorkers()
    expect(await res.json()).toMatchObject({ pid: worker?.pid })
    expect(forwarded).toEqual([SECRET, SECRET]) // both asked the owner first
    expect(await repo.lease('acme', 'gated')).toMatchObject({ ownerGatewayId: 'gw0', generation: held.generation + 1 })
  })
})
