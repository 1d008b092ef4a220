import { z } from 'zod'
import { GatewayError } from '../core/index.js'

// What gateways of one cluster say to each other over HTTP. The forwarder never passes
// x-plugin-gateway-* to a worker, nor from one (a plugin must not be able to answer as a gateway).
export const HOP_HEADER = 'x-plugin-gateway-hop'
export const SECRET_HEADER = 'x-plugin-gateway-secret'
export const GENERATION_HEADER = 'x-plugin-gateway-generation'
/** On a 503 to a forwarded request: this gateway is not (or no longer) the key's owner. */
export const NOT_OWNER_HEADER = 'x-plugin-gateway-not-owner'
/** On a 503 to a forwarded request: this gateway is shutting down; the key moves once it let go. */
export const DRAINING_HEADER = 'x-plugin-gateway-draining'

/** Reads one request header by lower-case name. */
export type HeaderOf = (name: string) => string | undefined

/** Headers that mark a request as forwarded by a peer, with the lease generation it saw. */
export const peerHeaders = (secret: string, generation: number): Record<string, string> => ({
  [HOP_HEADER]: '1',
  [SECRET_HEADER]: secret,
  [GENERATION_HEADER]: String(generation),
})

/** The most peerHeaders(secret, …) add to a request's headers, as Node's parser counts them (names and values, in bytes). */
export function peerHeaderBytes(secret: string): number {
  const encoder = new TextEncoder()
  const headers = peerHeaders(secret, Number.MAX_SAFE_INTEGER)
  return Object.entries(headers).reduce((sum, [name, value]) => sum + name.length + encoder.encode(value).length, 0)
}

/** True for a request a peer gateway forwarded (hop header and the right secret); a wrong secret is 403. */
export function isFromPeer(header: HeaderOf, secret: string): boolean {
  if (header(HOP_HEADER) === undefined) return false
  requireSecret(header, secret)
  return true
}

/** Refuses (403) a request that does not carry the cluster secret. */
export function requireSecret(header: HeaderOf, secret: string): void {
  if (!sameSecret(header(SECRET_HEADER), secret)) throw new GatewayError('FORBIDDEN', 403, 'cluster requests need the cluster secret')
}

/** Compares in time that depends only on the secret's length, not on where `given` differs. */
function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false
  let diff = given.length ^ secret.length
  for (let i = 0; i < secret.length; i++) diff |= (given.charCodeAt(i) | 0) ^ secret.charCodeAt(i)
  return diff === 0
}

/** The lease generation the forwarding peer believed the owner holds. */
export const seenGeneration = (header: HeaderOf): number | undefined => {
  const value = Number(header(GENERATION_HEADER))
  return Number.isSafeInteger(value) ? value : undefined
}

export const notOwner = (orgId: string, pluginId: string, ownerId?: string) =>
  new GatewayError('NOT_OWNER', 503, `this gateway does not own the worker of ${orgId}/${pluginId}`, {
    retryAfterSeconds: 1,
    // Tells the forwarding gateway its cached owner is stale (and who owns the key now).
    ...(ownerId !== undefined && { headers: { [NOT_OWNER_HEADER]: ownerId } }),
  })

/** This gateway is shutting down: a request a peer forwarded goes elsewhere, once the key has moved. */
export const draining = () =>
  new GatewayError('SHUTTING_DOWN', 503, 'gateway is shutting down', {
    retryAfterSeconds: 1,
    // The forwarding gateway waits for the key to move instead of relaying this.
    headers: { [DRAINING_HEADER]: '1' },
  })

export const isNotOwner = (err: unknown): boolean => err instanceof GatewayError && err.code === 'NOT_OWNER'

// Connection failures before any response. Either the request never reached the owner (or the owner
// is shutting down and did not take it): the same wait for its lease, then a new owner...
const OWNER_DRAINING = 'OWNER_DRAINING'
const NEVER_REACHED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT', OWNER_DRAINING])
// ...or the connection broke after it was sent: the owner (or it died) may have run it already.
const MAY_HAVE_RUN = new Set(['ECONNRESET', 'UND_ERR_SOCKET'])
// RFC 9110 §9.2.2: what a proxy may send again on its own, the request having maybe been run once.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

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

/** The owner refused a forwarded request because it is shutting down (it answered, so it is alive). */
export const isOwnerDraining = (err: unknown): boolean =>
  err instanceof GatewayError && (err.cause as { code?: string } | undefined)?.code === OWNER_DRAINING

/**
 * A forward that failed this way may go to the (new) owner again. Only a request without a body can be
 * sent twice, and one the owner may have run already only when its method is idempotent.
 */
export function isRetryableAfter(err: unknown, bodyless: boolean, method: string): boolean {
  if (!bodyless) return false
  if (isNotOwner(err)) return true
  const code = err instanceof GatewayError ? (err.cause as { code?: string } | undefined)?.code : undefined
  if (code === undefined) return false
  return NEVER_REACHED.has(code) || (MAY_HAVE_RUN.has(code) && IDEMPOTENT.has(method))
}

/** A peer's worker as its admin API shows it; checked for the fields the listing relies on. */
export const WorkerListing = z.looseObject({ orgId: z.string(), pluginId: z.string(), state: z.string() })
export type WorkerListing = z.infer<typeof WorkerListing>
export const WorkerListings = z.object({ workers: z.array(WorkerListing) })

/** What one peer gateway said its workers are (GET /internal/workers), or why it could not. */
export type PeerWorkers = { gatewayId: string; workers: WorkerListing[] } | { gatewayId: string; error: string }
