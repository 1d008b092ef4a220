import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.js'
import { rawRequest } from '../helpers/http.js'

// The gateway refuses undeclared routes before a worker starts, and our runner serves declared ones:
// both must read a declaration the same way (src/contract/route-pattern.ts), or a request passes
// the gateway and 404s in the worker, or the other way round.
describe('declared routes', () => {
  it('are forwarded by the gateway exactly when the runner serves them', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'route-patterns')
    const first = await rawRequest({ port: t.gw.port, path: '/orgs/acme/plugins/route-patterns/items/1' })
    expect(first.status).toBe(200)
    const [worker] = (await t.admin('GET', '/workers')).body.workers
    const direct = (method: string, path: string) => rawRequest({ port: worker.port, method, path })
    const viaGateway = (method: string, path: string) =>
      rawRequest({ port: t.gw.port, method, path: `/orgs/acme/plugins/route-patterns${path}` })

    // Segments near the declarations (the control endpoints' names are refused by their own rule).
    const segment = fc.constantFrom('items', 'ITEMS', 'files', 'opt', 'orgs', 'things', 'webhook', 'WebHook', 'trailing')
    const other = fc.constantFrom('v1.0', 'v1x0', 'status', 'a-b_c~d', 'A-B_C~D', '1', 'x%20y', '')
    const path = fc.array(fc.oneof(segment, other), { maxLength: 4 }).map((s) => `/${s.join('/')}`)
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH')
    let served = 0
    await fc.assert(
      fc.asyncProperty(method, path, async (m, p) => {
        const [byRunner, byGateway] = await Promise.all([direct(m, p), viaGateway(m, p)])
        if (byRunner.status === 404) {
          expect([m, p, byGateway.status]).toEqual([m, p, 404])
          if (m !== 'HEAD') expect(JSON.parse(byGateway.body.toString())).toMatchObject({ error: { code: 'ROUTE_NOT_FOUND' } })
        } else {
          served++
          expect([m, p, byGateway.status, byGateway.body.toString()]).toEqual([m, p, byRunner.status, byRunner.body.toString()])
        }
      }),
      { numRuns: 150 },
    )
    expect(served).toBeGreaterThan(0) // the sample reached declared routes, not only 404s

    // The cases each kind of declaration is about, answered by the route declared for them.
    const cases: Array<[string, string, string, Record<string, string>]> = [
      ['GET', '/Items/a%2Fb', 'GET /items/:id', { id: 'a/b' }],
      ['HEAD', '/items/7/', 'GET /items/:id', { id: '7' }],
      ['GET', '/files/a/b.txt', 'GET /files/*', { 0: 'a/b.txt' }],
      ['DELETE', '/opt', 'DELETE /opt/:a?', {}],
      ['DELETE', '/opt/x', 'DELETE /opt/:a?', { a: 'x' }],
      ['PUT', '/orgs/o/things/t', 'PUT /orgs/:org/things/:thing', { org: 'o', thing: 't' }],
      ['POST', '/webhook/', 'POST /WebHook', {}],
      ['GET', '/trailing', 'GET /trailing/', {}],
      ['GET', '/V1.0/status', 'GET /v1.0/status', {}],
      ['GET', '/', 'GET /', {}],
    ]
    for (const [m, p, route, params] of cases) {
      const res = await viaGateway(m, p)
      expect([m, p, res.status]).toEqual([m, p, 200])
      if (m !== 'HEAD') expect(JSON.parse(res.body.toString())).toEqual({ route, params })
    }
    for (const [m, p] of [
      ['GET', '/v1x0/status'], // a dot is a dot, not "any character"
      ['GET', '/files'],
      ['GET', '/items/1/2'],
      ['POST', '/items/1'],
    ] as const) {
      expect([m, p, (await viaGateway(m, p)).status]).toEqual([m, p, 404])
    }
  })

  it('with regular-expression syntax make the metadata invalid instead of passing the gateway to a 404', async () => {
    const t = await startTestGateway({ env: { METADATA_ATTEMPTS: '1' } })
    await t.enable('acme', 'regex-route')
    for (const path of ['/items/1', '/ping']) {
      const res = await rawRequest({ port: t.gw.port, path: `/orgs/acme/plugins/regex-route${path}` })
      expect([path, res.status]).toEqual([path, 503])
      expect(JSON.parse(res.body.toString())).toMatchObject({ error: { code: 'METADATA_UNAVAILABLE' } })
    }
    const { plugins } = (await t.admin('GET', '/plugins')).body
    const plugin = plugins.find((p: { id: string }) => p.id === 'regex-route')
    expect(plugin).toMatchObject({ metadataState: 'error' })
    expect(plugin.error).toContain('routes.1.path')
    expect(plugin.error).not.toContain('routes.0')
  })
})
