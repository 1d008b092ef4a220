import { spawn } from 'node:child_process'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { hostname } from 'node:os'
import { getRequestListener, RequestError, type HttpBindings } from '@hono/node-server'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context } from 'hono'
import { createApp } from '../app.js'
import { scanPlugins, watchPlugins } from '../catalog/index.js'
import { createCluster } from '../cluster/index.js'
import { createPeerTransport } from '../cluster/node/index.js'
import type { Config } from '../config.js'
import type { Clock, Logger } from '../core/index.js'
import { errorText, GatewayError, MAX_TIMER_MS, systemClock } from '../core/index.js'
import { createCatalogRepo, createClusterRepo, createInstancesRepo, createPluginsRepo, localFilePath, openDatabase } from '../db/index.js'
import {
  checkStoredSecrets,
  createAdmission,
  createInstances,
  createPluginCatalog,
  createRuntimeRecorder,
  createTargets,
  createWorkerControl,
  createWorkerSpecs,
  storeConfigPerSchema,
} from '../gateway/index.js'
import { createMetadataPolicy, createMetadataService } from '../metadata/index.js'
import { createPrometheusMetrics, nodeResponseStatus } from '../observability/node/index.js'
import { createNodeProxy, honoForwarder } from '../proxy/index.js'
import { createRegistry } from '../registry/index.js'
import { createPublicPath } from '../routes/index.js'
import type { SecretBox } from '../secrets/index.js'
import { generatedKeyPath, openSecretBox } from '../secrets/node/index.js'
import { callWorker, checkRunnerReach, createSandbox, createWorkerPool, type SpawnFn } from '../workers/index.js'
import { answerClientError } from './client-errors.js'
import { hasLiveGatewayParent, killOrphanedWorkers } from './orphans.js'
import { withWorkerReach } from './plugin-reach.js'
import { createPublicFastPath } from './public-fast-path.js'

export interface GatewayOptions {
  config: Config
  log: Logger
  clock?: Clock
  spawn?: SpawnFn
}

export interface RunningGateway {
  /** Base URL the gateway listens on. */
  url: string
  port: number
  /** Persists every pending runtime transition and activity timestamp. */
  flush(): Promise<void>
  /** Stops accepting, drains, stops every worker, marks them stopped, closes the database. Idempotent. */
  close(): Promise<void>
  pool: ReturnType<typeof createWorkerPool>
  registry: ReturnType<typeof createRegistry>
}

// While shutting down, how often connections that went idle between requests are closed.
const IDLE_SWEEP_MS = 50

/** Wires config → db → catalog → secrets → metadata → pool → cluster → use cases → app → HTTP server, in that order (STYLE.md §13). */
export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const { config, log } = opts
  const clock = opts.clock ?? systemClock
  // Before anything is opened: a root gateway's workers run as another user, who must reach the runner.
  const { runnerCommand, watchdogPath, sandbox: sandboxSettings } = config.pool
  await checkRunnerReach({ runnerCommand, watchdogPath, users: sandboxSettings.users, path: sandboxSettings.path })
  const database = await openDatabase({ url: config.database.url, authToken: config.database.authToken, log })
  const databaseFile = localFilePath(config.database.url)
  const plugins = createPluginsRepo(database.db, clock)
  const instances = createInstancesRepo(database.db, clock)

  const registry = createRegistry({ plugins, instances, log })
  // Every scan, at start-up and on each rescan, lists the plugins the workers' users cannot reach as invalid.
  const scan = async () => withWorkerReach(await scanPlugins(config.pluginDirs), config.pool.sandbox.users)
  // In a cluster, the rescans and restarts counted so far: this first scan covers them.
  const catalogRepo = createCatalogRepo(database.db, clock)
  const seenCatalog = config.cluster && (await catalogRepo.generations())
  await registry.load(await scan())

  // Secrets at rest: SECRET_KEY, else a key generated beside a local database file; refuse to start
  // when stored secrets cannot be opened with it.
  let secrets: SecretBox
  try {
    secrets = openSecretBox(
      {
        key: config.secrets.key?.(),
        previousKeys: config.secrets.previousKeys(),
        databaseFile,
        clustered: config.cluster !== undefined,
      },
      log,
    )
    await checkStoredSecrets({ registry, secrets, log })
  } catch (err) {
    database.close()
    throw err
  }

  // Recovery: rows a dead gateway left live describe processes nobody owns any more. In a cluster
  // only rows of gateways that stopped heartbeating (and our own previous life) are orphaned.
  const clusterRepo = createClusterRepo(database.db, clock)
  const orphaned = await instances.resetOrphanedRuntime({
    ...(config.cluster && {
      ownerGatewayIds: [...(await clusterRepo.deadGatewayIds(config.cluster.gatewayTtlMs)), config.cluster.gatewayId],
    }),
    // A worker whose parent is a running gateway is no orphan: a second gateway started on this
    // database by mistake (without CLUSTER_SECRET) must leave the first one's workers and rows alone.
    keep: async (row) => row.pid !== null && (await hasLiveGatewayParent(row.pid, config.installDir)),
  })
  if (orphaned.length > 0) {
    const killed = await killOrphanedWorkers(orphaned, (id) => registry.plugin(id)?.dir, config.pool.watchdogPath, log)
    log.warn({ count: orphaned.length, killed }, 'reset runtime state left by a previous gateway')
  }

  const metadata = createMetadataPolicy({
    registry,
    store: createMetadataService({ plugins, clock, log, fetch: config.metadata.fetch }),
    fetch: config.metadata.fetch,
    clock,
    log,
    retryMs: config.metadata.retryMs,
    onNewConfigSchema: (pluginId) => storeConfigPerSchema({ registry, secrets, log }, pluginId),
  })
  const sandbox = createSandbox({
    settings: config.pool.sandbox,
    runnerCommand: config.pool.runnerCommand,
    watchdogPath: config.pool.watchdogPath,
    // What no worker may read, whatever its policy grants: the database and the key beside it.
    protectedPaths: databaseFile ? [...['', '-wal', '-shm', '-journal'].map((s) => databaseFile + s), generatedKeyPath(databaseFile)] : [],
    pluginRoots: config.pluginDirs,
    log,
  })
  const pool = createWorkerPool({ config: config.pool, clock, spawn: opts.spawn ?? spawn, sandbox, log, afterReady: metadata.afterReady })
  const recorder = createRuntimeRecorder({
    instances,
    clock,
    log,
    flushEveryMs: config.activityFlushMs,
    ...(config.cluster && { gatewayId: config.cluster.gatewayId }),
  })
  pool.subscribe(recorder.record)
  const metrics = createPrometheusMetrics({ workers: pool.list, queueDepth: pool.queued })
  pool.subscribe(metrics.observePoolEvent)
  // Set once shutdown begins (close below).
  let closing: Promise<void> | null = null
  const draining = () => closing !== null
  const cluster =
    config.cluster &&
    createCluster({
      config: config.cluster,
      secret: config.cluster.secret,
      repo: clusterRepo,
      pool,
      transport: createPeerTransport({ secret: config.cluster.secret, timeoutMs: config.controlTimeoutMs }),
      clock,
      log,
      draining,
    })

  const targets = createTargets(registry)
  const specs = createWorkerSpecs(secrets)
  const admission = createAdmission({ targets, pool, metadata, specs })
  const workers = createWorkerControl({
    targets,
    specs,
    pool,
    metadata,
    callWorker,
    controlTimeoutMs: config.controlTimeoutMs,
    ...(cluster && { cluster }),
  })
  const catalog = createPluginCatalog({
    registry,
    targets,
    pool,
    scan,
    clock,
    log,
    ...(config.cluster && seenCatalog && { cluster: { repo: catalogRepo, seen: seenCatalog, followMs: config.cluster.heartbeatMs } }),
  })
  const instanceUseCases = createInstances({ registry, targets, specs, pool, workers, secrets, log, ...(cluster && { cluster }) })
  const servePublic = createPublicPath({
    admission,
    trustForwarded: config.trustForwarded,
    draining,
    maxBodyBytes: config.proxy.maxBodyBytes,
    ...(cluster && { cluster }),
  })

  const clientAddress = (c: Context) => getConnInfo(c).remote.address
  // Node has parsed the headers already; c.req.header() would first copy them all into a Web Headers.
  const requestHeader = (c: Context, name: string) => {
    const value = (c.env as HttpBindings).incoming.headers[name]
    return Array.isArray(value) ? value.join(', ') : value
  }
  const proxy = createNodeProxy(config.proxy)
  const app = createApp({
    servePublic,
    targets,
    instances: instanceUseCases,
    workers,
    catalog,
    registry,
    pool,
    forwarder: honoForwarder(proxy),
    log,
    adminToken: config.adminToken,
    clientAddress,
    requestHeader,
    metrics,
    responseStatus: nodeResponseStatus,
    now: () => clock.now(),
    ...(cluster && { cluster }),
    draining,
    localNames: [hostname()],
    maxBodyBytes: config.proxy.maxBodyBytes,
  })

  // Not @hono/node-server's serve(): it cannot pass an errorHandler, and without one a request the
  // adapter refuses before the app runs (a backslash in the path, a bad Host) gets a bare 400. And
  // plain public requests take the fast path first.
  const serveApp = getRequestListener(app.fetch, { hostname: config.server.host, errorHandler: refuseUnreadableRequest })
  const servePublicOnNode = config.server.publicFastPath ? createPublicFastPath({ servePublic, proxy, log, metrics }) : () => false
  const serve = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    if (!servePublicOnNode(incoming, outgoing)) void serveApp(incoming, outgoing)
  }
  const server = createServer({ maxHeaderSize: config.server.maxHeaderBytes }, serve)
  server.on('clientError', answerClientError(config.server.maxHeaderBytes))
  // Upgrade requests (WebSocket or any other) take the same path, on a response over their raw socket.
  server.on('upgrade', (incoming: IncomingMessage, socket: Socket, head: Buffer) => proxy.upgrades.accept(incoming, socket, head, serve))
  server.listen(config.server.port, config.server.host)
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  }).catch(async (err: unknown) => {
    // Nothing was served: put back what start-up took (the catalog's following, prewarmed runners, timers, the database).
    await catalog.close()
    await pool.close()
    await recorder.close()
    database.close()
    const code = (err as { code?: string }).code
    const where = `${config.server.host}:${config.server.port}`
    throw new GatewayError(
      'LISTEN_FAILED',
      500,
      code === 'EADDRINUSE' ? `${where} is already in use (another gateway? set PORT)` : `cannot listen on ${where}: ${errorText(err)}`,
      { cause: err },
    )
  })
  const port = (server.address() as AddressInfo).port
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host
  const url = `http://${host}:${port}`
  await cluster?.start(config.cluster?.internalUrl ?? url)
  const watcher =
    config.watchPlugins &&
    (await watchPlugins({ dirs: config.pluginDirs, debounceMs: config.watchPlugins.debounceMs, clock, log, onChange: catalog.rescan }))
  log.info({ host: config.server.host, port, plugins: registry.plugins().length, gatewayId: cluster?.gatewayId }, 'gateway listening')

  const close = () =>
    (closing ??= (async () => {
      // Stop accepting; requests in flight finish while workers drain.
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      // A keep-alive client that keeps sending (health checks, a peer) would hold its connection
      // forever: every answer from now on ends its connection, connections are closed as soon as
      // they are idle, and all of them once the workers had their time to drain and stop. That time
      // is the whole stop (drain, /disable, SIGTERM → SIGKILL): a request cut by it still gets its 502.
      server.prependListener('request', (_req, res: ServerResponse) => res.setHeader('connection', 'close'))
      const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS)
      const { drainTimeoutMs, disableTimeoutMs, stopTimeoutMs } = config.pool
      const deadline = setTimeout(
        () => {
          server.closeAllConnections()
          proxy.upgrades.closeAll()
        },
        Math.min(drainTimeoutMs + disableTimeoutMs + stopTimeoutMs, MAX_TIMER_MS),
      )
      try {
        await watcher?.close()
        await catalog.close()
        await pool.close()
        // A stop does not wait for tunnels; its worker's exit closed them. Those left lead elsewhere
        // (to a peer gateway that owns the worker) or were still waiting for one: they end here.
        proxy.upgrades.closeAll()
        await cluster?.close()
        await recorder.close()
        await serverClosed
      } finally {
        clearInterval(sweep)
        clearTimeout(deadline)
        database.close()
      }
      log.info('gateway stopped')
    })())

  return { url, port, flush: recorder.flush, close, pool, registry }
}

/** README: errors are always JSON, also for a request the adapter could not turn into a Request. */
function refuseUnreadableRequest(err: unknown): Response {
  const e =
    err instanceof RequestError ? new GatewayError('BAD_REQUEST', 400, err.message) : new GatewayError('INTERNAL', 500, 'internal error')
  return Response.json({ error: { code: e.code, message: e.message } }, { status: e.status })
}

export type { HttpBindings }
