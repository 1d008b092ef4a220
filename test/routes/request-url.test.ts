import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { requestUrl } from '../../src/routes/public.js'

const parts = (u: { protocol: string; host: string; pathname: string; search: string }) => ({
  protocol: u.protocol,
  host: u.host,
  pathname: u.pathname,
  search: u.search,
})

// Request.url is always a serialized URL; requestUrl must read it exactly as `new URL()` would.
describe('requestUrl', () => {
  it('matches new URL() on serialized request URLs, dot-segments and escapes included', () => {
    const segment = fc.oneof(
      fc.constantFrom('.', '..', '%2e', '%2E', '.%2e', '%2e%2e', 'a.b', 'orgs', 'plugins', 'echo', '', '%41', 'x%2fy', '~', 'é', 'a b'),
      fc.stringMatching(/^[\w.~!$&'()*+,;=:@%-]{0,6}$/),
    )
    const target = fc
      .tuple(
        fc.array(segment, { maxLength: 8 }),
        fc.option(fc.stringMatching(/^[\w=&%.?/-]{0,8}$/)),
        fc.option(fc.stringMatching(/^\w{0,4}$/)),
      )
      .map(([segs, query, hash]) => `/${segs.join('/')}${query === null ? '' : `?${query}`}${hash === null ? '' : `#${hash}`}`)
    const host = fc.constantFrom('127.0.0.1:8787', 'localhost', 'example.com:80', '[::1]:9000', 'gw.test')
    fc.assert(
      fc.property(host, target, (h, t) => {
        const href = new URL(`http://${h}${t}`).href
        expect(parts(requestUrl(href))).toEqual(parts(new URL(href)))
      }),
      { numRuns: 2000 },
    )
  })

  it('reads the plain fast-path case without reparsing', () => {
    expect(parts(requestUrl('http://127.0.0.1:8787/orgs/acme/plugins/echo/items/1?x=1'))).toEqual({
      protocol: 'http:',
      host: '127.0.0.1:8787',
      pathname: '/orgs/acme/plugins/echo/items/1',
      search: '?x=1',
    })
  })
})
