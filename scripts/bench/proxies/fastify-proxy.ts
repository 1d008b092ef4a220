// The reference Node proxy: fastify + @fastify/http-proxy with its defaults (undici underneath).
//
//   UPSTREAM=http://127.0.0.1:5000 PORT=0 node --import tsx scripts/bench/proxies/fastify-proxy.ts
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'

const app = Fastify({ logger: false })
await app.register(proxy, { upstream: process.env.UPSTREAM ?? '' })
const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.stdout.write(`listening on ${address}\n`)
process.on('SIGTERM', () => process.exit(0))
