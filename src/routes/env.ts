import type { Context } from 'hono'
import type { Logger } from '../core/index.js'
import type { StartTiming } from '../workers/index.js'

/** Hono environment shared by every route: request id (hono/request-id) and a request logger. */
export interface AppEnv {
  Variables: {
    requestId: string
    log: Logger
    /** Set by the public route when the request started, or waited for, its worker: for metrics. */
    coldStart: StartTiming | null
  }
}

/** The peer address of a request; runtime-specific, so injected by the entry. */
export type ClientAddress = (c: Context) => string | undefined

/**
 * One request header by lower-case name; runtime-specific, so injected by the entry. The default,
 * `c.req.header()`, builds a Web `Headers` from the whole request on @hono/node-server; the Node
 * entry reads the headers Node has already parsed instead, which keeps the proxy path cheaper.
 */
export type RequestHeader = (c: Context, name: string) => string | undefined

export const webRequestHeader: RequestHeader = (c, name) => c.req.header(name)
