// The HTTP surface's door: route factories for app.ts, the public path's rules (shared with the Node
// entry's fast path), and the runtime-agnostic pieces the edge entry reuses (error shape, request
// ids, id validation, the control-path rule).
export { adminAuth, isLoopback } from './admin-auth.js'
export type { AdminAuthOptions } from './admin-auth.js'
export { adminRoutes, workerJson } from './admin.js'
export type { AdminRouteDeps } from './admin.js'
export type { AppEnv, ClientAddress, RequestHeader } from './env.js'
export { errorBody, errorResponse, logFailure, notFound, onError, toGatewayError } from './errors.js'
export { internalRoutes } from './internal.js'
export type { InternalRouteDeps } from './internal.js'
export { metricsRoutes } from './metrics.js'
export { createPublicPath, isControlPath, publicRoutes } from './public.js'
export type { PublicExchange, PublicPathDeps, PublicRouteDeps, RequestUrl, ServePublic } from './public.js'
export { isPlainRequestId, requestIdFor, requestIdMiddleware } from './request-id.js'
export { uiRoutes } from './ui.js'
export type { UiRouteDeps } from './ui.js'
export { jsonBody, params } from './validate.js'
