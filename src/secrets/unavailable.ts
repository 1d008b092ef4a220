import { GatewayError } from '../core/index.js'
import { isSealed } from './sealed.js'
import type { SecretBox } from './types.js'

export const secretsUnavailable = (what: string) =>
  new GatewayError(
    'SECRETS_UNAVAILABLE',
    503,
    `${what}: SECRET_KEY is not set, so secrets cannot be sealed or opened; set SECRET_KEY (32 bytes as 64 hex chars or base64, e.g. \`openssl rand -hex 32\`) and restart the gateway`,
  )

/** The box of a gateway without SECRET_KEY: recognises sealed values, refuses to seal or open them. */
export function createUnavailableSecretBox(): SecretBox {
  return {
    hasKey: false,
    keyIds: [],
    describeKey: () => 'SECRET_KEY is not set',
    seal() {
      throw secretsUnavailable('cannot store a secret')
    },
    open() {
      throw secretsUnavailable('cannot read a stored secret')
    },
    isSealed,
  }
}
