import { type IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** The connections a Node server handed over on 'upgrade', from the request until they close. */
export interface Upgrades {
  /**
   * The response for an upgrade request, on its raw socket, so the request takes the same path as any
   * other: an answer written to it (an error, a worker's normal reply) closes the connection after it;
   * the forwarder turns a worker's 101 into a tunnel on the socket instead. `head`: bytes the client
   * sent after the request head, which belong to the new protocol.
   */
  accept(incoming: IncomingMessage, socket: Socket, head: Buffer): ServerResponse
  /** True for a request accept() took. */
  isUpgrade(incoming: IncomingMessage): boolean
  /** Destroys every accepted connection still open (a tunnel, or a request still waiting). */
  closeAll(): void
}

export function createUpgrades(): Upgrades {
  const requests = new WeakSet<IncomingMessage>()
  const sockets = new Set<Socket>()
  return {
    accept(incoming, socket, head) {
      requests.add(incoming)
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      // Node's server stops listening to an upgraded socket: an error on it must not reach the process.
      socket.on('error', () => socket.destroy())
      if (head.length > 0) socket.unshift(head)
      const outgoing = new ServerResponse(incoming)
      outgoing.shouldKeepAlive = false // `connection: close`: nothing parses a next request on this socket
      outgoing.assignSocket(socket)
      outgoing.once('finish', () => socket.destroySoon())
      return outgoing
    },
    isUpgrade: (incoming) => requests.has(incoming),
    closeAll() {
      for (const socket of sockets) socket.destroy()
    },
  }
}
