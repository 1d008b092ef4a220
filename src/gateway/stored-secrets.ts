import type { Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import type { Registry } from '../registry/index.js'
import type { SecretBox } from '../secrets/index.js'
import type { PluginInstanceRow } from '../db/index.js'
import {
  hasPlaintextSecrets,
  openPublicFields,
  parseSealed,
  resealUnderCurrentKey,
  sealAuth,
  sealConfig,
  sealedValuesOf,
} from '../secrets/index.js'

export interface StoredSecretsDeps {
  registry: Registry
  secrets: SecretBox
  log: Logger
}

// A row another gateway keeps changing is left for the next start-up (it still opens meanwhile).
const MAX_ATTEMPTS_PER_ROW = 3

/**
 * Start-up check of the secrets at rest, after the catalog is loaded (schemas say which fields are
 * encrypted). Every sealed value must carry a key id this box holds: otherwise the gateway refuses
 * to start, naming SECRET_KEY, instead of failing later on each start of a worker. Then, with a key
 * set, each row is brought up to date: plaintext secrets an older version left (credentials, fields
 * the schema marks encrypted) are sealed, and values sealed under a previous key (SECRET_KEY_PREVIOUS)
 * are sealed again under SECRET_KEY, which completes a key rotation. A row is only written while it
 * still holds what was read, so a gateway sharing the database never loses an admin change to this.
 */
export async function checkStoredSecrets(deps: StoredSecretsDeps): Promise<{ sealed: number; resealed: number; rekeyed: number }> {
  const { registry, secrets, log } = deps
  const rows = await registry.listInstances()
  const held = new Set(secrets.keyIds)
  const foreign = new Set<string>()
  let sealed = 0
  for (const row of rows) {
    for (const value of sealedValuesOf(row)) {
      sealed += 1
      const keyId = parseSealed(value)?.keyId ?? 'unknown'
      if (!held.has(keyId)) foreign.add(keyId)
    }
  }
  if (foreign.size > 0) {
    const hint = `stored secrets were sealed with key ${[...foreign].join(', ')}, but ${secrets.describeKey()}: set SECRET_KEY to the key they were sealed with (while rotating, list it in SECRET_KEY_PREVIOUS)`
    // No key at all (none configured, or the generated one is missing) is unavailable; another key, unreadable.
    if (secrets.keyIds.length === 0) throw new GatewayError('SECRETS_UNAVAILABLE', 503, `${sealed} ${hint}`)
    throw new GatewayError('SECRETS_UNREADABLE', 500, hint)
  }

  let resealed = 0
  let rekeyed = 0
  for (const row of rows) {
    const done = await bringUpToDate(deps, row, 'start-up')
    if (done?.plaintext) resealed += 1
    if (done?.rekeyed) rekeyed += 1
  }
  if (resealed > 0) log.info({ instances: resealed }, 'sealed plaintext secrets left by an earlier version')
  if (rekeyed > 0) log.info({ instances: rekeyed, keyId: secrets.keyIds[0] }, 'sealed secrets again under the current SECRET_KEY')
  return { sealed, resealed, rekeyed }
}

/**
 * After a plugin's metadata arrived: the stored config of each of its instances follows the schema
 * now known. Values sealed while it was unknown (every field then counts as secret) are stored as
 * they are for the fields it does not mark encrypted, so admin reads show them; fields it marks
 * encrypted and still holds in plaintext are sealed. Returns how many instances were rewritten.
 */
export async function storeConfigPerSchema(deps: StoredSecretsDeps, pluginId: string): Promise<number> {
  const rows = (await deps.registry.listInstances()).filter((row) => row.pluginId === pluginId)
  let changed = 0
  for (const row of rows) if (await bringUpToDate(deps, row, 'metadata')) changed += 1
  if (changed > 0) deps.log.info({ pluginId, instances: changed }, 'stored config follows the plugin schema now known')
  return changed
}

interface Outcome {
  plaintext: boolean
  rekeyed: boolean
  opened: boolean
}

/**
 * Rewrites one instance row as the current key and its plugin's schema want it: plaintext secrets
 * sealed, values under a previous key sealed again, sealed values of fields the schema does not
 * mark encrypted opened. Only written while the row still holds what was read (re-read and retried
 * a few times), so a concurrent admin write always wins. Null when nothing was written.
 */
async function bringUpToDate(deps: StoredSecretsDeps, first: PluginInstanceRow, when: 'start-up' | 'metadata'): Promise<Outcome | null> {
  const { registry, secrets, log } = deps
  const ref = { orgId: first.orgId, pluginId: first.pluginId }
  const schema = registry.plugin(first.pluginId)?.row.metadata?.configSchema ?? null
  let row: PluginInstanceRow | undefined = first
  for (let attempt = 1; row; attempt++) {
    const plaintext = hasPlaintextSecrets(row, schema)
    let rekey: ReturnType<typeof resealUnderCurrentKey>
    let opened: ReturnType<typeof openPublicFields>
    try {
      rekey = resealUnderCurrentKey(secrets, ref, row)
      opened = openPublicFields(secrets, ref, schema, (rekey ?? row).config)
    } catch (err) {
      // A value that no longer opens (altered, or moved between rows) costs that instance only:
      // its worker's start will say so; the others and the gateway go on.
      log.error({ ...ref, err }, 'a stored secret could not be opened to seal it again; left as it is')
      return null
    }
    if (!plaintext && !rekey && !opened) return null
    if (plaintext && !secrets.hasKey) {
      log.warn(ref, 'secrets are stored in plaintext; set SECRET_KEY to seal them')
      return null
    }
    const current = rekey ?? row
    const next = {
      // An unknown schema seals no config field here: only fields known to be secret are migrated.
      config: sealConfig(secrets, ref, schema ?? {}, opened ?? current.config),
      authState: current.authState && sealAuth(secrets, ref, current.authState),
    }
    if (await registry.replaceSecrets(row, next)) return { plaintext, rekeyed: rekey !== null, opened: opened !== null }
    if (attempt === MAX_ATTEMPTS_PER_ROW) {
      log.warn({ ...ref, when }, 'stored secrets kept changing while being brought up to date; the next start-up retries')
      return null
    }
    row = await registry.instance(ref.orgId, ref.pluginId) // changed by another gateway: read it again
  }
  return null
}
