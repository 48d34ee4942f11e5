export * as ScriptedRuntime from "./ScriptedRuntime.ts"
export * as OpenCodeRuntime from "./OpenCodeRuntime.ts"
export * as FakeModelServer from "./FakeModelServer.ts"
export * as ModelProxy from "./ModelProxy.ts"
