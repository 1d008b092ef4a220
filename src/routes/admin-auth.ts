import type { Context, MiddlewareHandler } from 'hono'
import { timingSafeEqual } from 'hono/utils/buffer'
import { GatewayError } from '../core/index.js'
import type { ClientAddress } from './env.js'

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/

export const isLoopback = (address: string | undefined): boolean => address !== undefined && LOOPBACK.test(address)

export interface AdminAuthOptions {
  token: string | undefined
  clientAddress: ClientAddress
  /**
   * Also accept the token as this query parameter when no Authorization header is sent. Only for
   * pages a browser navigates to (the status page), which cannot send a bearer header.
   */
  queryParam?: string
}

// A Host or Origin naming this machine's loopback: localhost, 127.x.x.x or [::1], any port.
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$/i
const LOOPBACK_ORIGIN = /^https?:\/\/(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$/i

/**
 * Without a token, a loopback peer is not enough: a web page in a browser on the same machine also
 * connects from loopback. A request is refused when a browser says it comes from another site
 * (Origin, Sec-Fetch-Site: cross-site), or when its Host is not a loopback name (DNS rebinding:
 * the attacker's name resolved to 127.0.0.1). Non-browser clients send neither header.
 */
function browserRefusal(c: Context): string | null {
  const host = c.req.header('host')
  if (host !== undefined && !LOOPBACK_HOST.test(host)) return `Host ${host} is not a loopback name`
  const origin = c.req.header('origin')
  if (origin !== undefined && !LOOPBACK_ORIGIN.test(origin)) return `requests from ${origin} are refused`
  if (c.req.header('sec-fetch-site') === 'cross-site') return 'cross-site requests are refused'
  return null
}

/**
 * Admin API guard: a configured token is required as `Authorization: Bearer <token>` and compared in
 * constant time; with no token configured, only loopback clients are answered, and not on behalf of
 * another web site.
 */
export function adminAuth(opts: AdminAuthOptions): MiddlewareHandler {
  return async function requireAdmin(c, next) {
    if (opts.token === undefined) {
      if (!isLoopback(opts.clientAddress(c))) {
        throw new GatewayError('FORBIDDEN', 403, 'the admin API answers only loopback clients when ADMIN_TOKEN is unset')
      }
      const refusal = browserRefusal(c)
      if (refusal) throw new GatewayError('FORBIDDEN', 403, `${refusal}: without ADMIN_TOKEN the admin API answers only this machine`)
      return next()
    }
    const header = c.req.header('authorization')
    const given = header === undefined && opts.queryParam ? c.req.query(opts.queryParam) : /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]
    if (!given || !(await timingSafeEqual(given, opts.token))) {
      c.header('www-authenticate', 'Bearer realm="plugin-gateway admin"')
      throw new GatewayError('UNAUTHORIZED', 401, 'a valid admin bearer token is required')
    }
    return next()
  }
}
