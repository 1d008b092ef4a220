// Runtime-agnostic: sealed-value format, masking, and the no-key box. The node:crypto box lives in
// ./node (its own door), so nothing reachable from app.ts imports node:*.
export type { Sealed, SecretBox } from './types.js'
export { isSealed, makeSealed, MASK, parseSealed, SEALED_TAG } from './sealed.js'
export type { SealedParts } from './sealed.js'
export { createUnavailableSecretBox, secretsUnavailable } from './unavailable.js'
export {
  hasPlaintextSecrets,
  isSecretField,
  maskConfig,
  maskMetadata,
  openAuth,
  openConfig,
  openPublicFields,
  resealUnderCurrentKey,
  sealAuth,
  sealConfig,
  sealedValuesOf,
  unmaskConfig,
} from './instance-secrets.js'
export type { InstanceRef } from './instance-secrets.js'
