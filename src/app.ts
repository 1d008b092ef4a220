import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Cluster } from './cluster/index.js'
import { bodyTooLarge, type Logger } from './core/index.js'
import type { Instances, PluginCatalog, Targets, WorkerControl } from './gateway/index.js'
import { requestLogging, requestMetrics, type Metrics, type ResponseStatus } from './observability/index.js'
import type { Forwarder } from './proxy/index.js'
import type { Registry } from './registry/index.js'
import type { AppEnv, ClientAddress, RequestHeader, ServePublic } from './routes/index.js'
import {
  adminAuth,
  adminRoutes,
  internalRoutes,
  metricsRoutes,
  notFound,
  onError,
  publicRoutes,
  requestIdMiddleware,
  uiRoutes,
  workerJson,
} from './routes/index.js'
import type { WorkerPool } from './workers/index.js'

export interface AppDeps {
  /** The public path's rules (routes/public.ts createPublicPath), over admission and the cluster. */
  servePublic: ServePublic
  targets: Targets
  instances: Instances
  workers: WorkerControl
  /** Rescans of the plugin directories and restarts of a plugin's workers. */
  catalog: PluginCatalog
  registry: Registry
  pool: WorkerPool
  forwarder: Forwarder
  log: Logger
  adminToken: string | undefined
  clientAddress: ClientAddress
  /** Reads a request header without building a Web Headers; `c.req.header()` when absent. */
  requestHeader?: RequestHeader
  /** Request counts and proxy latency are observed here; `GET /metrics` renders them. Absent: no /metrics. */
  metrics?: Metrics
  /** The status actually sent, for logs and metrics; runtime-specific (see ResponseStatus). */
  responseStatus?: ResponseStatus
  /** Wall clock for the status page's uptimes (the pool's clock). */
  now?: () => number
  /** Present when several gateways share the database (CLUSTER_SECRET set). */
  cluster?: Cluster
  /** True once shutdown has begun. */
  draining?: () => boolean
  /** This machine's own names (its host name): a Host the tokenless admin API accepts besides loopback names. */
  localNames?: readonly string[]
  /** The largest body an admin or internal call may send (MAX_BODY_BYTES, as for plugin traffic). */
  maxBodyBytes: number
}

/** The gateway's HTTP surface, runtime-agnostic: everything that touches processes or sockets is injected. */
export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>()
  app.use(requestIdMiddleware({ header: deps.requestHeader }))
  // Its lines are debug level: where they would be dropped, the middleware is not run at all.
  if (deps.log.isLevelEnabled?.('debug') ?? true) app.use(requestLogging({ log: deps.log, responseStatus: deps.responseStatus }))
  if (deps.metrics) app.use(requestMetrics({ metrics: deps.metrics, responseStatus: deps.responseStatus }))
  app.onError(onError(deps.log))
  app.notFound(notFound)

  const guard = { token: deps.adminToken, clientAddress: deps.clientAddress, ...(deps.localNames && { localNames: deps.localNames }) }
  // 503 while draining, so a load balancer stops sending before the listener is gone.
  app.get('/healthz', (c) => (deps.draining?.() ? c.json({ status: 'draining' }, 503) : c.json({ status: 'ok' })))
  if (deps.metrics) {
    app.use('/metrics', adminAuth(guard))
    app.route('/', metricsRoutes({ metrics: deps.metrics }))
  }
  // Registered before the /admin/* guard, which it replaces for the page: a browser navigating there
  // cannot send a bearer header, so the page also takes ?token= (its script then keeps it in sessionStorage).
  app.route('/admin/ui', uiRoutes({ ...deps, auth: adminAuth({ ...guard, queryParam: 'token' }) }))
  // Read whole before they are parsed: bounded, so one call cannot hold the gateway's memory.
  const bounded = bodyLimit({
    maxSize: deps.maxBodyBytes,
    onError: () => {
      throw bodyTooLarge(deps.maxBodyBytes)
    },
  })
  app.use('/admin/*', adminAuth(guard), bounded)
  app.route('/admin', adminRoutes(deps))
  if (deps.cluster) {
    app.use('/internal/*', bounded)
    const localWorkers = () => deps.pool.list().map(workerJson)
    app.route('/internal', internalRoutes({ instances: deps.instances, workers: deps.workers, cluster: deps.cluster, localWorkers }))
  }
  app.route('/', publicRoutes(deps))
  return app
}

export type App = ReturnType<typeof createApp>
