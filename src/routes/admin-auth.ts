import type { MiddlewareHandler } from 'hono'
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

/**
 * Admin API guard: a configured token is required as `Authorization: Bearer <token>` and compared in
 * constant time; with no token configured, only loopback clients are answered.
 */
export function adminAuth(opts: AdminAuthOptions): MiddlewareHandler {
  return async function requireAdmin(c, next) {
    if (opts.token === undefined) {
      if (!isLoopback(opts.clientAddress(c))) {
        throw new GatewayError('FORBIDDEN', 403, 'the admin API answers only loopback clients when ADMIN_TOKEN is unset')
      }
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
