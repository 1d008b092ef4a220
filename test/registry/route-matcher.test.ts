import fc from 'fast-check'
import { TrieRouter } from 'hono/router/trie-router'
import { describe, expect, it } from 'vitest'
import { compileRoutes } from '../../src/registry/index.js'
import type { RouteDecl } from '../../src/contract/index.js'

const DECLS: RouteDecl[] = [
  { method: 'POST', path: '/webhook' },
  { method: 'GET', path: '/items/:id' },
  { method: 'GET', path: '/files/*' },
  { method: 'PUT', path: '/orgs/:org/things/:thing' },
  { method: 'GET', path: '/n/:id{[0-9]+}' },
  { method: 'DELETE', path: '/opt/:a?' },
]

// The reference: hono's trie router (what compileRoutes used before its RegExp-first router), given
// the runner's normal form: any case, an optional trailing slash.
const normal = (p: string) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p).toLowerCase()
function trieMatches(decls: readonly RouteDecl[]) {
  const router = new TrieRouter<true>()
  for (const r of decls) router.add(r.method, normal(r.path), true)
  const has = (m: string, p: string) => router.match(m, normal(p))[0].length > 0
  return (m: string, p: string) => has(m, p) || (m === 'HEAD' && has('GET', p))
}

describe('compileRoutes', () => {
  it('matches exactly the paths the trie router matched', () => {
    const compiled = compileRoutes(DECLS)
    const reference = trieMatches(DECLS)
    const segment = fc.constantFrom('webhook', 'Items', 'items', 'files', 'orgs', 'things', 'n', 'opt', '1', '42', 'abc', 'x.y', '')
    const path = fc.array(segment, { maxLength: 5 }).map((s) => `/${s.join('/')}`)
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH')
    fc.assert(
      fc.property(method, path, (m, p) => {
        expect(compiled.matches(m, p)).toBe(reference(m, p))
      }),
      { numRuns: 3000 },
    )
  })

  it('matches as the runner does: any case, with or without a trailing slash', () => {
    const r = compileRoutes(DECLS)
    for (const path of ['/items/7', '/Items/7', '/ITEMS/7/', '/items/7/']) expect([path, r.matches('GET', path)]).toEqual([path, true])
    expect(r.matches('POST', '/WebHook/')).toBe(true)
    expect(r.matches('GET', '/items/7/extra')).toBe(false)
    // A {regex} part keeps its case: \D is not \d.
    const upper = compileRoutes([{ method: 'GET', path: '/Codes/:c{\\D+}' }])
    expect(['/codes/ABC', '/CODES/abc/', '/codes/123'].map((p) => upper.matches('GET', p))).toEqual([true, true, false])
  })

  it('lets HEAD use a declared GET route and refuses undeclared ones', () => {
    const r = compileRoutes(DECLS)
    expect(r.matches('HEAD', '/items/7')).toBe(true)
    expect(r.matches('GET', '/items')).toBe(false)
    expect(r.matches('POST', '/items/7')).toBe(false)
  })
})
