import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { type IncomingMessage, request } from 'node:http'
import { connect } from 'node:net'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { startTestGateway, tempDir } from '../helpers/gateway.js'
import { enable, startGatewayProcess } from '../helpers/gateway-process.js'
import { createManualClock } from '../helpers/manual-clock.js'

// Large, slow and streamed bodies, server-sent events, HEAD, Expect: 100-continue and 1xx answers,
// through both Node entries (the fast path and the Hono app run the same proxy). The legacy-streams
// fixture is a whole HTTP server (SDK v1) that reports how its downloads went: bytes written, waits
// for 'drain', and whether the response finished or was aborted.

const WAIT = { timeout: 10_000, interval: 10 }
const MiB = 1024 * 1024
const LEGACY = '/orgs/acme/plugins/legacy-streams'

interface DownloadState {
  written: number
  waits: number
  waiting: boolean
  outcome: 'finished' | 'aborted' | null
  sha256: string | null
}

/** A GET over node:http (its own connection), the response handed over unread. */
function get(url: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, resolve)
    onTestFinished(() => void req.destroy())
    req.on('error', reject)
    req.end()
  })
}

/** Reads a response to its end, keeping only its length and hash: memory stays flat on the client too. */
async function digest(res: IncomingMessage): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of res as AsyncIterable<Buffer>) {
    bytes += chunk.length
    hash.update(chunk)
  }
  return { bytes, sha256: hash.digest('hex') }
}

const downloadState = async (url: string, id: string) => (await (await fetch(`${url}${LEGACY}/downloads/${id}`)).json()) as DownloadState

/** Reads server-sent events off a fetch body, one whole event at a time. */
function eventReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  return {
    /** The next event's `data`, or null once the stream has ended. */
    async next(): Promise<string | null> {
      for (;;) {
        const end = buffered.indexOf('\n\n')
        if (end >= 0) {
          const event = buffered.slice(0, end)
          buffered = buffered.slice(end + 2)
          return /^data: (.*)$/m.exec(event)?.[1] ?? ''
        }
        const { done, value } = await reader.read()
        if (done) return null
        buffered += decoder.decode(value, { stream: true })
      }
    },
    cancel: () => reader.cancel(),
  }
}

describe.each([
  ['the fast path', 'true'],
  ['the Hono app', 'false'],
])('streaming through %s', (_entry, fastPath) => {
  const start = async (env: Record<string, string> = {}, clock?: ReturnType<typeof createManualClock>) => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { PUBLIC_FAST_PATH: fastPath, GATE_URL: gate.url, ...env }, ...(clock && { clock }) })
    await t.enable('acme', 'legacy-streams')
    return { t, gate }
  }

  it('forwards each server-sent event as it is written: the first arrives while the handler still waits', async () => {
    const { t, gate } = await start()
    const res = await fetch(`${t.url}${LEGACY}/events?gate=sse`)
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream'])
    const events = eventReader(res.body!)
    await gate.arrived('sse') // the worker wrote `first` and now waits for the test
    // A proxy that buffered the answer could deliver nothing yet: the handler cannot end before the gate opens.
    expect(await events.next()).toBe('first')
    expect(gate.arrivals('sse')).toHaveLength(1)
    gate.open('sse')
    expect([await events.next(), await events.next(), await events.next()]).toEqual(['second', 'third', null])
  })

  it("forwards our SDK's res.write() at once: SSE from a plugin needs no flush call", async () => {
    const { t, gate } = await start()
    await t.enable('acme', 'gated')
    const res = await fetch(`${t.url}/orgs/acme/plugins/gated/events/sdk-sse`)
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream; charset=utf-8'])
    const events = eventReader(res.body!)
    await gate.arrived('sdk-sse')
    expect(await events.next()).toBe('first')
    gate.open('sdk-sse')
    expect([await events.next(), await events.next()]).toEqual(['second', null])
  })

  it('keeps a stream open past UPSTREAM_TIMEOUT_MS once its headers are through', async () => {
    // Events 1.5 s apart, each gap (and the whole stream) far longer than the wait allowed for headers.
    // (undici checks body timeouts on a clock of its own that ticks every ~0.5 s: a shorter gap could
    // slip through even a 100 ms bound.)
    const { t } = await start({ UPSTREAM_TIMEOUT_MS: '100' })
    const events = eventReader((await fetch(`${t.url}${LEGACY}/events?gapMs=1500`)).body!)
    expect([await events.next(), await events.next(), await events.next(), await events.next()]).toEqual(['first', 'second', 'third', null])
  })

  it('cuts a stream silent for longer than STREAM_IDLE_TIMEOUT_MS, and releases its worker', async () => {
    const { t, gate } = await start({ STREAM_IDLE_TIMEOUT_MS: '100' })
    const events = eventReader((await fetch(`${t.url}${LEGACY}/events?hold=silent`)).body!)
    expect(await events.next()).toBe('first')
    await gate.arrived('silent') // the worker says nothing more until a gate that stays shut
    await expect(events.next()).rejects.toThrow()
    await vi.waitFor(() => expect(t.gw.pool.list()[0]).toMatchObject({ state: 'ready', inFlight: 0 }), WAIT)
  })

  it('cuts a stream whose client stops reading for longer than STREAM_IDLE_TIMEOUT_MS, and releases its worker', async () => {
    const { t } = await start({ STREAM_IDLE_TIMEOUT_MS: '200' })
    const total = 64 * MiB
    // A raw client that sends its GET and then takes nothing: the connections between it and the
    // worker fill up and the worker's upstream is paused, so no bytes move and nothing is silent upstream.
    const client = connect(Number(new URL(t.url).port), '127.0.0.1')
    onTestFinished(() => void client.destroy())
    await once(client, 'connect')
    client.pause()
    client.write(`GET ${LEGACY}/download?bytes=${total}&id=stalled HTTP/1.1\r\nhost: gw.test\r\n\r\n`)

    await vi.waitFor(async () => expect(await downloadState(t.url, 'stalled')).toMatchObject({ outcome: 'aborted' }), WAIT)
    await vi.waitFor(() => expect(t.gw.pool.list()[0]).toMatchObject({ state: 'ready', inFlight: 0 }), WAIT)
    // The client's connection was closed on it: reading now, it gets part of the body, then the end.
    const received: Buffer[] = await client.toArray()
    expect(received.reduce((bytes, chunk) => bytes + chunk.length, 0)).toBeLessThan(total)
    // The gateway and the worker go on serving.
    const after = await fetch(`${t.url}${LEGACY}/download?bytes=1000`)
    expect((await after.arrayBuffer()).byteLength).toBe(1000)
    expect(t.spawned).toHaveLength(1)
  })

  it('never idle-reaps a worker while a stream is open; the stream ending makes it idle again', async () => {
    const clock = createManualClock(Date.now())
    const { t, gate } = await start({ IDLE_TIMEOUT_MS: '1000' }, clock)
    const events = eventReader((await fetch(`${t.url}${LEGACY}/events?gate=reaper`)).body!)
    expect(await events.next()).toBe('first')
    await gate.arrived('reaper')

    clock.advance(60_000)
    expect(t.gw.pool.list()[0]).toMatchObject({ state: 'ready', inFlight: 1 })
    gate.open('reaper')
    expect([await events.next(), await events.next(), await events.next()]).toEqual(['second', 'third', null])
    await vi.waitFor(() => expect(t.gw.pool.list()[0]).toMatchObject({ state: 'ready', inFlight: 0 }), WAIT)
    clock.advance(1_001)
    expect(t.gw.pool.list()[0]?.state).toBe('stopping')
  })

  it("lets a slow client hold the worker back (it waits for 'drain'), then delivers every byte", async () => {
    const { t } = await start()
    const total = 64 * MiB
    const res = await get(`${t.url}${LEGACY}/download?bytes=${total}&id=slow`)
    res.pause() // the client reads nothing for now
    // The worker stops writing once the connections between it and the client are full: nothing in
    // between takes the whole body. It stays stopped (two reports alike) until the client reads.
    let last: DownloadState | undefined
    await vi.waitFor(async () => {
      const now = await downloadState(t.url, 'slow')
      const previous = last
      last = now
      expect(now).toMatchObject({ waiting: true, outcome: null, written: previous?.written })
    }, WAIT)
    expect(last?.written).toBeLessThan(total / 2)

    res.resume()
    const got = await digest(res)
    const done = await downloadState(t.url, 'slow')
    expect(done).toMatchObject({ written: total, outcome: 'finished' })
    expect(got).toEqual({ bytes: total, sha256: done.sha256 })
    expect(done.waits).toBeGreaterThan(0)
  })

  it("releases the worker's in-flight slot when a client disconnects mid-download, and the worker's response is aborted", async () => {
    const { t } = await start()
    const total = 64 * MiB
    const res = await get(`${t.url}${LEGACY}/download?bytes=${total}&id=gone`)
    await once(res, 'data')
    expect(t.gw.pool.list()[0]?.inFlight).toBe(1)
    res.destroy()
    await vi.waitFor(() => expect(t.gw.pool.list()[0]?.inFlight).toBe(0), WAIT)
    await vi.waitFor(async () => expect(await downloadState(t.url, 'gone')).toMatchObject({ outcome: 'aborted' }), WAIT)
    expect((await downloadState(t.url, 'gone')).written).toBeLessThan(total)
    expect(t.spawned).toHaveLength(1)
  })

  it("carries a 4 MiB body to our SDK's runner and back intact (the runner's own limit is 5 MiB)", async () => {
    const { t } = await start()
    await t.enable('acme', 'echo')
    const body = randomBytes(4 * MiB)
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/raw`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    })
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true)
  })

  it('answers HEAD like the worker does: its headers, no body', async () => {
    const { t } = await start()
    const res = await fetch(`${t.url}${LEGACY}/download?bytes=${MiB}`, { method: 'HEAD' })
    expect([res.status, res.headers.get('content-length'), res.headers.get('content-type')]).toEqual([
      200,
      String(MiB),
      'application/octet-stream',
    ])
    expect((await res.arrayBuffer()).byteLength).toBe(0)
    // The connection stays usable: the next answer on it is whole.
    const after = await fetch(`${t.url}${LEGACY}/download?bytes=1000`)
    expect((await after.arrayBuffer()).byteLength).toBe(1000)
  })

  it('answers Expect: 100-continue with 100 Continue, then forwards the body', async () => {
    const { t } = await start()
    const body = randomBytes(256 * 1024)
    const req = request(`${t.url}${LEGACY}/upload`, {
      method: 'POST',
      agent: false,
      headers: { expect: '100-continue', 'content-type': 'application/octet-stream', 'content-length': body.length },
    })
    onTestFinished(() => void req.destroy())
    let continues = 0
    req.on('continue', () => {
      continues++
      req.end(body)
    })
    const [res] = (await once(req, 'response')) as [IncomingMessage]
    expect(res.statusCode).toBe(200)
    expect(JSON.parse((await res.toArray()).join(''))).toEqual({
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    })
    expect(continues).toBe(1)
  })

  it('relays 103 Early Hints and 102 Processing before the final answer', async () => {
    const { t } = await start()
    const req = request(`${t.url}${LEGACY}/hints`, { agent: false })
    onTestFinished(() => void req.destroy())
    const informational: Array<[number, string | undefined]> = []
    req.on('information', (info) => informational.push([info.statusCode, info.headers.link as string | undefined]))
    req.end()
    const [res] = (await once(req, 'response')) as [IncomingMessage]
    expect(JSON.parse((await res.toArray()).join(''))).toEqual({ hinted: true })
    expect(informational).toEqual([
      [103, '</style.css>; rel=preload; as=style'],
      [102, undefined],
    ])
  })
})

describe('large bodies with bounded memory', () => {
  /** The gateway process's resident set now, and its peak since the last reset (Linux /proc). */
  const memoryOf = (pid: number) => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024
    return { rssBytes: kib('VmRSS'), peakBytes: kib('VmHWM') }
  }

  it('delivers 4 concurrent 64 MiB downloads and a 4 MiB upload intact while the gateway grows by less than 40 MB', async () => {
    const gw = await startGatewayProcess(await tempDir())
    const pid = gw.proc.child.pid!
    await enable(gw.url, 'acme', 'legacy-streams')
    // Warm: the worker runs, and each path the transfers take has run once at full size. The first large
    // transfer grows the process once, by about 60 MB whether one or four downloads run (measured):
    // its heap reaching its working size, not a body held (four would then cost four times one).
    const warm = await get(`${gw.url}${LEGACY}/download?bytes=${64 * MiB}&id=warm`)
    expect((await digest(warm)).bytes).toBe(64 * MiB)
    const warmUpload = await fetch(`${gw.url}${LEGACY}/upload`, { method: 'POST', body: randomBytes(4 * MiB) })
    expect(warmUpload.status).toBe(200)
    await warmUpload.body?.cancel()

    const before = memoryOf(pid).rssBytes
    writeFileSync(`/proc/${pid}/clear_refs`, '5') // the peak (VmHWM) restarts from now
    const upload = randomBytes(4 * MiB)
    const [uploaded, ...downloads] = await Promise.all([
      fetch(`${gw.url}${LEGACY}/upload`, { method: 'POST', body: upload }).then((r) => r.json()),
      ...[0, 1, 2, 3].map(async (i) => digest(await get(`${gw.url}${LEGACY}/download?bytes=${64 * MiB}&id=big-${i}`))),
    ])
    const growthBytes = memoryOf(pid).peakBytes - before

    expect(uploaded).toEqual({ bytes: upload.length, sha256: createHash('sha256').update(upload).digest('hex') })
    for (const [i, got] of downloads.entries()) {
      const state = await downloadState(gw.url, `big-${i}`)
      expect([i, got]).toEqual([i, { bytes: 64 * MiB, sha256: state.sha256 }])
    }
    expect(growthBytes).toBeLessThan(40 * 1000 * 1000)
  })
})
