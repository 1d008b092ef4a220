// The hand-written baseline: node:http in front of one undici Pool, streaming both ways, hop-by-hop
// headers stripped. What a careful engineer writes in 40 lines; the gateway should come close to it.
// It uses Pool.stream(), undici's API for piping a response into a Writable: request() + pipeline()
// would pay for a body Readable and an AbortController (aborted, with a DOMException) per request.
//
//   UPSTREAM=http://127.0.0.1:5000 PORT=0 node --import tsx scripts/bench/proxies/undici-proxy.ts
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool, type Dispatcher } from 'undici'

const upstream = process.env.UPSTREAM ?? ''
const pool = new Pool(upstream, { connections: 64, keepAliveTimeout: 30_000 })

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'])
function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>) {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
  }
  return out
}

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.stream(
    { method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: endToEnd(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => res.writeHead(statusCode, endToEnd(headers)),
    (err) => {
      if (!err) return
      if (res.headersSent) res.destroy()
      else res.writeHead(502).end()
    },
  )
})
server.keepAliveTimeout = 30_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
