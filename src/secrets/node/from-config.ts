import { createUnavailableSecretBox } from '../index.js'
import type { SecretBox } from '../index.js'
import { createAesGcmSecretBox } from './aes-gcm.js'

/**
 * The gateway's box: AES-256-GCM with SECRET_KEY (64 hex chars, validated by config) sealing, and
 * SECRET_KEY_PREVIOUS also opening, or the no-key box.
 */
export function secretBoxFromHex(keyHex: string | undefined, previousHex: readonly string[] = []): SecretBox {
  if (keyHex === undefined) return createUnavailableSecretBox()
  return createAesGcmSecretBox({ key: Buffer.from(keyHex, 'hex'), previousKeys: previousHex.map((hex) => Buffer.from(hex, 'hex')) })
}
