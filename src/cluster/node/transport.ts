import { Pool } from 'undici'
import { callJson, type ControlResult } from '../../workers/index.js'
import type { PeerTransport } from '../cluster.js'
import { peerHeaders } from '../protocol.js'

export interface PeerTransportOptions {
  secret: string
  /** Bound on one internal call to a peer. */
  timeoutMs: number
}

/** Keep-alive undici pools to peer gateways, one per internal URL, shared by forwarded requests and internal calls. */
export function createPeerTransport(opts: PeerTransportOptions): PeerTransport {
  const pools = new Map<string, Pool>()

  function dispatcher(url: string): Pool {
    let pool = pools.get(url)
    if (!pool) {
      pool = new Pool(url, { connections: 32, keepAliveTimeout: 30_000 })
      pools.set(url, pool)
    }
    return pool
  }

  return {
    dispatcher,
    call: (url, path, generation, payload): Promise<ControlResult> =>
      callJson(dispatcher(url), {
        method: payload === undefined ? 'GET' : 'POST',
        path,
        payload,
        timeoutMs: opts.timeoutMs,
        headers: peerHeaders(opts.secret, generation),
      }),
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()))
    },
  }
}
