import { statSync } from 'node:fs'
import { Pool } from 'undici'
import { callJson, type ControlResult } from '../../workers/index.js'
import type { PeerAddress, PeerTransport } from '../cluster.js'
import { peerHeaders } from '../protocol.js'

export interface PeerTransportOptions {
  secret: string
  /** Bound on one internal call to a peer. */
  timeoutMs: number
}

// Internal calls (control, stop, listings) have keep-alive connections of their own, so they never
// wait behind forwarded requests: streams and long polls through a peer may hold any number of them.
const CONTROL_CONNECTIONS = 4

/**
 * Keep-alive undici pools to peer gateways, per address: one for forwarded requests, one for internal
 * calls. A peer whose unix socket is on this host is reached through it (BENCHMARKS.md: a hop over a
 * unix socket costs less CPU than over loopback TCP); one on another host, over its URL.
 */
export function createPeerTransport(opts: PeerTransportOptions): PeerTransport {
  const forwarding = new Map<string, Pool>()
  const control = new Map<string, Pool>()

  // Forwarded requests are not capped here: a client's request holds one connection to its owner, as
  // it holds one to this gateway, and the owner applies its own limits. A cap shared by every key a
  // peer owns would queue one plugin's requests behind another's long streams.
  const poolOf = (pools: Map<string, Pool>, peer: PeerAddress, connections: number | null): Pool => {
    const key = `${peer.url} ${peer.socketPath ?? ''}`
    let pool = pools.get(key)
    if (!pool) {
      // Looked up once per address: a peer registers its socket only once it listens on it.
      const socketPath = peer.socketPath !== null && isSocket(peer.socketPath) ? peer.socketPath : undefined
      pool = new Pool(peer.url, { connections, keepAliveTimeout: 30_000, ...(socketPath && { socketPath }) })
      pools.set(key, pool)
    }
    return pool
  }

  return {
    dispatcher: (peer) => poolOf(forwarding, peer, null),
    call: (peer, path, generation, payload): Promise<ControlResult> =>
      callJson(poolOf(control, peer, CONTROL_CONNECTIONS), {
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

/** A socket file here: the peer is on this host. One on another host is not found here. */
function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket()
  } catch {
    return false
  }
}
