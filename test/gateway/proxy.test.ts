import { createHmac, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.js'

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
