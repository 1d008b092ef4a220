import type { HttpBindings } from '@hono/node-server'
import type { Context } from 'hono'

// @hono/node-server's RESPONSE_ALREADY_SENT placeholder carries this header.
const ALREADY_SENT = 'x-hono-already-sent'

/** The status sent on the Node socket: the forwarder writes proxied responses itself (see ResponseStatus). */
export function nodeResponseStatus(c: Context): number {
  if (c.res.headers.get(ALREADY_SENT) === null) return c.res.status
  return (c.env as HttpBindings).outgoing.statusCode
}
