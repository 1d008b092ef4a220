import { workerKey } from '../core/index.js'

/**
 * The Node gateway that serves (orgId, pluginId): rendezvous (highest-random-weight) hashing, so a
 * pair always lands on the same host while the list is unchanged, and removing a host moves only the
 * pairs that host served. The worker process for a pair lives on one host; hitting it again stays warm.
 */
export function pickOrigin(origins: readonly string[], orgId: string, pluginId: string): string {
  const key = workerKey(orgId, pluginId)
  let best: string | undefined
  let bestScore = -1
  for (const origin of origins) {
    const score = hash32(`${key}\n${origin}`)
    if (score > bestScore || (score === bestScore && best !== undefined && origin < best)) {
      best = origin
      bestScore = score
    }
  }
  if (best === undefined) throw new RangeError('pickOrigin needs at least one origin')
  return best
}

/** FNV-1a over UTF-16 code units, then the murmur3 finalizer so close inputs spread apart. Unsigned. */
function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
