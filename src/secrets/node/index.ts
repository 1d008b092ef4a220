// The Node adapter of src/secrets: the node:crypto SecretBox. Only the Node entry imports this door.
export { createAesGcmSecretBox, secretKeyId } from './aes-gcm.js'
export type { AesGcmSecretBoxOptions } from './aes-gcm.js'
export { secretBoxFromHex } from './from-config.js'
