import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import type { Logger } from './core/index.js'
import type { GatewayService } from './gateway/index.js'
import type { Forwarder } from './proxy/index.js'
import type { Registry } from './registry/index.js'
import { adminAuth } from './routes/admin-auth.js'
import { adminRoutes } from './routes/admin.js'
import type { AppEnv, ClientAddress } from './routes/env.js'
import { notFound, onError } from './routes/errors.js'
import { publicRoutes } from './routes/public.js'
import type { WorkerPool } from './workers/index.js'

export interface AppDeps {
  service: GatewayService
  registry: Registry
  pool: WorkerPool
  forwarder: Forwarder
  log: Logger
  adminToken: string | undefined
  clientAddress: ClientAddress
}

// An incoming x-request-id is kept only when it is short and plain; otherwise a new one is made.
const REQUEST_ID = /^[\w.:-]{1,128}$/

/** The gateway's HTTP surface, runtime-agnostic: everything that touches processes or sockets is injected. */
export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>()
  app.use(
    requestId({
      headerName: 'x-request-id',
      limitLength: 128,
      generator: (c) => {
        const incoming = c.req.header('x-request-id')
        return incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID()
      },
    }),
  )
  app.onError(onError(deps.log))
  app.notFound(notFound)

  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.use('/admin/*', adminAuth({ token: deps.adminToken, clientAddress: deps.clientAddress }))
  app.route('/admin', adminRoutes(deps))
  app.route('/', publicRoutes(deps))
  return app
}

export type App = ReturnType<typeof createApp>
