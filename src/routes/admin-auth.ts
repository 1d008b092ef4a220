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
  /** This machine's own names (its host name), accepted as a Host when no token is configured. */
  localNames?: readonly string[]
}

// A name for this machine's loopback: localhost (and *.localhost, RFC 6761), 127.x.x.x, ::1 in its
// usual spellings, with an optional trailing dot. The machine's own host name is added by the entry.
const LOOPBACK_NAME =
  '((?:[\\w-]+\\.)*localhost\\.?|127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}|\\[(?:::1|0:0:0:0:0:0:0:1|::ffff:127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3})\\])'
const LOOPBACK_HOST = new RegExp(`^${LOOPBACK_NAME}(:\\d{1,5})?$`, 'i')
const WEB_ORIGIN = /^https?:\/\//i

/** `name[:port]` (a Host header, or an Origin's authority) names this machine. */
const namesThisMachine = (authority: string, localNames: readonly string[]) =>
  LOOPBACK_HOST.test(authority) ||
  localNames.includes(
    authority
      .replace(/:\d{1,5}$/, '')
      .replace(/\.$/, '')
      .toLowerCase(),
  )

/**
 * Without a token, a loopback peer is not enough: a web page in a browser on the same machine also
 * connects from loopback. A request is refused when a browser says it comes from another site
 * (Origin, Sec-Fetch-Site: cross-site), or when its Host is not a loopback name (DNS rebinding:
 * the attacker's name resolved to 127.0.0.1). Non-browser clients send neither header.
 */
function browserRefusal(c: Context, localNames: readonly string[]): string | null {
  const host = c.req.header('host')
  if (host !== undefined && !namesThisMachine(host, localNames)) return `Host ${host} is not a loopback name`
  const origin = c.req.header('origin')
  if (origin !== undefined && !(WEB_ORIGIN.test(origin) && namesThisMachine(origin.replace(WEB_ORIGIN, ''), localNames))) {
    return `requests from ${origin} are refused` // another site, or `null` (a sandboxed frame, a file: page)
  }
  if (c.req.header('sec-fetch-site') === 'cross-site') return 'cross-site requests are refused'
  return null
}

/**
 * Admin API guard: a configured token is required as `Authorization: Bearer <token>` and compared in
 * constant time; with no token configured, only loopback clients are answered, and not on behalf of
 * another web site.
 */
export function adminAuth(opts: AdminAuthOptions): MiddlewareHandler {
  const localNames = (opts.localNames ?? []).map((n) => n.toLowerCase())
  return async function requireAdmin(c, next) {
    if (opts.token === undefined) {
      if (!isLoopback(opts.clientAddress(c))) {
        throw new GatewayError('FORBIDDEN', 403, 'the admin API answers only loopback clients when ADMIN_TOKEN is unset')
      }
      const refusal = browserRefusal(c, localNames)
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
