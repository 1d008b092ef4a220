import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { createApp, type AppDeps } from '../../src/app.js'
import { silentLogger } from '../../src/core/index.js'
import { adminAuth } from '../../src/routes/admin-auth.js'
import { onError } from '../../src/routes/errors.js'

const TOKEN = 'admin-token-0123456789abcdef'

const LOOPBACK = ['127.0.0.1', '127.0.0.53', '127.255.255.254', '::1', '::ffff:127.0.0.1']
const NOT_LOOPBACK = [
  undefined,
  '',
  '10.0.0.1',
  '192.168.1.20',
  '203.0.113.9',
  '0.0.0.0',
  '::',
  '2001:db8::1',
  'fe80::1',
  '::ffff:10.0.0.1',
  '::ffff:7f00:1', // 127.0.0.1 in hex notation: not how Node reports it, so not trusted either
  '127.0.0.1.attacker.example',
  ' 127.0.0.1',
  '127.0.0.1\n',
  'localhost',
]

/** The real admin guard in a minimal app whose client address is whatever the test says. */
function guarded(token: string | undefined, address: string | undefined) {
  const app = new Hono()
  app.onError(onError(silentLogger))
  app.use('/admin/*', adminAuth({ token, clientAddress: () => address }))
  app.get('/admin/plugins', (c) => c.json({ reached: true }))
  return app
}

/**
 * The real createApp with dependencies that record any use: a request the guard refuses must never
 * reach a handler (no service call, no pool lookup, no worker start).
 */
function appWith(token: string | undefined, address: string | undefined) {
  const touched: string[] = []
  const recorder = (name: string) =>
    new Proxy(
      {},
      {
        get: (_target, prop) => {
          if (prop === 'then') return undefined // not a thenable
          return (..._args: unknown[]) => {
            touched.push(`${name}.${String(prop)}`)
            throw new Error(`${name}.${String(prop)} must not be reached`)
          }
        },
      },
    )
  const deps = {
    targets: recorder('targets'),
    instances: recorder('instances'),
    workers: recorder('workers'),
    catalog: recorder('catalog'),
    registry: recorder('registry'),
    pool: recorder('pool'),
    forwarder: recorder('forwarder'),
    log: silentLogger,
    adminToken: token,
    clientAddress: () => address,
  } as unknown as AppDeps
  const app = createApp(deps)
  touched.length = 0 // construction may bind methods; only request-time use counts
  return { app, touched }
}

/** Every admin route the app registers, with its params filled in. */
function adminRoutesOf(app: ReturnType<typeof createApp>): Array<[string, string]> {
  const seen = new Set<string>()
  const routes: Array<[string, string]> = []
  for (const r of app.routes) {
    if (!r.path.startsWith('/admin') || r.method === 'ALL') continue
    const path = r.path
      .replace(':orgId', 'acme')
      .replace(':pluginId', 'echo')
      .replace(/:[A-Za-z]+/g, 'x')
      .replace(/\*$/, 'x')
    const key = `${r.method} ${path}`
    if (seen.has(key)) continue
    seen.add(key)
    routes.push([r.method, path])
  }
  return routes
}

describe('admin guard', () => {
  it('without ADMIN_TOKEN answers loopback clients only, whatever the headers claim', async () => {
    for (const address of LOOPBACK) {
      const res = await guarded(undefined, address).request('/admin/plugins')
      expect([address, res.status]).toEqual([address, 200])
    }
    for (const address of NOT_LOOPBACK) {
      const res = await guarded(undefined, address).request('/admin/plugins', {
        headers: { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', host: 'localhost', authorization: `Bearer ${TOKEN}` },
      })
      expect([address, res.status]).toEqual([address, 403])
      expect(await res.json()).toEqual({ error: { code: 'FORBIDDEN', message: expect.stringContaining('loopback') } })
    }
  })

  it('without ADMIN_TOKEN refuses what a web page on the same machine could send: another site, a rebound DNS name', async () => {
    const app = guarded(undefined, '127.0.0.1')
    const refused: Array<Record<string, string>> = [
      { host: 'evil.example' },
      { host: 'evil.example:8787' },
      { host: '127.0.0.1:8787', origin: 'https://evil.example' },
      { host: 'localhost:8787', origin: 'null' },
      { host: 'localhost:8787', 'sec-fetch-site': 'cross-site' },
    ]
    for (const headers of refused) {
      const res = await app.request('/admin/plugins', { headers })
      expect([headers, res.status]).toEqual([headers, 403])
      expect(await res.json()).toMatchObject({ error: { code: 'FORBIDDEN' } })
    }
    const allowed: Array<Record<string, string>> = [
      {}, // a client without Host (HTTP/1.0) or Origin: curl, the CLI
      { host: '127.0.0.1:8787' },
      { host: '[::1]:8787' },
      { host: '[0:0:0:0:0:0:0:1]:8787' },
      { host: '[::ffff:127.0.0.1]:8787' },
      { host: 'localhost.:8787' },
      { host: 'app.localhost:8787' },
      { host: 'LocalHost' },
      { host: 'localhost:8787', origin: 'http://localhost:8787', 'sec-fetch-site': 'same-origin' }, // the status page
    ]
    for (const headers of allowed) {
      const res = await app.request('/admin/plugins', { headers })
      expect([headers, res.status]).toEqual([headers, 200])
    }
    // The machine's own host name (it resolves to a loopback address here), when the entry names it.
    const named = new Hono()
    named.onError(onError(silentLogger))
    named.use('/admin/*', adminAuth({ token: undefined, clientAddress: () => '127.0.1.1', localNames: ['build-box'] }))
    named.get('/admin/plugins', (c) => c.json({ reached: true }))
    const ownName: Array<Record<string, string>> = [
      { host: 'build-box:8787' },
      { host: 'BUILD-BOX' },
      { host: 'build-box:8787', origin: 'http://build-box:8787' },
    ]
    for (const headers of ownName) {
      expect([headers, (await named.request('/admin/plugins', { headers })).status]).toEqual([headers, 200])
    }
    expect((await named.request('/admin/plugins', { headers: { host: 'other-box:8787' } })).status).toBe(403)
  })

  it('with ADMIN_TOKEN requires the bearer token from every client, loopback included', async () => {
    for (const address of ['127.0.0.1', '203.0.113.9', undefined]) {
      for (const authorization of [
        undefined,
        '',
        'Bearer',
        'Bearer ',
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN.slice(1)}`,
        `Basic ${TOKEN}`,
        TOKEN,
      ]) {
        const res = await guarded(TOKEN, address).request('/admin/plugins', {
          headers: authorization === undefined ? {} : { authorization },
        })
        expect([address, authorization, res.status]).toEqual([address, authorization, 401])
        expect(res.headers.get('www-authenticate')).toContain('Bearer')
      }
      const ok = await guarded(TOKEN, address).request('/admin/plugins', { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(ok.status).toBe(200)
      const lower = await guarded(TOKEN, address).request('/admin/plugins', { headers: { authorization: `bearer ${TOKEN}` } })
      expect(lower.status).toBe(200)
    }
  })

  it('guards every admin route of the real app: 403 for a non-loopback client without ADMIN_TOKEN, before any handler runs', async () => {
    const { app, touched } = appWith(undefined, '203.0.113.9')
    const routes = adminRoutesOf(app)
    expect(routes.length).toBeGreaterThanOrEqual(10)
    for (const [method, path] of routes) {
      const res = await app.request(path, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(method !== 'GET' && { body: '{}' }),
      })
      expect([method, path, res.status]).toEqual([method, path, 403])
    }
    expect(touched).toEqual([])
  })

  it('guards every admin route of the real app: 401 for a missing or wrong token, before any handler runs', async () => {
    const { app, touched } = appWith(TOKEN, '127.0.0.1')
    for (const [method, path] of adminRoutesOf(app)) {
      for (const authorization of [undefined, `Bearer wrong-${TOKEN}`]) {
        const res = await app.request(path, { method, headers: authorization ? { authorization } : {} })
        expect([method, path, authorization, res.status]).toEqual([method, path, authorization, 401])
      }
    }
    expect(touched).toEqual([])
  })
})
