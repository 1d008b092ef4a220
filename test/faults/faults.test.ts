import { once } from 'node:events'
import { createServer, request as httpRequest } from 'node:http'
import { cp } from 'node:fs/promises'
import { type AddressInfo, connect } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { sampleValue } from '../observability/prom-text.js'
import { startGate } from '../helpers/gate.js'
import { createManualClock } from '../helpers/manual-clock.js'
import { EXAMPLES_DIR, exitOf, isRunning, startTestGateway, tempDir, warmUp } from '../helpers/gateway.js'
import { startGatewayProcess, startWorker } from '../helpers/gateway-process.js'

const WAIT = { timeout: 10_000, interval: 10 }
const json = async (res: Response) => (await res.json()) as { error: { code: string; message: string } }

describe('faulty plugins', () => {
  it('crash during start → 503 with Retry-After, state error, then backoff before the next attempt', async () => {
    const clock = createManualClock(Date.now())
    const t = await startTestGateway({ clock, env: { RESTART_BACKOFF_MS: '60000', RESTART_BACKOFF_MAX_MS: '600000' } })
    await t.enable('acme', 'crash-on-start')

    const first = await fetch(`${t.url}/orgs/acme/plugins/crash-on-start/anything`)
    expect(first.status).toBe(503)
    expect(first.headers.get('retry-after')).toBe('60')
    expect((await json(first)).error.code).toBe('WORKER_START_FAILED')
    const row = await t.instanceRow('acme', 'crash-on-start')
    expect(row?.runtimeState).toBe('error')
    expect(row?.lastError).toMatch(
      /exited during start \(code 1\): plugin-runner: init failed: START_FAILED: onStart threw: crash-on-start: refusing to start$/,
    )

    const during = await fetch(`${t.url}/orgs/acme/plugins/crash-on-start/anything`)
    expect(during.status).toBe(503)
    expect(Number(during.headers.get('retry-after'))).toBeGreaterThan(0)
    await during.body?.cancel()
    expect(t.spawned).toHaveLength(1) // no new attempt inside the backoff

    clock.advance(60_000)
    const after = await fetch(`${t.url}/orgs/acme/plugins/crash-on-start/anything`)
    expect(after.status).toBe(503)
    expect(after.headers.get('retry-after')).toBe('120') // exponential
    await after.body?.cancel()
    expect(t.spawned).toHaveLength(2)
  })

  it('dies right after ready, while its metadata is asked → a failed start with its backoff; the metadata is not blamed', async () => {
    const t = await startTestGateway({ env: { RESTART_BACKOFF_MS: '60000', RESTART_BACKOFF_MAX_MS: '600000', PREWARM_POOL_SIZE: '0' } })
    await t.enable('acme', 'dies-after-ready')
    const first = await fetch(`${t.url}/orgs/acme/plugins/dies-after-ready/ping`)
    expect([first.status, (await json(first)).error.code, first.headers.get('retry-after')]).toEqual([503, 'WORKER_START_FAILED', '60'])
    expect((await t.instanceRow('acme', 'dies-after-ready'))?.lastError).toMatch(/exited during start \(code 3\)/)
    // Every org's metadata: still to be fetched from a worker that lives, not marked an error.
    expect((await t.pluginRow('dies-after-ready'))?.metadataState).toBe('missing')
    const second = await fetch(`${t.url}/orgs/acme/plugins/dies-after-ready/ping`)
    expect([second.status, (await json(second)).error.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect(t.spawned).toHaveLength(1) // the backoff holds
  })

  it('why a worker died during start goes to the operator (lastError, admin API), not to a public client', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'crash-on-start')
    const res = await fetch(`${t.url}/orgs/acme/plugins/crash-on-start/anything`)
    const body = await json(res)
    expect([res.status, body.error.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect(body.error.message).not.toMatch(/refusing to start|plugin-runner|code 1/)
    expect((await t.instanceRow('acme', 'crash-on-start'))?.lastError).toContain('crash-on-start: refusing to start')
    const during = await json(await fetch(`${t.url}/orgs/acme/plugins/crash-on-start/anything`)) // the backoff's answer
    expect([during.error.code, during.error.message]).toEqual(['WORKER_START_FAILED', body.error.message])
    const admin = await t.admin('POST', '/orgs/acme/plugins/crash-on-start/start')
    expect(admin).toMatchObject({ status: 503, body: { error: { code: 'WORKER_START_FAILED' } } })
    expect(admin.body.error.message).toContain('crash-on-start: refusing to start')
  })

  it("an invalid plugin's reason goes to the operator (GET /admin/plugins), not to a public client", async () => {
    const twice = await tempDir()
    await cp(join(EXAMPLES_DIR, 'echo'), join(twice, 'echo'), { recursive: true })
    const t = await startTestGateway({ pluginDirs: [EXAMPLES_DIR, twice] }) // the same id twice: both invalid
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    const body = await json(res)
    expect([res.status, body.error.code]).toEqual([404, 'PLUGIN_INVALID'])
    expect(body.error.message).not.toContain(twice)
    const listed = (await t.admin('GET', '/plugins')).body.plugins.find((p: { id: string }) => p.id === 'echo')
    expect(listed).toMatchObject({ valid: false, error: expect.stringContaining(twice) })
  })

  it('a worker that writes a line that is not JSON to its IPC channel is killed; the gateway serves on', async () => {
    const gw = await startGatewayProcess(await tempDir())
    const first = await startWorker(gw.url, 'acme', 'ipc-garbage', '/ping')
    const res = await fetch(`${gw.url}/orgs/acme/plugins/ipc-garbage/garbage`)
    expect([res.status, (await json(res)).error.code]).toEqual([502, 'UPSTREAM_ERROR'])
    await vi.waitFor(() => expect(isRunning(first)).toBe(false), WAIT)
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200)
    const next = await fetch(`${gw.url}/orgs/acme/plugins/ipc-garbage/ping`)
    expect(next.status).toBe(200)
    expect(((await next.json()) as { pid: number }).pid).not.toBe(first)
  })

  it('a worker that floods its IPC channel is killed before the gateway buffers much of it', async () => {
    const gw = await startGatewayProcess(await tempDir(), { UPSTREAM_TIMEOUT_MS: '5000' })
    const pid = await startWorker(gw.url, 'acme', 'ipc-garbage', '/ping')
    const res = await fetch(`${gw.url}/orgs/acme/plugins/ipc-garbage/flood`)
    expect([res.status, (await json(res)).error.code]).toEqual([502, 'UPSTREAM_ERROR']) // not the 504 of a worker left alone
    await vi.waitFor(() => expect(isRunning(pid)).toBe(false), WAIT)
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200)
  })

  it('a worker that passes a handle over its IPC channel is killed, and the gateway keeps nothing of it open', async () => {
    const gw = await startGatewayProcess(await tempDir())
    const pid = await startWorker(gw.url, 'acme', 'ipc-garbage', '/ping')
    const { port } = (await (await fetch(`${gw.url}/orgs/acme/plugins/ipc-garbage/listen`)).json()) as { port: number }
    const passed = await fetch(`${gw.url}/orgs/acme/plugins/ipc-garbage/pass`)
    expect([passed.status, (await json(passed)).error.code]).toEqual([502, 'UPSTREAM_ERROR'])
    await vi.waitFor(() => expect(isRunning(pid)).toBe(false), WAIT)
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve('connected')
      })
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
    })
    expect(refused).toBe('ECONNREFUSED') // the gateway did not keep listening on the worker's server
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200)
  })

  it('a control answer larger than the gateway reads (32 MiB) is refused with 502, not buffered whole', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'big-answer')
    const call = (bytes: number) => t.admin('POST', '/orgs/acme/plugins/big-answer/mcp/call', { toolName: 'big', arguments: { bytes } })
    const fits = await call(1024 * 1024)
    expect([fits.status, fits.body.content[0].text.length]).toEqual([200, 1024 * 1024])
    const tooLarge = await call(33 * 1024 * 1024)
    expect([tooLarge.status, tooLarge.body.error.code]).toEqual([502, 'UPSTREAM_ERROR'])
    expect(tooLarge.body.error.message).toContain('larger than')
    expect((await call(8)).status).toBe(200) // the worker serves on
  })

  it('never ready → 504 after START_TIMEOUT_MS and the process is killed', async () => {
    const t = await startTestGateway({ env: { START_TIMEOUT_MS: '400' } })
    await t.enable('acme', 'never-ready')
    const res = await fetch(`${t.url}/orgs/acme/plugins/never-ready/anything`)
    expect(res.status).toBe(504)
    expect((await json(res)).error.code).toBe('WORKER_START_TIMEOUT')
    expect((await exitOf(t.spawned[0]!)).signal).toBe('SIGKILL')
    expect(await t.instanceRow('acme', 'never-ready')).toMatchObject({ runtimeState: 'error', pid: null })
  })

  it('crash in the middle of a request → 502 for it; the next request gets a new worker', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'crash-mid-request')
    await (await fetch(`${t.url}/orgs/acme/plugins/crash-mid-request/ping`)).body?.cancel()

    const crashed = await fetch(`${t.url}/orgs/acme/plugins/crash-mid-request/crash`)
    expect(crashed.status).toBe(502)
    expect((await json(crashed)).error.code).toBe('UPSTREAM_ERROR')
    await exitOf(t.spawned[0]!)
    const row = await t.instanceRow('acme', 'crash-mid-request')
    expect(row).toMatchObject({ runtimeState: 'error', restarts: 1 })
    expect(row?.lastError).toMatch(/exited unexpectedly \(code 1\)/)

    const next = await fetch(`${t.url}/orgs/acme/plugins/crash-mid-request/ping`)
    expect(next.status).toBe(200)
    expect(next.headers.get('x-plugin-cold-start')).toBe('1')
    await next.body?.cancel()
    expect(t.spawned).toHaveLength(2)
  })

  it('slow route → 504 after UPSTREAM_TIMEOUT_MS while the worker keeps serving others', async () => {
    const gate = await startGate()
    // Every proxied request has this bound: it leaves the fast ones ample room on a loaded machine.
    const t = await startTestGateway({ env: { UPSTREAM_TIMEOUT_MS: '2000', GATE_URL: gate.url } })
    await t.enable('acme', 'gated')
    const slow = fetch(`${t.url}/orgs/acme/plugins/gated/hold/never`) // held until the test ends
    await gate.arrived('never')
    const fast = await fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    expect([fast.status, t.gw.pool.list()[0]?.inFlight]).toEqual([200, 1])
    await fast.body?.cancel()
    const res = await slow
    expect([res.status, await res.json()]).toEqual([
      504,
      { error: { code: 'UPSTREAM_TIMEOUT', message: 'plugin did not answer within 2000 ms' } },
    ])
    const again = await fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    expect(again.status).toBe(200)
    await again.body?.cancel()
    expect(t.spawned).toHaveLength(1)
  })

  it.each([
    ['a prewarmed worker (the default)', {}, true],
    ['a freshly spawned one', { PREWARM_POOL_SIZE: '0' }, false],
  ])('memory growth → the heap limit ends %s, lastError says so, the next request restarts it', async (_name, env, prewarmed) => {
    const t = await startTestGateway({ env: { WORKER_MAX_OLD_SPACE_MB: '32', ...env } })
    if (prewarmed) await warmUp(t, 'memory-hog', '/grow?mb=1')
    const before = t.spawned.length
    await t.enable('acme', 'memory-hog')
    const grown = await fetch(`${t.url}/orgs/acme/plugins/memory-hog/grow?mb=1`)
    const { heapLimit } = (await grown.json()) as { heapLimit: number }
    // 32 MB of old space plus V8's young generation (48 MB on Node 20 and 22, 192 MB on Node 24); unlimited is GBs.
    expect(heapLimit).toBeLessThan(512 * 1024 * 1024)
    const worker = t.spawned[before]
    expect(worker?.spawnargs).toContain('--max-old-space-size=32')
    expect(worker?.spawnargs.includes('--prewarm')).toBe(prewarmed)

    const exited = exitOf(worker!)
    const leak = await fetch(`${t.url}/orgs/acme/plugins/memory-hog/leak`, { method: 'POST' })
    await leak.body?.cancel()
    const exit = await exited
    expect(exit.code !== 0 || exit.signal !== null).toBe(true)
    await t.gw.flush()
    const row = await t.instanceRow('acme', 'memory-hog')
    expect(row?.runtimeState).toBe('error')
    expect(row?.lastError).toMatch(/out of memory \(heap limit 32 MB\)/)

    const next = await fetch(`${t.url}/orgs/acme/plugins/memory-hog/grow?mb=1`)
    expect(next.status).toBe(200)
    await next.body?.cancel()
    expect(t.spawned).toHaveLength(before + 2)
  })
})

describe('capacity', () => {
  it('evicts the least recently used idle worker at MAX_WORKERS', async () => {
    const t = await startTestGateway({ env: { MAX_WORKERS: '2' } })
    for (const org of ['a', 'b', 'c']) await t.enable(org, 'echo')
    for (const org of ['a', 'b']) await (await fetch(`${t.url}/orgs/${org}/plugins/echo/items/1`)).body?.cancel()
    await (await fetch(`${t.url}/orgs/a/plugins/echo/items/1`)).body?.cancel() // b is now the LRU

    const evicted = exitOf(t.spawned[1]!)
    const res = await fetch(`${t.url}/orgs/c/plugins/echo/items/1`)
    expect(res.status).toBe(200)
    await res.body?.cancel()
    await evicted
    await t.gw.pool.stop('b', 'echo') // joins the eviction until its state is written
    const live = (await t.admin('GET', '/workers')).body.workers.map((w: { orgId: string }) => w.orgId).sort()
    expect(live).toEqual(['a', 'c'])
    expect((await t.instanceRow('b', 'echo'))?.runtimeState).toBe('stopped')
  })

  it('answers 503 with Retry-After when MAX_WORKERS is reached and no worker is idle', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { MAX_WORKERS: '1', GATE_URL: gate.url } })
    await t.enable('a', 'gated')
    await t.enable('b', 'echo')
    // Busy until the test ends, so the worker is never idle (evictable) meanwhile.
    const busy = fetch(`${t.url}/orgs/a/plugins/gated/hold/busy`)
    await gate.arrived('busy')
    expect(t.gw.pool.list().map((w) => [w.orgId, w.inFlight])).toEqual([['a', 1]])

    const refused = await fetch(`${t.url}/orgs/b/plugins/echo/items/1`)
    expect([refused.status, refused.headers.get('retry-after'), await refused.json()]).toEqual([
      503,
      '1',
      { error: { code: 'CAPACITY_EXHAUSTED', message: 'MAX_WORKERS reached and no worker is idle' } },
    ])
    expect(t.gw.pool.list().map((w) => [w.orgId, w.inFlight])).toEqual([['a', 1]])
    gate.open('busy')
    expect((await busy).status).toBe(200)
    expect(t.spawned).toHaveLength(1)
  })

  it('answers 503 CAPACITY_EXHAUSTED with Retry-After when no port of PORT_RANGE is free, and the key earns no restart backoff', async () => {
    // The host is full, not the plugin at fault: the next request once a port is free starts it.
    const holder = createServer()
    holder.listen(0, '127.0.0.1')
    await once(holder, 'listening')
    const port = (holder.address() as AddressInfo).port
    onTestFinished(() => new Promise<void>((resolve) => holder.close(() => resolve())))
    const t = await startTestGateway({ env: { PORT_RANGE: `${port}-${port}`, RESTART_BACKOFF_MS: '60000' } })
    await t.enable('acme', 'echo')

    const refused = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    expect([refused.status, refused.headers.get('retry-after'), (await json(refused)).error.code]).toEqual([503, '5', 'CAPACITY_EXHAUSTED'])
    expect(t.gw.pool.list()).toEqual([])
    expect((await t.instanceRow('acme', 'echo'))?.runtimeState).toBe('error')

    await new Promise<void>((resolve) => holder.close(() => resolve()))
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)
    expect(res.status).toBe(200)
    await res.body?.cancel()
    expect(t.gw.pool.list().map((w) => [w.orgId, w.port])).toEqual([['acme', port]])
  })

  it('caps pending requests per org with 429 so one tenant cannot starve the others', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { MAX_PENDING_PER_ORG: '5', GATE_URL: gate.url } })
    await t.enable('storm', 'gated', { startGate: 'storm' })
    await t.enable('calm', 'echo')
    const answers: Array<[number, string | null, unknown]> = []
    const storm = Array.from({ length: 8 }, async () => {
      const res = await fetch(`${t.url}/orgs/storm/plugins/gated/whoami`)
      answers.push([res.status, res.headers.get('retry-after'), await res.json()])
    })
    await gate.arrived('storm') // the start is held: five requests wait for it, three are refused at once
    await vi.waitFor(() => expect(answers).toHaveLength(3), WAIT)
    const orgQueueFull = {
      error: { code: 'ORG_QUEUE_FULL', message: 'too many requests of this organization are waiting for workers' },
    }
    expect(answers).toEqual(Array(3).fill([429, '1', orgQueueFull]))
    const calm = await fetch(`${t.url}/orgs/calm/plugins/echo/items/1`)
    expect(calm.status).toBe(200)
    await calm.body?.cancel()

    gate.open('storm')
    await Promise.all(storm)
    expect(answers.slice(3).map(([status]) => status)).toEqual(Array(5).fill(200))
  })

  it('caps requests waiting for one cold start with 503 QUEUE_FULL (MAX_PENDING_PER_KEY)', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { MAX_PENDING_PER_KEY: '2', GATE_URL: gate.url } })
    await t.enable('acme', 'gated', { startGate: 'start' })
    const waiting = [1, 2].map(() => fetch(`${t.url}/orgs/acme/plugins/gated/whoami`))
    await gate.arrived('start')
    await vi.waitFor(
      async () => expect(sampleValue(await (await fetch(`${t.url}/metrics`)).text(), 'plugin_gateway_queue_depth')).toBe(2),
      WAIT,
    )

    const refused = await fetch(`${t.url}/orgs/acme/plugins/gated/whoami`)
    expect([refused.status, refused.headers.get('retry-after'), await refused.json()]).toEqual([
      503,
      '1',
      { error: { code: 'QUEUE_FULL', message: 'too many requests are waiting for this worker to start' } },
    ])
    gate.open('start')
    expect((await Promise.all(waiting)).map((r) => r.status)).toEqual([200, 200])
    expect(t.spawned).toHaveLength(1)
  })
})

describe('bad input at the edge', () => {
  it('refuses a body over MAX_BODY_BYTES with 413 without reading it all', async () => {
    const t = await startTestGateway({ env: { MAX_BODY_BYTES: '1024' } })
    await t.enable('acme', 'echo')
    const { hostname, port } = new URL(t.url)
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          hostname,
          port,
          method: 'POST',
          path: '/orgs/acme/plugins/echo/raw',
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(100 * 1024 * 1024) },
        },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
          req.destroy()
        },
      )
      req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)))
      req.write(Buffer.alloc(2048)) // far less than declared: the answer cannot depend on the rest
    })
    expect(status).toBe(413)
    expect(t.spawned).toHaveLength(0) // refused before a worker started for it

    const chunked = await fetch(`${t.url}/orgs/acme/plugins/echo/raw`, {
      method: 'POST',
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(512))
          c.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(413)
    expect((await json(chunked)).error.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('closes the connection of a refused body instead of waiting for (or reading) the rest of it', async () => {
    const t = await startTestGateway({ env: { MAX_BODY_BYTES: '1024' } })
    await t.enable('acme', 'echo')
    const { hostname, port } = new URL(t.url)
    const head = (framing: string) =>
      `POST /orgs/acme/plugins/echo/raw HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/octet-stream\r\n${framing}\r\n\r\n`
    // A declared length far over the limit, and a chunked body that crosses it; neither is ever finished.
    for (const [framing, body] of [
      [`Content-Length: ${100 * 1024 * 1024}`, Buffer.alloc(512)],
      ['Transfer-Encoding: chunked', Buffer.from(`800\r\n${'x'.repeat(0x800)}\r\n`)],
    ] as const) {
      const socket = connect(Number(port), hostname)
      socket.on('error', () => {}) // a reset after the answer is fine: the answer is what is checked
      onTestFinished(() => void socket.destroy())
      let answer = ''
      socket.setEncoding('utf8').on('data', (d: string) => (answer += d))
      socket.write(head(framing))
      socket.write(body)
      await new Promise((resolve) => socket.once('end', resolve)) // the gateway ends the connection itself
      socket.destroy()
      expect([framing, answer.split('\r\n')[0]]).toEqual([framing, 'HTTP/1.1 413 Payload Too Large'])
      expect(answer.toLowerCase()).toContain('connection: close')
    }
  })

  it('refuses huge headers with a coded 431', async () => {
    const t = await startTestGateway({ env: { MAX_HEADER_BYTES: '4096' } })
    const res = await fetch(`${t.url}/healthz`, { headers: { 'x-big': 'x'.repeat(8192) } })
    expect([res.status, (await json(res)).error.code]).toEqual([431, 'HEADERS_TOO_LARGE'])
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  })
})
