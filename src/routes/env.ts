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
    /** A peer gateway of the cluster forwarded this request (its secret checked). */
    fromPeer: boolean
  }
}

/** The peer address of a request; runtime-specific, so injected by the entry. */
export type ClientAddress = (c: Context) => string | undefined
