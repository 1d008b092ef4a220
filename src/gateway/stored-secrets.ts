import type { Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import type { Registry } from '../registry/index.js'
import type { SecretBox } from '../secrets/index.js'
import { hasPlaintextSecrets, parseSealed, sealAuth, sealConfig, sealedValuesOf, secretsUnavailable } from '../secrets/index.js'

export interface StoredSecretsDeps {
  registry: Registry
  secrets: SecretBox
  log: Logger
}

/**
 * Start-up check of the secrets at rest, after the catalog is loaded (schemas say which fields are
 * encrypted). Every sealed value must carry a key id this box holds: otherwise the gateway refuses
 * to start, naming SECRET_KEY, instead of failing later on each start of a worker. Plaintext
 * secrets an older version left (credentials, fields the schema marks encrypted) are sealed when a
 * key is set.
 */
export async function checkStoredSecrets(deps: StoredSecretsDeps): Promise<{ sealed: number; resealed: number }> {
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
  if (foreign.size > 0 && !secrets.hasKey) throw secretsUnavailable(`${sealed} stored secret(s) are sealed`)
  if (foreign.size > 0) {
    throw new GatewayError(
      'SECRETS_UNREADABLE',
      500,
      `stored secrets were sealed with key ${[...foreign].join(', ')}, but SECRET_KEY is key ${secrets.keyIds[0]}: set SECRET_KEY to the key they were sealed with`,
    )
  }

  let resealed = 0
  for (const row of rows) {
    const schema = registry.plugin(row.pluginId)?.row.metadata?.configSchema ?? null
    if (!hasPlaintextSecrets(row, schema)) continue
    if (!secrets.hasKey) {
      log.warn({ orgId: row.orgId, pluginId: row.pluginId }, 'secrets are stored in plaintext; set SECRET_KEY to seal them')
      continue
    }
    const ref = { orgId: row.orgId, pluginId: row.pluginId }
    await registry.saveInstance(row.orgId, row.pluginId, {
      // An unknown schema seals no config field here: only fields known to be secret are migrated.
      config: sealConfig(secrets, ref, schema ?? {}, row.config),
      ...(row.authState && { authState: sealAuth(secrets, ref, row.authState) }),
    })
    resealed += 1
  }
  if (resealed > 0) log.info({ instances: resealed }, 'sealed plaintext secrets left by an earlier version')
  return { sealed, resealed }
}
