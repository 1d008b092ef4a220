// The ways one Node process can pass a request on to another, for the cluster's second hop
// (BENCHMARKS.md, "Through a non-owner"): the undici baseline's proxy (undici-proxy.ts) in both places,
// the non-owner's transport to the owner the only thing that changes.
//
//   ROLE=upstream PORT=0                        a plain node:http server answering a small JSON body
//   ROLE=owner UPSTREAM=<url> SOCKET=<path>     the proxy to upstream, served over HTTP/1.1 on TCP (PORT=0),
//                                               on the unix socket SOCKET, and as h2c (cleartext HTTP/2)
//   ROLE=peer TRANSPORT=<t> OWNER=<url>         the proxy to the owner, over transport t:
//     tcp         HTTP/1.1 keep-alive on TCP: what the gateway does today
//     unix        HTTP/1.1 keep-alive on the owner's unix socket (OWNER_SOCKET)
//     pipelining  HTTP/1.1 on TCP, 8 requests in flight per connection on 4 connections
//     h2c         HTTP/2 without TLS, streams multiplexed on one connection (undici's H2CClient)
//     relay       no HTTP at all: each client connection is copied byte for byte to one of its own to
//                 the owner, which then serves the client's requests as its own
// Each prints `listening on <url>` once it serves.
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import { type AddressInfo, connect, createServer as createTcpServer, type Server } from 'node:net'
import { type Dispatcher, H2CClient, Pool } from 'undici'

const env = process.env
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'])

function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>) {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const value = headers[name]
    // HTTP/2 pseudo-headers (`:path`…) are the request line, not headers to pass on.
    if (value !== undefined && !HOP_BY_HOP.has(name) && name[0] !== ':') out[name] = value
  }
  return out
}

type Req = IncomingMessage | Http2ServerRequest
type Res = ServerResponse | Http2ServerResponse

/** undici-proxy.ts's handler, over whichever dispatcher reaches the next hop. */
const proxyTo =
  (dispatcher: Dispatcher) =>
  (req: Req, res: Res): void => {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
    dispatcher.stream(
      { method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: endToEnd(req.headers), body: hasBody ? req : null },
      ({ statusCode, headers }) => {
        res.writeHead(statusCode, endToEnd(headers))
        return res
      },
      (err) => {
        if (!err) return
        if (res.headersSent) res.destroy()
        else res.writeHead(502).end()
      },
    )
  }

const keepAlive = { keepAliveTimeout: 30_000 }

function peerDispatcher(transport: string | undefined, owner: string): Dispatcher {
  switch (transport) {
    case 'tcp':
      return new Pool(owner, { connections: null, ...keepAlive })
    case 'unix':
      return new Pool('http://localhost', { socketPath: env.OWNER_SOCKET ?? '', connections: null, ...keepAlive })
    case 'pipelining':
      return new Pool(owner, { connections: 4, pipelining: 8, ...keepAlive })
    case 'h2c':
      return new H2CClient(env.OWNER_H2C ?? '', { maxConcurrentStreams: 256, pipelining: 256 })
    default:
      throw new Error(`TRANSPORT must be tcp, unix, pipelining, h2c or relay, not ${transport}`)
  }
}

/** Copies every client connection to a connection of its own to the owner, both ways, unparsed. */
function relayTo(owner: URL): Server {
  return createTcpServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: owner.hostname, port: Number(owner.port), noDelay: true })
    client.pipe(upstream).on('error', () => client.destroy())
    upstream.pipe(client).on('error', () => upstream.destroy())
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
}

const listen = (server: Server, port: number | string) =>
  new Promise<string>((resolve) => {
    const onListening = () => {
      const address = server.address()
      resolve(typeof address === 'string' ? address : `http://127.0.0.1:${(address as AddressInfo).port}`)
    }
    if (typeof port === 'string') server.listen(port, onListening)
    else server.listen(port, '127.0.0.1', onListening)
  })

function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createHttpServer(handler)
  server.keepAliveTimeout = 30_000
  return server
}

async function main(): Promise<string> {
  const port = Number(env.PORT ?? 0)
  switch (env.ROLE) {
    case 'upstream': {
      const body = JSON.stringify({ id: '1', query: {} })
      return listen(
        httpServer((_req, res) =>
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body),
        ),
        port,
      )
    }
    case 'owner': {
      const handler = proxyTo(new Pool(env.UPSTREAM ?? '', { connections: null, ...keepAlive }))
      const [tcp, , h2c] = await Promise.all([
        listen(httpServer(handler), port),
        listen(httpServer(handler), env.SOCKET ?? ''),
        listen(createH2Server({ settings: { maxConcurrentStreams: 256 } }, handler) as unknown as Server, 0),
      ])
      return `${tcp} h2c ${h2c}`
    }
    case 'peer': {
      const owner = env.OWNER ?? ''
      if (env.TRANSPORT === 'relay') return listen(relayTo(new URL(owner)), port)
      return listen(httpServer(proxyTo(peerDispatcher(env.TRANSPORT, owner))), port)
    }
    default:
      throw new Error(`ROLE must be upstream, owner or peer, not ${env.ROLE}`)
  }
}

main().then(
  (url) => process.stdout.write(`listening on ${url}\n`),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`)
    process.exit(1)
  },
)
process.on('SIGTERM', () => process.exit(0))
