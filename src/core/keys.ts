// The only place a worker key is built or split. Ids are validated ([a-z0-9_-]) so ':' cannot collide.
export type WorkerKey = `${string}:${string}`

export const workerKey = (orgId: string, pluginId: string): WorkerKey => `${orgId}:${pluginId}`

export function splitWorkerKey(key: WorkerKey): { orgId: string; pluginId: string } {
  const at = key.indexOf(':')
  return { orgId: key.slice(0, at), pluginId: key.slice(at + 1) }
}
