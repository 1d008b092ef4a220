import type { Logger } from '../../core/index.js'
import { createUnavailableSecretBox } from '../index.js'
import type { SecretBox } from '../index.js'
import { createAesGcmSecretBox } from './aes-gcm.js'
import { createGeneratedKeySecretBox, generatedKeyPath } from './generated-key.js'

/**
 * The box for SECRET_KEY (64 hex chars, validated by config) sealing, and SECRET_KEY_PREVIOUS also
 * opening, or the no-key box.
 */
export function secretBoxFromHex(keyHex: string | undefined, previousHex: readonly string[] = []): SecretBox {
  if (keyHex === undefined) return createUnavailableSecretBox()
  return createAesGcmSecretBox({ key: Buffer.from(keyHex, 'hex'), previousKeys: previousHex.map((hex) => Buffer.from(hex, 'hex')) })
}

export interface SecretKeySettings {
  /** SECRET_KEY as 64 hex chars, when set. */
  key: string | undefined
  /** SECRET_KEY_PREVIOUS as hex (config only accepts them beside SECRET_KEY). */
  previousKeys: readonly string[]
  /** The database's local file; undefined for a remote libSQL server (or an in-memory database). */
  databaseFile: string | undefined
  /** CLUSTER_SECRET is set. */
  clustered: boolean
}

/**
 * The gateway's box, with one start-up log line saying where its key comes from. SECRET_KEY wins.
 * Without it, a gateway on a local database file generates a key beside that file on first need;
 * a remote database or a cluster gets none: its gateways may run on other hosts, where a file beside
 * one of them would be another key, so they must all be given the same SECRET_KEY.
 */
export function openSecretBox(settings: SecretKeySettings, log: Logger): SecretBox {
  if (settings.key !== undefined) return secretBoxFromHex(settings.key, settings.previousKeys)
  const databaseFile = settings.clustered ? undefined : settings.databaseFile
  if (databaseFile === undefined) {
    const noGeneratedKey = settings.clustered ? 'CLUSTER_SECRET is set' : 'DATABASE_URL is not a local file'
    log.warn(
      { set: 'SECRET_KEY', noGeneratedKey },
      'SECRET_KEY is not set: config and credentials that need sealing are refused until it is',
    )
    return createUnavailableSecretBox()
  }
  const keyFile = generatedKeyPath(databaseFile)
  const box = createGeneratedKeySecretBox(keyFile)
  log.info({ keyFile, exists: box.keyIds.length > 0 }, 'SECRET_KEY is not set: secrets are sealed with a generated key')
  return box
}
