import { createUnavailableSecretBox } from '../index.js'
import type { SecretBox } from '../index.js'
import { createAesGcmSecretBox } from './aes-gcm.js'

/** The gateway's box: AES-256-GCM with SECRET_KEY (64 hex chars, validated by config), or the no-key box. */
export function secretBoxFromHex(keyHex: string | undefined): SecretBox {
  return keyHex === undefined ? createUnavailableSecretBox() : createAesGcmSecretBox({ key: Buffer.from(keyHex, 'hex') })
}
