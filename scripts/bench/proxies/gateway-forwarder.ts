// A layer of the gateway on its own: node:http in front of the gateway's forwarder (the built
// dist/proxy, undici dispatch handler, hop-by-hop headers, Server-Timing, backpressure, client-close
// abort), with none of the gateway's rules. Between the undici baseline and the gateway, it says what
// the forwarder costs and what the rules around it add.
//
//   UPSTREAM=http://127.0.0.1:5000 PORT=0 node --import tsx scripts/bench/proxies/gateway-forwarder.ts
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import { createNodeProxy } from '../../../src/proxy/index.js'

const upstream = process.env.UPSTREAM ?? ''
const pool = new Pool(upstream, { connections: 64, keepAliveTimeout: 30_000 })
const proxy = createNodeProxy({ upstreamTimeoutMs: 30_000, streamIdleTimeoutMs: 300_000, maxBodyBytes: 5 * 1024 * 1024 })
const noop = () => {}

const server = createServer((req, res) => {
  const target = {
    dispatcher: pool,
    hop: 'proxy',
    path: req.url ?? '/',
    requestHeaders: {},
    responseHeaders: {},
    serverTiming: '',
    onDone: noop,
  } as const
  proxy.forward(req, res, target).catch(() => {
    if (!res.headersSent) res.writeHead(502).end()
  })
})
server.keepAliveTimeout = 30_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
process.on('SIGTERM', () => process.exit(0))
