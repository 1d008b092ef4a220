// The only place a worker key is built. Ids are validated ([a-z0-9_-]) so ':' cannot collide.
export type WorkerKey = `${string}:${string}`

export const workerKey = (orgId: string, pluginId: string): WorkerKey => `${orgId}:${pluginId}`
