import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import { onTestFinished } from 'vitest'

/** What the fake worker does with the n-th GET /metadata (1-based). */
export type Reply = { status: number; body: string } | 'hang'

export interface Peer {
  port: number
  /** A keep-alive pool to the server, as a worker's own dispatcher is. */
  dispatcher: Pool
  /** GET /metadata requests received so far. */
  requests(): number
  /** Resolves when the server has received its n-th request. */
  received(n: number): Promise<void>
}

export const json = (value: unknown, status = 200): Reply => ({ status, body: JSON.stringify(value) })

/** A real HTTP server on 127.0.0.1:0 standing in for a worker; closed when the test finishes. */
export async function startPeer(reply: (n: number) => Reply | Promise<Reply>): Promise<Peer> {
  let count = 0
  const waiters: { n: number; resolve: () => void }[] = []
  const server = createServer((req, res) => {
    if (req.url !== '/metadata') {
      res.writeHead(404).end()
      return
    }
    count++
    for (const w of waiters.filter((w) => w.n <= count)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve()
    }
    void Promise.resolve(reply(count)).then((r) => {
      if (r === 'hang') return // never answers; the client's deadline has to give up
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  })
  const port = (server.address() as AddressInfo).port
  return {
    port,
    dispatcher: dispatcherTo(port),
    requests: () => count,
    received: (n) =>
      new Promise<void>((resolve) => {
        if (count >= n) resolve()
        else waiters.push({ n, resolve })
      }),
  }
}

/** A pool to 127.0.0.1:port, destroyed when the test finishes. */
export function dispatcherTo(port: number): Pool {
  const pool = new Pool(`http://127.0.0.1:${port}`)
  onTestFinished(() => pool.destroy())
  return pool
}

/** A port nothing listens on: bound once, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}
