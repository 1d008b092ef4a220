import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createRouteTable, parseRoutePattern, type RouteDecl } from '../../src/contract/index.js'
import { compileRoutes } from '../../src/registry/index.js'

const DECLS: RouteDecl[] = [
  { method: 'POST', path: '/webhook' },
  { method: 'GET', path: '/items/:id' },
  { method: 'GET', path: '/files/*' },
  { method: 'PUT', path: '/orgs/:org/things/:thing' },
  { method: 'GET', path: '/v1.0/status' },
  { method: 'DELETE', path: '/opt/:a?' },
]

describe('compileRoutes', () => {
  it('answers exactly as the route table the runner dispatches with', () => {
    // The gateway tests one alternation per method; the runner tries each route's own pattern.
    const compiled = compileRoutes(DECLS)
    const runner = createRouteTable(DECLS.map((d, i) => ({ ...d, value: i })))
    const segment = fc.constantFrom('webhook', 'Items', 'items', 'files', 'orgs', 'things', 'v1.0', 'v1x0', 'status', 'opt', '1', 'x.y', '')
    const path = fc.array(segment, { maxLength: 5 }).map((s) => `/${s.join('/')}`)
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH')
    fc.assert(
      fc.property(method, path, (m, p) => {
        expect(compiled.matches(m, p)).toBe(runner.match(m, p) !== undefined)
      }),
      { numRuns: 3000 },
    )
  })

  it('matches as Express does: any case, with or without a trailing slash', () => {
    const r = compileRoutes(DECLS)
    for (const path of ['/items/7', '/Items/7', '/ITEMS/7/', '/items/7/']) expect([path, r.matches('GET', path)]).toEqual([path, true])
    expect(r.matches('POST', '/WebHook/')).toBe(true)
    expect(r.matches('GET', '/items/7/extra')).toBe(false)
    expect(r.matches('GET', '/v1x0/status')).toBe(false) // a dot is literal
    expect(compileRoutes([{ method: 'GET', path: '/trailing/' }]).matches('GET', '/trailing')).toBe(true)
  })

  it('lets HEAD use a declared GET route and refuses undeclared ones', () => {
    const r = compileRoutes(DECLS)
    expect(r.matches('HEAD', '/items/7')).toBe(true)
    expect(r.matches('GET', '/items')).toBe(false)
    expect(r.matches('POST', '/items/7')).toBe(false)
  })
})

describe('route patterns', () => {
  it('accept literal text, :name, :name? and *', () => {
    for (const path of ['/', '/webhook', '/items/:id', '/opt/:a?', '/files/*', '/v1.0/a-b_c~d:e', '/trailing/']) {
      expect([path, parseRoutePattern(path).ok]).toEqual([path, true])
    }
  })

  it('refuse regular-expression syntax, which Express and hono read differently, and paths without a leading /', () => {
    for (const path of ['/n/:id{[0-9]+}', '/n/:id(\\d+)', '/a+', '/a?', '/[ab]', '/a|b', '/^a$', '/a\\b', 'relative']) {
      expect([path, parseRoutePattern(path).ok]).toEqual([path, false])
    }
  })

  it('decode parameters and hand malformed escapes over as sent', () => {
    const table = createRouteTable([{ method: 'GET', path: '/items/:id', value: 'items' }])
    expect(table.match('GET', '/items/a%2Fb')).toEqual({ value: 'items', params: { id: 'a/b' } })
    expect(table.match('GET', '/items/%E0%A4%A')).toEqual({ value: 'items', params: { id: '%E0%A4%A' } })
  })
})
