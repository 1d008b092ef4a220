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

// The reference: what compileRoutes did before it used hono's default (RegExp-first) router.
function trieMatches(decls: readonly RouteDecl[]) {
  const router = new TrieRouter<true>()
  for (const r of decls) router.add(r.method, r.path, true)
  const has = (m: string, p: string) => router.match(m, p)[0].length > 0
  return (m: string, p: string) => has(m, p) || (m === 'HEAD' && has('GET', p))
}

describe('compileRoutes', () => {
  it('matches exactly the paths the trie router matched', () => {
    const compiled = compileRoutes(DECLS)
    const reference = trieMatches(DECLS)
    const segment = fc.constantFrom('webhook', 'items', 'files', 'orgs', 'things', 'n', 'opt', '1', '42', 'abc', 'x.y', '')
    const path = fc.array(segment, { maxLength: 5 }).map((s) => `/${s.join('/')}`)
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH')
    fc.assert(
      fc.property(method, path, (m, p) => {
        expect(compiled.matches(m, p)).toBe(reference(m, p))
      }),
      { numRuns: 3000 },
    )
  })

  it('lets HEAD use a declared GET route and refuses undeclared ones', () => {
    const r = compileRoutes(DECLS)
    expect(r.matches('HEAD', '/items/7')).toBe(true)
    expect(r.matches('GET', '/items')).toBe(false)
    expect(r.matches('POST', '/items/7')).toBe(false)
  })
})
