import { dirname, join, resolve } from 'node:path'
import { errorText, GatewayError } from '../../core/index.js'
import { isSealed } from '../index.js'
import type { SecretBox } from '../index.js'
import { createAesGcmSecretBox } from './aes-gcm.js'
import { readKeyFile, readOrCreateKeyFile } from './key-file.js'

/** Where a gateway without SECRET_KEY keeps its generated key: beside its database file. */
export const generatedKeyPath = (databaseFile: string): string => join(dirname(resolve(databaseFile)), 'secret.key')

/**
 * The box of a gateway without SECRET_KEY on a local database: AES-256-GCM under the key in
 * `path`, which is created the first time a secret is sealed (so a gateway that never stores one
 * writes no key). A value to open when the file is still missing looks for it again, since
 * another gateway on the same database may have created it since.
 */
export function createGeneratedKeySecretBox(path: string): SecretBox {
  const source = `the generated key in ${path}`
  const boxOf = (key: Buffer) => createAesGcmSecretBox({ key, source })
  const found = readKeyFile(path)
  let box: SecretBox | undefined = found && boxOf(found)

  const created = (): SecretBox => {
    if (box) return box
    try {
      box = boxOf(readOrCreateKeyFile(path))
    } catch (err) {
      throw new GatewayError(
        'SECRETS_UNAVAILABLE',
        503,
        `cannot create the generated key file ${path} (${errorText(err)}): make its directory writable, or set SECRET_KEY`,
        { cause: err },
      )
    }
    return box
  }
  const existing = (): SecretBox => {
    if (box) return box
    const key = readKeyFile(path)
    if (!key) throw new GatewayError('SECRETS_UNREADABLE', 500, `a stored secret cannot be opened: ${path} does not exist`)
    box = boxOf(key)
    return box
  }

  return {
    hasKey: true,
    get keyIds() {
      return box?.keyIds ?? []
    },
    describeKey: () => box?.describeKey() ?? `SECRET_KEY is not set and ${path} does not exist yet`,
    seal: (plain, context) => created().seal(plain, context),
    open: (sealed, context) => existing().open(sealed, context),
    isSealed,
  }
}
