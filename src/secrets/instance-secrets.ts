import type { ConfigSchema, Metadata } from '../contract/index.js'
import { GatewayError } from '../core/index.js'
import { isSealed, MASK, parseSealed } from './sealed.js'
import type { Sealed, SecretBox } from './types.js'

// Structural copies of the db row shapes, so this folder depends on nothing but core and contract.
type Config = Record<string, unknown>
interface AuthState {
  methodId: string
  credentials: Record<string, unknown>
}

/** The instance a secret belongs to; part of every seal's authenticated context. */
export interface InstanceRef {
  orgId: string
  pluginId: string
}

// Ids cannot contain ':' (contract/ids.ts), and the field name comes last, so contexts never collide.
const configContext = (ref: InstanceRef, field: string) => `config:${ref.orgId}:${ref.pluginId}:${field}`
const authContext = (ref: InstanceRef) => `auth:${ref.orgId}:${ref.pluginId}`

const hasValue = (v: unknown) => v !== undefined && v !== null

/**
 * A field is stored sealed when the plugin's configSchema marks it `encrypted`. Before the schema is
 * known (a v2 plugin whose metadata was never fetched) nothing tells secrets apart, so every field is.
 */
export const isSecretField = (schema: ConfigSchema | null, field: string): boolean =>
  schema === null || (Object.hasOwn(schema, field) && schema[field]?.encrypted === true)

const mapValues = (config: Config, fn: (field: string, value: unknown) => unknown): Config =>
  Object.fromEntries(Object.entries(config).map(([field, value]) => [field, fn(field, value)]))

/** Seals the secret fields of a plaintext config (null/unset values carry nothing and stay as they are). */
export function sealConfig(box: SecretBox, ref: InstanceRef, schema: ConfigSchema | null, config: Config): Config {
  return mapValues(config, (field, value) =>
    hasValue(value) && !isSealed(value) && isSecretField(schema, field) ? box.seal(value, configContext(ref, field)) : value,
  )
}

/** The plaintext config a worker must see. Returns `stored` itself when nothing in it is sealed. */
export function openConfig(box: SecretBox, ref: InstanceRef, stored: Config): Config {
  if (!Object.values(stored).some(isSealed)) return stored
  return mapValues(stored, (field, value) => (isSealed(value) ? box.open(value, configContext(ref, field)) : value))
}

/** Stored auth: the whole credentials object sealed as one value (CONTRACT.md §3 `authState`). */
export function sealAuth(box: SecretBox, ref: InstanceRef, auth: AuthState): AuthState {
  if (isSealed(auth.credentials)) return auth
  return { methodId: auth.methodId, credentials: box.seal(auth.credentials, authContext(ref)) }
}

/** Plaintext auth for the worker; credentials stored before sealing existed pass through. */
export function openAuth(box: SecretBox, ref: InstanceRef, stored: AuthState | null): AuthState | null {
  if (!stored || !isSealed(stored.credentials)) return stored
  const credentials = box.open(stored.credentials, authContext(ref))
  if (typeof credentials !== 'object' || credentials === null || Array.isArray(credentials)) {
    throw new GatewayError('SECRETS_UNREADABLE', 500, `stored credentials of ${ref.orgId}/${ref.pluginId} are not an object`)
  }
  return { methodId: stored.methodId, credentials: credentials as Record<string, unknown> }
}

/** Config as admin responses show it: sealed values, and values of `encrypted` fields, become MASK. */
export function maskConfig(stored: Config, schema: ConfigSchema | null): Config {
  return mapValues(stored, (field, value) =>
    isSealed(value) || (hasValue(value) && schema !== null && isSecretField(schema, field)) ? MASK : value,
  )
}

/**
 * An incoming config may send MASK back for a field (what GET showed it): that keeps the stored
 * value, opened so the whole config can be validated and pushed to the worker. A sealed-looking
 * value is refused: only the gateway seals, and only for the place it stores the value.
 */
export function unmaskConfig(box: SecretBox, ref: InstanceRef, incoming: Config, stored: Config | undefined): Config {
  for (const [field, value] of Object.entries(incoming)) {
    if (isSealed(value)) {
      throw new GatewayError('CONFIG_INVALID', 400, `config.${field} looks like a sealed value; send the plaintext`)
    }
    if (value === MASK && !(stored && Object.hasOwn(stored, field) && hasValue(stored[field]))) {
      throw new GatewayError('CONFIG_INVALID', 400, `config.${field} is the mask placeholder, but no value is stored to keep`)
    }
  }
  if (!Object.values(incoming).includes(MASK)) return incoming
  return mapValues(incoming, (field, value) => {
    if (value !== MASK) return value
    const current = stored?.[field]
    return isSealed(current) ? box.open(current, configContext(ref, field)) : current
  })
}

/** Every sealed value an instance row stores (config fields and credentials). */
export function sealedValuesOf(row: { config: Config; authState: AuthState | null }): Sealed[] {
  const sealed = Object.values(row.config).filter(isSealed)
  if (row.authState && isSealed(row.authState.credentials)) sealed.push(row.authState.credentials)
  return sealed
}

/** Sealed under a key other than the one `box` seals with: SECRET_KEY changed, the value still holds the old one. */
const sealedUnderOlderKey = (box: SecretBox, value: unknown): value is Sealed =>
  box.hasKey && isSealed(value) && parseSealed(value)?.keyId !== box.keyIds[0]

/**
 * Key rotation: a row's values sealed under an older key (one SECRET_KEY_PREVIOUS still opens) are
 * opened and sealed again under the current key. Null when the row holds none (or the box no key).
 */
export function resealUnderCurrentKey(
  box: SecretBox,
  ref: InstanceRef,
  row: { config: Config; authState: AuthState | null },
): { config: Config; authState: AuthState | null } | null {
  if (!sealedValuesOf(row).some((value) => sealedUnderOlderKey(box, value))) return null
  const reseal = (value: Sealed, context: string) => box.seal(box.open(value, context), context)
  const config = mapValues(row.config, (field, value) =>
    sealedUnderOlderKey(box, value) ? reseal(value, configContext(ref, field)) : value,
  )
  const { authState } = row
  if (!authState || !sealedUnderOlderKey(box, authState.credentials)) return { config, authState }
  return { config, authState: { methodId: authState.methodId, credentials: reseal(authState.credentials, authContext(ref)) } }
}

/**
 * A config stored while the plugin's schema was unknown has every value sealed. Once the schema is
 * known, the fields it does not mark `encrypted` need no sealing: this opens them (to be stored as
 * they are). Null when there is no schema yet, or no such field is sealed.
 */
export function openPublicFields(box: SecretBox, ref: InstanceRef, schema: ConfigSchema | null, config: Config): Config | null {
  if (schema === null) return null
  const isSealedPublic = (field: string, value: unknown): value is Sealed => isSealed(value) && !isSecretField(schema, field)
  if (!Object.entries(config).some(([field, value]) => isSealedPublic(field, value))) return null
  return mapValues(config, (field, value) => (isSealedPublic(field, value) ? box.open(value, configContext(ref, field)) : value))
}

/** True when a row keeps a secret in plaintext: credentials, or a field the (known) schema marks encrypted. */
export function hasPlaintextSecrets(row: { config: Config; authState: AuthState | null }, schema: ConfigSchema | null): boolean {
  if (row.authState && !isSealed(row.authState.credentials)) return true
  if (schema === null) return false
  return Object.entries(row.config).some(([field, value]) => hasValue(value) && !isSealed(value) && isSecretField(schema, field))
}

/** Plugin metadata as admin responses show it: an OAuth client secret is masked. */
export function maskMetadata(metadata: Metadata | null): Metadata | null {
  if (!metadata?.authMethods.some((m) => m.type === 'oauth2' && m.clientSecret !== undefined)) return metadata
  return {
    ...metadata,
    authMethods: metadata.authMethods.map((m) => (m.type === 'oauth2' && m.clientSecret !== undefined ? { ...m, clientSecret: MASK } : m)),
  }
}
