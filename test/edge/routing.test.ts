import { describe, expect, it } from 'vitest'
import { endToEndHeaders, parseEdgeBindings, pickOrigin } from '../../src/edge/index.js'

const ORIGINS = ['http://gw-a:8787', 'http://gw-b:8787', 'http://gw-c:8787']
const PAIRS = Array.from({ length: 300 }, (_, i) => [`org-${i}`, i % 3 === 0 ? 'echo' : 'webhook'] as const)

describe('pickOrigin', () => {
  it('sends a pair to the same origin every time, whatever the order of the list', () => {
    for (const [org, plugin] of PAIRS) {
      const chosen = pickOrigin(ORIGINS, org, plugin)
      expect(pickOrigin(ORIGINS, org, plugin)).toBe(chosen)
      expect(pickOrigin([...ORIGINS].reverse(), org, plugin)).toBe(chosen)
    }
  })

  it('spreads pairs over every origin', () => {
    const counts = new Map<string, number>()
    for (const [org, plugin] of PAIRS) counts.set(pickOrigin(ORIGINS, org, plugin), (counts.get(pickOrigin(ORIGINS, org, plugin)) ?? 0) + 1)
    expect([...counts.keys()].sort()).toEqual(ORIGINS)
    for (const n of counts.values()) expect(n).toBeGreaterThan(PAIRS.length / 6) // far from all on one host
  })

  it('moves only the pairs of a removed origin (their workers elsewhere stay warm)', () => {
    const without = ORIGINS.filter((o) => o !== 'http://gw-b:8787')
    for (const [org, plugin] of PAIRS) {
      const before = pickOrigin(ORIGINS, org, plugin)
      const after = pickOrigin(without, org, plugin)
      if (before !== 'http://gw-b:8787') expect(after).toBe(before)
    }
  })

  it('tells apart pairs that differ only in which id holds a character', () => {
    const two = ['http://x', 'http://y']
    const spread = new Set(Array.from({ length: 40 }, (_, i) => pickOrigin(two, `a${i}`, 'b') + pickOrigin(two, 'a', `${i}b`)))
    expect(spread.size).toBeGreaterThan(1)
  })
})

describe('endToEndHeaders', () => {
  it('drops hop-by-hop fields and the ones Connection names, keeps the rest', () => {
    const h = new Headers({
      connection: 'keep-alive, X-Hop',
      'keep-alive': 'timeout=5',
      'x-hop': '1',
      te: 'trailers',
      upgrade: 'h2c',
      'proxy-authorization': 'Basic abc',
      host: 'edge.example',
      authorization: 'Bearer plugin-token',
      'x-signature': 'sha256=00',
    })
    expect([...endToEndHeaders(h).keys()].sort()).toEqual(['authorization', 'x-signature'])
  })
})

describe('parseEdgeBindings', () => {
  it('accepts comma- or space-separated http(s) base URLs and drops trailing slashes', () => {
    expect(parseEdgeBindings({ GATEWAY_ORIGINS: 'http://a:8787/, https://b.example/gw  http://c' })).toEqual({
      ok: true,
      config: { origins: ['http://a:8787', 'https://b.example/gw', 'http://c'] },
    })
  })

  it('refuses a missing, empty or non-http list with a message naming the binding', () => {
    for (const env of [{}, { GATEWAY_ORIGINS: ' ' }, { GATEWAY_ORIGINS: 'ftp://a' }, undefined]) {
      const result = parseEdgeBindings(env)
      expect(result.ok).toBe(false)
      if (!result.ok) expect(result.error).toContain('GATEWAY_ORIGINS')
    }
  })

  it('refuses a base URL with a query, a fragment or credentials, which would end up before every path', () => {
    for (const origin of ['https://gw.example/?pool=1', 'https://gw.example/gw?', 'https://gw.example/#a', 'https://user:pw@gw.example']) {
      const env = { GATEWAY_ORIGINS: `http://ok.example ${origin}` }
      const result = parseEdgeBindings(env)
      expect(result.ok).toBe(false)
      if (!result.ok) expect(result.error).toContain('GATEWAY_ORIGINS')
    }
  })
})
