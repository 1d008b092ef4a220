import { Hono, type Context } from 'hono'
import { z } from 'zod'
import { isValidId, OrgId, PluginId } from '../contract/index.js'
import { GatewayError } from '../core/index.js'
import type { GatewayService } from '../gateway/index.js'
import type { Forwarder } from '../proxy/index.js'
import type { StartTiming, WorkerPool } from '../workers/index.js'
import { webRequestHeader, type AppEnv, type ClientAddress, type RequestHeader } from './env.js'
import {
  DRAINING_HEADER,
  isFromPeer,
  isNotOwner,
  isRetryableAfter,
  NOT_OWNER_HEADER,
  notOwner,
  peerHeaders,
  refuseNotOwner,
  seenGeneration,
  type ClusterRouting,
} from './cluster.js'
import { params } from './validate.js'

// DESIGN.md request path, step 1: worker control endpoints are never reachable from outside. The
// runner's cron trigger (POST /cron/<name>) is one too: it shadows a plugin route that would match it.
const CONTROL_SEGMENTS = new Set(['health', 'metadata', 'validate-auth', 'config-update', 'disable', 'mcp', 'cron'])

const Params = z.object({ orgId: OrgId, pluginId: PluginId })

export interface PublicRouteDeps {
  service: GatewayService
  forwarder: Forwarder
  clientAddress: ClientAddress
  /** Several gateways on one database: the worker of a key runs on its lease owner. */
  cluster?: ClusterRouting
  /** Keep incoming x-forwarded-proto/host (a trusted proxy, such as the edge entry, is in front). */
  trustForwarded?: boolean
  /** Tells a warm worker apart before acquiring, so the warm path needs no client AbortSignal. */
  pool?: Pick<WorkerPool, 'peek'>
  requestHeader?: RequestHeader
  /** True once shutdown has begun: requests forwarded by peers are refused so they go elsewhere. */
  draining?: () => boolean
}

export function publicRoutes(deps: PublicRouteDeps) {
  const { service, forwarder } = deps
  const header = deps.requestHeader ?? webRequestHeader
  const app = new Hono<AppEnv>()

  app.all('/orgs/:orgId/plugins/:pluginId/*', async function proxyToPlugin(c) {
    const { orgId, pluginId } = proxyParams(c)
    const url = requestUrl(c.req.url)
    const prefix = `/orgs/${orgId}/plugins/${pluginId}`
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) || '/' : null
    if (path === null || isControlPath(path)) throw routeNotFound(pluginId)

    const t = await service.target(orgId, pluginId, { requireEnabled: true })
    const method = c.req.method
    // With fresh (or last good) metadata, undeclared routes are refused before any worker starts. In
    // error without any metadata, nothing is known: the check below answers METADATA_UNAVAILABLE.
    const state = t.view.row.metadataState
    const declared = state === 'fresh' || state === 'error' ? t.view.routes : null
    const known = declared !== null
    if (declared && !declared.matches(method, path)) throw routeNotFound(pluginId)

    if (deps.cluster) {
      const forwarded = await routeInCluster(c, deps.cluster, orgId, pluginId, url)
      if (forwarded) return forwarded
    }

    // Only waiting for a cold start needs the client's signal; creating one costs ~9 µs on Node 20.
    const lease = await service.acquire(t, deps.pool?.peek(orgId, pluginId) ? undefined : forwarder.clientSignal(c))
    try {
      if (!known) {
        const routes = service.pluginOrThrow(pluginId).routes
        if (!routes) throw service.metadataUnavailable(lease.worker)
        if (!routes.matches(method, path)) throw routeNotFound(pluginId)
      }
    } catch (err) {
      lease.release()
      throw err
    }

    const requestId = c.get('requestId')
    const responseHeaders: Record<string, string> = { 'x-request-id': requestId }
    if (lease.cold) responseHeaders['x-plugin-cold-start'] = '1'
    c.set('coldStart', lease.cold)
    return forwarder.forward(c, {
      dispatcher: lease.worker.dispatcher,
      hop: 'proxy',
      path: path + url.search,
      requestHeaders: forwardedFor(c, url),
      responseHeaders,
      serverTiming: lease.cold ? coldTiming(lease.cold) : '',
      onDone: lease.release,
    })
  })

  /**
   * Serves here when this gateway owns (or may take) the key's lease; otherwise forwards to the owner.
   * An owner that cannot be reached is replaced once its lease lapses, and a bodyless request is
   * sent again to wherever the worker lives then. A forwarded request is never forwarded again.
   */
  async function routeInCluster(c: Context<AppEnv>, cluster: ClusterRouting, orgId: string, pluginId: string, url: RequestUrl) {
    if (await isFromPeer(c, cluster.secret)) {
      c.set('fromPeer', true)
      if (deps.draining?.()) {
        c.header(DRAINING_HEADER, '1') // the forwarding gateway waits for the key to move instead of relaying this
        throw new GatewayError('SHUTTING_DOWN', 503, 'gateway is shutting down', { retryAfterSeconds: 1 })
      }
      const placement = await cluster.claim(orgId, pluginId, seenGeneration(c))
      if (placement.kind === 'remote') {
        c.header(NOT_OWNER_HEADER, placement.owner.gatewayId) // the forwarding gateway's cache is stale
        throw notOwner(orgId, pluginId)
      }
      return null
    }
    let placement = await cluster.place(orgId, pluginId)
    for (let attempt = 0; placement.kind === 'remote'; attempt++) {
      const { owner } = placement
      try {
        return await forwarder.forward(c, {
          dispatcher: cluster.peerDispatcher(owner.url),
          hop: 'peer',
          path: url.pathname + url.search,
          requestHeaders: { ...forwardedFor(c, url), ...peerHeaders(cluster.secret, owner.generation) },
          responseHeaders: {},
          serverTiming: '',
          onDone: () => {},
          refuse: refuseNotOwner(orgId, pluginId),
        })
      } catch (err) {
        // An owner that is no longer one: the cached placement is stale, whatever happens next.
        const moved = isNotOwner(err) ? cluster.ownerChanged(orgId, pluginId) : null
        if (attempt > 0 || !isRetryableAfter(err, c)) {
          await moved?.catch(() => {})
          throw err
        }
        placement = await (moved ?? cluster.ownerUnreachable(orgId, pluginId, owner, forwarder.clientSignal(c)))
      }
    }
    return null
  }

  /**
   * x-forwarded-for grows by the client's address. Proto and host describe the original request:
   * a trusted hop in front (a peer gateway, or the edge with TRUST_FORWARDED) already set them.
   */
  function forwardedFor(c: Context<AppEnv>, url: RequestUrl): Record<string, string> {
    const trusted = deps.trustForwarded || c.get('fromPeer')
    return {
      'x-forwarded-for': [header(c, 'x-forwarded-for'), deps.clientAddress(c)].filter(Boolean).join(', '),
      'x-forwarded-proto': (trusted && header(c, 'x-forwarded-proto')) || url.protocol.slice(0, -1),
      'x-forwarded-host': (trusted && header(c, 'x-forwarded-host')) || header(c, 'host') || url.host,
      'x-request-id': c.get('requestId'),
    }
  }

  return app
}

/** DESIGN.md request path, step 1; also applied by the edge entry before it forwards. */
export function isControlPath(path: string): boolean {
  const first = path.split('/')[1] ?? ''
  let segment = first
  try {
    segment = decodeURIComponent(first)
  } catch {
    return true // undecodable percent-encoding: refuse rather than guess what the worker would see
  }
  return CONTROL_SEGMENTS.has(segment.toLowerCase())
}

// The ids are checked with the contract's own pattern; zod runs only to describe a bad one (404).
function proxyParams(c: Context): { orgId: string; pluginId: string } {
  const orgId = c.req.param('orgId')
  const pluginId = c.req.param('pluginId')
  if (orgId !== undefined && pluginId !== undefined && isValidId(orgId) && isValidId(pluginId)) return { orgId, pluginId }
  return params(c, Params)
}

type RequestUrl = Pick<URL, 'protocol' | 'host' | 'pathname' | 'search'>

/**
 * The parts of the request URL the proxy uses. `c.req.url` is already a WHATWG-serialized URL in
 * every runtime (Request.url; @hono/node-server builds it with `new URL()`), so its dot-segments,
 * encoded ones too, are resolved: splitting the string gives what a second `new URL()` would. A
 * path that could still hold a dot-segment or an escape ('/.', '%') is parsed again, to be sure.
 */
export function requestUrl(href: string): RequestUrl {
  const schemeEnd = href.indexOf('://')
  const pathStart = schemeEnd < 0 ? -1 : href.indexOf('/', schemeEnd + 3)
  if (pathStart < 0 || href.lastIndexOf('@', pathStart) > schemeEnd) return new URL(href)
  let end = href.indexOf('#', pathStart)
  if (end < 0) end = href.length
  let queryStart = href.indexOf('?', pathStart)
  if (queryStart < 0 || queryStart > end) queryStart = end
  const pathname = href.slice(pathStart, queryStart)
  if (pathname.includes('/.') || pathname.includes('%')) return new URL(href)
  return {
    protocol: href.slice(0, schemeEnd + 1),
    host: href.slice(schemeEnd + 3, pathStart),
    pathname,
    search: end - queryStart > 1 ? href.slice(queryStart, end) : '',
  }
}

const routeNotFound = (pluginId: string) => new GatewayError('ROUTE_NOT_FOUND', 404, `plugin ${pluginId} has no such route`)

function coldTiming(t: StartTiming): string {
  const f = (n: number) => n.toFixed(1)
  return `cold;dur=${f(t.totalMs)}, queue;dur=${f(t.queueMs)}, spawn;dur=${f(t.spawnMs)}, ready;dur=${f(t.readyMs)}, metadata;dur=${f(t.metadataMs)}`
}
