import { type IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** The connections a Node server handed over on 'upgrade', from the request until they close. */
export interface Upgrades {
  /**
   * Serves an upgrade request on its raw socket: `serve` gets a response on it, so the request takes
   * the same path as any other: an answer written to it (an error, a worker's normal reply) closes the
   * connection after it; the forwarder turns a worker's 101 into a tunnel on the socket instead.
   * `head`: bytes the client sent after the request head, which belong to the new protocol. An upgrade
   * pipelined behind a request whose answer is still under way is served once that answer is sent.
   */
  accept(
    incoming: IncomingMessage,
    socket: Socket,
    head: Buffer,
    serve: (incoming: IncomingMessage, outgoing: ServerResponse) => void,
  ): void
  /** True for a request accept() took. */
  isUpgrade(incoming: IncomingMessage): boolean
  /** Destroys every accepted connection still open (a tunnel, or a request still waiting). */
  closeAll(): void
}

/**
 * Node's server holds each response of a pipelined connection until the one before it is sent, and
 * says which one the socket is writing in `_httpMessage` (internal, the same on Node 20 to 24;
 * test/gateway/upgrade-faults checks it). A socket has one response at a time: assigning a second throws.
 */
type ServerSocket = Socket & { _httpMessage?: ServerResponse | null }

export function createUpgrades(): Upgrades {
  const requests = new WeakSet<IncomingMessage>()
  const sockets = new Set<Socket>()
  return {
    accept(incoming, socket, head, serve) {
      requests.add(incoming)
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      // Node's server stops listening to an upgraded socket: an error on it must not reach the process.
      socket.on('error', () => socket.destroy())
      if (head.length > 0) socket.unshift(head)
      const start = () => {
        if (socket.destroyed) return
        const outgoing = new ServerResponse(incoming)
        outgoing.shouldKeepAlive = false // `connection: close`: nothing parses a next request on this socket
        outgoing.assignSocket(socket)
        outgoing.once('finish', () => socket.destroySoon())
        serve(incoming, outgoing)
      }
      const earlier = (socket as ServerSocket)._httpMessage
      // Node lets go of the socket in its own 'finish' listener, registered before this one.
      if (earlier) earlier.once('finish', start)
      else start()
    },
    isUpgrade: (incoming) => requests.has(incoming),
    closeAll() {
      for (const socket of sockets) socket.destroy()
    },
  }
}
