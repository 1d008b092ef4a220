import type { Context } from 'hono'
import type { Logger } from '../core/index.js'

/** Hono environment shared by every route: request id (hono/request-id) and a request logger. */
export interface AppEnv {
  Variables: {
    requestId: string
    log: Logger
  }
}

/** The peer address of a request; runtime-specific, so injected by the entry. */
export type ClientAddress = (c: Context) => string | undefined
