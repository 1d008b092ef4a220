import { createHmac, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { describe, expect, it, vi } from 'vitest'
import { startGate } from '../helpers/gate.js'
import { startTestGateway } from '../helpers/gateway.js'
import { rawRequest } from '../helpers/http.js'
import { sampleValue } from '../observability/prom-text.js'

const WAIT = { timeout: 10_000, interval: 10 }

/** Fails with what was awaited if it takes longer than a bound far above any healthy run: no hang. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not come within 10 s`)), 10_000)
  })
  try {
    return await Promise.race([promise, bound])
  } finally {
    clearTimeout(timer)
  }
}

/** Raw request: fetch would normalise the path (NOTES.md), hiding what the gateway receives. */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path, method: 'GET' }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('streaming proxy', () => {
  it('delivers a raw body byte-identical, both ways', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const payload = Buffer.concat([randomBytes(64 * 1024), Buffer.from(' \r\n\t{"not":"json" }\u0000')])

    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/raw`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: payload,
    })
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(payload)).toBe(true)
  })

  it('streams an answer as the plugin writes it: the first chunk arrives while the handler is still held', async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await t.enable('acme', 'gated')
    const res = await fetch(`${t.url}/orgs/acme/plugins/gated/stream/rest`)
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/plain; charset=utf-8'])
    const reader = res.body!.getReader()
    await gate.arrived('rest') // the plugin wrote its first chunk and now waits for the test
    // A proxy that buffered the answer would deliver nothing before the handler ends, which it cannot yet.
    expect(new TextDecoder().decode((await within(reader.read(), 'the first chunk, while the handler is held')).value)).toBe(
      'first chunk\n',
    )
    gate.open('rest')
    let rest = ''
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value)
    expect(rest).toBe('last chunk\n')
  })

  it("counts a client that hangs up mid-request as 499 and drops the worker's in-flight count back to 0", async () => {
    const gate = await startGate()
    const t = await startTestGateway({ env: { GATE_URL: gate.url } })
    await t.enable('acme', 'gated')
    const inFlight = async () => (await t.admin('GET', '/workers')).body.workers.map((w: { inFlight: number }) => w.inFlight)

    // Before the answer: the handler is held.
    const client = new AbortController()
    const gone = fetch(`${t.url}/orgs/acme/plugins/gated/hold/before`, { signal: client.signal }).catch((err: Error) => err.name)
    await gate.arrived('before')
    expect(await inFlight()).toEqual([1])
    client.abort()
    expect(await gone).toBe('AbortError')
    await vi.waitFor(async () => expect(await inFlight()).toEqual([0]), WAIT)
    const metrics = await (await fetch(`${t.url}/metrics`)).text()
    expect(sampleValue(metrics, 'plugin_gateway_http_requests_total', { route: 'proxy', status: '499' })).toBe(1)

    // Mid-body: the status and the first chunk went out, the rest is held.
    const streaming = new AbortController()
    const res = await fetch(`${t.url}/orgs/acme/plugins/gated/stream/mid-body`, { signal: streaming.signal })
    await res.body!.getReader().read()
    await gate.arrived('mid-body')
    expect(await inFlight()).toEqual([1])
    streaming.abort()
    await vi.waitFor(async () => expect(await inFlight()).toEqual([0]), WAIT)

    gate.open('before')
    gate.open('mid-body')
    const after = await fetch(`${t.url}/orgs/acme/plugins/gated/whoami`) // the worker serves on
    expect([after.status, ((await after.json()) as { pid: number }).pid]).toEqual([200, t.spawned[0]?.pid])
    expect(t.spawned).toHaveLength(1)
  })

  it("never lets a worker answer with the gateways' own x-plugin-gateway-* headers, or hop-by-hop ones", async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'gated')
    const res = await fetch(`${t.url}/orgs/acme/plugins/gated/internal-headers`)
    // The plugin's own answer, status and body as it sent them ...
    expect([res.status, await res.json()]).toEqual([503, { error: { code: 'NOT_OWNER', message: 'a plugin posing as a gateway' } }])
    expect(res.headers.get('x-plugin-own')).toBe('kept')
    // ... without what only a gateway may say.
    const names = [...res.headers.keys()]
    expect(names.filter((n) => n.startsWith('x-plugin-gateway-'))).toEqual([])
    expect(res.headers.get('keep-alive')).not.toBe('timeout=1')
  })

  it('lets a webhook verify an HMAC over the exact bytes sent', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'webhook', { webhookSecret: 'shh-its-a-secret' })
    const body = '{ "type":"invoice.paid",  "amount": 1200 }\n'
    const sign = (b: string, secret: string) => `sha256=${createHmac('sha256', secret).update(b).digest('hex')}`

    const ok = await fetch(`${t.url}/orgs/acme/plugins/webhook/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature': sign(body, 'shh-its-a-secret') },
      body,
    })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ received: true, type: 'invoice.paid', bytes: Buffer.byteLength(body) })

    const forged = await fetch(`${t.url}/orgs/acme/plugins/webhook/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-signature': sign(body, 'wrong') },
      body,
    })
    expect(forged.status).toBe(401)
    await forged.body?.cancel()
  })

  it('strips hop-by-hop headers and sets x-forwarded-* and x-request-id', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/echo?q=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-123' },
      body: JSON.stringify({ hello: 'world' }),
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-request-id')).toBe('req-123')
    const echoed = (await res.json()) as { path: string; query: unknown; body: unknown; headers: Record<string, string> }
    expect(echoed).toMatchObject({ path: '/echo', query: { q: '1' }, body: { hello: 'world' } })
    expect(echoed.headers['x-request-id']).toBe('req-123')
    expect(echoed.headers['x-forwarded-for']).toMatch(/127\.0\.0\.1/)
  })

  it("sets x-forwarded-proto/host itself, keeping a client's only with TRUST_FORWARDED", async () => {
    const headers = { 'content-type': 'application/json', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'plugins.example.com' }
    const seen = async (env: Record<string, string>) => {
      const t = await startTestGateway({ env })
      await t.enable('acme', 'echo')
      const res = await fetch(`${t.url}/orgs/acme/plugins/echo/echo`, { method: 'POST', headers, body: '{}' })
      return ((await res.json()) as { headers: Record<string, string> }).headers
    }
    const untrusted = await seen({})
    expect(untrusted['x-forwarded-proto']).toBe('http')
    expect(untrusted['x-forwarded-host']).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(await seen({ TRUST_FORWARDED: 'true' })).toMatchObject({
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'plugins.example.com',
    })
  })

  it('answers 404 for undeclared routes without starting a worker once metadata is known', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).status).toBe(200)

    const res = await fetch(`${t.url}/orgs/acme/plugins/echo/not-declared`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error: { code: 'ROUTE_NOT_FOUND' } })
    const wrongMethod = await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`, { method: 'DELETE' })
    expect(wrongMethod.status).toBe(404)
    await wrongMethod.body?.cancel()
    expect(t.spawned).toHaveLength(1)
  })

  it('never reaches worker control endpoints through the public path, however encoded', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const paths = [
      '/health',
      '/metadata',
      '/disable',
      '/validate-auth',
      '/config-update',
      '/mcp/list-tools',
      '/mcp/call-tool',
      '/%6detadata',
      '/METADATA',
      '/items/../metadata',
      '/items/%2e%2e/metadata',
      '/items/%2E%2E/disable',
      '/./health',
    ]
    for (const p of paths) {
      const method = p.includes('disable') || p.includes('call-tool') ? 'POST' : 'GET'
      const res = await fetch(`${t.url}/orgs/acme/plugins/echo${p}`, { method })
      expect([p, res.status]).toEqual([p, 404])
      await res.body?.cancel()
      const raw = await rawGet(t.url, `/orgs/acme/plugins/echo${p}`)
      expect([p, raw.status]).toEqual([p, 404])
    }
  })

  it('answers a request path the HTTP adapter refuses before routing (a backslash) with a JSON error too', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    for (const path of ['/orgs/acme/plugins/echo/\\..\\metadata', '/admin\\plugins']) {
      const raw = await rawRequest({ port: t.gw.port, path })
      expect([path, raw.status, raw.headers['content-type'], JSON.parse(raw.body.toString())]).toEqual([
        path,
        400,
        'application/json',
        { error: { code: 'BAD_REQUEST', message: 'Backslash in request path' } },
      ])
    }
    expect(t.spawned).toHaveLength(0)
  })

  it("refuses the runner's control paths even where a declared catch-all route would match them", async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'env-probe')
    const post = (path: string) => fetch(`${t.url}/orgs/acme/plugins/env-probe${path}`, { method: 'POST', body: '{}' })
    const declared = await post('/items/1') // POST /:resource/:id
    expect([declared.status, await declared.json()]).toEqual([200, { resource: 'items', id: '1' }])
    for (const path of ['/cron/probe', '/CRON/probe', '/%63ron/probe', '/mcp/call-tool', '/items/../cron/probe']) {
      const res = await post(path)
      expect([path, res.status]).toEqual([path, 404])
      await res.body?.cancel()
    }
    const runs = await fetch(`${t.url}/orgs/acme/plugins/env-probe/cron-runs`)
    expect(await runs.json()).toEqual({ cronRuns: 0 })
  })

  it('answers 404 for unknown plugins, unknown orgs and disabled instances', async () => {
    const t = await startTestGateway()
    await t.admin('PUT', '/orgs/acme/plugins/echo', { enabled: false })
    const cases: Array<[string, string]> = [
      ['/orgs/acme/plugins/nope/x', 'PLUGIN_NOT_FOUND'],
      ['/orgs/nobody/plugins/echo/items/1', 'INSTANCE_NOT_FOUND'],
      ['/orgs/acme/plugins/echo/items/1', 'INSTANCE_DISABLED'],
      ['/orgs/Bad..Org/plugins/echo/items/1', 'NOT_FOUND'],
    ]
    for (const [path, code] of cases) {
      const res = await fetch(`${t.url}${path}`)
      expect([path, res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([path, 404, code])
    }
    expect(t.spawned).toHaveLength(0)
  })
})
