import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { isFromPeer } from '../cluster/index.js'
import type { Logger } from '../core/index.js'
import { errorText, GatewayError } from '../core/index.js'
import { errorBody, toGatewayError } from '../routes/index.js'

export interface PeerSocketOptions {
  path: string
  secret: string
  maxHeaderBytes: number
  /** The gateway's own request handler, and its handler of upgrade requests. */
  serve(incoming: IncomingMessage, outgoing: ServerResponse): void
  upgrade(incoming: IncomingMessage, socket: Socket, head: Buffer): void
  log: Logger
}

const MAX_SOCKET_PATH_BYTES = 107

/**
 * The unix socket that peer gateways on this host forward to, beside the database file they share: the
 * gateway's own handler, for requests that carry the cluster secret only (anything else is a 403). A
 * hop over it costs less CPU than one over loopback TCP (BENCHMARKS.md). Resolves with null, and the
 * peers use the gateway's URL, when it cannot listen there.
 */
export async function listenPeerSocket(opts: PeerSocketOptions): Promise<Server | null> {
  const { path, secret, log } = opts
  const refusal = (incoming: IncomingMessage): GatewayError | null => {
    const header = (name: string) => {
      const value = incoming.headers[name]
      return Array.isArray(value) ? value.join(', ') : value
    }
    try {
      return isFromPeer(header, secret) ? null : new GatewayError('FORBIDDEN', 403, 'this socket serves the gateways of the cluster only')
    } catch (err) {
      return toGatewayError(err)
    }
  }
  const server = createServer({ maxHeaderSize: opts.maxHeaderBytes }, (incoming, outgoing) => {
    const refused = refusal(incoming)
    if (refused === null) return opts.serve(incoming, outgoing)
    const body = JSON.stringify(errorBody(refused))
    outgoing.writeHead(refused.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
  })
  server.on('upgrade', (incoming: IncomingMessage, socket: Socket, head: Buffer) => {
    if (refusal(incoming) === null) opts.upgrade(incoming, socket, head)
    else socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
  })
  try {
    // Linux keeps 107 bytes of a socket's path and libuv cuts a longer one short without a word.
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) throw new Error(`the path is longer than ${MAX_SOCKET_PATH_BYTES} bytes`)
    removeStaleSocket(path)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
    // Peers run as this gateway's user (they open the same database file); nobody else needs it.
    chmodSync(path, 0o600)
    return server
  } catch (err) {
    server.close()
    log.warn({ err, path, why: errorText(err) }, 'cannot listen on the peer socket; peers on this host use the URL')
    return null
  }
}

/** What a gateway of this id left behind when it was killed; never a file that is not a socket. */
function removeStaleSocket(path: string): void {
  let isSocket: boolean
  try {
    isSocket = lstatSync(path).isSocket()
  } catch {
    return // none there
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket`)
  unlinkSync(path)
}
