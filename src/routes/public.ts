import { type Context, Hono } from 'hono'
import { z } from 'zod'
import type { Cluster } from '../cluster/index.js'
import {
  draining,
  isFromPeer,
  isOwnerDraining,
  isNotOwner,
  isRetryableAfter,
  notOwner,
  peerHeaders,
  refuseNotOwner,
  seenGeneration,
} from '../cluster/index.js'
import { isValidId, OrgId, PluginId } from '../contract/index.js'
import { bodyTooLarge, type ErrorCode, GatewayError } from '../core/index.js'
import { type Admission, type AdmitRequest, routeNotFound } from '../gateway/index.js'
import type { ForwardTarget, Forwarder } from '../proxy/index.js'
import type { Lease, StartTiming } from '../workers/index.js'
import { type AppEnv, type ClientAddress, type RequestHeader, webRequestHeader } from './env.js'
import { params } from './validate.js'

// DESIGN.md request path, step 1: worker control endpoints are never reachable from outside. The
// runner's cron trigger (POST /cron/<name>) is one too: it shadows a plugin route that would match it.
const CONTROL_SEGMENTS = new Set(['health', 'metadata', 'validate-auth', 'config-update', 'disable', 'mcp', 'cron'])

export type RequestUrl = Pick<URL, 'protocol' | 'host' | 'pathname' | 'search'>

/**
 * One public request as the proxy rules see it, whichever entry serves it: the Hono route below, or
 * the Node entry's fast path (src/node). `R` is what that entry's forward settles with.
 */
export interface PublicExchange<R> {
  readonly method: string
  readonly url: RequestUrl
  readonly requestId: string
  /** A request header by lower-case name. */
  header(name: string): string | undefined
  clientAddress(): string | undefined
  /** Aborts when the client goes away; made on first use (only a wait for a start needs one). */
  clientSignal(): AbortSignal
  /** Streams the request to the target and its answer back; settles at the answer's headers. */
  forward(target: ForwardTarget): Promise<R>
  /** Set when the request started, or waited for, its worker: for metrics. */
  cold: StartTiming | null
}

export interface PublicPathDeps {
  admission: Admission
  /** Several gateways on one database: the worker of a key runs on its lease owner. */
  cluster?: Pick<Cluster, 'secret' | 'place' | 'claim' | 'ownerChanged' | 'ownerUnreachable' | 'peerDispatcher'>
  /** Keep incoming x-forwarded-proto/host (a trusted proxy, such as the edge entry, is in front). */
  trustForwarded?: boolean
  /** True once shutdown has begun: requests forwarded by peers are refused so they go elsewhere. */
  draining?: () => boolean
  /** A declared body over it is refused before anything starts for it (the forwarder bounds what is streamed). */
  maxBodyBytes: number
}

/** Where the cluster step left a request: forwarded to its owner, or to be served here. */
type Routed<R> = { kind: 'forwarded'; response: R } | { kind: 'here'; fromPeer: boolean }
const HERE: Routed<never> = { kind: 'here', fromPeer: false }

/** The proxy rules of `/orgs/:orgId/plugins/:pluginId/*`, one implementation for every entry. */
export function createPublicPath(deps: PublicPathDeps) {
  const { admission, cluster } = deps

  /** params → control path → cluster → admission → forward. */
  async function servePublic<R>(ex: PublicExchange<R>, orgId: string, pluginId: string): Promise<R> {
    const path = pluginPath(ex.url.pathname, orgId, pluginId)
    if (path === null || isControlPath(path)) throw routeNotFound(pluginId)
    if (Number(ex.header('content-length') ?? 0) > deps.maxBodyBytes) throw bodyTooLarge(deps.maxBodyBytes)
    const req: AdmitRequest = { orgId, pluginId, method: ex.method, path }
    let routed: Routed<R>
    let lease: Lease
    try {
      routed = cluster ? await routeInCluster(cluster, ex, req) : HERE
      if (routed.kind === 'forwarded') return routed.response
      lease = await admission.admit(req, () => ex.clientSignal())
    } catch (err) {
      throw withheldFromPublic(err, pluginId)
    }
    ex.cold = lease.cold
    return ex.forward({
      dispatcher: lease.worker.dispatcher,
      hop: 'proxy',
      path: path + ex.url.search,
      requestHeaders: forwardedFor(ex, routed.fromPeer),
      responseHeaders: lease.cold ? { 'x-request-id': ex.requestId, 'x-plugin-cold-start': '1' } : { 'x-request-id': ex.requestId },
      serverTiming: lease.cold ? coldTiming(lease.cold) : '',
      onDone: lease.release,
      onTunnel: lease.holdTunnel,
    })
  }

  /**
   * Here when this gateway owns (or may take) the key's lease; otherwise forwarded to the owner. An
   * owner that cannot be reached is replaced once its lease lapses, and a bodyless request is sent
   * again to wherever the worker lives then. A forwarded request is never forwarded again. Only keys
   * admission would take are placed: a lease row is never written for an unknown org or route.
   */
  async function routeInCluster<R>(
    c: NonNullable<PublicPathDeps['cluster']>,
    ex: PublicExchange<R>,
    req: AdmitRequest,
  ): Promise<Routed<R>> {
    const { orgId, pluginId } = req
    const header = (name: string) => ex.header(name)
    if (isFromPeer(header, c.secret)) {
      if (deps.draining?.()) throw draining()
      await admission.check(req)
      const placement = await c.claim(orgId, pluginId, seenGeneration(header))
      // The forwarding gateway's cached owner is stale: it asks again.
      if (placement.kind === 'remote') throw notOwner(orgId, pluginId, placement.owner.gatewayId)
      return { kind: 'here', fromPeer: true }
    }
    await admission.check(req)
    let placement = await c.place(orgId, pluginId)
    for (let attempt = 0; placement.kind === 'remote'; attempt++) {
      const { owner } = placement
      try {
        const response = await ex.forward({
          dispatcher: c.peerDispatcher(owner.url),
          hop: 'peer',
          path: ex.url.pathname + ex.url.search,
          requestHeaders: Object.assign(forwardedFor(ex, false), peerHeaders(c.secret, owner.generation)),
          responseHeaders: {},
          serverTiming: '',
          onDone: () => {},
          refuse: refuseNotOwner(orgId, pluginId),
        })
        return { kind: 'forwarded', response }
      } catch (err) {
        // An owner that is no longer one: the cached placement is stale, whatever happens next.
        const moved = isNotOwner(err) ? c.ownerChanged(orgId, pluginId) : null
        if (attempt > 0 || !isRetryableAfter(err, isBodyless(ex), ex.method)) {
          await moved?.catch(() => {})
          throw err
        }
        placement = await (moved ?? c.ownerUnreachable(orgId, pluginId, owner, ex.clientSignal(), isOwnerDraining(err)))
      }
    }
    return HERE
  }

  /**
   * x-forwarded-for grows by the client's address. Proto and host describe the original request:
   * a trusted hop in front (a peer gateway, or the edge with TRUST_FORWARDED) already set them.
   */
  function forwardedFor<R>(ex: PublicExchange<R>, fromPeer: boolean): Record<string, string> {
    const trusted = deps.trustForwarded || fromPeer
    const before = ex.header('x-forwarded-for')
    const client = ex.clientAddress()
    return {
      'x-forwarded-for': before && client ? `${before}, ${client}` : before || client || '',
      'x-forwarded-proto': (trusted && ex.header('x-forwarded-proto')) || ex.url.protocol.slice(0, -1),
      'x-forwarded-host': (trusted && ex.header('x-forwarded-host')) || ex.header('host') || ex.url.host,
      'x-request-id': ex.requestId,
    }
  }

  return servePublic
}

export type ServePublic = ReturnType<typeof createPublicPath>

export interface PublicRouteDeps {
  servePublic: ServePublic
  forwarder: Forwarder
  clientAddress: ClientAddress
  requestHeader?: RequestHeader
}

const Params = z.object({ orgId: OrgId, pluginId: PluginId })

/** `/orgs/:orgId/plugins/:pluginId/*` on Hono: the public path's rules, with Hono's request and response. */
export function publicRoutes(deps: PublicRouteDeps) {
  const { servePublic, forwarder } = deps
  const header = deps.requestHeader ?? webRequestHeader
  const app = new Hono<AppEnv>()

  app.all('/orgs/:orgId/plugins/:pluginId/*', async function proxyToPlugin(c) {
    const { orgId, pluginId } = proxyParams(c)
    const ex: PublicExchange<Response> = {
      method: c.req.method,
      url: requestUrl(c.req.url),
      requestId: c.get('requestId'),
      header: (name) => header(c, name),
      clientAddress: () => deps.clientAddress(c),
      clientSignal: () => forwarder.clientSignal(c),
      forward: (target) => forwarder.forward(c, target),
      cold: null,
    }
    try {
      return await servePublic(ex, orgId, pluginId)
    } finally {
      c.set('coldStart', ex.cold)
    }
  })

  return app
}

/** The path within the plugin (`/` at least), or null when the URL does not name the plugin literally. */
function pluginPath(pathname: string, orgId: string, pluginId: string): string | null {
  const prefix = `/orgs/${orgId}/plugins/${pluginId}`
  return pathname.startsWith(prefix) ? pathname.slice(prefix.length) || '/' : null
}

/** DESIGN.md request path, step 1; also applied by the edge entry before it forwards. */
export function isControlPath(path: string): boolean {
  const end = path.indexOf('/', 1)
  let segment = end < 0 ? path.slice(1) : path.slice(1, end)
  if (segment.includes('%')) {
    try {
      segment = decodeURIComponent(segment)
    } catch {
      return true // undecodable percent-encoding: refuse rather than guess what the worker would see
    }
  }
  return CONTROL_SEGMENTS.has(segment.toLowerCase())
}

// Why a worker could not start, or a plugin is invalid, is the plugin's own error output (which may quote
// its config), or paths, modes and users of this host: the operator reads it in lastError, the admin API
// and the log; a public client learns only what failed (README: Failure modes).
const WITHHELD_FROM_PUBLIC: ReadonlySet<ErrorCode> = new Set([
  'PLUGIN_INVALID',
  'WORKER_START_FAILED',
  'SECRETS_UNAVAILABLE',
  'SECRETS_UNREADABLE',
])

function withheldFromPublic(err: unknown, pluginId: string): unknown {
  if (!(err instanceof GatewayError) || !WITHHELD_FROM_PUBLIC.has(err.code)) return err
  const what = err.code === 'PLUGIN_INVALID' ? `plugin ${pluginId} is invalid` : `the worker of plugin ${pluginId} could not be started`
  return new GatewayError(err.code, err.status, what, {
    cause: err,
    retryAfterSeconds: err.retryAfterSeconds,
    headers: err.headers,
  })
}

const isBodyless = <R>(ex: PublicExchange<R>) => ex.header('content-length') === undefined && ex.header('transfer-encoding') === undefined

// The ids are checked with the contract's own pattern; zod runs only to describe a bad one (404).
function proxyParams(c: Context): { orgId: string; pluginId: string } {
  const orgId = c.req.param('orgId')
  const pluginId = c.req.param('pluginId')
  if (orgId !== undefined && pluginId !== undefined && isValidId(orgId) && isValidId(pluginId)) return { orgId, pluginId }
  return params(c, Params)
}

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

function coldTiming(t: StartTiming): string {
  const f = (n: number) => n.toFixed(1)
  return `cold;dur=${f(t.totalMs)}, queue;dur=${f(t.queueMs)}, spawn;dur=${f(t.spawnMs)}, ready;dur=${f(t.readyMs)}, metadata;dur=${f(t.metadataMs)}`
}
