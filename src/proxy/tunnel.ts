import type { Socket } from 'node:net'

/**
 * Joins the client's connection to the upstream's once the upstream has switched protocols. Bytes
 * flow both ways with backpressure (pipe), and a half-close is passed on. When one side has closed,
 * the other is given what it was sent and closed too (nobody is left to talk to); an error ends both
 * at once, and so does `idleMs` without a byte either way (0: no bound). `onClosed` runs once, when
 * both are closed.
 */
export function spliceTunnel(client: Socket, upstream: Socket, idleMs: number, onClosed: () => void): void {
  const destroyBoth = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', destroyBoth)
  upstream.on('error', destroyBoth)
  let open = 2
  const closed = () => {
    if (--open === 0) onClosed()
  }
  // destroySoon: flush what was written, send FIN, then let go without waiting for the peer's.
  client.once('close', () => {
    upstream.destroySoon()
    closed()
  })
  upstream.once('close', () => {
    client.destroySoon()
    closed()
  })
  // Any byte either way goes through the client's socket, read or written: one timer covers both.
  client.setTimeout(idleMs, idleMs > 0 ? destroyBoth : undefined)
  upstream.pipe(client)
  client.pipe(upstream)
}
