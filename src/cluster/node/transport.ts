import { Pool } from 'undici'
import { callJson, type ControlResult } from '../../workers/index.js'
import type { PeerTransport } from '../cluster.js'
import { peerHeaders } from '../protocol.js'

export interface PeerTransportOptions {
  secret: string
  /** Bound on one internal call to a peer. */
  timeoutMs: number
}

// Internal calls (control, stop, listings) have keep-alive connections of their own, so they never
// wait behind forwarded requests: streams and long polls through a peer may hold any number of them.
const CONTROL_CONNECTIONS = 4

/** Keep-alive undici pools to peer gateways, per internal URL: one for forwarded requests, one for internal calls. */
export function createPeerTransport(opts: PeerTransportOptions): PeerTransport {
  const forwarding = new Map<string, Pool>()
  const control = new Map<string, Pool>()

  // Forwarded requests are not capped here: a client's request holds one connection to its owner, as
  // it holds one to this gateway, and the owner applies its own limits. A cap shared by every key a
  // peer owns would queue one plugin's requests behind another's long streams.
  const poolOf = (pools: Map<string, Pool>, url: string, connections: number | null): Pool => {
    let pool = pools.get(url)
    if (!pool) {
      pool = new Pool(url, { connections, keepAliveTimeout: 30_000 })
      pools.set(url, pool)
    }
    return pool
  }

  return {
    dispatcher: (url) => poolOf(forwarding, url, null),
    call: (url, path, generation, payload): Promise<ControlResult> =>
      callJson(poolOf(control, url, CONTROL_CONNECTIONS), {
        method: payload === undefined ? 'GET' : 'POST',
        path,
        payload,
        timeoutMs: opts.timeoutMs,
        headers: peerHeaders(opts.secret, generation),
      }),
    async close() {
      await Promise.all([...forwarding.values(), ...control.values()].map((p) => p.close()))
    },
  }
}
