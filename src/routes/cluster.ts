import type { Context, MiddlewareHandler } from 'hono'
import { Hono } from 'hono'
import { timingSafeEqual } from 'hono/utils/buffer'
import type { Dispatcher } from 'undici'
import { z } from 'zod'
import type { Placement, PeerOwner } from '../cluster/index.js'
import { OrgId, PluginId } from '../contract/index.js'
import { GatewayError } from '../core/index.js'
import type { GatewayService } from '../gateway/index.js'
import type { AppEnv } from './env.js'
import { jsonBody, params } from './validate.js'

// Headers between gateways of one cluster. The forwarder never passes x-plugin-gateway-* to a worker.
export const HOP_HEADER = 'x-plugin-gateway-hop'
export const SECRET_HEADER = 'x-plugin-gateway-secret'
export const GENERATION_HEADER = 'x-plugin-gateway-generation'
/** On a 503 to a forwarded request: this gateway is not (or no longer) the key's owner. */
export const NOT_OWNER_HEADER = 'x-plugin-gateway-not-owner'
/** On a 503 to a forwarded request: this gateway is shutting down; the key moves once it let go. */
export const DRAINING_HEADER = 'x-plugin-gateway-draining'

/** What one peer gateway said its workers are (GET /internal/workers), or why it could not. */
export type PeerWorkers = { gatewayId: string; workers: WorkerListing[] } | { gatewayId: string; error: string }

/** A peer's worker as its admin API shows it; checked for the fields the listing relies on. */
export const WorkerListing = z.looseObject({ orgId: z.string(), pluginId: z.string(), state: z.string() })
export type WorkerListing = z.infer<typeof WorkerListing>
export const WorkerListings = z.object({ workers: z.array(WorkerListing) })

/** The cluster as the HTTP layer sees it (runtime pieces injected by the entry). */
export interface ClusterRouting {
  secret: string
  gatewayId: string
  place(orgId: string, pluginId: string): Promise<Placement>
  claim(orgId: string, pluginId: string, seenGeneration: number | undefined): Promise<Placement>
  ownerUnreachable(orgId: string, pluginId: string, owner: PeerOwner, signal?: AbortSignal): Promise<Placement>
  ownerChanged(orgId: string, pluginId: string): Promise<Placement>
  /** Keep-alive connection pool to a peer gateway's internal URL. */
  peerDispatcher(url: string): Dispatcher
  /** Every live peer's workers, asked in parallel; a peer that does not answer is listed with its error. */
  peerWorkers(): Promise<PeerWorkers[]>
}

/** True for a request a peer gateway forwarded (hop header and the right secret); a wrong secret is 403. */
export async function isFromPeer(c: Context, secret: string): Promise<boolean> {
  if (c.req.header(HOP_HEADER) === undefined) return false
  if (!(await hasSecret(c, secret))) throw new GatewayError('FORBIDDEN', 403, 'cluster requests need the cluster secret')
  return true
}

const hasSecret = async (c: Context, secret: string) => {
  const given = c.req.header(SECRET_HEADER)
  return given !== undefined && (await timingSafeEqual(given, secret))
}

function requireSecret(secret: string): MiddlewareHandler {
  return async function requireClusterSecret(c, next) {
    if (!(await hasSecret(c, secret))) throw new GatewayError('FORBIDDEN', 403, 'cluster requests need the cluster secret')
    return next()
  }
}

/** Headers that mark a request as forwarded by a peer, with the lease generation it saw. */
export const peerHeaders = (secret: string, generation: number): Record<string, string> => ({
  [HOP_HEADER]: '1',
  [SECRET_HEADER]: secret,
  [GENERATION_HEADER]: String(generation),
})

export const seenGeneration = (c: Context): number | undefined => {
  const value = Number(c.req.header(GENERATION_HEADER))
  return Number.isSafeInteger(value) ? value : undefined
}

// Connection failures before any response: the request never reached the owner, or it died. Or the
// owner is shutting down and did not take the request: the same wait for its lease, then a new owner.
const OWNER_DRAINING = 'OWNER_DRAINING'
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', OWNER_DRAINING])

/** Only a request without a body can be sent again: a streamed body is gone once it was sent. */
export function isRetryableAfter(err: unknown, c: Context): boolean {
  const cause = err instanceof GatewayError ? (err.cause as { code?: string } | undefined) : undefined
  const bodyless = c.req.header('content-length') === undefined && c.req.header('transfer-encoding') === undefined
  return bodyless && (isNotOwner(err) || (cause?.code !== undefined && UNREACHABLE.has(cause.code)))
}

export const isNotOwner = (err: unknown): boolean => err instanceof GatewayError && err.code === 'NOT_OWNER'

/** The peer's answer to a forwarded request, when it says it is not the owner or is shutting down: handled, not relayed. */
export const refuseNotOwner = (orgId: string, pluginId: string) => (status: number, headers: Record<string, unknown>) => {
  if (status !== 503) return null
  if (headers[NOT_OWNER_HEADER] !== undefined) return notOwner(orgId, pluginId)
  if (headers[DRAINING_HEADER] !== undefined) {
    return new GatewayError('WORKER_UNAVAILABLE', 503, `the owner of ${orgId}/${pluginId} is shutting down`, {
      retryAfterSeconds: 1,
      cause: { code: OWNER_DRAINING },
    })
  }
  return null
}

const InstanceParams = z.object({ orgId: OrgId, pluginId: PluginId })
const ControlBody = z.strictObject({
  method: z.enum(['GET', 'POST']),
  path: z.enum(['/health', '/validate-auth', '/config-update', '/mcp/list-tools', '/mcp/call-tool']),
  payload: z.unknown().optional(),
})

export interface InternalRouteDeps {
  service: GatewayService
  cluster: ClusterRouting
  /** This gateway's workers, as GET /admin/workers shows them. */
  localWorkers: () => WorkerListing[]
}

/** `/internal/*`: what peer gateways ask of the owner of a worker. Cluster secret required. */
export function internalRoutes(deps: InternalRouteDeps) {
  const { service, cluster } = deps
  const app = new Hono<AppEnv>()
  app.use('*', requireSecret(cluster.secret))

  app.get('/workers', (c) => c.json({ workers: deps.localWorkers() }))

  app.post('/orgs/:orgId/plugins/:pluginId/changed', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    await service.instanceChangedElsewhere(orgId, pluginId)
    return c.json({ applied: true })
  })

  app.post('/orgs/:orgId/plugins/:pluginId/control', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    const body = await jsonBody(c, ControlBody)
    const placement = await cluster.claim(orgId, pluginId, seenGeneration(c))
    if (placement.kind === 'remote') throw notOwner(orgId, pluginId)
    return c.json(await service.localControl(orgId, pluginId, body.method, body.path, body.payload))
  })

  app.post('/orgs/:orgId/plugins/:pluginId/stop', async (c) => {
    const { orgId, pluginId } = params(c, InstanceParams)
    return c.json({ stopped: await service.stop(orgId, pluginId) })
  })

  return app
}

export const notOwner = (orgId: string, pluginId: string) =>
  new GatewayError('NOT_OWNER', 503, `this gateway does not own the worker of ${orgId}/${pluginId}`, { retryAfterSeconds: 1 })
