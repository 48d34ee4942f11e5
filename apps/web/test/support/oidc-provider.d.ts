// The few parts of oidc-provider (a test-only dependency, shipped without types) that TestIdp uses.
declare module "oidc-provider" {
  import type { RequestListener } from "node:http"
  interface KoaContext {
    readonly path: string
    body: unknown
  }
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown> & {
      readonly findAccount?: (ctx: unknown, sub: string) => unknown
    })
    use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void
    callback(): RequestListener
  }
}
